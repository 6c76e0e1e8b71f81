"""MT routing: which connectors a message to a handset is offered to, in order.

The rules (Jasmin's vocabulary: a route is filters plus connectors plus a
strategy) are tried by priority (lowest first), then the longest prefix, then
the oldest. The first whose account, prefix, MCC/MNC and sender filters all
match, and that has at least one enabled connector, decides. Its strategy
orders the connectors:

* ``failover``: by position; the dispatcher tries the next on a permanent
  error or when one is down;
* ``round_robin``: by position rotated by ``turn``, a counter the caller keeps
  per route, so consecutive messages start on consecutive connectors;
* ``least_cost``: by effective cost, ``cost_micros / max(quality, 0.05)``, where
  quality (0..1) is the recent delivery ratio the caller measured for that
  connector, or else the ``sms_costs.quality`` it was configured with (0..100,
  scaled). Halving the delivery ratio doubles the effective price, and the
  floor keeps a connector that delivered nothing lately orderable (last,
  unless it is very cheap) rather than infinitely dear. Ties go by position;
  connectors with no cost for the destination go last, by position.

Bind health is not the router's business: the dispatcher skips a connector
that is down when it sends, so a route does not change while a bind flaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from warpd.billing.tariff import connector_cost
from warpd.errors import NoRoute
from warpd.routing.table import MtRoute, RoutingTable

QUALITY_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class MtDecision:
    route_id: int
    strategy: str
    # Connector ids in the order to try them.
    candidates: tuple[int, ...]
    # Human-readable: the rules skipped and why, and how the candidates were ordered.
    reasons: tuple[str, ...]


class NoMtRoute(NoRoute):
    """No MT rule gives a connector; ``reasons`` lists why each rule was passed over."""

    def __init__(self, destination: str, reasons: tuple[str, ...]) -> None:
        detail = "; ".join(reasons) if reasons else "no route matches the prefix"
        super().__init__(f"no route to {destination}: {detail}")
        self.destination = destination
        self.reasons = reasons


_NO_QUALITY: Mapping[int, float] = {}


def route_mt(
    table: RoutingTable,
    *,
    account_id: int,
    destination: str,
    source: str,
    mcc_mnc: str | None,
    quality: Mapping[int, float] = _NO_QUALITY,
    turn: int = 0,
    at: datetime | None = None,
) -> MtDecision:
    """The decision for one message, or :class:`NoMtRoute` (a ``NoRoute``) with the reasons."""
    reasons: list[str] = []
    routes = table.mt_routes
    connectors = table.connectors
    for rank in table.mt_prefix_matches(account_id, destination):
        route = routes[rank]
        if route.mcc_mnc is not None and route.mcc_mnc != mcc_mnc:
            reasons.append(
                f"{label(route)}: skipped, network {mcc_mnc or 'unknown'} is not {route.mcc_mnc}"
            )
            continue
        if route.source_regex is not None and route.source_regex.search(source) is None:
            reasons.append(
                f"{label(route)}: skipped, sender {source!r} does not match "
                f"{route.source_regex.pattern!r}"
            )
            continue
        enabled = tuple(c for c in route.connector_ids if connectors[c].enabled)
        if not enabled:
            why = "every connector is disabled" if route.connector_ids else "it has no connectors"
            reasons.append(f"{label(route)}: skipped, {why}")
            continue
        reasons.append(f"{label(route)}: chosen")
        if len(enabled) < len(route.connector_ids):
            reasons.extend(
                f"connector {c} ({connectors[c].name}): left out, disabled"
                for c in route.connector_ids
                if not connectors[c].enabled
            )
        if route.strategy == "failover":
            candidates = enabled
        elif route.strategy == "round_robin":
            start = turn % len(enabled)
            candidates = enabled[start:] + enabled[:start]
            reasons.append(f"round_robin: turn {turn} starts at connector {candidates[0]}")
        else:
            when = at if at is not None else datetime.now(UTC)
            candidates = _least_cost(
                table, enabled=enabled, destination=destination, mcc_mnc=mcc_mnc,
                quality=quality, at=when, reasons=reasons,
            )  # fmt: skip
        return MtDecision(route.id, route.strategy, candidates, tuple(reasons))
    raise NoMtRoute(destination, tuple(reasons))


def label(route: MtRoute) -> str:
    scope = "any account" if route.account_id is None else f"account {route.account_id}"
    return f"route {route.id} (priority {route.priority}, prefix '{route.prefix}', {scope})"


def _least_cost(
    table: RoutingTable,
    *,
    enabled: tuple[int, ...],
    destination: str,
    mcc_mnc: str | None,
    quality: Mapping[int, float],
    at: datetime,
    reasons: list[str],
) -> tuple[int, ...]:
    # Floats only order candidates here; no amount of money is computed from them.
    priced: list[tuple[float, int, int]] = []
    unpriced: list[int] = []
    for position, cid in enumerate(enabled):
        cost = connector_cost(
            table.costs, connector_id=cid, msisdn=destination, mcc_mnc=mcc_mnc, at=at
        )
        if cost is None:
            unpriced.append(cid)
            reasons.append(f"least_cost: connector {cid} has no cost for {destination}, last")
            continue
        measured = quality.get(cid)
        q = cost.quality / 100 if measured is None else min(measured, 1.0)
        effective = cost.cost_micros / max(q, QUALITY_FLOOR)
        priced.append((effective, position, cid))
        reasons.append(
            f"least_cost: connector {cid} costs {cost.cost_micros} micros "
            f"(prefix '{cost.prefix}'{_network(cost.mcc_mnc)}), quality {q:.2f}"
            f"{'' if measured is not None else ' configured'}, effective {effective:.0f}"
        )
    priced.sort()
    return tuple(cid for _, _, cid in priced) + tuple(unpriced)


def _network(mcc_mnc: str | None) -> str:
    return "" if mcc_mnc is None else f", network {mcc_mnc}"
