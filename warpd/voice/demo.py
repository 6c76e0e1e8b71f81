"""The voice part of the embedded demo: a trunk for 127.0.0.1 and a carrier at 127.0.0.1:5070.

Idempotent like the SMS demo: a PBX on loopback (IP-authenticated trunk, UK
numbering so ``02079460000`` and ``+442079460000`` both work), one carrier
gateway where ``sipp -sn uas -p 5070 -rtp_echo`` answers, a catch-all route to
it and a rate of 0.01 EUR a minute billed per second on the demo account's plan.
"""

from __future__ import annotations

from typing import Any

from warpd.store.migrate import Conn

TRUNK, GATEWAY = "demo-pbx", "demo-carrier"
GATEWAY_HOST, GATEWAY_PORT = "127.0.0.1", 5070
PER_MIN_MICROS = 10_000


async def provision_voice(
    conn: Conn, account_id: int, listen: str = "127.0.0.1:5060"
) -> dict[str, Any]:
    """Create what a demo call needs where it is missing; returns the ``sip`` credentials."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sip_trunks (account_id, name, auth_mode, allowed_ips, max_channels,"
            " max_cps, country_code, trust_caller_id) VALUES ($1, $2, 'ip', '{127.0.0.1/32}',"
            " 200, 200, '44', true) ON CONFLICT (name) DO NOTHING",
            account_id, TRUNK,
        )  # fmt: skip
        gateway = await conn.fetchval(
            # No OPTIONS probing: SIPp's UAS, the README's carrier, takes a probe for a call.
            "INSERT INTO carrier_gateways (name, host, port, probe) VALUES ($1, $2, $3, false)"
            " ON CONFLICT (name) DO UPDATE SET host = excluded.host RETURNING id",
            GATEWAY, GATEWAY_HOST, GATEWAY_PORT,
        )  # fmt: skip
        if not await conn.fetchval(
            "SELECT 1 FROM voice_route_gateways WHERE gateway_id = $1", gateway
        ):
            route = await conn.fetchval(
                "INSERT INTO voice_routes (priority, prefix) VALUES (1000, '') RETURNING id"
            )
            await conn.execute(
                "INSERT INTO voice_route_gateways (route_id, position, gateway_id)"
                " VALUES ($1, 0, $2)",
                route, gateway,
            )  # fmt: skip
        plan = await conn.fetchval("SELECT rate_plan_id FROM accounts WHERE id = $1", account_id)
        if plan is not None and not await conn.fetchval(
            "SELECT 1 FROM voice_rates WHERE rate_plan_id = $1", plan
        ):
            await conn.execute(
                "INSERT INTO voice_rates (rate_plan_id, prefix, price_per_min_micros,"
                " first_increment_s, next_increment_s) VALUES ($1, '', $2, 1, 1)",
                plan, PER_MIN_MICROS,
            )  # fmt: skip
    host, _, port = listen.rpartition(":")
    return {"sip": {"host": host.strip("[]"), "port": int(port),
                    "gateway": f"{GATEWAY_HOST}:{GATEWAY_PORT}"}}  # fmt: skip
