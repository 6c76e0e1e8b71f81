"""Rates (what a customer pays per part) and costs (what a carrier charges us).

``sms_rates`` rows belong to a rate plan, ``sms_costs`` rows to a connector;
both are keyed by destination prefix and optionally an MCC/MNC, and hold from
``valid_from`` to ``valid_to``. The choice, for rates and costs alike:

1. rows naming the message's network (``mcc_mnc``) beat rows that do not;
2. among those, the longest prefix of the E.164 number wins; '' is the plan's
   (or connector's) default;
3. only rows valid at ``at`` count; of two valid rows for the same key the one
   that started later wins, so a scheduled price change needs no deletion.

Money stays integer micro-units throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from warpd.billing.prefixes import PriceList, Window
from warpd.store.migrate import Conn


@dataclass(frozen=True, slots=True)
class Rate:
    price_micros: int
    prefix: str
    mcc_mnc: str | None
    rate_id: int


@dataclass(frozen=True, slots=True)
class Tariffs:
    """``sms_rates`` by rate plan id."""

    plans: Mapping[int, PriceList[Rate]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cost:
    cost_micros: int
    # 0..100 as configured in sms_costs: the prior for least-cost routing
    # before any delivery ratio has been measured.
    quality: int
    currency: str
    prefix: str
    mcc_mnc: str | None
    cost_id: int


@dataclass(frozen=True, slots=True)
class Costs:
    """``sms_costs`` by connector id."""

    connectors: Mapping[int, PriceList[Cost]] = field(default_factory=dict)


class HasCosts(Protocol):
    """A routing table, which carries the costs it routes by."""

    @property
    def costs(self) -> Costs: ...


# Rows already over by the time they are loaded can never hold again; PostgreSQL's
# infinities become None so the pure code needs no sentinel datetimes.
_RATES_SQL = """
SELECT id, rate_plan_id, prefix, mcc_mnc, price_micros,
       CASE WHEN valid_from = '-infinity' THEN NULL ELSE valid_from END AS valid_from,
       CASE WHEN valid_to = 'infinity' THEN NULL ELSE valid_to END AS valid_to
  FROM sms_rates
 WHERE valid_to > now()
"""

_COSTS_SQL = """
SELECT id, connector_id, prefix, mcc_mnc, cost_micros, currency, quality,
       CASE WHEN valid_from = '-infinity' THEN NULL ELSE valid_from END AS valid_from,
       CASE WHEN valid_to = 'infinity' THEN NULL ELSE valid_to END AS valid_to
  FROM sms_costs
 WHERE valid_to > now()
"""


async def load_tariffs(conn: Conn) -> Tariffs:
    rows: dict[int, list[tuple[str, str | None, Window[Rate]]]] = {}
    for r in await conn.fetch(_RATES_SQL):
        rate = Rate(r["price_micros"], r["prefix"], r["mcc_mnc"], r["id"])
        rows.setdefault(r["rate_plan_id"], []).append(
            (r["prefix"], r["mcc_mnc"], Window(r["valid_from"], r["valid_to"], rate))
        )
    return Tariffs({plan: PriceList.build(entries) for plan, entries in rows.items()})


async def load_costs(conn: Conn) -> Costs:
    rows: dict[int, list[tuple[str, str | None, Window[Cost]]]] = {}
    for r in await conn.fetch(_COSTS_SQL):
        cost = Cost(
            r["cost_micros"], r["quality"], r["currency"], r["prefix"], r["mcc_mnc"], r["id"]
        )
        rows.setdefault(r["connector_id"], []).append(
            (r["prefix"], r["mcc_mnc"], Window(r["valid_from"], r["valid_to"], cost))
        )
    return Costs({cid: PriceList.build(entries) for cid, entries in rows.items()})


def sms_rate(
    tariffs: Tariffs, *, rate_plan_id: int, msisdn: str, mcc_mnc: str | None, at: datetime
) -> Rate | None:
    """The rate for one part to ``msisdn`` under a plan, or None when the plan has none."""
    plan = tariffs.plans.get(rate_plan_id)
    if plan is None:
        return None
    return plan.find(msisdn, mcc_mnc, at)


def connector_cost(
    table_or_costs: Costs | HasCosts,
    *,
    connector_id: int,
    msisdn: str,
    mcc_mnc: str | None,
    at: datetime,
) -> Cost | None:
    """The carrier's cost row for one part through ``connector_id``, or None."""
    costs = table_or_costs if isinstance(table_or_costs, Costs) else table_or_costs.costs
    prices = costs.connectors.get(connector_id)
    if prices is None:
        return None
    return prices.find(msisdn, mcc_mnc, at)


def sms_cost(
    table_or_costs: Costs | HasCosts,
    *,
    connector_id: int,
    msisdn: str,
    mcc_mnc: str | None,
    at: datetime,
) -> int | None:
    """What one part through ``connector_id`` costs us, in micro-units, or None."""
    cost = connector_cost(
        table_or_costs, connector_id=connector_id, msisdn=msisdn, mcc_mnc=mcc_mnc, at=at
    )
    return None if cost is None else cost.cost_micros
