"""Seed-compatible billing endpoints behind the admin token: ``/charges``, ``/balances``, ``/cdr``.

The platform's seed service exposed these three paths to the systems around
it (a CRM charging a set-up fee, a portal reading a balance, finance pulling
CDRs), so they keep its paths next to ``/v1/admin``:

* ``POST /charges`` takes money from an account as one ledger ``adjustment``
  row with a negative amount and the reason as its note. Its
  ``idempotency_key`` is kept in ``charges``: a retry with the same key and
  request gets the first charge's answer (nothing moves again), the same key
  with a different request is a 422. A charge that would take the balance
  past the credit limit is a 402 and moves nothing.
* ``GET /balances/{account_id}``: balance, credit limit and currency.
* ``GET /cdr``: every account's SMS CDRs (or one account's), by time, as JSON
  with a cursor or as CSV: the customer ``/v1/cdr`` listing with the account,
  what the first carrier costs us and the margin (price - cost) added.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from warpd.api import accounts, audit
from warpd.api.endpoints import MAX_BIGINT, Call, Endpoint, Param, id_param
from warpd.api.errors import ApiError
from warpd.api.keys import DATABASE
from warpd.api.ops import json_response
from warpd.api.v1_account import (
    CDR_COLUMNS,
    FORMAT,
    MESSAGE_STATES,
    WINDOW,
    cdr_page,
    decode_cursor,
    window,
)

ACCOUNT_ID = {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT}
CHARGE_COLUMNS = (
    "ledger_id AS charge_id, account_id, amount_micros, reason, idempotency_key,"
    " balance_after_micros, created_at"
)
# The operator's view adds what the carrier costs us and the margin (price - cost).
ADMIN_CDR_COLUMNS = ("account_id", *CDR_COLUMNS, "cost_micros", "margin_micros")
_ADMIN_CDR_SELECT = ", ".join(
    (*ADMIN_CDR_COLUMNS[:-1], "price_micros - cost_micros AS margin_micros")
)


async def charge(call: Call) -> web.Response:
    b = call.body
    account_id, amount, reason, key = (
        b["account_id"], b["amount_micros"], b["reason"], b["idempotency_key"]
    )  # fmt: skip
    async with call.app[DATABASE].pool.acquire() as conn, conn.transaction():
        # The account's row lock orders this charge against every other change of its money.
        before = await accounts.locked(conn, account_id)
        first = await conn.fetchrow(
            f"SELECT {CHARGE_COLUMNS} FROM charges WHERE idempotency_key = $1", key
        )
        if first is not None:
            if (first["account_id"], first["amount_micros"], first["reason"]) != (
                account_id, amount, reason
            ):  # fmt: skip
                raise ApiError(422, "idempotency_key_reused",
                               "this idempotency_key came with a different charge")  # fmt: skip
            return json_response({**dict(first), "currency": before["currency"]}, status=201)
        if before["status"] == "closed":
            raise ApiError(409, "account_closed", f"account {account_id} is closed")
        available = (
            before["balance_micros"] + before["credit_limit_micros"] - before["reserved_micros"]
        )
        if amount > available:
            raise ApiError(
                402, "insufficient_funds", f"{amount} micros is past the credit limit ({available})"
            )
        entry = await conn.fetchval(
            "INSERT INTO ledger (account_id, amount_micros, kind, note)"
            " VALUES ($1, $2, 'adjustment', $3) RETURNING id",
            account_id, -amount, reason,
        )  # fmt: skip
        after = await accounts.get(conn, account_id)
        row = await conn.fetchrow(
            "INSERT INTO charges (idempotency_key, account_id, ledger_id, amount_micros, reason,"
            f" balance_after_micros) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CHARGE_COLUMNS}",
            key, account_id, entry, amount, reason, after["balance_micros"],
        )  # fmt: skip
        assert row is not None
        await audit.record(
            conn, call.actor, "account.charge", "account", account_id, before=before, after=after
        )
    await call.changed()
    return json_response({**dict(row), "currency": after["currency"]}, status=201)


async def balance(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await accounts.get(conn, call.params["account_id"])
    return json_response(
        {
            "account_id": row["id"],
            "balance_micros": row["balance_micros"],
            "credit_limit_micros": row["credit_limit_micros"],
            "reserved_micros": row["reserved_micros"],
            "available_micros": row["balance_micros"]
            + row["credit_limit_micros"]
            - row["reserved_micros"],
            "currency": row["currency"],
        }
    )


async def cdr(call: Call) -> web.StreamResponse:
    start, end = window(call)
    limit = call.params.get("limit", 100)
    after_time, after_id = decode_cursor(call.params.get("cursor"))
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {_ADMIN_CDR_SELECT} FROM messages"
            " WHERE ($1::bigint IS NULL OR account_id = $1) AND created_at >= $2"
            " AND created_at < $3 AND ($4::text IS NULL OR state = $4)"
            " AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7",
            call.params.get("account_id"), start, end, call.params.get("state"),
            after_time, after_id, limit,
        )  # fmt: skip
    return cdr_page(call, ADMIN_CDR_COLUMNS, [dict(r) for r in rows], limit)


CHARGE: dict[str, Any] = {
    "type": "object",
    "required": [
        "charge_id",
        "account_id",
        "amount_micros",
        "reason",
        "idempotency_key",
        "balance_after_micros",
        "currency",
    ],
    "properties": {
        "charge_id": {"type": "integer", "description": "the ledger row"},
        "account_id": {"type": "integer"},
        "amount_micros": {"type": "integer"},
        "reason": {"type": "string"},
        "idempotency_key": {"type": "string"},
        "balance_after_micros": {"type": "integer"},
        "currency": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
ENDPOINTS = (
    Endpoint("POST", "/charges", charge,
             "Charge an account (an adjustment with a reason; retries answer the first charge)",
             "billing", "admin", status=201, response=CHARGE, extra_errors=(402, 422),
             body={"type": "object", "additionalProperties": False,
                   "required": ["account_id", "amount_micros", "reason", "idempotency_key"],
                   "properties": {
                       "account_id": ACCOUNT_ID,
                       "amount_micros": {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT},
                       "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                       "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255}}}),
    Endpoint("GET", "/balances/{account_id}", balance,
             "An account's balance, credit limit and currency", "billing", "admin",
             params=(id_param("account_id"),),
             response={"type": "object",
                       "required": ["account_id", "balance_micros", "credit_limit_micros",
                                    "currency"],
                       "properties": {"account_id": {"type": "integer"},
                                      "balance_micros": {"type": "integer"},
                                      "credit_limit_micros": {"type": "integer"},
                                      "available_micros": {"type": "integer"},
                                      "currency": {"type": "string"}}}),
    Endpoint("GET", "/cdr", cdr, "SMS CDRs of every account or one, oldest first", "billing",
             "admin", produces=("application/json", "text/csv"),
             params=(Param("account_id", ACCOUNT_ID, "only this account's"), *WINDOW,
                     Param("state", {"type": "string", "enum": MESSAGE_STATES}),
                     Param("cursor", {"type": "string", "maxLength": 200}),
                     Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                     FORMAT)),
)  # fmt: skip
