"""Small constructors for routing tables in tests."""

from __future__ import annotations

import re
from collections.abc import Iterable

from warpd.billing.prefixes import PrefixMap, PriceList, Window
from warpd.billing.tariff import Cost, Costs
from warpd.routing.table import ConnectorRef, MoRoute, MtRoute, Network, RoutingTable


def connectors(*ids: int, disabled: Iterable[int] = ()) -> dict[int, ConnectorRef]:
    off = set(disabled)
    return {i: ConnectorRef(i, f"c{i}", i not in off) for i in ids}


def mt(
    route_id: int,
    *connector_ids: int,
    priority: int = 100,
    account: int | None = None,
    prefix: str = "",
    mcc_mnc: str | None = None,
    source: str | None = None,
    strategy: str = "failover",
) -> MtRoute:
    pattern = None if source is None else re.compile(source)
    return MtRoute(
        route_id, priority, account, prefix, mcc_mnc, pattern, strategy, tuple(connector_ids)
    )


def mo(
    route_id: int,
    number: str,
    account: int,
    *,
    keyword: str | None = None,
    priority: int = 100,
    webhook: int | None = None,
) -> MoRoute:
    via = "smpp" if webhook is None else "webhook"
    return MoRoute(route_id, priority, number, keyword, account, via, webhook)


def costs(rows: Iterable[tuple[int, str, str | None, int, int]]) -> Costs:
    """(connector_id, prefix, mcc_mnc, cost_micros, quality 0..100) rows, always valid."""
    by_connector: dict[int, list[tuple[str, str | None, Window[Cost]]]] = {}
    for n, (cid, prefix, mcc, cost, quality) in enumerate(rows):
        window = Window(None, None, Cost(cost, quality, "EUR", prefix, mcc, n))
        by_connector.setdefault(cid, []).append((prefix, mcc, window))
    return Costs({cid: PriceList.build(r) for cid, r in by_connector.items()})


def table(
    routes: Iterable[MtRoute] = (),
    conns: dict[int, ConnectorRef] | None = None,
    *,
    mo_routes: Iterable[MoRoute] = (),
    prefixes: dict[str, str] | None = None,
    cost_rows: Iterable[tuple[int, str, str | None, int, int]] = (),
) -> RoutingTable:
    routes = tuple(routes)
    if conns is None:
        conns = connectors(*sorted({c for r in routes for c in r.connector_ids}))
    networks = {p: Network(mcc, None, "") for p, mcc in (prefixes or {}).items()}
    return RoutingTable(conns, routes, tuple(mo_routes), PrefixMap(networks), costs(cost_rows))
