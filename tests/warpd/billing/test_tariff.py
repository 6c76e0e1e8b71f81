"""Rate and cost lookups: network beats prefix, longest prefix, validity, none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warpd.billing.prefixes import PriceList, Window
from warpd.billing.tariff import Cost, Costs, Rate, Tariffs, connector_cost, sms_cost, sms_rate

T0 = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
GB = "447400123456"


def rate(rate_id: int, price: int, prefix: str, mcc_mnc: str | None = None,
         valid_from: datetime | None = None, valid_to: datetime | None = None,
         ) -> tuple[str, str | None, Window[Rate]]:  # fmt: skip
    return (prefix, mcc_mnc, Window(valid_from, valid_to, Rate(price, prefix, mcc_mnc, rate_id)))


PLAN = 7
TARIFFS = Tariffs(
    {
        PLAN: PriceList.build(
            [
                rate(1, 50_000, ""),
                rate(2, 30_000, "44"),
                rate(3, 35_000, "447"),
                rate(4, 20_000, "", "23410"),
                rate(5, 25_000, "4474", "23415"),
                # A price change: 447 costs 40,000 from T0 + 1 day.
                rate(6, 40_000, "447", valid_from=T0 + DAY),
                # A promotion that ended.
                rate(7, 1_000, "4474", valid_to=T0 - DAY),
            ]
        ),
        8: PriceList.build([rate(9, 10_000, "33")]),
    }
)


def price(
    msisdn: str, mcc_mnc: str | None = None, at: datetime = T0, plan: int = PLAN
) -> int | None:
    found = sms_rate(TARIFFS, rate_plan_id=plan, msisdn=msisdn, mcc_mnc=mcc_mnc, at=at)
    return None if found is None else found.rate_id


def test_longest_prefix_wins() -> None:
    assert price(GB) == 3
    assert price("442071234567") == 2
    assert price("33612345678") == 1  # the plan's default


def test_mcc_mnc_beats_any_prefix() -> None:
    assert price(GB, "23410") == 4
    assert price(GB, "23415") == 5
    # A network row whose own prefix does not match falls back to prefixes.
    assert price("447900123456", "23415") == 3
    # A network without rows: prefixes.
    assert price(GB, "23499") == 3


def test_validity_windows() -> None:
    assert price(GB, at=T0 + DAY) == 6
    assert price(GB, at=T0 + DAY - timedelta(microseconds=1)) == 3
    # The ended promotion held before its end.
    assert price(GB, at=T0 - 2 * DAY) == 7


def test_no_rate() -> None:
    assert price("447400123456", plan=8) is None
    assert price(GB, plan=99) is None
    assert sms_rate(Tariffs(), rate_plan_id=PLAN, msisdn=GB, mcc_mnc=None, at=T0) is None


def test_rate_carries_what_was_matched() -> None:
    found = sms_rate(TARIFFS, rate_plan_id=PLAN, msisdn=GB, mcc_mnc="23415", at=T0)
    assert found == Rate(price_micros=25_000, prefix="4474", mcc_mnc="23415", rate_id=5)


class Table:
    """Anything with a ``costs`` property, as a routing table has."""

    def __init__(self, costs: Costs) -> None:
        self._costs = costs

    @property
    def costs(self) -> Costs:
        return self._costs


def test_sms_cost_from_costs_or_a_table() -> None:
    costs = Costs(
        {
            1: PriceList.build(
                [
                    ("44", None, Window(None, None, Cost(4_000, 90, "EUR", "44", None, 11))),
                    ("", "23410", Window(None, T0, Cost(3_000, 90, "EUR", "", "23410", 12))),
                ]
            )
        }
    )
    assert sms_cost(costs, connector_id=1, msisdn=GB, mcc_mnc=None, at=T0) == 4_000
    assert sms_cost(costs, connector_id=1, msisdn=GB, mcc_mnc="23410", at=T0 - DAY) == 3_000
    assert sms_cost(costs, connector_id=1, msisdn=GB, mcc_mnc="23410", at=T0) == 4_000
    assert sms_cost(Table(costs), connector_id=1, msisdn=GB, mcc_mnc=None, at=T0) == 4_000
    assert sms_cost(costs, connector_id=2, msisdn=GB, mcc_mnc=None, at=T0) is None
    assert sms_cost(costs, connector_id=1, msisdn="33612345678", mcc_mnc=None, at=T0) is None
    found = connector_cost(costs, connector_id=1, msisdn=GB, mcc_mnc=None, at=T0)
    assert found is not None
    assert (found.quality, found.currency, found.cost_id) == (90, "EUR", 11)
