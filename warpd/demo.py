"""The embedded demo: an account, a user, a connector to the built-in SMSC simulator, a route.

``[demo] enabled = true`` (config/demo.toml, the README's run command)
provisions these idempotently at start, runs the simulator in the daemon's
own process as the demo connector's carrier, and writes what a newcomer
needs to ``<state_dir>/demo-credentials.json``. Never for production.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

from warpd.auth.passwords import hash_password, verify_password
from warpd.config import Config
from warpd.console.demo import provision_console
from warpd.sim import SmscConfig, SmscSimulator
from warpd.store.migrate import Conn
from warpd.voice.demo import provision_voice

ACCOUNT, SYSTEM_ID, CONNECTOR = "demo", "demo", "demo-sim"
START_BALANCE_MICROS = 100_000_000  # 100.00 EUR
PRICE_MICROS = 5_000  # 0.005 EUR per part
MO_NUMBER = "447700900000"


def credentials_path(config: Config) -> Path:
    return config.daemon.state_dir / "demo-credentials.json"


def _known(path: Path, entry: str) -> dict[str, Any]:
    """One entry of what a previous run wrote, or nothing."""
    try:
        known = json.loads(path.read_text()).get(entry)
    except (OSError, ValueError, AttributeError):
        return {}
    return known if isinstance(known, dict) else {}


_ALPHANUMERIC = string.ascii_letters + string.digits


def _password(path: Path) -> str:
    """The demo SMPP password: kept across restarts, at most SMPP's 8 characters."""
    try:
        known = json.loads(path.read_text())["smpp"]["password"]
        if isinstance(known, str) and 0 < len(known) <= 8:
            return known
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # Letters and digits only: a password that starts with "-" reads as an option
    # on the command line the README gives (warpd sim-esme --password ...).
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(8))


async def provision(conn: Conn, config: Config, simulator_port: int) -> dict[str, Any]:
    """Create what the demo needs where it is missing; returns its credentials."""
    path = credentials_path(config)
    password = _password(path)
    async with conn.transaction():
        plan = await conn.fetchval(
            "INSERT INTO rate_plans (name, currency) VALUES ($1, 'EUR')"
            " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            ACCOUNT,
        )
        if not await conn.fetchval("SELECT 1 FROM sms_rates WHERE rate_plan_id = $1", plan):
            await conn.execute(
                "INSERT INTO sms_rates (rate_plan_id, prefix, price_micros) VALUES ($1, '', $2)",
                plan,
                PRICE_MICROS,
            )
        account = await conn.fetchval(
            "INSERT INTO accounts (name, currency, rate_plan_id) VALUES ($1, 'EUR', $2)"
            " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            ACCOUNT,
            plan,
        )
        if not await conn.fetchval(
            "SELECT 1 FROM ledger WHERE account_id = $1 AND kind = 'topup'", account
        ):
            await conn.execute(
                "INSERT INTO ledger (account_id, amount_micros, kind, note)"
                " VALUES ($1, $2, 'topup', 'demo starting balance')",
                account,
                START_BALANCE_MICROS,
            )
        stored = await conn.fetchval(
            "SELECT password_hash FROM smpp_users WHERE system_id = $1", SYSTEM_ID
        )
        if stored is None or not verify_password(password, stored):
            await conn.execute(
                "INSERT INTO smpp_users (account_id, system_id, password_hash, throughput_tps,"
                " burst, window_size) VALUES ($1, $2, $3, 10000, 20000, 100)"
                " ON CONFLICT (system_id) DO UPDATE SET password_hash = excluded.password_hash",
                account,
                SYSTEM_ID,
                hash_password(password),
            )
        connector = await conn.fetchval(
            "INSERT INTO connectors (name, host, port, system_id, password, binds, window_size,"
            " tps) VALUES ($1, '127.0.0.1', $2, 'sim', 'sim', 2, 100, 10000)"
            " ON CONFLICT (name) DO UPDATE SET port = excluded.port RETURNING id",
            CONNECTOR,
            simulator_port,
        )
        if not await conn.fetchval(
            "SELECT 1 FROM mt_route_connectors WHERE connector_id = $1", connector
        ):
            route = await conn.fetchval(
                "INSERT INTO mt_routes (priority, prefix) VALUES (1000, '') RETURNING id"
            )
            await conn.execute(
                "INSERT INTO mt_route_connectors (route_id, position, connector_id)"
                " VALUES ($1, 0, $2)",
                route,
                connector,
            )
        if not await conn.fetchval("SELECT 1 FROM mo_routes WHERE number = $1", MO_NUMBER):
            await conn.execute(
                "INSERT INTO mo_routes (number, account_id) VALUES ($1, $2)", MO_NUMBER, account
            )
    credentials: dict[str, Any] = {"smpp": {"system_id": SYSTEM_ID, "password": password}}
    credentials["console"] = await provision_console(conn, account, _known(path, "console"))
    if config.sip.enabled:
        credentials.update(await provision_voice(conn, account, config.sip.listen))
    return credentials


def listening_credentials(
    credentials: dict[str, Any], smpp: list[tuple[str, int]]
) -> dict[str, Any]:
    """The credentials with the address the SMPP listener really bound."""
    host, port = smpp[0] if smpp else ("", 0)
    listening = {**credentials, "smpp": {"host": host, "port": port, **credentials["smpp"]}}
    if "console" in credentials and "http" in credentials:
        url = credentials["http"]["base_url"] + "/console/"
        listening["console"] = {"url": url, **credentials["console"]}
    return listening


def write_credentials(path: Path, credentials: dict[str, Any]) -> None:
    """Owner-readable only: it holds passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(credentials, out, indent=2)
        out.write("\n")
    tmp.replace(path)


def simulator(config: Config) -> SmscSimulator:
    """The demo carrier: answers in 10 ms, delivers every message 100 ms later."""
    return SmscSimulator(
        SmscConfig(
            host="127.0.0.1",
            port=config.demo.simulator_port,
            system_id="sim",
            password="sim",
            response_delay=0.01,
            receipt_delay=0.1,
        )
    )
