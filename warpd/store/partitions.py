"""Monthly partitions of the growing tables: made ahead, retired when old.

Migration 0010 partitions messages, message_parts, deliveries,
webhook_attempts, mo_messages and voice_cdrs by month (``<table>_pYYYYMM``,
plus ``<table>_default``) and lists them in ``partitioned_tables``. This task,
run by every instance (the work is idempotent and each step takes its locks
with a timeout), keeps ``[retention] months_ahead`` months ready and, when
``keep_days`` is set, retires each month whose last day is older than that:
its children's partitions and its own are detached, then dropped or, with
``mode = "archive"``, moved to the ``warpd_archive`` schema for the operator
to dump. A month that still holds a queued message or a pending delivery is
left for the next run, since retention must never lose work that is owed.

Which months to make and to retire is decided by the pure functions below;
the DDL itself is ``partition_create`` in the migration, shared with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import structlog

from warpd.config.schema import RetentionConfig
from warpd.store.migrate import Conn

log = structlog.get_logger(__name__)

ARCHIVE_SCHEMA = "warpd_archive"
_SUFFIX = re.compile(r"_p(\d{4})(\d{2})$")
# A DETACH waits for every transaction on the table; queued behind a long one
# it would stall the writers queued behind it. Give up and try next run.
_LOCK_TIMEOUT = "3s"
# Serialises the instances' passes (migrations use "warpd" in ASCII; this is "warpdp").
_LOCK_KEY = 0x776172706470
_FIRST_PASS_DELAY = 60.0


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key_kind: str
    children: tuple[str, ...]
    age_column: str
    live_rows: str | None


@dataclass(frozen=True, slots=True)
class Report:
    created: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    #: Months kept back because they still hold work owed.
    held: tuple[str, ...] = ()
    default_rows_deleted: int = 0


def month_of(at: datetime) -> date:
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_to_create(now: datetime, ahead: int) -> list[date]:
    """This month and ``ahead`` more."""
    first = month_of(now)
    return [add_months(first, n) for n in range(ahead + 1)]


def partition_month(table: str, partition: str) -> date | None:
    if not partition.startswith(table + "_p"):
        return None
    match = _SUFFIX.search(partition)
    if match is None or len(partition) != len(table) + 8:
        return None
    return date(int(match[1]), int(match[2]), 1)


def months_to_retire(months: Iterable[date], now: datetime, keep_days: int) -> list[date]:
    """Months wholly older than ``keep_days``: their next month began before the cutoff."""
    if keep_days <= 0:
        return []
    cutoff = now.astimezone(UTC) - timedelta(days=keep_days)
    return sorted(m for m in months if month_start(add_months(m, 1)) <= cutoff)


class PartitionMaintenance:
    def __init__(self, pool: asyncpg.Pool, config: RetentionConfig) -> None:
        self._pool = pool
        self._config = config
        self.runs = 0
        self.failures = 0
        self.last: Report = Report()

    async def run(self) -> None:
        """Every ``interval`` seconds until cancelled; a failed run is logged and retried.

        The first pass waits a minute: migration 0010 made this month and the
        next, and a daemon's start-up has better uses for the database.
        """
        await asyncio.sleep(min(_FIRST_PASS_DELAY, self._config.interval))
        while True:
            try:
                self.last = await self.run_once()
                self.runs += 1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.failures += 1
                log.warning("partition_maintenance_failed", error=str(exc))
            await asyncio.sleep(self._config.interval)

    async def run_once(self, now: datetime | None = None) -> Report:
        """One pass; an instance that finds another one's pass under way skips its own."""
        now = now or datetime.now(UTC)
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return Report()
            try:
                tables = await _tables(conn)
                created = await self._create(conn, tables, now)
                retired, held = await self._retire(conn, tables, now)
                deleted = await self._trim_defaults(conn, tables, now)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        report = Report(tuple(created), tuple(retired), tuple(held), deleted)
        if created or retired or held or deleted:
            log.info(
                "partitions_maintained", created=report.created, retired=report.retired,
                held=report.held, default_rows_deleted=deleted,
            )  # fmt: skip
        return report

    async def _create(self, conn: Conn, tables: list[Table], now: datetime) -> list[str]:
        created: list[str] = []
        for table in tables:
            for month in months_to_create(now, self._config.months_ahead):
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
                    if await conn.fetchval("SELECT partition_create($1, $2)", table.name, month):
                        created.append(f"{table.name}_p{month:%Y%m}")
        return created

    async def _retire(
        self, conn: Conn, tables: list[Table], now: datetime
    ) -> tuple[list[str], list[str]]:
        retired: list[str] = []
        held: list[str] = []
        for table in tables:
            months = [
                m
                for m in (
                    partition_month(table.name, p) for p in await _partitions(conn, table.name)
                )
                if m is not None
            ]
            for month in months_to_retire(months, now, self._config.keep_days):
                name = f"{table.name}_p{month:%Y%m}"
                if table.live_rows and await conn.fetchval(
                    f'SELECT EXISTS (SELECT 1 FROM "{name}" WHERE {table.live_rows})'
                ):
                    held.append(name)
                    continue
                await self._retire_month(conn, table, month)
                retired.append(name)
        if held:
            log.warning("partitions_held", partitions=held, reason="work still owed in them")
        return retired, held

    async def _retire_month(self, conn: Conn, table: Table, month: date) -> None:
        suffix = f"_p{month:%Y%m}"
        family = [*table.children, table.name]  # children first: their keys point at the root
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            for name in family:
                await conn.execute(f'ALTER TABLE "{name}" DETACH PARTITION "{name}{suffix}"')
            for name in family:
                if self._config.mode == "archive":
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE_SCHEMA}")
                    await conn.execute(f'ALTER TABLE "{name}{suffix}" SET SCHEMA {ARCHIVE_SCHEMA}')
                else:
                    await conn.execute(f'DROP TABLE "{name}{suffix}"')
            if table.name == "messages":
                # The client references of the messages that went, and of none other.
                await conn.execute(
                    "DELETE FROM message_client_refs"
                    " WHERE message_id >= partition_bound('uuid7', $1)::uuid"
                    " AND message_id < partition_bound('uuid7', $2)::uuid",
                    month_start(month),
                    month_start(add_months(month, 1)),
                )

    async def _trim_defaults(self, conn: Conn, tables: list[Table], now: datetime) -> int:
        """Rows that fell in DEFAULT (a key outside every month) go by their age."""
        if self._config.keep_days <= 0:
            return 0
        cutoff = now - timedelta(days=self._config.keep_days)
        deleted = 0
        for table in tables:
            live = f" AND NOT ({table.live_rows})" if table.live_rows else ""
            status = await conn.execute(
                f'DELETE FROM "{table.name}_default" WHERE {table.age_column} < $1{live}', cutoff
            )
            deleted += int(status.split()[-1])
        return deleted


async def _tables(conn: Conn) -> list[Table]:
    rows = await conn.fetch(
        "SELECT r.table_name, r.key_kind, r.age_column, r.live_rows,"
        " coalesce(array_agg(c.table_name ORDER BY c.table_name)"
        " FILTER (WHERE c.table_name IS NOT NULL), '{}') AS children"
        " FROM partitioned_tables r LEFT JOIN partitioned_tables c ON c.parent_table = r.table_name"
        " WHERE r.parent_table IS NULL GROUP BY r.table_name ORDER BY r.table_name"
    )
    return [
        Table(r["table_name"], r["key_kind"], tuple(r["children"]), r["age_column"], r["live_rows"])
        for r in rows
    ]


async def _partitions(conn: Conn, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = $1::regclass",
        table,
    )
    return [r[0] for r in rows]


async def start_maintenance(
    stack: contextlib.AsyncExitStack, config: RetentionConfig, pool: asyncpg.Pool
) -> PartitionMaintenance:
    """Run maintenance in the background until the daemon stops."""
    maintenance = PartitionMaintenance(pool, config)
    task = asyncio.create_task(maintenance.run(), name="partition-maintenance")
    stack.push_async_callback(_cancel, task)
    return maintenance


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
