"""Migrations and the v1 schema's money rules, on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.fixtures.ports import free_port
from warpd.config.schema import DatabaseConfig
from warpd.errors import StorageError
from warpd.store import Database, EmbeddedPostgres
from warpd.store.migrate import load_migrations, migrate, status

CONFIG = DatabaseConfig(pool_min=1, pool_max=2)


@pytest_asyncio.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_dsn)
    yield connection
    await connection.close()


@pytest_asyncio.fixture
async def migrated(conn: asyncpg.Connection) -> asyncpg.Connection:
    await migrate(conn, load_migrations())
    return conn


def test_migrations_start_at_one_and_increase() -> None:
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))
    assert migrations[0].name == "v1_schema"


async def test_migrate_from_empty_then_rerun_is_a_no_op(conn: asyncpg.Connection) -> None:
    migrations = load_migrations()
    before = await status(conn, migrations)
    assert (before.current, before.up_to_date) == (0, False)
    assert [m.version for m in await migrate(conn, migrations)] == [m.version for m in migrations]
    assert (await status(conn, migrations)).up_to_date
    assert await migrate(conn, migrations) == []
    tables = {
        r[0]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {
        "accounts",
        "ledger",
        "smpp_users",
        "api_keys",
        "connectors",
        "mt_routes",
        "mo_routes",
        "sms_rates",
        "sms_costs",
        "messages",
        "message_parts",
        "mo_messages",
        "deliveries",
        "webhooks",
        "webhook_attempts",
        "sip_trunks",
        "sip_registrations",
        "carrier_gateways",
        "dids",
        "voice_routes",
        "voice_rates",
        "voice_costs",
        "voice_cdrs",
        "schema_migrations",
    } <= tables


async def test_edited_migration_is_refused(migrated: asyncpg.Connection) -> None:
    await migrated.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(StorageError, match="changed after it was applied"):
        await migrate(migrated, load_migrations())


async def test_newer_schema_is_refused(migrated: asyncpg.Connection) -> None:
    await migrated.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', '')"
    )
    with pytest.raises(StorageError, match="newer than this warpd"):
        await migrate(migrated, load_migrations())


async def test_failed_migration_leaves_nothing_behind(conn: asyncpg.Connection) -> None:
    good = load_migrations()[0]
    broken = type(good)(2, "broken", "CREATE TABLE half_done (x int); SELECT 1/0;")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(conn, (good, broken))
    assert (await status(conn, (good, broken))).current == 1
    assert await conn.fetchval("SELECT to_regclass('half_done')") is None


async def test_database_gate_refuses_unmigrated_then_applies(database_dsn: str) -> None:
    database = await Database.connect(database_dsn, CONFIG)
    try:
        with pytest.raises(StorageError, match="run 'warpd migrate'"):
            await database.ensure_schema(apply=False)
        assert "schema version 0" in (await database.check(1.0) or "")
        assert (await database.ensure_schema(apply=True)).up_to_date
        assert await database.check(1.0) is None
        async with database.pool.acquire() as c:
            # A version this build does not have: a newer warpd migrated the database.
            future = load_migrations()[-1].version + 1
            await c.execute("INSERT INTO schema_migrations VALUES ($1, 'x', 'y')", future)
        with pytest.raises(StorageError, match="upgrade warpd"):
            await database.ensure_schema(apply=True)
    finally:
        await database.close(5.0)


async def test_unreachable_database_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot connect"):
        await Database.connect(
            "postgresql://nobody@127.0.0.1:1/none", DatabaseConfig(connect_timeout=2.0)
        )


async def account(conn: asyncpg.Connection, name: str = "acme") -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO accounts (name, currency) VALUES ($1, 'EUR') RETURNING id", name
        )
    )


async def test_ledger_keeps_the_balance_equal_to_its_sum(migrated: asyncpg.Connection) -> None:
    acct = await account(migrated)
    msg = uuid.uuid4()
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, 10000000, 'topup')", acct
    )
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind, message_id) "
        "VALUES ($1, -3500, 'sms_charge', $2)",
        acct,
        msg,
    )
    balance, total = await migrated.fetchrow(
        "SELECT balance_micros, (SELECT sum(amount_micros) FROM ledger WHERE account_id = $1) "
        "FROM accounts WHERE id = $1",
        acct,
    )
    assert balance == total == 9_996_500


async def test_a_message_is_charged_once(migrated: asyncpg.Connection) -> None:
    acct = await account(migrated)
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, 10000, 'topup')", acct
    )
    msg = uuid.uuid4()
    charge = (
        "INSERT INTO ledger (account_id, amount_micros, kind, message_id) "
        "VALUES ($1, -3500, 'sms_charge', $2)"
    )
    await migrated.execute(charge, acct, msg)
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(charge, acct, msg)
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(
            "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, -1, 'sms_charge')",
            acct,
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger SET amount_micros = 1",
        "DELETE FROM ledger",
        "TRUNCATE ledger CASCADE",
        "UPDATE accounts SET balance_micros = 999",
        # Closed, never deleted: what names an account checks it once per statement (0020).
        "DELETE FROM accounts",
        "TRUNCATE accounts CASCADE",
    ],
)
async def test_money_moves_only_through_the_ledger(
    migrated: asyncpg.Connection, statement: str
) -> None:
    acct = await account(migrated)
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, 500, 'topup')", acct
    )
    with pytest.raises(asyncpg.RestrictViolationError):
        await migrated.execute(statement)
    assert await migrated.fetchval("SELECT balance_micros FROM accounts") == 500


async def test_enumerations_and_identities_are_checked(migrated: asyncpg.Connection) -> None:
    acct = await account(migrated)
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(
            "INSERT INTO smpp_users (account_id, system_id, password_hash) "
            "VALUES ($1, 'a_system_id_too_long', 'h')",
            acct,
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(
            "INSERT INTO sip_trunks (account_id, name, auth_mode) VALUES ($1, 't', 'ip')", acct
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute("INSERT INTO dids (number, account_id) VALUES ('+4930', $1)", acct)


# Rows naming account $1: a message, an SMPP user, and a receipt owed to that user.
MESSAGE_FOR = (
    "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
    " currency, expires_at) VALUES (gen_random_uuid(), $1, 'smpp', 'W', '4477', 'hi', 'EUR',"
    " now() + interval '1 day')"
)
SMPP_USER_FOR = (
    "INSERT INTO smpp_users (account_id, system_id, password_hash) VALUES ($1, 'sys', 'h')"
)
DELIVERY_FOR = (
    "INSERT INTO deliveries (account_id, kind, message_id, via, smpp_user_id, payload,"
    " expires_at) SELECT $1, 'dlr', gen_random_uuid(), 'smpp', id, '{}',"
    " now() + interval '1 day' FROM smpp_users"
)


@pytest.mark.parametrize(
    "statement",
    [
        MESSAGE_FOR,
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, 500, 'topup')",
        DELIVERY_FOR,
    ],
)
async def test_a_row_naming_no_account_is_refused(
    migrated: asyncpg.Connection, statement: str
) -> None:
    """These tables' keys into accounts are checked per statement (migration 0020): a
    batch with one row for an unknown account is refused whole, as the keys did."""
    acct = await account(migrated)
    await migrated.execute(SMPP_USER_FOR, acct)
    await migrated.execute(statement, acct)  # a known account: written
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="accounts"):
        await migrated.execute(statement, acct + 1)


async def test_a_message_or_delivery_moved_to_no_account_is_refused(
    migrated: asyncpg.Connection,
) -> None:
    acct = await account(migrated)
    await migrated.execute(MESSAGE_FOR, acct)
    await migrated.execute(SMPP_USER_FOR, acct)
    await migrated.execute(DELIVERY_FOR, acct)
    for table in ("messages", "deliveries"):
        await migrated.execute(f"UPDATE {table} SET account_id = $1", acct)  # unchanged: fine
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await migrated.execute(f"UPDATE {table} SET account_id = $1", acct + 1)


async def test_a_migration_below_the_newest_applied_is_still_pending(
    conn: asyncpg.Connection,
) -> None:
    first = load_migrations()[0]
    later = type(first)(30, "later", "CREATE TABLE later_one (x int)")
    between = type(first)(20, "between", "CREATE TABLE between_one (x int)")
    await migrate(conn, (first, later))
    current = await status(conn, (first, between, later))
    assert (current.current, current.pending, current.up_to_date) == (30, (20,), False)
    assert [m.version for m in await migrate(conn, (first, between, later))] == [20]
    assert (await status(conn, (first, between, later))).up_to_date


async def test_sms_charges_past_the_credit_limit_are_refused_whole(
    migrated: asyncpg.Connection,
) -> None:
    # 0002's statement trigger: a batch that would overdraw is refused, naming
    # the account, and nothing of it stays; refunds and voice are never refused.
    acct = await account(migrated)
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind) VALUES ($1, 5000, 'topup')", acct
    )
    batch = [(acct, -3000, "sms_charge", uuid.uuid4()) for _ in range(2)]
    with pytest.raises(asyncpg.PostgresError) as refused:
        await migrated.copy_records_to_table(
            "ledger", records=batch, columns=["account_id", "amount_micros", "kind", "message_id"]
        )
    assert refused.value.sqlstate == "WP001"
    assert refused.value.detail == str(acct)
    assert (
        await migrated.fetchval("SELECT balance_micros FROM accounts WHERE id = $1", acct) == 5000
    )
    await migrated.copy_records_to_table(
        "ledger", records=batch[:1], columns=["account_id", "amount_micros", "kind", "message_id"]
    )
    await migrated.execute(
        "INSERT INTO ledger (account_id, amount_micros, kind, call_id)"
        " VALUES ($1, -9000, 'voice_charge', $2)",
        acct, uuid.uuid4(),
    )  # fmt: skip
    assert (
        await migrated.fetchval("SELECT balance_micros FROM accounts WHERE id = $1", acct) == -7000
    )


async def test_a_command_beside_the_daemon_leaves_its_embedded_cluster_running(
    tmp_path: Path,
) -> None:
    daemon = EmbeddedPostgres(tmp_path / "pg", durable=False, port=free_port())
    dsn = await daemon.start()
    try:
        command = EmbeddedPostgres(tmp_path / "pg", durable=False, port=daemon.port)
        assert await command.start(adopt=False) == dsn
        await command.stop()  # `warpd migrate` ends
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await daemon.stop()
