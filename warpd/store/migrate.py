"""Versioned SQL migrations, each applied in one transaction.

Files are ``migrations/NNNN_name.sql``; ``schema_migrations`` records each
applied version with a checksum, so an edited migration is caught rather than
silently diverging. Versions only have to increase: a gap lets work on separate
subsystems claim its own numbers, and a migration that is missing from the
database, even below the newest applied one, counts as pending. A PostgreSQL
advisory lock serialises instances that migrate at the same moment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from warpd.errors import StorageError

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant both for pg_advisory_lock: "warpd" in ASCII.
_LOCK_KEY = 0x7761727064

# What both a plain connection and a pool's proxy offer.
Conn = asyncpg.Connection | PoolConnectionProxy

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: int
    latest: int
    #: Versions this warpd ships that the database has not applied.
    pending: tuple[int, ...] = ()

    @property
    def up_to_date(self) -> bool:
        return not self.pending and self.current <= self.latest

    @property
    def newer(self) -> bool:
        """The database was migrated by a newer warpd than this one."""
        return self.current > self.latest


def load_migrations() -> tuple[Migration, ...]:
    found: list[Migration] = []
    for entry in resources.files("warpd.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise StorageError(f"migrations must start at 1 with unique versions, found {versions}")
    return tuple(found)


async def status(conn: Conn, migrations: tuple[Migration, ...]) -> SchemaStatus:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied: set[int] = set()
    if exists:
        applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return SchemaStatus(
        current=max(applied, default=0),
        latest=migrations[-1].version if migrations else 0,
        pending=tuple(m.version for m in migrations if m.version not in applied),
    )


async def migrate(conn: Conn, migrations: tuple[Migration, ...]) -> list[Migration]:
    """Apply what is pending; returns what was applied (empty when up to date)."""
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_BOOKKEEPING)
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        latest = migrations[-1].version if migrations else 0
        if done and max(done) > latest:
            raise StorageError(
                f"database schema is version {max(done)}, newer than this warpd ({latest})"
            )
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise StorageError(
                        f"migration {migration.version}_{migration.name} changed after it "
                        "was applied: restore the file, add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum,
                )  # fmt: skip
            log.info("migration_applied", version=migration.version, name=migration.name)
            applied.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
