"""The asyncpg pool and the schema gate every component stands behind."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from warpd.config.schema import DatabaseConfig
from warpd.errors import StorageError
from warpd.store.migrate import Migration, SchemaStatus, load_migrations, migrate, status

log = structlog.get_logger(__name__)


# Connections warpd's writers and listeners keep for the process's life: the group
# commit, the journal's four lanes (warpd/sms/journal.py), and the LISTENs of the
# cluster signals and of the webhook sender. The pool holds these beside ``pool_max``
# for everything else: a pool of pool_max alone, all kept, would leave the
# dispatcher's and the receipts' claims waiting for ever (a cluster test's
# pool_max = 4 did, when the journal took a second).
KEPT_CONNECTIONS = 7


class Database:
    def __init__(self, pool: asyncpg.Pool, migrations: tuple[Migration, ...]) -> None:
        self.pool = pool
        self.migrations = migrations
        self.schema: SchemaStatus | None = None

    @classmethod
    async def connect(cls, dsn: str, config: DatabaseConfig) -> Database:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=config.pool_min,
                max_size=config.pool_max + KEPT_CONNECTIONS,
                timeout=config.connect_timeout,
                command_timeout=config.command_timeout,
                # Every statement is planned for its own arrays and the table as it is
                # now: a generic plan made while a partition was near empty (a fresh
                # install, a new month) kept scanning it whole for the connection's
                # life (tests/warpd/store/test_plans.py). Planning a batch costs far
                # less than a row of a bad plan.
                server_settings={"plan_cache_mode": "force_custom_plan"},
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool, load_migrations())

    async def ensure_schema(self, *, apply: bool) -> SchemaStatus:
        """Refuse an unmigrated or newer schema unless ``apply`` says to migrate."""
        async with self.pool.acquire() as conn:
            current = await status(conn, self.migrations)
            if current.newer:
                raise StorageError(
                    f"database schema is version {current.current}, newer than this "
                    f"warpd ({current.latest}): upgrade warpd"
                )
            if not current.up_to_date:
                if not apply:
                    raise StorageError(
                        f"database schema is version {current.current}, this warpd needs "
                        f"{current.latest}: run 'warpd migrate' or start with --migrate"
                    )
                await migrate(conn, self.migrations)
                current = await status(conn, self.migrations)
        self.schema = current
        return current

    async def check(self, timeout: float) -> str | None:
        """None when the database answers and the schema is current, else why not."""
        try:
            async with asyncio.timeout(timeout), self.pool.acquire() as conn:
                current = await status(conn, self.migrations)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return f"database unreachable: {type(exc).__name__}: {exc}"
        if not current.up_to_date:
            return f"schema version {current.current}, expected {current.latest}"
        return None

    async def close(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.pool.close()
        except TimeoutError:
            log.warning("database_pool_terminated", reason="close timed out")
            self.pool.terminate()
