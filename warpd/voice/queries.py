"""The SQL that loads the voice ``Directory`` snapshot (one round trip per table)."""

from __future__ import annotations

import asyncpg

from warpd.voice.rating import VoiceRate
from warpd.voice.trunks import Account, Did, Directory, Gateway, Trunk, VoiceRoute, _networks

_TRUNKS = """
SELECT id, account_id, name, auth_mode, allowed_ips, username, realm, ha1_md5, ha1_sha256,
       ha1_sha512_256,
       max_channels, max_cps::float8 AS max_cps, country_code, national_prefix,
       international_prefix, trust_caller_id, default_caller_id, record_calls
  FROM sip_trunks WHERE enabled ORDER BY id
"""
_GATEWAYS = """
SELECT id, name, host, port, transport, username, password, strip_digits, add_prefix,
       max_channels, probe
  FROM carrier_gateways WHERE enabled
"""
_ROUTES = """
SELECT r.id, r.priority, r.account_id, r.prefix, r.strategy,
       array_agg(g.gateway_id ORDER BY g.position) AS gateway_ids
  FROM voice_routes r JOIN voice_route_gateways g ON g.route_id = r.id
 WHERE r.enabled GROUP BY r.id
"""
_RATES = """
SELECT rate_plan_id, prefix, price_per_min_micros, connect_fee_micros, first_increment_s,
       next_increment_s
  FROM voice_rates WHERE now() >= valid_from AND now() < valid_to
"""
_COSTS = """
SELECT gateway_id, prefix, cost_per_min_micros, first_increment_s, next_increment_s
  FROM voice_costs WHERE now() >= valid_from AND now() < valid_to
"""
_DIDS = "SELECT number, account_id, trunk_id FROM dids WHERE enabled"
_ACCOUNTS = """
SELECT id, currency, balance_micros, credit_limit_micros, rate_plan_id, status = 'active' AS active,
       reserved_micros
  FROM accounts
"""


async def load_directory(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> Directory:
    trunks = tuple(
        Trunk(
            id=r["id"],
            account_id=r["account_id"],
            name=r["name"],
            auth_mode=r["auth_mode"],
            networks=_networks(r["allowed_ips"]),
            username=r["username"],
            realm=r["realm"],
            ha1_md5=r["ha1_md5"],
            ha1_sha256=r["ha1_sha256"],
            ha1_sha512_256=r["ha1_sha512_256"],
            max_channels=r["max_channels"],
            max_cps=r["max_cps"],
            country_code=r["country_code"],
            national_prefix=r["national_prefix"],
            international_prefix=r["international_prefix"],
            trust_caller_id=r["trust_caller_id"],
            default_caller_id=r["default_caller_id"],
            record_calls=r["record_calls"],
        )
        for r in await conn.fetch(_TRUNKS)
    )
    gateways = {r["id"]: Gateway(**dict(r)) for r in await conn.fetch(_GATEWAYS)}
    routes = tuple(
        VoiceRoute(
            r["id"],
            r["priority"],
            r["account_id"],
            r["prefix"],
            r["strategy"],
            tuple(r["gateway_ids"]),
        )
        for r in await conn.fetch(_ROUTES)
    )
    rates: dict[int, list[VoiceRate]] = {}
    for r in await conn.fetch(_RATES):
        rates.setdefault(r["rate_plan_id"], []).append(
            VoiceRate(
                r["prefix"],
                r["price_per_min_micros"],
                r["connect_fee_micros"],
                r["first_increment_s"],
                r["next_increment_s"],
            )
        )
    costs: dict[int, list[VoiceRate]] = {}
    for r in await conn.fetch(_COSTS):
        costs.setdefault(r["gateway_id"], []).append(
            VoiceRate(
                r["prefix"],
                r["cost_per_min_micros"],
                0,
                r["first_increment_s"],
                r["next_increment_s"],
            )
        )
    dids = {
        r["number"]: Did(r["number"], r["account_id"], r["trunk_id"])
        for r in await conn.fetch(_DIDS)
    }
    accounts = {r["id"]: Account(**dict(r)) for r in await conn.fetch(_ACCOUNTS)}
    return Directory(
        trunks=trunks,
        gateways=gateways,
        routes=routes,
        rates={k: tuple(v) for k, v in rates.items()},
        costs={k: tuple(v) for k, v in costs.items()},
        dids=dids,
        accounts=accounts,
    )
