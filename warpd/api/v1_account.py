"""Customer reads: ``/v1/balance``, ``/v1/usage`` (statements) and ``/v1/cdr``, each of SMS
or, with ``type=voice``, of calls.

Amounts are what the ledger says, not what the message rows hoped: a refund
for a failed message lowers the usage total, so a statement always adds up
to the balance's movements (a call's amount is its ``voice_charge``). CSV
answers carry the same columns as JSON. Voice usage by destination is by the
dialled number's country (ISO 3166 region, as rates name it), SMS usage by
the destination network (MCC/MNC).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from warpd.api import accounts
from warpd.api.endpoints import Call, Endpoint, Param
from warpd.api.errors import invalid
from warpd.api.keys import DATABASE
from warpd.api.ops import json_response
from warpd.routing.numbers import region_of

TIME = {"type": "string", "format": "date-time"}
FORMAT = Param("format", {"type": "string", "enum": ["json", "csv"]}, "answer as JSON or CSV")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

USAGE_SQL = """
SELECT {key} AS key, count(*) AS messages, sum(m.parts)::bigint AS parts,
       coalesce(-sum(l.net), 0)::bigint AS amount_micros
  FROM messages m
  LEFT JOIN LATERAL (SELECT sum(amount_micros) AS net FROM ledger
                      WHERE message_id = m.id AND kind IN ('sms_charge', 'sms_refund')) l ON true
 WHERE m.account_id = $1 AND m.created_at >= $2 AND m.created_at < $3
 GROUP BY 1 ORDER BY 1
"""
USAGE_KEYS = {
    "day": "to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "destination": "coalesce(m.mcc_mnc, 'unknown')",
}
USAGE_COLUMNS = ("messages", "parts", "amount_micros")
# A call has at most one voice_charge (ledger_once_per_call): the join adds no rows.
VOICE_USAGE_SQL = """
SELECT {key} AS key, count(*) AS calls,
       count(*) FILTER (WHERE c.disposition = 'ANSWERED') AS answered,
       coalesce(sum(c.billsec), 0)::bigint AS billsec,
       coalesce(-sum(l.amount_micros), 0)::bigint AS amount_micros
  FROM voice_cdrs c
  LEFT JOIN ledger l ON l.call_id = c.id AND l.kind = 'voice_charge'
 WHERE c.account_id = $1 AND c.start_at >= $2 AND c.start_at < $3
 GROUP BY 1 ORDER BY 1
"""
VOICE_USAGE_KEYS = {
    "day": "to_char(c.start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    # By number here; by its country in voice_usage (PostgreSQL has no numbering plan).
    "destination": "coalesce(c.dst_e164, '')",
}
VOICE_USAGE_COLUMNS = ("calls", "answered", "billsec", "minutes", "amount_micros")
CDR_COLUMNS = (
    "id", "client_ref", "source_addr", "destination_addr", "mcc_mnc", "parts", "state",
    "price_micros", "currency", "error_code", "created_at", "submitted_at", "done_at",
)  # fmt: skip
VOICE_CDR_COLUMNS = (
    "id", "direction", "src_e164", "dst_e164", "start_at", "answer_at", "end_at",
    "duration_ms", "billsec", "disposition", "sip_code", "hangup_by", "price_micros",
    "currency", "recording",
)  # fmt: skip


async def balance(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await accounts.get(conn, call.account_id)
    return json_response(
        {
            "account_id": row["id"],
            "currency": row["currency"],
            "balance_micros": row["balance_micros"],
            "credit_limit_micros": row["credit_limit_micros"],
            # Set aside for messages charged on delivery that are not final yet.
            "reserved_micros": row["reserved_micros"],
            "available_micros": row["balance_micros"]
            + row["credit_limit_micros"]
            - row["reserved_micros"],
            "charge_mode": row["charge_mode"],
            "status": row["status"],
        }
    )


async def usage(call: Call) -> web.StreamResponse:
    start, end = window(call)
    group_by = call.params.get("group_by", "day")
    voice = call.params.get("type") == "voice"
    sql = (VOICE_USAGE_SQL if voice else USAGE_SQL).format(
        key=(VOICE_USAGE_KEYS if voice else USAGE_KEYS)[group_by]
    )
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = [dict(r) for r in await conn.fetch(sql, call.account_id, start, end)]
        currency = (await accounts.get(conn, call.account_id))["currency"]
    columns = VOICE_USAGE_COLUMNS if voice else USAGE_COLUMNS
    if voice and group_by == "destination":
        rows = by_country(rows)
    items = [{group_by: r["key"], **{k: r[k] for k in columns if k != "minutes"}} for r in rows]
    if voice:
        for item in items:
            item["minutes"] = minutes(item["billsec"])
    if call.params.get("format") == "csv":
        return csv_response((group_by, *columns), items)
    totals = {k: sum(i[k] for i in items) for k in columns if k != "minutes"}
    if voice:
        totals["minutes"] = minutes(totals["billsec"])
    return json_response(
        {
            "from": start,
            "to": end,
            "type": "voice" if voice else "sms",
            "group_by": group_by,
            "currency": currency,
            "items": items,
            "totals": totals,
        }
    )


def by_country(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-number usage rows summed per the number's ISO region ("unknown" for none)."""
    summed: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = (region_of(row["key"]) if row["key"] else None) or "unknown"
        into = summed.setdefault(key, {"key": key} | dict.fromkeys(row.keys() - {"key"}, 0))
        for column, value in row.items():
            if column != "key":
                into[column] += value
    return [summed[k] for k in sorted(summed)]


def minutes(billsec: int) -> float:
    """Billed seconds as minutes to the hundredth, for reading (the seconds are exact)."""
    return round(billsec / 60, 2)


async def cdr(call: Call) -> web.StreamResponse:
    if call.params.get("type") == "voice":
        return await voice_cdr(call)
    start, end = window(call)
    limit = call.params.get("limit", 100)
    after_time, after_id = decode_cursor(call.params.get("cursor"))
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {', '.join(CDR_COLUMNS)} FROM messages"
            " WHERE account_id = $1 AND created_at >= $2 AND created_at < $3"
            " AND ($4::text IS NULL OR state = $4) AND ($5::text IS NULL OR client_ref = $5)"
            " AND (created_at, id) > ($6, $7) ORDER BY created_at, id LIMIT $8",
            call.account_id,
            start,
            end,
            call.params.get("state"),
            call.params.get("client_ref"),
            after_time,
            after_id,
            limit,
        )
    return cdr_page(call, CDR_COLUMNS, [dict(r) for r in rows], limit)


async def voice_cdr(call: Call) -> web.StreamResponse:
    """The account's calls by when they started (voice_cdrs: one row per call)."""
    start, end = window(call)
    limit = call.params.get("limit", 100)
    after_time, after_id = decode_cursor(call.params.get("cursor"))
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {', '.join(VOICE_CDR_COLUMNS)} FROM voice_cdrs"
            " WHERE account_id = $1 AND start_at >= $2 AND start_at < $3"
            " AND (start_at, id) > ($4, $5) ORDER BY start_at, id LIMIT $6",
            call.account_id, start, end, after_time, after_id, limit,
        )  # fmt: skip
    return cdr_page(call, VOICE_CDR_COLUMNS, [dict(r) for r in rows], limit, at="start_at")


def cdr_page(
    call: Call, columns: Sequence[str], items: list[dict[str, Any]], limit: int,
    at: str = "created_at",
) -> web.StreamResponse:  # fmt: skip
    """A page of CDRs as CSV, or as JSON with the cursor after its last row (by ``at``, id)
    when the page is full."""
    if call.params.get("format") == "csv":
        return csv_response(columns, items)
    last = items[-1] if len(items) == limit else None
    cursor = encode_cursor({"created_at": last[at], "id": last["id"]}) if last else None
    return json_response({"cdrs": items, "next_cursor": cursor})


def window(call: Call) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    end: dt.datetime = call.params.get("to") or now
    start: dt.datetime = call.params.get("from") or end - dt.timedelta(days=30)
    if start >= end:
        raise invalid("from must be before to")
    return start, end


def encode_cursor(row: dict[str, Any]) -> str:
    text = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[dt.datetime, uuid.UUID]:
    """A keyset cursor (created_at, id); garbage is a 400, never a 500."""
    if not text:
        return _EPOCH, uuid.UUID(int=0)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        when, _, ident = raw.partition("|")
        moment = dt.datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor: not a cursor this API gave") from None


def csv_response(columns: Sequence[str], items: Iterable[dict[str, Any]]) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow(
            ""
            if item[c] is None
            else item[c].isoformat()
            if isinstance(item[c], dt.datetime)
            else item[c]
            for c in columns
        )
    return web.Response(text=out.getvalue(), content_type="text/csv")


WINDOW = (
    Param("from", TIME, "start, inclusive (default: 30 days before to)"),
    Param("to", TIME, "end, exclusive (default: now)"),
)
MESSAGE_STATES = [
    "queued",
    "submitted",
    "delivered",
    "undeliverable",
    "expired",
    "rejected",
    "deleted",
    "unknown",
    "failed",
]

ENDPOINTS = (
    Endpoint("GET", "/v1/balance", balance, "The account's balance and credit", "account",
             scope="account:read",
             response={"type": "object", "properties": {
                 "account_id": {"type": "integer"}, "currency": {"type": "string"},
                 "balance_micros": {"type": "integer"}, "credit_limit_micros": {"type": "integer"},
                 "reserved_micros": {"type": "integer"}, "available_micros": {"type": "integer"},
                 "charge_mode": {"type": "string", "enum": ["at_acceptance", "on_delivery"]},
                 "status": {"type": "string"}},
                 "required": ["account_id", "currency", "balance_micros"]}),
    Endpoint("GET", "/v1/usage", usage,
             "Messages, parts and amounts (or calls, minutes and amounts) per day or destination",
             "account", scope="account:read",
             params=(*WINDOW, Param("group_by", {"type": "string", "enum": ["day", "destination"]},
                                    "day (UTC), or destination: network (SMS), country (voice)"),
                     Param("type", {"type": "string", "enum": ["sms", "voice"]},
                           "sms (default) or voice: calls, answered, billsec, minutes"),
                     FORMAT),
             produces=("application/json", "text/csv")),
    Endpoint("GET", "/v1/cdr", cdr, "SMS or voice CDRs, oldest first, with a cursor", "account",
             scope="account:read",
             params=(*WINDOW,
                     Param("type", {"type": "string", "enum": ["sms", "voice"]},
                           "sms (default) or voice: one row per call"),
                     Param("state", {"type": "string", "enum": MESSAGE_STATES}),
                     Param("client_ref", {"type": "string", "maxLength": 255}),
                     Param("cursor", {"type": "string", "maxLength": 200}),
                     Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                     FORMAT),
             produces=("application/json", "text/csv")),
)  # fmt: skip
