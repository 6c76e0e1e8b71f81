"""``warpd`` command line: run, migrate, check-config, version.

Exit codes: 0 success, 1 a runtime failure (database, ports), 2 a usage or
configuration error (the message names the file, the key and the reason).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import structlog
import uvloop
from prometheus_client.parser import text_string_to_metric_families

import warpd
from warpd import config as config_mod
from warpd import log as log_mod
from warpd.api import cli as api_cli
from warpd.cluster import cli as cluster_cli
from warpd.config import Config
from warpd.daemon import Daemon
from warpd.errors import ConfigError, WarpdError
from warpd.routing import cli as routing_cli
from warpd.sim import cli as sim_cli
from warpd.store import Database, EmbeddedPostgres
from warpd.store.migrate import status

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

log = structlog.get_logger("warpd.cli")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS,
        help=f"configuration file (default {config_mod.schema.DEFAULT_PATH})",
    )  # fmt: skip
    parser = argparse.ArgumentParser(prog="warpd", description=warpd.__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument(
        "--migrate", action="store_true", help="apply pending migrations before serving"
    )
    mig = sub.add_parser("migrate", parents=[common], help="apply database migrations")
    mig.add_argument("--status", action="store_true", help="only print current and latest versions")
    sub.add_parser("check-config", parents=[common], help="validate and print the effective config")
    sub.add_parser("version", parents=[common], help="print the version")
    sub.add_parser(
        "connectors", parents=[common], help="carrier connectors and the state of their binds"
    )
    # Subsystems add their own commands; each parser sets ``handler``.
    sim_cli.register(sub)
    routing_cli.register(sub)
    api_cli.register(sub)
    cluster_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        code: int = handler(args)
        return code
    if args.command == "version":
        print(f"warpd {warpd.__version__}")
        return EXIT_OK
    path: Path | None = getattr(args, "config", None)
    try:
        config = config_mod.load(path)
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        sys.stdout.write(config_mod.render(config))
        return EXIT_OK
    log_mod.configure(config.log.level, config.log.format)
    try:
        if args.command == "migrate":
            return uvloop.run(_migrate(config, status_only=args.status))
        if args.command == "connectors":
            return uvloop.run(_connectors(config))
        return uvloop.run(_run(config, path, migrate=args.migrate))
    except WarpdError as exc:
        log.error("fatal", error=str(exc))
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _run(config: Config, path: Path | None, *, migrate: bool) -> int:
    return await Daemon(config, config_path=path, migrate=migrate).run()


@contextlib.asynccontextmanager
async def _database_dsn(config: Config) -> AsyncIterator[str]:
    """The configured DSN, or the embedded cluster's for as long as the block runs.

    A cluster already running (a daemon's) is used and left running.
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
        yield await pg.start(adopt=False)
    finally:
        await pg.stop()


async def _migrate(config: Config, *, status_only: bool) -> int:
    async with _database_dsn(config) as dsn:
        database = await Database.connect(dsn, config.database)
        try:
            if status_only:
                async with database.pool.acquire() as conn:
                    current = await status(conn, database.migrations)
                print(f"schema version {current.current}, latest {current.latest}")
            else:
                current = await database.ensure_schema(apply=True)
                print(f"schema at version {current.current}")
        finally:
            await database.close(config.daemon.shutdown_timeout)
    return EXIT_OK


async def _connectors(config: Config) -> int:
    """Each connector's binds as the running daemon reports them on /metrics."""
    url = f"http://{config.http.listen.replace('0.0.0.0', '127.0.0.1')}/metrics"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
    except (aiohttp.ClientError, OSError) as exc:
        print(f"warpd: cannot reach the daemon at {url}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    binds: dict[str, dict[str, int]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "warpd_smpp_connector_binds":
            for sample in family.samples:
                states = binds.setdefault(sample.labels["connector"], {})
                states[sample.labels["state"]] = int(sample.value)
    if not binds:
        print("no connectors")
    for name, states in sorted(binds.items()):
        health = "up" if states.get("bound") else "down"
        detail = ", ".join(f"{state} {n}" for state, n in sorted(states.items()) if n)
        print(f"{name:24} {health:5} {detail}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
