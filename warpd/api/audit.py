"""The audit log: who changed what, when, and the object before and after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson

from warpd.store.migrate import Conn

# A dict or an asyncpg row: both map column names to values.
Record = Mapping[str, Any] | asyncpg.Record


def as_json(row: Record | None) -> str | None:
    """A row as jsonb text; secrets never enter a record (callers leave them out)."""
    return None if row is None else orjson.dumps(dict(row), default=str).decode()


async def record(
    conn: Conn,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    *,
    before: Record | None = None,
    after: Record | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, object_type, object_id, before, after)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
        actor,
        action,
        object_type,
        None if object_id is None else str(object_id),
        as_json(before),
        as_json(after),
    )
