"""``warpd cluster status``: the instances on this database, their binds and their work.

Read straight from PostgreSQL, so it answers with every daemon stopped too,
and from any host that reaches the database.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import uvloop

from warpd import config as config_mod
from warpd.config import Config
from warpd.errors import ConfigError, WarpdError
from warpd.store import Database
from warpd.store.migrate import Conn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

_INSTANCES = """
SELECT i.instance_id, i.host, i.pid, i.version, i.started_at,
       extract(epoch FROM now() - i.heartbeat_at)::float8 AS beat_age,
       CASE WHEN i.stopped_at IS NOT NULL THEN 'stopped'
            WHEN i.alive_until > now() THEN 'alive' ELSE 'dead' END AS state,
       (SELECT count(*) FROM messages m
         WHERE m.claimed_by = i.instance_id AND m.state = 'queued') AS queued,
       (SELECT count(*) FROM deliveries d
         WHERE d.claimed_by = i.instance_id AND d.state = 'pending') AS deliveries,
       (SELECT coalesce(sum(c.binds), 0) FROM customer_binds c
         WHERE c.instance_id = i.instance_id AND c.leased_until > now()) AS customer_binds
  FROM instances i
 ORDER BY i.instance_id
"""

_BINDS = """
SELECT c.name, c.binds * (CASE WHEN c.bind_type = 'tx_rx_pair' THEN 2 ELSE 1 END) AS slots,
       l.slot, l.instance_id, l.up, l.leased_until > now() AS held
  FROM connectors c
  LEFT JOIN connector_bind_leases l ON l.connector_id = c.id
 WHERE c.enabled
 ORDER BY c.name, l.slot
"""

_UNCLAIMED = """
SELECT count(*) FROM messages
 WHERE state = 'queued' AND (claimed_until IS NULL OR claimed_until < now())
"""


@dataclass(frozen=True, slots=True)
class Status:
    instances: list[dict[str, object]]
    binds: list[dict[str, object]]
    unclaimed: int


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = subparsers.add_parser("cluster", help="the warpd instances sharing this database")
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status", help="instances, their heartbeats and work, and who holds each carrier bind"
    )
    status.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS,
        help=f"configuration file (default {config_mod.schema.DEFAULT_PATH})",
    )  # fmt: skip
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    try:
        config = config_mod.load(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        status = uvloop.run(_load(config))
    except WarpdError as exc:
        print(f"warpd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.write(render(status))
    return EXIT_OK


async def _load(config: Config) -> Status:
    from warpd.cli import _database_dsn  # warpd.cli imports this module to register it

    async with _database_dsn(config) as dsn:
        database = await Database.connect(dsn, config.database)
        try:
            await database.ensure_schema(apply=False)
            async with database.pool.acquire() as conn:
                return await read(conn)
        finally:
            await database.close(config.daemon.shutdown_timeout)


async def read(conn: Conn) -> Status:
    return Status(
        [dict(r) for r in await conn.fetch(_INSTANCES)],
        [dict(r) for r in await conn.fetch(_BINDS)],
        int(await conn.fetchval(_UNCLAIMED)),
    )


def render(status: Status) -> str:
    lines = ["instances:"]
    if not status.instances:
        lines.append("  none has run on this database")
    for i in status.instances:
        lines.append(
            f"  {i['instance_id']:20} {i['state']:8} {i['host']}:{i['pid']}"
            f"  v{i['version']}  beat {i['beat_age']:.1f}s ago"
            f"  queued {i['queued']}  deliveries {i['deliveries']}"
            f"  customer binds {i['customer_binds']}"
        )
    lines.append(f"unclaimed queued messages: {status.unclaimed}")
    lines.append("carrier binds (slot: instance):")
    by_connector: dict[str, list[dict[str, object]]] = {}
    for row in status.binds:
        by_connector.setdefault(str(row["name"]), []).append(row)
    if not by_connector:
        lines.append("  no enabled connectors")
    for name, rows in by_connector.items():
        held = [r for r in rows if r["slot"] is not None and r["held"]]
        slots = ", ".join(
            f"{r['slot']}: {r['instance_id']} ({'up' if r['up'] else 'connecting'})" for r in held
        )
        lines.append(f"  {name:24} {len(held)}/{rows[0]['slots']} leased  {slots}")
    return "\n".join(lines) + "\n"
