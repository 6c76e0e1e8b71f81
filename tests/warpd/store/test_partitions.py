"""Migration 0010 on a database holding rows, and the partition maintenance task."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from tests.fixtures import postgres
from warpd.config.schema import RetentionConfig
from warpd.sms.commit import new_message_id
from warpd.store.migrate import load_migrations, migrate
from warpd.store.partitions import (
    PartitionMaintenance,
    Report,
    add_months,
    month_of,
    months_to_create,
    months_to_retire,
    partition_month,
)

NOW = datetime.now(UTC)
THIS_MONTH = month_of(NOW)


def uuid7_at(at: datetime) -> uuid.UUID:
    """A UUIDv7 made at ``at``: warpd's own generator with the time replaced."""
    tail = new_message_id().int & ((1 << 80) - 1)
    return uuid.UUID(int=(int(at.timestamp() * 1000) << 80) | tail)


def month_ago(months: int) -> datetime:
    first = add_months(THIS_MONTH, -months)
    return datetime(first.year, first.month, 10, 12, tzinfo=UTC)


class Converted:
    """A database seeded before 0010 and then migrated: the template of each test's."""

    def __init__(self, name: str, before: dict[str, int], ids: dict[str, int]) -> None:
        self.name, self.before, self.ids = name, before, ids


@pytest.fixture(scope="module")
def converted(pg_server: postgres.TestServer) -> Iterator[Converted]:
    name = f"warpd_part_{uuid.uuid4().hex[:10]}"

    async def build() -> Converted:
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(pg_server.dsn(name))
        try:
            ids = await seed_before_0010(conn)
            before = await counts(conn)
            await migrate(conn, load_migrations())
        finally:
            await conn.close()
        return Converted(name, before, ids)

    yield asyncio.run(build())

    async def drop() -> None:
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(drop())


@pytest_asyncio.fixture
async def dsn(pg_server: postgres.TestServer, converted: Converted) -> AsyncIterator[str]:
    """A fresh copy of the converted database."""
    name = f"warpd_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{converted.name}" STRATEGY FILE_COPY')
    await admin.close()
    yield pg_server.dsn(name)
    admin = await asyncpg.connect(pg_server.admin_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest_asyncio.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn)
    yield connection
    await connection.close()


@pytest.fixture
def ids(converted: Converted) -> dict[str, int]:
    return converted.ids


async def seed_before_0010(conn: asyncpg.Connection) -> dict[str, int]:
    """The schema before partitioning, holding rows from three months."""
    await migrate(conn, tuple(m for m in load_migrations() if m.version < 10))
    account = await conn.fetchval(
        "INSERT INTO accounts (name, currency) VALUES ('acme', 'EUR') RETURNING id"
    )
    connector = await conn.fetchval(
        "INSERT INTO connectors (name, host, port, system_id, password)"
        " VALUES ('c', '127.0.0.1', 2775, 'c', 'p') RETURNING id"
    )
    hook = await conn.fetchval(
        "INSERT INTO webhooks (account_id, url, secret) VALUES ($1, 'http://x/', 's') RETURNING id",
        account,
    )
    for months in (2, 1, 0):
        at = month_ago(months)
        for n in range(5):
            mid = uuid7_at(at + timedelta(seconds=n))
            await conn.execute(
                "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr,"
                " body, currency, expires_at, created_at, client_ref, state, done_at)"
                " VALUES ($1, $2, 'http', 'S', '447700900123', 'hi', 'EUR', $3, $3, $4,"
                " 'delivered', $3)",
                mid, account, at, f"ref-{months}-{n}",
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO message_parts (message_id, part_no, connector_id, carrier_message_id,"
                " state, submitted_at) VALUES ($1, 1, $2, $3, 'delivered', $4)",
                mid, connector, f"c-{mid}", at,
            )  # fmt: skip
            delivery = await conn.fetchval(
                "INSERT INTO deliveries (account_id, kind, message_id, via, webhook_id, payload,"
                " state, expires_at, created_at) VALUES ($1, 'dlr', $2, 'webhook', $3, '{}',"
                " 'delivered', $4, $4) RETURNING id",
                account, mid, hook, at,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt_no, status_code, attempted_at)"
                " VALUES ($1, 1, 204, $2)",
                delivery, at,
            )  # fmt: skip
            mo = uuid.uuid4()
            await conn.execute(
                "INSERT INTO mo_messages (id, account_id, source_addr, destination_addr, body,"
                " received_at) VALUES ($1, $2, '447700900123', '12345', 'x', $3)",
                mo, account, at,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO voice_cdrs (id, account_id, direction, call_id_a, src_raw, dst_raw,"
                " start_at, end_at, duration_ms, disposition) VALUES ($1, $2, 'outbound', 'a',"
                " '1', '2', $3, $3, 0, 'FAILED')",
                uuid.uuid4(), account, at,
            )  # fmt: skip
    # A message whose id carries no time (a UUIDv4, as old test data had).
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at) VALUES ($1, $2, 'smpp', 'S', '447700900123', 'x', 'EUR', now())",
        uuid.uuid4(), account,
    )  # fmt: skip
    return {"account": account, "connector": connector}


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = ("messages", "message_parts", "deliveries", "webhook_attempts", "mo_messages",
              "voice_cdrs")  # fmt: skip
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def test_migration_converts_tables_holding_rows(
    conn: asyncpg.Connection, converted: Converted, ids: dict[str, int]
) -> None:
    before = converted.before
    assert await counts(conn) == before
    # Every table is partitioned now, and each month's rows are in that month's partition.
    kinds = await conn.fetch(
        "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relname = any($1::text[])",
        list(before),
    )
    assert {r["relkind"] for r in kinds} == {b"p"}
    for table in ("messages", "message_parts", "mo_messages", "voice_cdrs"):
        placed = await conn.fetch(
            f"SELECT tableoid::regclass::text AS part, count(*) FROM {table} GROUP BY 1"
        )
        by_part = {r["part"]: r["count"] for r in placed}
        for months in (2, 1, 0):
            assert by_part[f"{table}_p{add_months(THIS_MONTH, -months):%Y%m}"] == 5, by_part
    assert await conn.fetchval("SELECT count(*) FROM messages_default") == 1  # the UUIDv4
    # Old deliveries ids (a plain sequence) are all in the first partition, from MINVALUE.
    first = f"deliveries_p{THIS_MONTH:%Y%m}"
    assert await conn.fetchval(f"SELECT count(*) FROM {first}") == 15
    # A new delivery id is time-ordered and above every old one, in this month's partition.
    new = await conn.fetchrow(
        "INSERT INTO deliveries (account_id, kind, via, webhook_id, url, payload, expires_at)"
        " VALUES ($1, 'test', 'webhook', NULL, 'http://x/', '{}', now())"
        " RETURNING id, tableoid::regclass::text AS part",
        ids["account"],
    )
    assert new["part"] == first
    assert new["id"] >> 20 == pytest.approx(datetime.now(UTC).timestamp() * 1000, abs=60_000)
    # Lookups by id still prune to one partition.
    plan = await conn.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT * FROM messages WHERE id = $1", uuid7_at(month_ago(1))
    )
    assert str(plan).count("messages_p") == 1, plan
    # A part needs its message: store_parts() checks per batch where a key checked per
    # row (migration 0018), and refuses the whole batch as the key did.
    kept = await conn.fetchval("SELECT message_id FROM message_parts LIMIT 1")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "SELECT store_parts($1, '{1,1}', $2, '{a,b}', '{}', '{}', '{}', $3)",
            [kept, uuid7_at(NOW)], [ids["connector"]] * 2, kept,
        )  # fmt: skip
    assert (
        await conn.fetchval("SELECT count(*) FROM message_parts WHERE carrier_message_id = 'a'")
        == 0
    )
    # A webhook attempt keeps its partition-wise key into deliveries.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt_no) VALUES ($1, 1)", new["id"] + 1
        )


async def test_client_reference_is_still_unique_per_account(
    conn: asyncpg.Connection, ids: dict[str, int]
) -> None:
    insert = (
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at, client_ref)"
        " VALUES ($1, $2, 'http', 'S', '1', 'x', 'EUR', now(), $3)"
    )
    # One migrated before 0010, in an older month than the new row.
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, new_message_id(), ids["account"], "ref-2-0")
    await conn.execute(insert, new_message_id(), ids["account"], "fresh")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, new_message_id(), ids["account"], "fresh")
    # Messages without one (every SMPP message) are not looked at.
    await conn.execute(insert, new_message_id(), ids["account"], None)
    await conn.execute(insert, new_message_id(), ids["account"], None)


async def test_insert_without_its_month_lands_in_default_then_moves(
    conn: asyncpg.Connection, ids: dict[str, int]
) -> None:
    later = add_months(THIS_MONTH, 6)
    at = datetime(later.year, later.month, 3, tzinfo=UTC)
    mid = uuid7_at(at)
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at) VALUES ($1, $2, 'smpp', 'S', '1', 'x', 'EUR', now())",
        mid, ids["account"],
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO message_parts (message_id, part_no, connector_id) VALUES ($1, 1, $2)",
        mid, ids["connector"],
    )  # fmt: skip
    part = "SELECT tableoid::regclass::text FROM {} WHERE {} = $1"
    assert await conn.fetchval(part.format("messages", "id"), mid) == "messages_default"
    # Making that month moves the rows out of DEFAULT, the part with its message.
    assert await conn.fetchval("SELECT partition_create('messages', $1)", later) is True
    assert await conn.fetchval(part.format("messages", "id"), mid) == f"messages_p{later:%Y%m}"
    assert (
        await conn.fetchval(part.format("message_parts", "message_id"), mid)
        == f"message_parts_p{later:%Y%m}"
    )
    assert await conn.fetchval("SELECT partition_create('messages', $1)", later) is False


def test_month_arithmetic_and_what_retires() -> None:
    assert add_months(date(2026, 11, 1), 3) == date(2027, 2, 1)
    assert add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert months_to_create(now, 2) == [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]
    months = [date(2026, m, 1) for m in range(1, 13)]
    # keep 31 days: the cutoff is 1 November, so October (ends 1 Nov) and older go.
    assert months_to_retire(months, now, 31) == months[:10]
    assert months_to_retire(months, now, 0) == []
    assert partition_month("messages", "messages_p202612") == date(2026, 12, 1)
    assert partition_month("messages", "messages_default") is None
    assert partition_month("messages", "message_parts_p202612") is None


async def test_maintenance_makes_months_ahead_and_retires_old_ones(
    conn: asyncpg.Connection, dsn: str, ids: dict[str, int]
) -> None:
    # A queued message two months back holds its month: work is still owed.
    held = uuid7_at(month_ago(2) + timedelta(hours=1))
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at) VALUES ($1, $2, 'smpp', 'S', '1', 'x', 'EUR', now())",
        held, ids["account"],
    )  # fmt: skip
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        config = RetentionConfig(months_ahead=3, keep_days=31)
        # "now" is a month ahead, so the cutoff falls in last month: two months back
        # and one month back are wholly older than 31 days.
        later = NOW + timedelta(days=62)
        report = await PartitionMaintenance(pool, config).run_once(later)
    finally:
        await pool.close()
    ahead = add_months(month_of(later), 3)
    assert f"messages_p{ahead:%Y%m}" in report.created
    assert f"message_parts_p{ahead:%Y%m}" not in report.created  # made with its root
    assert await conn.fetchval("SELECT to_regclass($1)", f"message_parts_p{ahead:%Y%m}")
    two_back = f"_p{add_months(THIS_MONTH, -2):%Y%m}"
    one_back = f"_p{add_months(THIS_MONTH, -1):%Y%m}"
    assert "messages" + two_back in report.held
    assert "messages" + one_back in report.retired
    assert "voice_cdrs" + two_back in report.retired
    for gone in ("messages", "message_parts", "mo_messages", "voice_cdrs"):
        assert await conn.fetchval("SELECT to_regclass($1)", gone + one_back) is None
    assert await conn.fetchval("SELECT to_regclass($1)", "message_parts" + two_back)
    # Their client references went with them; the held month's stayed.
    refs = {r[0] for r in await conn.fetch("SELECT client_ref FROM message_client_refs")}
    assert not any(r.startswith("ref-1-") for r in refs)
    assert {f"ref-2-{n}" for n in range(5)} <= refs
    assert await conn.fetchval("SELECT count(*) FROM messages WHERE id = $1", held) == 1


async def test_archive_mode_keeps_the_retired_month(conn: asyncpg.Connection, dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        config = RetentionConfig(keep_days=31, mode="archive")
        report = await PartitionMaintenance(pool, config).run_once(NOW + timedelta(days=62))
    finally:
        await pool.close()
    name = f"voice_cdrs_p{add_months(THIS_MONTH, -1):%Y%m}"
    assert name in report.retired
    assert await conn.fetchval(f"SELECT count(*) FROM warpd_archive.{name}") == 5
    assert name not in {r[0] for r in await conn.fetch(
        "SELECT DISTINCT tableoid::regclass::text FROM voice_cdrs")}  # fmt: skip


async def test_one_instance_maintains_at_a_time(conn: asyncpg.Connection, dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        maintenance = PartitionMaintenance(pool, RetentionConfig(months_ahead=4))
        # Another instance's pass holds the lock: this one makes nothing.
        await conn.execute("SELECT pg_advisory_lock($1)", 0x776172706470)
        assert await maintenance.run_once() == Report()
        await conn.execute("SELECT pg_advisory_unlock($1)", 0x776172706470)
        created = (await maintenance.run_once()).created
    finally:
        await pool.close()
    assert f"deliveries_p{add_months(THIS_MONTH, 4):%Y%m}" in created
