"""``/v1/webhooks``: where an account's receipts and MO are POSTed, signed.

A webhook's secret is shown once, when it is created. Deleting a webhook
disables it (pending deliveries reference it; they fail rather than vanish).
Per-message ``callback_url`` POSTs are signed with the account's
``callback_secret``, shown by ``GET /v1/webhooks``.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from warpd.api import audit
from warpd.api.endpoints import Call, Endpoint, id_param
from warpd.api.errors import not_found
from warpd.api.keys import CONFIG, DATABASE
from warpd.api.ops import json_response
from warpd.api.urlguard import check_reachable, parse_url

COLUMNS = "id, url, events, timeout_ms, enabled, created_at"
EVENTS = ["dlr", "mo"]
URL = {"type": "string", "minLength": 8, "maxLength": 2000, "pattern": "^https?://"}
WEBHOOK: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string"}},
    "timeout_ms": {"type": "integer"}, "enabled": {"type": "boolean"},
    "created_at": {"type": "string"}}}  # fmt: skip


async def check_callback_url(call: Call, text: str) -> str:
    """The same refusal rules for webhooks and per-message callback URLs."""
    url = parse_url(text)
    await check_reachable(url, call.app[CONFIG].webhooks.allow_private)
    return str(url)


async def create(call: Call) -> web.Response:
    url = await check_callback_url(call, call.body["url"])
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with call.app[DATABASE].pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO webhooks (account_id, url, secret, events, timeout_ms)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}",
            call.account_id,
            url,
            secret,
            list(dict.fromkeys(call.body.get("events", EVENTS))),
            call.body.get("timeout_ms", int(call.app[CONFIG].webhooks.timeout * 1000)),
        )
        assert row is not None
        await audit.record(conn, call.actor, "webhook.create", "webhook", row["id"], after=row)
    await call.changed()
    return json_response({**dict(row), "secret": secret}, status=201)


async def list_webhooks(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM webhooks WHERE account_id = $1 AND enabled ORDER BY id",
            call.account_id,
        )
        callback_secret = await conn.fetchval(
            "SELECT callback_secret FROM accounts WHERE id = $1", call.account_id
        )
    return json_response({"webhooks": [dict(r) for r in rows], "callback_secret": callback_secret})


async def delete(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE webhooks SET enabled = false WHERE id = $1 AND account_id = $2 AND enabled"
            f" RETURNING {COLUMNS}",
            call.params["id"],
            call.account_id,
        )
        if row is None:
            raise not_found(f"webhook {call.params['id']}")
        await audit.record(conn, call.actor, "webhook.delete", "webhook", row["id"], before=row)
    await call.changed()
    return web.Response(status=204)


ENDPOINTS = (
    Endpoint("POST", "/v1/webhooks", create, "Register a webhook (its secret is shown once)",
             "webhooks", scope="webhooks", status=201,
             body={"type": "object", "additionalProperties": False, "required": ["url"],
                   "properties": {
                       "url": URL,
                       "events": {"type": "array", "minItems": 1, "maxItems": 2,
                                  "items": {"type": "string", "enum": EVENTS}},
                       "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 30000}}},
             response={**WEBHOOK, "properties": {**WEBHOOK["properties"],
                                                 "secret": {"type": "string"}}}),
    Endpoint("GET", "/v1/webhooks", list_webhooks, "The account's webhooks", "webhooks",
             scope="webhooks",
             response={"type": "object", "properties": {
                 "webhooks": {"type": "array", "items": WEBHOOK},
                 "callback_secret": {"type": "string"}}}),
    Endpoint("DELETE", "/v1/webhooks/{id}", delete, "Remove a webhook", "webhooks",
             scope="webhooks", params=(id_param(),), status=204),
)  # fmt: skip
