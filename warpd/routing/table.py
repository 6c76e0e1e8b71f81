"""The routing table: one frozen snapshot of routes, connectors, prefixes and costs.

Built once per load (:func:`load_routing`) with the indexes the per-message
lookups need, so that routing a message is a handful of dict probes rather
than a scan of every route. The daemon swaps in a new table when routes change;
a message routed meanwhile sees the old table whole, never a half-loaded one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import asyncpg
import structlog

from warpd.billing.prefixes import PrefixMap
from warpd.billing.tariff import Costs, load_costs
from warpd.store.migrate import Conn

log = structlog.get_logger(__name__)

STRATEGIES = ("failover", "round_robin", "least_cost")


@dataclass(frozen=True, slots=True)
class ConnectorRef:
    id: int
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class MtRoute:
    """One ``mt_routes`` row with its connectors in position order.

    ``source_regex`` is searched in the sender (``re.search``): anchor it
    (``^BANK$``) to mean one sender exactly.
    """

    id: int
    priority: int
    account_id: int | None
    prefix: str
    mcc_mnc: str | None
    source_regex: re.Pattern[str] | None
    strategy: str
    connector_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MoRoute:
    id: int
    priority: int
    number: str
    keyword: str | None
    account_id: int
    deliver_via: str
    webhook_id: int | None


@dataclass(frozen=True, slots=True)
class Network:
    """One ``number_prefixes`` row: the network that owns numbers starting ``prefix``."""

    mcc_mnc: str
    country: str | None
    name: str


def _mt_order(route: MtRoute) -> tuple[int, int, int]:
    # Lowest priority first, then the longest prefix, then the oldest route, so
    # the order is total and the same on every instance.
    return (route.priority, -len(route.prefix), route.id)


def _mo_order(route: MoRoute) -> tuple[bool, int, int]:
    return (route.keyword is None, route.priority, route.id)


def _mt_index(routes: tuple[MtRoute, ...]) -> dict[int | None, PrefixMap[tuple[int, ...]]]:
    """Per account (None: any account), prefix -> ranks of every route that prefix matches.

    The entry for prefix P lists the routes whose prefix starts P, so the
    longest route prefix of a destination gives every route for it at once.
    """
    groups: dict[int | None, dict[str, list[int]]] = {}
    for rank, route in enumerate(routes):
        groups.setdefault(route.account_id, {}).setdefault(route.prefix, []).append(rank)
    index: dict[int | None, PrefixMap[tuple[int, ...]]] = {}
    for account, exact in groups.items():
        merged = {}
        for prefix in exact:
            ranks = [r for n in range(len(prefix) + 1) for r in exact.get(prefix[:n], ())]
            merged[prefix] = tuple(sorted(ranks))
        index[account] = PrefixMap(merged)
    return index


def _mo_index(routes: tuple[MoRoute, ...]) -> dict[str, tuple[MoRoute, ...]]:
    by_number: dict[str, list[MoRoute]] = {}
    for route in routes:
        by_number.setdefault(route.number, []).append(route)
    return {number: tuple(rs) for number, rs in by_number.items()}


@dataclass(frozen=True, slots=True)
class RoutingTable:
    connectors: Mapping[int, ConnectorRef] = field(default_factory=dict)
    mt_routes: tuple[MtRoute, ...] = ()
    mo_routes: tuple[MoRoute, ...] = ()
    prefixes: PrefixMap[Network] = field(default_factory=PrefixMap)
    costs: Costs = field(default_factory=Costs)
    mt_index: Mapping[int | None, PrefixMap[tuple[int, ...]]] = field(
        init=False, repr=False, compare=False
    )
    mo_index: Mapping[str, tuple[MoRoute, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for route in self.mt_routes:
            if route.strategy not in STRATEGIES:
                raise ValueError(f"route {route.id}: unknown strategy {route.strategy!r}")
            missing = [c for c in route.connector_ids if c not in self.connectors]
            if missing:
                raise ValueError(f"route {route.id}: unknown connectors {missing}")
        mt = tuple(sorted(self.mt_routes, key=_mt_order))
        mo = tuple(sorted(self.mo_routes, key=_mo_order))
        object.__setattr__(self, "mt_routes", mt)
        object.__setattr__(self, "mo_routes", mo)
        object.__setattr__(self, "mt_index", _mt_index(mt))
        object.__setattr__(self, "mo_index", _mo_index(mo))

    def mt_prefix_matches(self, account_id: int, destination: str) -> tuple[int, ...]:
        """Ranks into ``mt_routes`` of the routes for this account whose prefix matches."""
        found: tuple[int, ...] = ()
        for key in (None, account_id):
            index = self.mt_index.get(key)
            if index is not None:
                hit = index.longest(destination)
                if hit is not None:
                    found = hit[1] if not found else tuple(sorted(found + hit[1]))
        return found


EMPTY = RoutingTable()


def network_of(table: RoutingTable, msisdn: str) -> str | None:
    """The MCC/MNC of ``msisdn`` by the longest prefix in ``number_prefixes``."""
    hit = table.prefixes.longest(msisdn)
    return None if hit is None else hit[1].mcc_mnc


# One snapshot: every query of a load sees the same committed state.
_CONNECTORS_SQL = "SELECT id, name, enabled FROM connectors"
_MT_SQL = """
SELECT r.id, r.priority, r.account_id, r.prefix, r.mcc_mnc, r.source_regex, r.strategy,
       coalesce(array_agg(c.connector_id ORDER BY c.position)
                FILTER (WHERE c.connector_id IS NOT NULL), '{}') AS connector_ids
  FROM mt_routes r LEFT JOIN mt_route_connectors c ON c.route_id = r.id
 WHERE r.enabled
 GROUP BY r.id
"""
_MO_SQL = """
SELECT id, priority, number, keyword, account_id, deliver_via, webhook_id
  FROM mo_routes WHERE enabled
"""
_PREFIXES_SQL = "SELECT prefix, mcc_mnc, country, network FROM number_prefixes"


async def load_routing(conn: Conn) -> RoutingTable:
    """One consistent snapshot: the caller's transaction if it has one, else our own."""
    if conn.is_in_transaction():
        return await _load(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _load(conn)


async def _load(conn: Conn) -> RoutingTable:
    connectors = {
        r["id"]: ConnectorRef(r["id"], r["name"], r["enabled"])
        for r in await conn.fetch(_CONNECTORS_SQL)
    }
    mt = _mt_routes(await conn.fetch(_MT_SQL))
    mo = tuple(
        MoRoute(
            r["id"],
            r["priority"],
            r["number"],
            r["keyword"],
            r["account_id"],
            r["deliver_via"],
            r["webhook_id"],
        )
        for r in await conn.fetch(_MO_SQL)
    )
    prefixes = PrefixMap(
        {
            r["prefix"]: Network(r["mcc_mnc"], r["country"], r["network"])
            for r in await conn.fetch(_PREFIXES_SQL)
        }
    )
    costs = await load_costs(conn)
    return RoutingTable(connectors, mt, mo, prefixes, costs)


def _mt_routes(rows: Iterable[asyncpg.Record]) -> tuple[MtRoute, ...]:
    routes = []
    for r in rows:
        try:
            pattern = None if r["source_regex"] is None else re.compile(r["source_regex"])
        except re.error as exc:
            # One bad row must not stop every other route from loading; the
            # route is left out (traffic falls to the next rule) and said so.
            log.warning("mt_route_skipped", route_id=r["id"], reason=f"source_regex: {exc}")
            continue
        routes.append(
            MtRoute(
                r["id"],
                r["priority"],
                r["account_id"],
                r["prefix"],
                r["mcc_mnc"],
                pattern,
                r["strategy"],
                tuple(r["connector_ids"]),
            )
        )
    return tuple(routes)
