"""MT rules and strategies, as pure functions over hand-built tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpd.billing.prefixes import PriceList, Window
from warpd.billing.tariff import Cost, Costs
from warpd.errors import NoRoute
from warpd.routing.mt import MtDecision, NoMtRoute, route_mt
from warpd.routing.table import RoutingTable, network_of

from .builders import connectors, mt, table

GB = "447400123456"
FR = "33612345678"


def route(t: RoutingTable, to: str = GB, *, account: int = 1, source: str = "ACME",
          mcc_mnc: str | None = None, **kw: Any) -> MtDecision:  # fmt: skip
    return route_mt(t, account_id=account, destination=to, source=source, mcc_mnc=mcc_mnc, **kw)


def test_priority_beats_prefix_length_and_longest_prefix_breaks_ties() -> None:
    t = table(
        [mt(1, 10, prefix="4474"), mt(2, 20, priority=50, prefix="44"), mt(3, 30, prefix="447")]
    )
    assert route(t).route_id == 2
    t = table([mt(1, 10, prefix="4474"), mt(3, 30, prefix="447"), mt(4, 40, prefix="")])
    assert route(t).route_id == 1
    assert route(t, "447912345678").route_id == 3
    assert route(t, FR).route_id == 4


def test_same_priority_and_prefix_goes_to_the_older_route() -> None:
    t = table([mt(9, 90, prefix="44"), mt(2, 20, prefix="44")])
    assert route(t).route_id == 2


def test_account_filter() -> None:
    t = table([mt(1, 10, account=5, priority=10), mt(2, 20, priority=20)])
    assert route(t, account=5).route_id == 1
    assert route(t, account=6).route_id == 2
    # An account route with a longer prefix merges into order with the global ones.
    t = table([mt(1, 10, prefix="4"), mt(2, 20, account=5, prefix="447"), mt(3, 30, prefix="44")])
    assert route(t, account=5).route_id == 2
    assert route(t, account=6).route_id == 3
    t = table([mt(1, 10, account=5)])
    with pytest.raises(NoRoute):
        route(t, account=6)


def test_mcc_mnc_filter() -> None:
    t = table([mt(1, 10, mcc_mnc="23415", priority=10), mt(2, 20)])
    assert route(t, mcc_mnc="23415").route_id == 1
    decision = route(t, mcc_mnc="23410")
    assert decision.route_id == 2
    assert "route 1" in decision.reasons[0]
    assert "network 23410 is not 23415" in decision.reasons[0]
    assert "network unknown" in route(t, mcc_mnc=None).reasons[0]


def test_source_filter_is_a_regex_search() -> None:
    t = table(
        [mt(1, 10, source="^BANK$", priority=10), mt(2, 20, source="^44", priority=20), mt(3, 30)]
    )
    assert route(t, source="BANK").route_id == 1
    assert route(t, source="BANKX").route_id == 3
    assert route(t, source="447400000000").route_id == 2
    decision = route(t, source="MyShop")
    assert decision.route_id == 3
    assert "sender 'MyShop' does not match '^BANK$'" in decision.reasons[0]


def test_disabled_connectors_are_left_out_and_a_route_without_any_is_skipped() -> None:
    conns = connectors(10, 11, 20, disabled=[10, 11])
    t = table([mt(1, 10, 11, priority=10), mt(2, 11, 20, priority=20), mt(3, priority=5)], conns)
    decision = route(t)
    assert decision.route_id == 2
    assert decision.candidates == (20,)
    assert any("route 3" in r and "no connectors" in r for r in decision.reasons)
    assert any("route 1" in r and "every connector is disabled" in r for r in decision.reasons)
    assert "connector 11 (c11): left out, disabled" in decision.reasons


def test_no_route_carries_the_reasons() -> None:
    t = table([mt(1, 10, prefix="33"), mt(2, 20, prefix="44", source="^X$")])
    with pytest.raises(NoMtRoute) as info:
        route(t)
    assert isinstance(info.value, NoRoute)
    assert len(info.value.reasons) == 1
    assert "route 2" in info.value.reasons[0]
    assert GB in str(info.value)
    with pytest.raises(NoRoute, match="no route matches the prefix"):
        route(RoutingTable())


def test_failover_keeps_position_order() -> None:
    t = table([mt(1, 30, 10, 20)])
    assert route(t).candidates == (30, 10, 20)
    assert route(t).strategy == "failover"


def test_round_robin_rotates_by_turn_over_enabled_connectors() -> None:
    t = table(
        [mt(1, 10, 20, 30, 40, strategy="round_robin")], connectors(10, 20, 30, 40, disabled=[20])
    )
    assert [route(t, turn=n).candidates for n in range(4)] == [
        (10, 30, 40),
        (30, 40, 10),
        (40, 10, 30),
        (10, 30, 40),
    ]
    assert route(t, turn=3 * 10**12 + 1).candidates == (30, 40, 10)


AT = datetime(2026, 6, 1, tzinfo=UTC)


def test_least_cost_orders_by_cost_weighted_by_quality() -> None:
    rows = [
        (10, "44", None, 5_000, 100),
        (20, "44", None, 4_000, 100),
        (30, "447", None, 6_000, 100),
    ]
    t = table([mt(1, 10, 20, 30, strategy="least_cost")], cost_rows=rows)
    assert route(t, at=AT).candidates == (20, 10, 30)
    # Connector 20 delivered half its messages lately: 4000 / 0.5 = 8000, now dearest.
    assert route(t, at=AT, quality={20: 0.5}).candidates == (10, 30, 20)
    # Zero quality is floored at 0.05, not infinitely dear: 4000 / 0.05 = 80000.
    assert route(t, at=AT, quality={10: 0.0, 20: 0.0, 30: 0.0}).candidates == (20, 10, 30)
    reasons = route(t, at=AT, quality={20: 0.5}).reasons
    assert any("connector 20 costs 4000 micros" in r and "effective 8000" in r for r in reasons)


def test_least_cost_uses_the_configured_quality_without_a_measurement() -> None:
    rows = [(10, "", None, 5_000, 100), (20, "", None, 4_000, 50)]
    t = table([mt(1, 10, 20, strategy="least_cost")], cost_rows=rows)
    assert route(t, at=AT).candidates == (10, 20)
    assert route(t, at=AT, quality={20: 1.0}).candidates == (20, 10)


def test_least_cost_ties_by_position_and_unpriced_go_last() -> None:
    rows = [(20, "", None, 1_000, 100), (30, "", None, 1_000, 100)]
    t = table([mt(1, 40, 10, 30, 20, strategy="least_cost")], cost_rows=rows)
    decision = route(t, at=AT)
    assert decision.candidates == (30, 20, 40, 10)
    assert any("connector 40 has no cost" in r for r in decision.reasons)


def test_least_cost_respects_network_costs_and_validity() -> None:
    late = AT + timedelta(days=1)
    cost_map = Costs(
        {
            10: PriceList.build(
                [("", None, Window(None, None, Cost(5_000, 100, "EUR", "", None, 1)))]
            ),
            20: PriceList.build(
                [
                    ("", None, Window(None, None, Cost(6_000, 100, "EUR", "", None, 2))),
                    ("", "23415", Window(None, late, Cost(1_000, 100, "EUR", "", "23415", 3))),
                ]
            ),
        }
    )
    base = table([mt(1, 10, 20, strategy="least_cost")])
    t = RoutingTable(base.connectors, base.mt_routes, costs=cost_map)
    assert route(t, at=AT).candidates == (10, 20)
    assert route(t, at=AT, mcc_mnc="23415").candidates == (20, 10)
    assert route(t, at=late, mcc_mnc="23415").candidates == (10, 20)
    # Without `at` the clock decides: a cost that ended in 2000 no longer counts.
    ended = RoutingTable(
        base.connectors,
        base.mt_routes,
        costs=Costs(
            {
                10: cost_map.connectors[10],
                20: PriceList.build(
                    [
                        (
                            "",
                            None,
                            Window(
                                None,
                                datetime(2000, 1, 1, tzinfo=UTC),
                                Cost(1, 100, "EUR", "", None, 4),
                            ),
                        )
                    ]
                ),
            }
        ),
    )
    assert route(ended).candidates == (10, 20)
    assert route(ended, at=datetime(1999, 1, 1, tzinfo=UTC)).candidates == (20, 10)


def test_network_of_by_longest_prefix() -> None:
    t = table(prefixes={"44": "23499", "4474": "23415", "44740": "23410"})
    assert network_of(t, GB) == "23410"
    assert network_of(t, "447412345678") == "23415"
    assert network_of(t, "442071234567") == "23499"
    assert network_of(t, FR) is None


def test_table_refuses_unknown_strategy_or_connector() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        table([mt(1, 10, strategy="random")])
    with pytest.raises(ValueError, match="unknown connectors"):
        table([mt(1, 10)], connectors(20))


route_specs = st.lists(
    st.tuples(
        st.integers(0, 3),  # priority
        st.sampled_from([None, 1, 2]),  # account
        st.text(alphabet="4471", max_size=4),  # prefix
        st.sampled_from([None, "23410", "23415"]),  # mcc_mnc
        st.sampled_from([None, "^A", "B$"]),  # sender
        st.booleans(),  # has an enabled connector
    ),
    max_size=25,
)


@given(
    route_specs,
    st.integers(1, 3),
    st.text(alphabet="4471", min_size=1, max_size=8),
    st.sampled_from([None, "23410", "23415"]),
    st.sampled_from(["A", "B", "AB", "C"]),
)
def test_route_mt_agrees_with_a_naive_scan(
    specs: list[tuple[int, int | None, str, str | None, str | None, bool]],
    account: int,
    destination: str,
    mcc_mnc: str | None,
    source: str,
) -> None:
    routes = [
        mt(n + 1, (1 if enabled else 2), priority=p, account=a, prefix=pre, mcc_mnc=m, source=s)
        for n, (p, a, pre, m, s, enabled) in enumerate(specs)
    ]
    t = table(routes, connectors(1, 2, disabled=[2]))
    ordered = sorted(routes, key=lambda r: (r.priority, -len(r.prefix), r.id))
    expected = next(
        (
            r.id
            for r in ordered
            if r.account_id in (None, account)
            and destination.startswith(r.prefix)
            and r.mcc_mnc in (None, mcc_mnc)
            and (r.source_regex is None or r.source_regex.search(source))
            and r.connector_ids == (1,)
        ),
        None,
    )
    try:
        got: int | None = route(
            t, destination, account=account, source=source, mcc_mnc=mcc_mnc
        ).route_id
    except NoRoute:
        got = None
    assert got == expected
