"""warpd's connections plan every statement for its own parameters and tables.

Its statements are batches (arrays of a hundred receipts, say) on tables that
start empty: a fresh install, or a new month's partition. After five runs
PostgreSQL may keep a prepared statement's generic plan, costed while the
table was small (a sequential scan), and use it for as long as the connection
lives, however large the table grows: the journal's receipt update went from
0.02 ms a row to 0.6 ms within 20,000 messages, and the system's throughput to
a third (bench: SMS end to end, 2026-12-02).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from warpd.config.schema import DatabaseConfig
from warpd.sms.commit import new_message_id
from warpd.sms.journal import _RECEIPTS, RECEIPT_LOOKBACK, uuid7_floor
from warpd.store import Database

# A hundred receipts that match nothing (the plan is what matters, not the rows), as
# literals: EXECUTE takes no bound parameters.
_RECEIPTS_ARGS = ", ".join(
    f"'{{{','.join(column)}}}'"
    for column in (
        ["1"] * 100,
        [f"none-{i}" for i in range(100)],
        ["delivered"] * 100,
        ["NULL"] * 100,
        [str(i) for i in range(100)],
    )
)
EXECUTE = (
    f"EXECUTE receipts({_RECEIPTS_ARGS}, '{uuid7_floor(datetime.now(UTC) - RECEIPT_LOOKBACK)}')"
)


async def _seed(conn: asyncpg.Connection, rows: int, first: int) -> None:
    """``rows`` messages sent upstream just now, as the journal stores them."""
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at, state)"
        " SELECT id, 1, 'smpp', 'Bank', '447700900000', '\\x00', 'EUR',"
        " now() + interval '1 day', 'submitted' FROM unnest($1::uuid[]) AS id",
        [new_message_id() for _ in range(rows)],
    )
    await conn.execute(
        "INSERT INTO message_parts (message_id, part_no, connector_id, carrier_message_id)"
        " SELECT id, 1, 1, 'c' || (row_number() OVER () + $1) FROM messages"
        " WHERE id NOT IN (SELECT message_id FROM message_parts)",
        first,
    )


async def _prepare(conn: asyncpg.Connection) -> None:
    await conn.execute("PREPARE receipts AS " + _RECEIPTS)
    for _ in range(6):  # the sixth run is where a generic plan may take over
        await conn.execute(EXECUTE)


async def _plan(conn: asyncpg.Connection) -> str:
    return json.dumps(await conn.fetchval("EXPLAIN (FORMAT JSON) " + EXECUTE))


async def test_a_batch_statement_keeps_its_index_as_its_table_grows(database_dsn: str) -> None:
    database = await Database.connect(database_dsn, DatabaseConfig(pool_min=1, pool_max=2))
    plain = await asyncpg.connect(database_dsn)  # the control: PostgreSQL's default
    try:
        await database.ensure_schema(apply=True)
        async with database.pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            await conn.execute(
                "INSERT INTO accounts (id, name, currency) VALUES (1, 'bank', 'EUR');"
                "INSERT INTO connectors (id, name, host, port, system_id, password)"
                " VALUES (1, 'sinch', '127.0.0.1', 3601, 'bank', 'x')"
            )
            # No autovacuum meanwhile: its ANALYZE would replan the statement.
            for table in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relname LIKE 'message%\\_p%' AND relkind = 'r'"
            ):
                await conn.execute(f'ALTER TABLE "{table[0]}" SET (autovacuum_enabled = false)')
            # The first minutes of a month: a partition of a few thousand parts.
            await _seed(conn, 2_000, first=0)
            await _prepare(conn)
            await _prepare(plain)
            await _seed(conn, 60_000, first=2_000)
            ours, default = await _plan(conn), await _plan(plain)
    finally:
        await plain.close()
        await database.close(5.0)
    assert "Index Scan" in ours, ours
    assert "Seq Scan" not in ours, ours
    assert "Seq Scan" in default, default


async def test_the_group_commit_keeps_its_plans_for_the_connections_life(
    database_dsn: str,
) -> None:
    """The exception: accept_messages() joins no growing table, and planning its
    statements at every commit cost half of it (migration 0017)."""
    database = await Database.connect(database_dsn, DatabaseConfig(pool_min=1, pool_max=1))
    try:
        await database.ensure_schema(apply=True)
        async with database.pool.acquire() as conn:
            config = await conn.fetchval(
                "SELECT proconfig FROM pg_proc WHERE proname = 'accept_messages'"
            )
            outside = await conn.fetchval("SHOW plan_cache_mode")
    finally:
        await database.close(5.0)
    assert config == ["plan_cache_mode=auto"]
    assert outside == "force_custom_plan"
