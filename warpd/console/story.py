"""The full story of one message: its row, parts and carrier ids, receipts, deliveries, money.

One function for both consoles; a customer's call passes its own account, so
another account's message is "not found" exactly like one that never existed.
"""

from __future__ import annotations

import uuid
from typing import Any

from warpd.api.errors import not_found
from warpd.store.migrate import Conn

MESSAGE_SQL = """
SELECT m.id, m.account_id, a.name AS account, m.channel, m.client_ref, m.source_addr,
       m.destination_addr, m.mcc_mnc, m.parts, m.state, m.error_code, m.error_text,
       m.price_micros, m.cost_micros, m.currency, m.attempts, c.name AS connector,
       m.route_id, m.created_at, m.submitted_at, m.done_at, m.expires_at
  FROM messages m JOIN accounts a ON a.id = m.account_id
  LEFT JOIN connectors c ON c.id = m.connector_id
 WHERE m.id = $1 AND ($2::bigint IS NULL OR m.account_id = $2)
"""
PARTS_SQL = """
SELECT p.part_no, c.name AS connector, p.carrier_message_id, p.state, p.error_code,
       p.submitted_at, p.done_at
  FROM message_parts p JOIN connectors c ON c.id = p.connector_id
 WHERE p.message_id = $1 ORDER BY p.part_no, p.submitted_at
"""
DELIVERIES_SQL = """
SELECT d.id, d.kind, d.via, d.state, d.attempts, d.created_at, d.delivered_at,
       coalesce(w.url, d.url) AS target
  FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
 WHERE d.message_id = $1 ORDER BY d.id
"""
ATTEMPTS_SQL = """
SELECT delivery_id, attempt_no, status_code, error, latency_ms, attempted_at
  FROM webhook_attempts WHERE delivery_id = ANY($1::bigint[]) ORDER BY id
"""
LEDGER_SQL = """
SELECT id, kind, amount_micros, note, created_at FROM ledger
 WHERE message_id = $1 ORDER BY id
"""


async def load(conn: Conn, message_id: str, account_id: int | None) -> dict[str, Any]:
    try:
        ident = uuid.UUID(message_id)
    except ValueError:
        raise not_found(f"message {message_id}") from None
    message = await conn.fetchrow(MESSAGE_SQL, ident, account_id)
    if message is None:
        raise not_found(f"message {message_id}")
    deliveries = [dict(r) for r in await conn.fetch(DELIVERIES_SQL, ident)]
    attempts = await conn.fetch(ATTEMPTS_SQL, [d["id"] for d in deliveries])
    for delivery in deliveries:
        delivery["attempts_made"] = [
            dict(a) for a in attempts if a["delivery_id"] == delivery["id"]
        ]
    return {
        "message": dict(message),
        "parts": [dict(r) for r in await conn.fetch(PARTS_SQL, ident)],
        "deliveries": deliveries,
        "ledger": [dict(r) for r in await conn.fetch(LEDGER_SQL, ident)],
    }
