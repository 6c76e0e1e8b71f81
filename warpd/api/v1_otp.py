"""``/v1/otp``: send a one-time code through the account's template, then check it once.

The template (``otp_templates``; defaults when the account has none) gives
the text with ``{code}``, the sender, the code's length, lifetime and attempt
limit. Only SHA-256 over (id, code) is stored. Verification takes one attempt
atomically before comparing (constant-time), so parallel guesses cannot
exceed the limit, and a verified code cannot be used again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import Any

from aiohttp import web

from warpd.api.endpoints import Call, Endpoint
from warpd.api.errors import ApiError, not_found
from warpd.api.keys import DATABASE
from warpd.api.ops import json_response
from warpd.api.v1_sms import build, refusal, submit
from warpd.sms.model import Refused

DEFAULTS = {"text": "Your code is {code}", "source_addr": "VERIFY", "code_length": 6,
            "lifetime_s": 300, "max_attempts": 3}  # fmt: skip
TEMPLATE_COLUMNS = "text, source_addr, code_length, lifetime_s, max_attempts"


def code_digest(otp_id: uuid.UUID, code: str) -> bytes:
    return hashlib.sha256(otp_id.bytes + code.encode()).digest()


async def send_otp(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {TEMPLATE_COLUMNS} FROM otp_templates WHERE account_id = $1", call.account_id
        )
    template: dict[str, Any] = dict(row) if row is not None else dict(DEFAULTS)
    code = "".join(secrets.choice("0123456789") for _ in range(template["code_length"]))
    otp_id = uuid.uuid4()
    text = template["text"].replace("{code}", code)
    message = {"to": call.body["to"], "from": template["source_addr"], "text": text,
               "validity": template["lifetime_s"]}  # fmt: skip
    submission, _ = await build(call, message)
    try:
        accepted = await submit(call, submission)
    except Refused as exc:
        raise refusal(exc) from None
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=template["lifetime_s"])
    async with call.app[DATABASE].pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO otp_codes (id, account_id, destination, code_sha256, message_id,"
            " max_attempts, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            otp_id, call.account_id, submission.destination_addr, code_digest(otp_id, code),
            accepted.message_id, template["max_attempts"], expires_at,
        )  # fmt: skip
    return json_response(
        {"id": str(otp_id), "message_id": str(accepted.message_id), "expires_at": expires_at,
         "price_micros": accepted.price_micros, "currency": accepted.currency},
        status=202,
    )  # fmt: skip


async def verify_otp(call: Call) -> web.Response:
    try:
        otp_id = uuid.UUID(call.body["id"])
    except ValueError:
        raise not_found("one-time code") from None
    code = call.body["code"]
    async with call.app[DATABASE].pool.acquire() as conn, conn.transaction():
        # One attempt is taken before the comparison, in the same statement that
        # checks the limit, so concurrent guesses cannot go past it.
        row = await conn.fetchrow(
            "UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1 AND account_id = $2"
            " AND verified_at IS NULL AND attempts < max_attempts AND expires_at > now()"
            " RETURNING code_sha256, attempts, max_attempts",
            otp_id, call.account_id,
        )  # fmt: skip
        if row is None:
            await _why_not(conn, otp_id, call.account_id)
        assert row is not None
        ok = hmac.compare_digest(bytes(row["code_sha256"]), code_digest(otp_id, code))
        if ok:
            await conn.execute("UPDATE otp_codes SET verified_at = now() WHERE id = $1", otp_id)
    return json_response(
        {"id": str(otp_id), "verified": ok, "attempts_left": row["max_attempts"] - row["attempts"]}
    )


async def _why_not(conn: Any, otp_id: uuid.UUID, account_id: int) -> None:
    row = await conn.fetchrow(
        "SELECT verified_at IS NOT NULL AS used, attempts >= max_attempts AS locked,"
        " expires_at <= now() AS expired FROM otp_codes WHERE id = $1 AND account_id = $2",
        otp_id, account_id,
    )  # fmt: skip
    if row is None:
        raise not_found("one-time code")
    if row["used"]:
        raise ApiError(409, "otp_used", "this code was already verified")
    if row["locked"]:
        raise ApiError(409, "otp_locked", "too many attempts; send a new code")
    raise ApiError(409, "otp_expired", "this code has expired; send a new code")


ENDPOINTS = (
    Endpoint("POST", "/v1/otp", send_otp, "Send a one-time code through the account's template",
             "otp", scope="otp", status=202,
             body={"type": "object", "additionalProperties": False, "required": ["to"],
                   "properties": {"to": {"type": "string", "minLength": 1, "maxLength": 32}}}),
    Endpoint("POST", "/v1/otp/verify", verify_otp, "Check a one-time code (once, in time)",
             "otp", scope="otp",
             body={"type": "object", "additionalProperties": False, "required": ["id", "code"],
                   "properties": {"id": {"type": "string", "maxLength": 64},
                                  "code": {"type": "string", "minLength": 1, "maxLength": 20}}},
             response={"type": "object", "required": ["verified"], "properties": {
                 "id": {"type": "string"}, "verified": {"type": "boolean"},
                 "attempts_left": {"type": "integer"}}}),
)  # fmt: skip
