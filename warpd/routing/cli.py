"""``warpd route explain --account A --to +4479... [--from SENDER]``.

Loads the routing table from the configured database the way the daemon does
and prints :func:`~warpd.routing.explain.explain_mt`. Exit codes follow
``warpd``'s: 0 routed, 1 no route or a runtime failure (database), 2 a usage or
configuration error (bad number, unknown account).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from warpd import config as config_mod
from warpd import log as log_mod
from warpd.config import Config
from warpd.errors import ConfigError, NoRoute, WarpdError
from warpd.routing.explain import explain_mt
from warpd.routing.mt import route_mt
from warpd.routing.numbers import (
    NPI_ISDN,
    TON_INTERNATIONAL,
    TON_UNKNOWN,
    InvalidNumber,
    normalize_msisdn,
)
from warpd.routing.table import RoutingTable, load_routing, network_of
from warpd.store import Database
from warpd.store.migrate import Conn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UnknownAccount(WarpdError):
    """``--account`` names no account."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    route = subparsers.add_parser("route", help="inspect SMS routing")
    actions = route.add_subparsers(dest="route_command", required=True, metavar="ACTION")
    explain = actions.add_parser(
        "explain",
        help="print the MT rule, candidates and reasons for a destination",
        description="Exit status: 0 routed, 1 no route, 2 bad number or unknown account.",
    )
    explain.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS,
        help=f"configuration file (default {config_mod.schema.DEFAULT_PATH})",
    )  # fmt: skip
    explain.add_argument("--account", required=True, help="account id or name")
    explain.add_argument("--to", required=True, help="destination: +E.164, digits or short code")
    explain.add_argument("--from", dest="source", default="", help="sender address")
    explain.add_argument("--region", default=None, help="ISO region for a national --to (e.g. GB)")
    explain.set_defaults(handler=explain_command)


def explain_command(args: argparse.Namespace) -> int:
    path: Path | None = getattr(args, "config", None)
    try:
        config = config_mod.load(path)
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    to: str = args.to
    ton = TON_INTERNATIONAL if to.startswith("+") else TON_UNKNOWN
    try:
        destination = normalize_msisdn(to, ton, NPI_ISDN, default_region=args.region)
    except InvalidNumber as exc:
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log_mod.configure(config.log.level, config.log.format)
    try:
        table, account_id, name = uvloop.run(_load(config, args.account))
    except UnknownAccount as exc:
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarpdError as exc:
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.write(
        explain_mt(
            table,
            account_id=account_id,
            destination=destination,
            source=args.source,
            account_name=name,
        )
    )
    try:
        route_mt(
            table, account_id=account_id, destination=destination, source=args.source,
            mcc_mnc=network_of(table, destination),
        )  # fmt: skip
    except NoRoute:
        return EXIT_FAILURE
    return EXIT_OK


async def _load(config: Config, account: str) -> tuple[RoutingTable, int, str]:
    # Imported here because warpd.cli imports this module to register it.
    from warpd.cli import _database_dsn

    async with _database_dsn(config) as dsn:
        database = await Database.connect(dsn, config.database)
        try:
            await database.ensure_schema(apply=False)
            async with database.pool.acquire() as conn:
                account_id, name = await _account(conn, account)
                return await load_routing(conn), account_id, name
        finally:
            await database.close(config.daemon.shutdown_timeout)


async def _account(conn: Conn, account: str) -> tuple[int, str]:
    as_id = int(account) if account.isascii() and account.isdigit() and len(account) < 19 else None
    # An id wins over a name that happens to be the same digits.
    row = await conn.fetchrow(
        "SELECT id, name FROM accounts WHERE id = $1 OR name = $2 ORDER BY id = $1 DESC LIMIT 1",
        as_id, account,
    )  # fmt: skip
    if row is None:
        raise UnknownAccount(f"no account {account!r} (give an id or a name)")
    return row["id"], row["name"]
