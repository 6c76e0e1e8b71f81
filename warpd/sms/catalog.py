"""The configuration the SMS hot path reads, loaded from PostgreSQL as one snapshot.

Accounts, SMPP users, connectors, webhooks, routes and tariffs change through
the admin API or psql while warpd runs; a reload loop replaces the snapshot
every ``sms.reload_interval`` seconds, so a change applies to the next
message without a restart and the hot path never queries the database.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from warpd.billing.tariff import Costs, Tariffs, load_costs, load_tariffs
from warpd.routing.table import RoutingTable, load_routing
from warpd.store.migrate import Conn

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    currency: str
    status: str
    rate_plan_id: int | None
    balance_micros: int
    credit_limit_micros: int
    #: 'at_acceptance' (charged when committed, refunded on failure) or 'on_delivery'.
    charge_mode: str = "at_acceptance"
    #: Set aside for this account's messages charged on delivery, not final yet.
    reserved_micros: int = 0


@dataclass(frozen=True, slots=True)
class SmppUser:
    id: int
    account_id: int
    system_id: str
    password_hash: str
    allowed_ips: tuple[IpNetwork, ...]
    bind_types: frozenset[str]
    max_binds: int
    throughput_tps: float
    burst: int
    window_size: int
    tls_required: bool
    enabled: bool

    def allows(self, address: str) -> bool:
        """True when ``address`` may bind (an empty allow-list admits everyone)."""
        if not self.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.allowed_ips)


@dataclass(frozen=True, slots=True)
class Connector:
    id: int
    name: str
    host: str
    port: int
    tls: bool
    system_id: str
    password: str
    system_type: str
    bind_type: str
    binds: int
    window_size: int
    tps: float
    split_mode: str
    dlr_id_format: str
    options: Mapping[str, Any]
    enabled: bool


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    account_id: int
    url: str
    events: frozenset[str]


@dataclass(frozen=True, slots=True)
class Catalog:
    accounts: Mapping[int, Account] = field(default_factory=dict)
    smpp_users: Mapping[str, SmppUser] = field(default_factory=dict)
    smpp_users_by_id: Mapping[int, SmppUser] = field(default_factory=dict)
    connectors: Mapping[int, Connector] = field(default_factory=dict)
    webhooks: Mapping[int, tuple[Webhook, ...]] = field(default_factory=dict)
    routing: RoutingTable = field(default_factory=RoutingTable)
    tariffs: Tariffs = field(default_factory=Tariffs)
    costs: Costs = field(default_factory=Costs)


async def load_catalog(conn: Conn) -> Catalog:
    accounts = {
        r["id"]: Account(
            r["id"],
            r["name"],
            r["currency"],
            r["status"],
            r["rate_plan_id"],
            r["balance_micros"],
            r["credit_limit_micros"],
            r["charge_mode"],
            r["reserved_micros"],
        )
        for r in await conn.fetch(
            "SELECT id, name, currency, status, rate_plan_id, balance_micros,"
            " credit_limit_micros, charge_mode, reserved_micros FROM accounts"
        )
    }
    users = {
        r["system_id"]: SmppUser(
            r["id"],
            r["account_id"],
            r["system_id"],
            r["password_hash"],
            tuple(ipaddress.ip_network(n) for n in r["allowed_ips"]),
            frozenset(r["bind_types"]),
            r["max_binds"],
            float(r["throughput_tps"]),
            r["burst"],
            r["window_size"],
            r["tls_required"],
            r["enabled"],
        )
        for r in await conn.fetch(
            "SELECT id, account_id, system_id, password_hash, allowed_ips::text[] AS allowed_ips,"
            " bind_types, max_binds, throughput_tps, burst, window_size, tls_required, enabled"
            " FROM smpp_users"
        )
    }
    connectors = {
        r["id"]: Connector(
            r["id"],
            r["name"],
            r["host"],
            r["port"],
            r["tls"],
            r["system_id"],
            r["password"],
            r["system_type"],
            r["bind_type"],
            r["binds"],
            r["window_size"],
            float(r["tps"]),
            r["split_mode"],
            r["dlr_id_format"],
            orjson.loads(r["options"]),
            r["enabled"],
        )
        for r in await conn.fetch("SELECT * FROM connectors")
    }
    hooks: dict[int, list[Webhook]] = {}
    for r in await conn.fetch(
        "SELECT id, account_id, url, events FROM webhooks WHERE enabled ORDER BY id"
    ):
        hooks.setdefault(r["account_id"], []).append(
            Webhook(r["id"], r["account_id"], r["url"], frozenset(r["events"]))
        )
    return Catalog(
        accounts=accounts,
        smpp_users=users,
        smpp_users_by_id={u.id: u for u in users.values()},
        connectors=connectors,
        webhooks={k: tuple(v) for k, v in hooks.items()},
        routing=await load_routing(conn),
        tariffs=await load_tariffs(conn),
        costs=await load_costs(conn),
    )


async def load_opt_outs(conn: Conn) -> set[tuple[int, str]]:
    return {(r[0], r[1]) for r in await conn.fetch("SELECT account_id, msisdn FROM opt_outs")}
