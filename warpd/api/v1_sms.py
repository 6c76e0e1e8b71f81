"""``/v1/sms``: send one, send many, read their states.

Every message goes through the SMS core's one acceptance path, so an HTTP
message and an SMPP one are the same row, routed and charged the same way; the
answer (202 with the id) comes only after the row is committed. Text is
encoded here: GSM 03.38 when it fits (``data_coding`` 0), else UCS-2 (8); a hex
``body`` is sent as given with its ``data_coding``.

``Idempotency-Key`` (any string up to 255 characters) makes a retry return the
first answer: the first request stores a placeholder for (key, Idempotency-Key)
before submitting, so a concurrent duplicate gets 409 rather than a second
message, and a 5xx removes it so the retry can go through.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

from protocols.smpp.text import encode_auto
from warpd.api.endpoints import Call, Endpoint, Param, uuid_param
from warpd.api.errors import ApiError, invalid, not_found
from warpd.api.keys import ACCEPTANCE, CONFIG, DATABASE
from warpd.api.ops import json_response
from warpd.api.v1_account import MESSAGE_STATES, TIME, WINDOW, decode_cursor, encode_cursor
from warpd.api.v1_webhooks import URL, check_callback_url
from warpd.sms.model import Accepted, Refused, Submission

ENCODINGS = {0: "gsm7", 3: "latin1", 8: "ucs2"}
TEXT_MAX = 2000
_DIGITS = re.compile(r"^\+?[0-9]{1,20}$")

MESSAGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "from"],
    "properties": {
        "to": {"type": "string", "minLength": 1, "maxLength": 32,
               "description": "E.164, with or without +"},
        "from": {"type": "string", "pattern": "^([+]?[0-9]{1,20}|[ -~]{1,11})$",
                 "description": "a number, or up to 11 ASCII letters and digits"},
        "text": {"type": "string", "minLength": 1, "maxLength": TEXT_MAX},
        "body": {"type": "string", "pattern": "^([0-9a-fA-F]{2}){1,8000}$",
                 "description": "hex octets, sent as they are (needs data_coding)"},
        "data_coding": {"type": "integer", "minimum": 0, "maximum": 255},
        "validity": {"type": "integer", "minimum": 60, "maximum": 2_592_000,
                     "description": "seconds the carrier may keep trying"},
        "schedule_at": TIME,
        "callback_url": URL,
        "client_ref": {"type": "string", "minLength": 1, "maxLength": 64},
        "receipt": {"type": "boolean", "description": "ask for a delivery receipt (default)"},
    },
    # Text is encoded for you; a hex body comes with its data_coding.
    "oneOf": [
        {"required": ["text"], "not": {"anyOf": [{"required": ["body"]},
                                                 {"required": ["data_coding"]}]}},
        {"required": ["body", "data_coding"], "not": {"required": ["text"]}},
    ],
}  # fmt: skip
ACCEPTED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "parts", "price_micros", "currency", "state"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "parts": {"type": "integer"},
        "encoding": {"type": "string"}, "price_micros": {"type": "integer"},
        "currency": {"type": "string"}, "client_ref": {"type": ["string", "null"]},
        "state": {"type": "string"},
    },
}  # fmt: skip


async def build(call: Call, item: dict[str, Any]) -> tuple[Submission, str]:
    """The Submission for one checked message, and its encoding's name."""
    if ("text" in item) == ("body" in item):
        raise invalid("give exactly one of text or body")
    if "body" in item:
        if "data_coding" not in item:
            raise invalid("a hex body needs its data_coding")
        body, data_coding = bytes.fromhex(item["body"]), item["data_coding"]
    else:
        if "data_coding" in item:
            raise invalid("data_coding goes with a hex body; text is encoded for you")
        encoding, body = encode_auto(item["text"])
        data_coding = encoding.data_coding
    sender = item["from"]
    numeric = bool(_DIGITS.match(sender))
    if not numeric and (len(sender) > 11 or not sender.isascii() or not sender.isprintable()):
        raise ApiError(400, "invalid_source", "an alphanumeric sender is 1-11 ASCII characters")
    validity = item.get("validity")
    callback = item.get("callback_url")
    return Submission(
        account_id=call.account_id,
        channel="http",
        api_key_id=call.key.id if call.key else None,
        source_addr=sender.lstrip("+"),
        source_ton=1 if numeric else 5,
        source_npi=1 if numeric else 0,
        destination_addr=item["to"].lstrip("+"),
        dest_ton=1,
        dest_npi=1,
        body=body,
        data_coding=data_coding,
        registered_delivery=1 if item.get("receipt", True) else 0,
        client_ref=item.get("client_ref"),
        callback_url=await check_callback_url(call, callback) if callback else None,
        schedule_at=_parse(item.get("schedule_at")),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=validity) if validity else None,
    ), ENCODINGS.get(data_coding, "binary")


def answer(accepted: Accepted, encoding: str, client_ref: str | None) -> dict[str, Any]:
    # The UUID as it is: orjson writes one faster than UUID.__str__ formats it.
    return {"id": accepted.message_id, "parts": accepted.parts, "encoding": encoding,
            "price_micros": accepted.price_micros, "currency": accepted.currency,
            "client_ref": client_ref, "state": "queued"}  # fmt: skip


def refusal(exc: Refused) -> ApiError:
    return ApiError(exc.http_status, exc.code, exc.message)


async def send(call: Call) -> web.Response:
    async def once() -> tuple[int, Any]:
        submission, encoding = await build(call, call.body)
        try:
            accepted = await submit(call, submission)
        except Refused as exc:
            raise refusal(exc) from None
        return 202, answer(accepted, encoding, submission.client_ref)

    status, body = await idempotent(call, once)
    return json_response(body, status=status)


async def send_batch(call: Call) -> web.Response:
    async def once() -> tuple[int, Any]:
        limit = call.app[CONFIG].api.batch_max
        items = call.body["messages"]
        if len(items) > limit:
            raise invalid(f"$.messages: at most {limit} messages per batch")
        built = []
        for i, item in enumerate(items):
            try:
                built.append(await build(call, item))
            except ApiError as exc:
                raise ApiError(exc.status, exc.code, f"$.messages[{i}]: {exc.message}") from None
        outcomes = await _acceptance(call).submit_many([s for s, _ in built])
        results: list[dict[str, Any]] = []
        for i, ((sub, encoding), outcome) in enumerate(zip(built, outcomes, strict=True)):
            if isinstance(outcome, Refused):
                results.append({"index": i, "code": outcome.code, "message": outcome.message})
            else:
                results.append({"index": i, **answer(outcome, encoding, sub.client_ref)})
        accepted = sum(1 for o in outcomes if not isinstance(o, Refused))
        return 202, {"accepted": accepted, "refused": len(outcomes) - accepted,
                     "results": results}  # fmt: skip

    status, body = await idempotent(call, once)
    return json_response(body, status=status)


async def idempotent(call: Call, once: Any) -> tuple[int, Any]:
    """Run ``once`` at most once per (API key, Idempotency-Key); replay its answer."""
    key = call.request.headers.get("Idempotency-Key")
    if key is None:
        return await once()  # type: ignore[no-any-return]
    if not 1 <= len(key) <= 255:
        raise invalid("Idempotency-Key: 1 to 255 characters")
    assert call.key is not None
    digest = hashlib.sha256(orjson.dumps(call.body, option=orjson.OPT_SORT_KEYS)).digest()
    ttl = call.app[CONFIG].api.idempotency_ttl
    pool = call.app[DATABASE].pool
    async with pool.acquire() as conn:
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (api_key_id, key, request_sha256, status, response)"
            " VALUES ($1, $2, $3, 0, 'null') ON CONFLICT (api_key_id, key) DO UPDATE"
            " SET request_sha256 = $3, status = 0, response = 'null', created_at = now()"
            " WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)"
            " RETURNING true",
            call.key.id, key, digest, ttl,
        )  # fmt: skip
        if not claimed:
            row = await conn.fetchrow(
                "SELECT request_sha256, status, response::text FROM idempotency_keys"
                " WHERE api_key_id = $1 AND key = $2",
                call.key.id, key,
            )  # fmt: skip
            assert row is not None
            if bytes(row["request_sha256"]) != digest:
                raise ApiError(422, "idempotency_key_reused",
                               "this Idempotency-Key came with a different request")  # fmt: skip
            if row["status"] == 0:
                raise ApiError(
                    409, "idempotency_in_progress", "the first request with this key still runs"
                )
            return row["status"], orjson.loads(row["response"])
    try:
        status, body = await once()
    except ApiError as exc:
        if exc.status >= 500:
            await _forget(pool, call.key.id, key)
            raise
        status, body = exc.status, {"code": exc.code, "message": exc.message}
    except BaseException:
        await _forget(pool, call.key.id, key)
        raise
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET status = $3, response = $4::jsonb"
            " WHERE api_key_id = $1 AND key = $2",
            call.key.id, key, status, orjson.dumps(body).decode(),
        )  # fmt: skip
    return status, body


async def _forget(pool: Any, api_key_id: int, key: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND status = 0",
            api_key_id, key,
        )  # fmt: skip


MESSAGE_COLUMNS = (
    'id, client_ref, source_addr AS "from", destination_addr AS "to", parts, state,'
    " price_micros, currency, error_code, created_at, submitted_at, done_at, schedule_at,"
    " expires_at, mcc_mnc"
)


async def show(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND account_id = $2",
            call.params["id"], call.account_id,
        )  # fmt: skip
        if row is None:
            raise not_found(f"message {call.params['id']}")
        parts = await conn.fetch(
            "SELECT part_no AS part, state, error_code, submitted_at, done_at FROM message_parts"
            " WHERE message_id = $1 ORDER BY part_no",
            call.params["id"],
        )
    return json_response({**dict(row), "part_states": [dict(p) for p in parts]})


async def list_messages(call: Call) -> web.Response:
    now = dt.datetime.now(dt.UTC)
    end = call.params.get("to") or now
    start = call.params.get("from") or end - dt.timedelta(days=30)
    limit = call.params.get("limit", 100)
    after_time, after_id = decode_cursor(call.params.get("cursor"))
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE account_id = $1"
            " AND created_at >= $2 AND created_at < $3 AND ($4::text IS NULL OR state = $4)"
            " AND ($5::text IS NULL OR client_ref = $5) AND (created_at, id) > ($6, $7)"
            " ORDER BY created_at, id LIMIT $8",
            call.account_id, start, end, call.params.get("state"), call.params.get("client_ref"),
            after_time, after_id, limit,
        )  # fmt: skip
    items = [dict(r) for r in rows]
    cursor = encode_cursor(items[-1]) if len(items) == limit else None
    return json_response({"messages": items, "next_cursor": cursor})


def _acceptance(call: Call) -> Any:
    acceptance = call.app.get(ACCEPTANCE)
    if acceptance is None:
        raise ApiError(503, "unavailable", "the SMS core is not running on this instance")
    return acceptance


async def submit(call: Call, submission: Submission) -> Accepted:
    """One message through the acceptance path; raises Refused."""
    accepted: Accepted = await _acceptance(call).submit(submission)
    return accepted


def _parse(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _batch_cost(body: Any) -> int:
    return max(1, len(body.get("messages", ()))) if isinstance(body, dict) else 1


IDEMPOTENCY = Param("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255},
                    "retries with the same key get the first answer", where="header")  # fmt: skip
ENDPOINTS = (
    Endpoint("POST", "/v1/sms", send, "Send an SMS", "sms", scope="sms:send", body=MESSAGE,
             status=202, response=ACCEPTED, params=(IDEMPOTENCY,)),
    Endpoint("POST", "/v1/sms/send", send, "Send an SMS (same as POST /v1/sms)", "sms",
             scope="sms:send", body=MESSAGE, status=202, response=ACCEPTED,
             params=(IDEMPOTENCY,)),
    Endpoint("POST", "/v1/sms/batch", send_batch, "Send up to 1000 SMS in one request", "sms",
             scope="sms:send", status=202, cost=_batch_cost, params=(IDEMPOTENCY,),
             body={"type": "object", "additionalProperties": False, "required": ["messages"],
                   "properties": {"messages": {"type": "array", "minItems": 1,
                                               "maxItems": 1000, "items": MESSAGE}}}),
    Endpoint("GET", "/v1/sms/{id}", show, "A message's state, parts, receipt and price", "sms",
             scope="sms:read", params=(uuid_param(),)),
    Endpoint("GET", "/v1/sms", list_messages, "The account's messages, oldest first", "sms",
             scope="sms:read",
             params=(*WINDOW, Param("state", {"type": "string", "enum": MESSAGE_STATES}),
                     Param("client_ref", {"type": "string", "maxLength": 64}),
                     Param("cursor", {"type": "string", "maxLength": 200}),
                     Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}))),
)  # fmt: skip
