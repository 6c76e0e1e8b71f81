"""The pure voice policies: pricing, limits, number normalisation, routing."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpd.voice.limits import (
    CallLimits,
    Refusal,
    SourceBudgets,
    SourceRates,
    TokenBucket,
    admit,
)
from warpd.voice.rating import VoiceRate, best_rate, billed_seconds, billsec_of, price_micros
from warpd.voice.routes import find_route, gateways_for
from warpd.voice.transport import is_response
from warpd.voice.trunks import (
    _SOURCES_KEPT,
    Did,
    Directory,
    Gateway,
    Trunk,
    VoiceRoute,
    caller_id,
    normalise,
)


@pytest.mark.parametrize(
    ("first", "nxt", "billsec", "billed"),
    [(60, 60, 1, 60), (60, 60, 61, 120), (1, 1, 37, 37), (30, 6, 31, 36), (30, 6, 29, 30),
     (30, 6, 0, 0)],
)  # fmt: skip
def test_billed_seconds_follow_the_increments(
    first: int, nxt: int, billsec: int, billed: int
) -> None:
    assert billed_seconds(VoiceRate("", 1, 0, first, nxt), billsec) == billed


def test_price_is_connect_fee_plus_rounded_up_micros() -> None:
    rate = VoiceRate("44", per_min_micros=10_001, connect_fee_micros=500, first_increment_s=1,
                     next_increment_s=1)  # fmt: skip
    # 7 s of 10 001 per minute = 1166.78 micros: rounded up to 1167.
    assert price_micros(rate, 7) == 500 + 1167
    assert price_micros(rate, 0) == 0  # unanswered: no connect fee either


@given(st.integers(1, 600), st.integers(1, 600), st.integers(1, 100_000), st.integers(0, 10**7))
def test_price_never_below_the_exact_amount(
    first: int, nxt: int, billsec: int, per_min: int
) -> None:
    rate = VoiceRate("", per_min, 0, first, nxt)
    assert price_micros(rate, billsec) * 60 >= per_min * billsec
    assert billed_seconds(rate, billsec) >= billsec


def test_billsec_counts_a_started_second() -> None:
    assert [billsec_of(ms) for ms in (0, 1, 999, 1000, 1001)] == [0, 1, 1, 1, 2]


def test_best_rate_is_the_longest_prefix() -> None:
    rates = [VoiceRate("", 1), VoiceRate("44", 2), VoiceRate("447", 3)]
    assert best_rate(rates, "447700900000") == rates[2]
    assert best_rate(rates, "441000") == rates[1]
    assert best_rate(rates, "33100") == rates[0]
    assert best_rate(rates[1:], "33100") is None


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(2.0, 2.0, now=0.0)
    ok1, bucket = bucket.take(0.0)
    ok2, bucket = bucket.take(0.0)
    ok3, bucket = bucket.take(0.0)
    assert (ok1, ok2, ok3) == (True, True, False)
    assert bucket.wait_for_token(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5)[0]


def test_admit_checks_channels_then_cps_then_money() -> None:
    limits = CallLimits(max_channels=2, channel_status=486)
    assert admit(limits, 2, True, 0.0, 100).refusal is Refusal.CHANNELS
    assert admit(limits, 2, True, 0.0, 100).status == 486
    cps = admit(limits, 1, False, 0.2, 100)
    assert (cps.refusal, cps.status, cps.retry_after) == (Refusal.CPS, 503, 1)
    assert admit(limits, 1, True, 0.0, 0).status == 402
    assert admit(limits, 1, True, 0.0, 1).allowed
    # The cheapest answered call must fit, not just one micro-unit.
    assert admit(limits, 1, True, 0.0, 10_999, minimum_micros=11_000).status == 402
    assert admit(limits, 1, True, 0.0, 11_000, minimum_micros=11_000).allowed


def test_source_rates_drop_a_flood_from_one_address_only() -> None:
    rates = SourceRates(rate=10.0, burst=10.0)
    flood = [rates.allow("192.0.2.1", 0.0) for _ in range(15)]
    assert flood.count(True) == 10
    assert rates.allow("192.0.2.2", 0.0)
    assert rates.allow("192.0.2.1", 0.2)  # refilled two tokens


def test_a_request_flood_leaves_the_same_address_s_responses_their_budget() -> None:
    budgets = SourceBudgets(request_rate=5.0, response_rate=20.0)
    assert [budgets.allow("192.0.2.1", 0.0, False) for _ in range(20)].count(True) == 10
    assert [budgets.allow("192.0.2.1", 0.0, True) for _ in range(50)].count(True) == 40
    unlimited = SourceBudgets(request_rate=0.0, response_rate=0.0)
    assert all(unlimited.allow("192.0.2.1", 0.0, r) for r in (True, False) * 100)


def test_responses_are_told_from_requests_by_their_first_bytes() -> None:
    assert is_response(b"SIP/2.0 200 OK\r\n")
    assert not is_response(b"INVITE sip:x SIP/2.0\r\n")
    assert not is_response(b"\r\n\r\n")


TRUNK = Trunk(1, 7, "pbx", "ip", (ipaddress.ip_network("10.0.0.0/8"),), country_code="44")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("+44 20 7946 0000", "442079460000"), ("00442079460000", "442079460000"),
     ("02079460000", "442079460000"), ("442079460000", "442079460000"), ("123", None),
     ("abc", None)],
)  # fmt: skip
def test_normalise_by_trunk_rules(raw: str, e164: str | None) -> None:
    assert normalise(raw, TRUNK) == e164


def test_caller_id_must_be_a_did_unless_trusted() -> None:
    directory = Directory(trunks=(TRUNK,), dids={"442000000001": Did("442000000001", 7, 1)})
    assert caller_id(directory, TRUNK, "442000000001") == "442000000001"
    fallback = Trunk(1, 7, "pbx", "ip", default_caller_id="442000000002")
    assert caller_id(directory, fallback, "449999999999") == "442000000002"
    trusted = Trunk(1, 7, "pbx", "ip", trust_caller_id=True, default_caller_id="442000000002")
    assert caller_id(directory, trusted, "449999999999") == "449999999999"


def test_trunk_for_source_picks_the_narrowest_network() -> None:
    wide = TRUNK
    narrow = Trunk(2, 8, "pbx2", "ip", (ipaddress.ip_network("10.1.0.0/16"),))
    directory = Directory(trunks=(wide, narrow))
    assert directory.trunk_for_source("10.1.2.3") == narrow
    assert directory.trunk_for_source("10.2.0.1") == wide
    assert directory.trunk_for_source("192.0.2.1") is None
    assert directory.trunk_for_source("not an ip") is None
    # Asked again, the remembered answers are the same ones.
    assert directory.trunk_for_source("10.1.2.3") == narrow
    assert directory.trunk_for_source("192.0.2.1") is None


def test_trunk_for_source_remembers_a_bounded_number_of_sources() -> None:
    directory = Directory(trunks=(TRUNK,))
    sources = [str(ipaddress.ip_address("10.0.0.0") + n) for n in range(_SOURCES_KEPT + 100)]
    assert all(directory.trunk_for_source(ip) == TRUNK for ip in sources)
    assert directory.trunk_for_source("192.0.2.1") is None  # past the bound: answered, not kept
    assert len(directory._by_source) == _SOURCES_KEPT
    # A reloaded directory (a new one, or a replaced copy) starts with nothing remembered.
    narrowed = dataclasses.replace(directory, trunks=())
    assert narrowed.trunk_for_source(sources[0]) is None


def _directory(strategy: str) -> Directory:
    gateways = {i: Gateway(i, f"gw{i}", "192.0.2.1", 5060 + i) for i in (1, 2, 3)}
    routes = (
        VoiceRoute(1, 100, None, "4", strategy, (1, 2, 3)),
        VoiceRoute(2, 100, None, "44", strategy, (3,)),
        VoiceRoute(3, 50, 99, "", strategy, (2,)),
    )
    costs = {1: (VoiceRate("44", 30),), 2: (VoiceRate("44", 10),)}
    return Directory(gateways=gateways, routes=routes, costs=costs)


def test_route_is_lowest_priority_then_longest_prefix() -> None:
    directory = _directory("failover")
    assert find_route(directory, 7, "441234").id == 2  # type: ignore[union-attr]
    assert find_route(directory, 7, "491234").id == 1  # type: ignore[union-attr]
    assert find_route(directory, 99, "441234").id == 3  # type: ignore[union-attr]
    assert find_route(directory, 7, "331234") is None


def test_gateway_order_by_strategy() -> None:
    route = _directory("failover").routes[0]
    ids = [g.id for g in gateways_for(_directory("failover"), route, "441")]
    assert ids == [1, 2, 3]
    rr = _directory("round_robin")
    assert [g.id for g in gateways_for(rr, rr.routes[0], "441", turn=4)] == [2, 3, 1]
    lc = _directory("least_cost")
    assert [g.id for g in gateways_for(lc, lc.routes[0], "441")] == [2, 1, 3]
    assert [g.id for g in gateways_for(lc, lc.routes[0], "441", down={2})] == [1, 3]
    assert [g.id for g in gateways_for(lc, lc.routes[0], "441", down={1, 2, 3})] == [2, 1, 3]


def test_gateway_dial_strips_and_prefixes() -> None:
    assert Gateway(1, "g", "h", strip_digits=2, add_prefix="0").dial("441234") == "01234"
