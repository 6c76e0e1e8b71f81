"""``GET /v1/events``: a WebSocket streaming the account's receipts and MO as they happen.

Each frame is ``{"cursor": "...", "event": {...}}`` where ``event`` is the JSON
a webhook receives (``type`` ``dlr`` or ``mo``). A client that reconnects with
``?cursor=`` (the last cursor it saw) gets everything after it, so a dropped
connection loses nothing.

The stream reads the durable rows (final ``messages`` by ``done_at``,
``mo_messages`` by ``received_at``) rather than an in-memory feed, which is
what makes resuming exact and lets any instance serve any account. A row
shows up once it is ``SETTLE`` seconds old: rows commit slightly out of
timestamp order, and streaming only settled rows means a cursor never
passes a row that had not committed yet.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import uuid
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from protocols.smpp.text import TextError, decode_text
from warpd.api.endpoints import Call, Endpoint, Param
from warpd.api.errors import ApiError, invalid
from warpd.api.keys import DATABASE
from warpd.sms.deliveries_payload import Finished, receipt_event

SETTLE = 1.0
POLL = 0.5
PAGE = 500
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ZERO = uuid.UUID(int=0)

DLR_SQL = f"""
SELECT * FROM messages
 WHERE account_id = $1 AND done_at IS NOT NULL AND (done_at, id) > ($2, $3)
   AND done_at < now() - make_interval(secs => {SETTLE})
 ORDER BY done_at, id LIMIT {PAGE}
"""
MO_SQL = f"""
SELECT id, account_id, source_addr, destination_addr, data_coding, body, received_at
  FROM mo_messages
 WHERE account_id = $1 AND (received_at, id) > ($2, $3)
   AND received_at < now() - make_interval(secs => {SETTLE})
 ORDER BY received_at, id LIMIT {PAGE}
"""

Position = tuple[dt.datetime, uuid.UUID, dt.datetime, uuid.UUID]


def encode_position(position: Position) -> str:
    text = "|".join(str(p) if isinstance(p, uuid.UUID) else p.isoformat() for p in position)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_position(text: str | None) -> Position:
    if not text:
        return _EPOCH, _ZERO, _EPOCH, _ZERO
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        a, b, c, d = raw.split("|")
        times = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(c)
        if any(t.tzinfo is None for t in times):
            raise ValueError("naive time")
        return times[0], uuid.UUID(b), times[1], uuid.UUID(d)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor: not a cursor this stream gave") from None


def mo_event(row: Any) -> dict[str, Any]:
    try:
        text = decode_text(bytes(row["body"]), row["data_coding"])
    except TextError:
        text = bytes(row["body"])
    return {
        "type": "mo",
        "id": str(row["id"]),
        "account_id": row["account_id"],
        "from": row["source_addr"],
        "to": row["destination_addr"],
        "text": text if isinstance(text, str) else None,
        "body": text.hex() if isinstance(text, bytes) else None,
        "data_coding": row["data_coding"],
        "received_at": row["received_at"].isoformat(),
    }


async def events(call: Call) -> web.StreamResponse:
    position = decode_position(call.params.get("cursor"))
    socket = web.WebSocketResponse(heartbeat=30.0)
    if not socket.can_prepare(call.request).ok:
        raise ApiError(426, "upgrade_required", "connect with a WebSocket client")
    await socket.prepare(call.request)
    reader = asyncio.create_task(_drain(socket))
    try:
        while not socket.closed and not reader.done():
            position, frames = await _next(call, position)
            for frame in frames:
                await socket.send_str(frame)
            if not frames:
                await asyncio.wait({reader}, timeout=POLL)
    finally:
        reader.cancel()
        await socket.close()
    return socket


async def _next(call: Call, position: Position) -> tuple[Position, list[str]]:
    dlr_at, dlr_id, mo_at, mo_id = position
    async with call.app[DATABASE].pool.acquire() as conn:
        receipts = await conn.fetch(DLR_SQL, call.account_id, dlr_at, dlr_id)
        mos = await conn.fetch(MO_SQL, call.account_id, mo_at, mo_id)
    items: list[tuple[dt.datetime, int, Any]] = [(r["done_at"], 0, r) for r in receipts]
    items += [(r["received_at"], 1, r) for r in mos]
    items.sort(key=lambda item: (item[0], item[1], str(item[2]["id"])))
    frames = []
    for at, kind, row in items:
        if kind == 0:
            dlr_at, dlr_id = at, row["id"]
            event = receipt_event(Finished.from_record(row))
        else:
            mo_at, mo_id = at, row["id"]
            event = mo_event(row)
        position = (dlr_at, dlr_id, mo_at, mo_id)
        frames.append(orjson.dumps({"cursor": encode_position(position), "event": event}).decode())
    return position, frames


async def _drain(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, so pings are answered and a close is seen."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


ENDPOINTS = (
    Endpoint("GET", "/v1/events", events, "WebSocket: receipts and MO as they happen", "events",
             scope="sms:read", status=101, extra_errors=(426,),
             params=(Param("cursor", {"type": "string", "maxLength": 400},
                           "resume after the frame that carried this cursor"),),
             response={"type": "object", "description": "frames {cursor, event}"}),
)  # fmt: skip
