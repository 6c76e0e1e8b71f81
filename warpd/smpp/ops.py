"""query_sm, cancel_sm and replace_sm, answered from the store (SMPP 3.4 sections 4.8-4.10).

Only the customer's own account's messages are visible. A message can be
cancelled or replaced while no part of it has gone upstream; after that the
carrier has it and warpd answers ESME_RCANCELFAIL / ESME_RREPLACEFAIL.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.pdu import CancelSm, Pdu, QuerySm, QuerySmResp, ReplaceSm, make_response
from protocols.smpp.time_format import format_absolute_time
from warpd.sms.catalog import SmppUser

_QUERY_STATES = {
    "queued": MessageState.ENROUTE,
    "submitted": MessageState.ENROUTE,
    "delivered": MessageState.DELIVERED,
    "expired": MessageState.EXPIRED,
    "deleted": MessageState.DELETED,
    "undeliverable": MessageState.UNDELIVERABLE,
    "rejected": MessageState.REJECTED,
    "unknown": MessageState.UNKNOWN,
    "failed": MessageState.UNDELIVERABLE,
}
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _message_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class QueryOps:
    def __init__(self, core: Any) -> None:
        self._core = core

    async def answer(self, pdu: QuerySm | CancelSm | ReplaceSm, user: SmppUser) -> Pdu:
        message_id = _message_id(pdu.message_id)
        if message_id is None:
            return make_response(pdu, CommandStatus.ESME_RINVMSGID)
        try:
            if isinstance(pdu, QuerySm):
                return await self._query(pdu, message_id, user)
            if isinstance(pdu, CancelSm):
                return await self._cancel(pdu, message_id, user)
            return await self._replace(pdu, message_id, user)
        except _DB_ERRORS:
            return make_response(pdu, CommandStatus.ESME_RSYSERR)

    async def _query(self, pdu: QuerySm, message_id: uuid.UUID, user: SmppUser) -> Pdu:
        async with self._core.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT state, done_at, error_code FROM messages WHERE id = $1 AND account_id = $2",
                message_id,
                user.account_id,
            )
        if row is None:
            return make_response(pdu, CommandStatus.ESME_RQUERYFAIL)
        return QuerySmResp(
            sequence_number=pdu.sequence_number,
            message_id=pdu.message_id,
            final_date=format_absolute_time(row["done_at"]) if row["done_at"] else "",
            message_state=_QUERY_STATES[row["state"]],
            error_code=min(max(row["error_code"] or 0, 0), 255),
        )

    async def _cancel(self, pdu: CancelSm, message_id: uuid.UUID, user: SmppUser) -> Pdu:
        if not self._core.dispatcher.cancel(message_id):
            return make_response(pdu, CommandStatus.ESME_RCANCELFAIL)
        async with self._core.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE messages SET state = 'deleted', done_at = now(), claimed_by = NULL"
                " WHERE id = $1 AND account_id = $2 AND state = 'queued'"
                " AND (claimed_by IS NULL OR claimed_by = $3 OR claimed_until < now())"
                " RETURNING price_micros",
                message_id,
                user.account_id,
                self._core.instance_id,
            )
            if row is None:
                return make_response(pdu, CommandStatus.ESME_RCANCELFAIL)
            released = await conn.fetchval(
                "DELETE FROM sms_reservations WHERE message_id = $1 RETURNING true", message_id
            )
            if row["price_micros"] and not released:
                # Never sent: a reservation is released (above), a charge goes back, once.
                await conn.execute(
                    "INSERT INTO ledger (account_id, amount_micros, kind, message_id, note)"
                    " VALUES ($1, $2, 'sms_refund', $3, 'cancel_sm') ON CONFLICT DO NOTHING",
                    user.account_id,
                    row["price_micros"],
                    message_id,
                )
        return make_response(pdu)

    async def _replace(self, pdu: ReplaceSm, message_id: uuid.UUID, user: SmppUser) -> Pdu:
        outbound = self._core.dispatcher.held.get(message_id)
        if outbound is not None and (outbound.attempts or outbound.finished):
            return make_response(pdu, CommandStatus.ESME_RREPLACEFAIL)
        async with self._core.pool.acquire() as conn:
            row = await conn.fetchrow(
                "UPDATE messages SET body = $3, registered_delivery = $4"
                " WHERE id = $1 AND account_id = $2 AND state = 'queued' AND attempts = 0"
                " AND length(body) = length($3) RETURNING id",
                message_id,
                user.account_id,
                pdu.short_message,
                pdu.registered_delivery,
            )
        if row is None:
            # Unknown, already sent, or a new text of another length (and so
            # possibly another price): refused rather than re-priced.
            return make_response(pdu, CommandStatus.ESME_RREPLACEFAIL)
        if outbound is not None:
            outbound.body = pdu.short_message
            outbound.registered_delivery = pdu.registered_delivery
        return make_response(pdu)
