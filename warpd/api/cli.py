"""``warpd`` subcommands for operators: accounts, keys, SMPP users, connectors, tariffs.

They run the same operations as the admin API, straight on the database the
config names (so they work with the daemon stopped), and write the same audit
rows with the actor ``cli:<OS user>``. Amounts are decimal major units
(``10.50`` EUR); output is JSON. Exit codes: 0 done, 1 refused (the message
says why), 2 a configuration or usage error.

Wiring: ``warpd.cli`` calls :func:`register` with its subparsers and runs
``args.handler(args)``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import uvloop

from warpd import config as config_mod
from warpd.api import accounts, catalog, credentials
from warpd.api.auth import SCOPES
from warpd.api.errors import ApiError
from warpd.api.tariff_csv import TariffError, to_micros
from warpd.config import Config
from warpd.errors import ConfigError, WarpdError
from warpd.store import Database, EmbeddedPostgres
from warpd.store.migrate import Conn

EXIT_OK, EXIT_REFUSED, EXIT_CONFIG = 0, 1, 2

Action = Callable[[Conn, argparse.Namespace, str], Awaitable[Any]]


def register(subparsers: Any) -> None:
    """Add ``account``, ``key``, ``smpp-user``, ``connector`` and ``tariff``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                        help="configuration file")  # fmt: skip

    def group(name: str, help_text: str) -> Any:
        parser = subparsers.add_parser(name, parents=[common], help=help_text)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(parent: Any, name: str, action: Action, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(handler=lambda args: run(args, action))
        return parser

    acct = group("account", "create, top up and show accounts")
    p = command(acct, "create", _account_create, "create an account")
    p.add_argument("name")
    p.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
    p.add_argument("--credit-limit", default="0", help="how far below zero it may go")
    p.add_argument("--rate-plan", help="rate plan id or name")
    p.add_argument("--balance", help="opening balance")
    p.add_argument("--charge-mode", choices=accounts.CHARGE_MODES, default="at_acceptance",
                   help="charged when accepted (default) or when delivered")  # fmt: skip
    p = command(acct, "topup", _account_topup, "add money to an account")
    p.add_argument("account", help="account id or name")
    p.add_argument("amount", help="e.g. 10.50")
    p.add_argument("--note", default="")
    p = command(acct, "show", _account_show, "print an account and its balance")
    p.add_argument("account", help="account id or name")

    key = group("key", "create and revoke API keys")
    p = command(key, "create", _key_create, "create an API key (printed once)")
    p.add_argument("account", help="account id or name")
    p.add_argument("--name", default="")
    p.add_argument("--scope", action="append", choices=SCOPES, help="repeat; default all")
    p.add_argument("--allow-ip", action="append", default=[], help="CIDR; repeat")
    p.add_argument("--rate", type=float, help="requests per second (default from config)")
    p.add_argument("--burst", type=int)
    p = command(key, "revoke", _key_revoke, "revoke an API key")
    p.add_argument("key", help="key id or prefix (wk_xxxxxxxx)")

    smpp = group("smpp-user", "create SMPP users")
    p = command(smpp, "create", _smpp_create, "create an SMPP user")
    p.add_argument("account", help="account id or name")
    p.add_argument("system_id")
    p.add_argument("--password", help="at most 8 characters; default: generated and printed")
    p.add_argument("--allow-ip", action="append", default=[], help="CIDR; repeat")

    conn = group("connector", "list, enable, disable and rebind carrier connectors")
    command(conn, "list", _connector_list, "list connectors")
    for name, enabled in (("enable", True), ("disable", False)):
        p = command(conn, name, _connector_toggle(enabled), f"{name} a connector")
        p.add_argument("connector", help="connector id or name")
    p = conn.add_parser("rebind", parents=[common],
                        help="unbind and re-open a connector's binds in the running daemon"
                             " (its admin API; the token from $WARPD_ADMIN_TOKEN)")  # fmt: skip
    p.add_argument("connector", help="connector id or name")
    p.set_defaults(handler=rebind_command)

    tariff = group("tariff", "import and export prices (rate plans) and costs (connectors) as CSV")
    p = command(tariff, "import", _tariff_import, "load a plan's prices or a connector's costs")
    p.add_argument("file", type=Path)
    _price_list(p)
    p.add_argument("--append", action="store_true", help="keep the other rows")
    p = command(tariff, "export", _tariff_export, "print a plan's prices or a connector's costs")
    _price_list(p)


def _price_list(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--plan", help="rate plan id or name: prefix,mcc_mnc,price,valid_from")
    which.add_argument(
        "--connector", help="connector id or name: prefix,mcc_mnc,cost,currency,quality,valid_from"
    )


def run(args: argparse.Namespace, action: Action) -> int:
    try:
        config = config_mod.load(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        result = uvloop.run(_with_database(config, args, action))
    except (ApiError, TariffError) as exc:
        print(f"warpd: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except WarpdError as exc:
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if isinstance(result, str):
        sys.stdout.write(result)
    else:
        print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


@contextlib.asynccontextmanager
async def _dsn(config: Config) -> AsyncIterator[str]:
    """The configured DSN; else the embedded cluster's, left running if the daemon runs it.

    Adopting and then stopping a running daemon's cluster would take its
    database away mid-flight: a cluster that already answers is only used.
    """
    if not config.embedded:
        yield config.database.dsn
        return
    pg = EmbeddedPostgres(
        config.daemon.state_dir / "postgres",
        bin_dir=config.embedded_postgres.bin_dir,
        port=config.embedded_postgres.port,
        user=config.embedded_postgres.user,
    )
    try:
        probe = await asyncpg.connect(pg.dsn, timeout=config.database.connect_timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pass
    else:
        await probe.close()
        yield pg.dsn
        return
    try:
        yield await pg.start()
    finally:
        await pg.stop()


async def _with_database(config: Config, args: argparse.Namespace, action: Action) -> Any:
    async with _dsn(config) as dsn:
        database = await Database.connect(dsn, config.database)
        try:
            await database.ensure_schema(apply=False)
            async with database.pool.acquire() as conn:
                return await action(conn, args, f"cli:{getpass.getuser()}")
        finally:
            await database.close(config.daemon.shutdown_timeout)


async def _account_create(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    plan = await catalog.find_plan(conn, args.rate_plan) if args.rate_plan else None
    row = await accounts.create(
        conn, actor, name=args.name, currency=catalog.check_currency(args.currency),
        credit_limit_micros=to_micros(args.credit_limit),
        rate_plan_id=plan["id"] if plan else None, charge_mode=args.charge_mode,
    )  # fmt: skip
    if args.balance:
        moved = await accounts.move_money(conn, actor, row["id"], kind="topup",
                                          amount_micros=to_micros(args.balance),
                                          note="opening balance")  # fmt: skip
        row = moved["account"]
    return row


async def _account_topup(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    account = await accounts.find(conn, args.account)
    amount = to_micros(args.amount)
    return await accounts.move_money(
        conn, actor, account["id"], kind="topup", amount_micros=amount, note=args.note
    )


async def _account_show(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    return await accounts.find(conn, args.account)


async def _key_create(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    account = await accounts.find(conn, args.account)
    return await credentials.create_key(
        conn, actor, account["id"], name=args.name, scopes=args.scope or SCOPES,
        allowed_ips=args.allow_ip, rate_per_s=args.rate, burst=args.burst,
    )  # fmt: skip


async def _key_revoke(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    return await credentials.revoke_key(conn, actor, args.key)


async def _smpp_create(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    account = await accounts.find(conn, args.account)
    password = args.password or secrets.token_urlsafe(6)[:8]
    row = await credentials.create_smpp_user(
        conn, actor, account["id"], system_id=args.system_id, password=password,
        allowed_ips=args.allow_ip,
    )  # fmt: skip
    return {**row, "password": password} if not args.password else row


async def _connector_list(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    return await catalog.list_connectors(conn)


def _connector_toggle(enabled: bool) -> Action:
    async def toggle(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
        connector = await catalog.find_connector(conn, args.connector)
        return await catalog.set_connector_enabled(conn, actor, connector["id"], enabled)

    return toggle


async def _tariff_import(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ApiError(400, "unreadable", f"{args.file}: {exc.strerror}") from None
    if args.connector:
        connector = await catalog.find_connector(conn, args.connector)
        return await catalog.import_costs(
            conn, actor, connector["id"], text, replace=not args.append
        )
    plan = await catalog.find_plan(conn, args.plan)
    return await catalog.import_tariffs(conn, actor, plan["id"], text, replace=not args.append)


async def _tariff_export(conn: Conn, args: argparse.Namespace, actor: str) -> Any:
    if args.connector:
        connector = await catalog.find_connector(conn, args.connector)
        return await catalog.export_costs(conn, connector["id"])
    plan = await catalog.find_plan(conn, args.plan)
    return await catalog.export_tariffs(conn, plan["id"])


def rebind_command(args: argparse.Namespace) -> int:
    """A rebind acts on the daemon's live binds, so it goes through its admin API."""
    try:
        config = config_mod.load(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    token = os.environ.get("WARPD_ADMIN_TOKEN", "")
    if not token:
        print("warpd: set WARPD_ADMIN_TOKEN to the admin token", file=sys.stderr)
        return EXIT_CONFIG
    base = f"http://{config.http.listen.replace('0.0.0.0', '127.0.0.1')}"
    status, body = uvloop.run(_rebind(base, token, args.connector))
    print(json.dumps(body, indent=2))
    return EXIT_OK if status == 202 else EXIT_REFUSED


async def _rebind(base: str, token: str, ref: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(base, headers=headers) as session:
            async with session.get("/v1/admin/connectors") as response:
                listed = await response.json()
                if response.status != 200:
                    return response.status, listed
            found = [c for c in listed["connectors"] if ref in (str(c["id"]), c["name"])]
            if not found:
                return 404, {"code": "not_found", "message": f"connector {ref} not found"}
            async with session.post(f"/v1/admin/connectors/{found[0]['id']}/rebind") as response:
                return response.status, await response.json()
    except (aiohttp.ClientError, OSError) as exc:
        return 503, {"code": "unavailable", "message": f"cannot reach the daemon at {base}: {exc}"}
