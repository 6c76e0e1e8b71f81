"""Migration 0016: the group commit's one statement agrees with the writer's columns."""

from __future__ import annotations

import asyncpg

from warpd.sms.commit import MESSAGE_COLUMNS
from warpd.store.migrate import load_migrations, migrate


async def test_accepted_message_has_the_writers_columns_in_order(database_dsn: str) -> None:
    """A column added to MESSAGE_COLUMNS needs a migration that adds it to accepted_message
    (and to accept_messages' INSERT): records are matched by position, not by name."""
    conn = await asyncpg.connect(database_dsn)
    try:
        await migrate(conn, load_migrations())
        fields = await conn.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type"
            " FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid"
            " WHERE t.typname = 'accepted_message' AND a.attnum > 0 ORDER BY a.attnum"
        )
        columns = await conn.fetch(
            "SELECT column_name, format_type(a.atttypid, a.atttypmod) AS type"
            " FROM information_schema.columns c JOIN pg_attribute a"
            "  ON a.attrelid = 'messages'::regclass AND a.attname = c.column_name"
            " WHERE c.table_name = 'messages' AND c.table_schema = current_schema()"
        )
    finally:
        await conn.close()
    assert tuple(f["attname"] for f in fields) == MESSAGE_COLUMNS
    types = {c["column_name"]: c["type"] for c in columns}
    assert {f["attname"]: f["type"] for f in fields} == {c: types[c] for c in MESSAGE_COLUMNS}
