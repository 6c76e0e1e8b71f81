"""The customer portal (``/console``): balance and usage, messages, keys, webhooks, SMPP, OTP.

Every page works on the logged-in user's own account, taken from the session
and never from the request: a message, key, webhook or SMPP user of another
account is "not found", the same answer as one that does not exist. The
customer API's endpoints do the work where they exist (send, balance, usage,
messages, webhooks, CDR); keys and SMPP passwords, which that API does not
offer, go through the same credential functions as the admin API, after an
ownership check. Customer developers build (keys, webhooks, test messages,
OTP templates); only a customer admin resets the SMPP password.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

from warpd.api import audit, credentials
from warpd.api.errors import ApiError, not_found
from warpd.api.keys import DATABASE, KEY_STORE
from warpd.api.v1_account import MESSAGE_STATES
from warpd.api.v1_otp import DEFAULTS, TEMPLATE_COLUMNS
from warpd.console import live, story
from warpd.console.app import Page, Visit, attachment, redirect
from warpd.console.operator import number
from warpd.console.users import Role

# The SMPP alphabet for generated passwords: no look-alikes (0/O, 1/l/I).
_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


async def home(visit: Visit) -> web.StreamResponse:
    balance = await visit.api("GET", "/v1/balance")
    usage = await visit.api("GET", "/v1/usage", params={"group_by": "day"})
    return visit.render(
        "portal/home.html",
        balance=balance,
        usage=usage,
        usage_json=orjson.dumps(usage["items"]).decode(),
        messages=await _recent(visit, "", 10),
    )


async def home_live(visit: Visit) -> web.StreamResponse:
    account_id = visit.user.account_id
    name = (await visit.query("SELECT name FROM accounts WHERE id = $1", account_id))[0]["name"]

    async def shape(item: Any) -> Any:
        rows = await visit.query("SELECT balance_micros FROM accounts WHERE id = $1", account_id)
        return live.account_view(item, name, {"balance_micros": rows[0]["balance_micros"]})

    return await live.stream(visit.request, shape)


async def history(visit: Visit) -> web.StreamResponse:
    state = visit.request.query.get("state", "")
    return visit.render(
        "portal/messages.html",
        messages=await _recent(visit, state, 200),
        state=state,
        states=MESSAGE_STATES,
    )


RECENT_SQL = """
SELECT id, client_ref, source_addr, destination_addr, parts, state, price_micros, currency,
       error_code, created_at, done_at
  FROM messages WHERE account_id = $1 AND ($2 = '' OR state = $2)
 ORDER BY created_at DESC LIMIT $3
"""


async def _recent(visit: Visit, state: str, limit: int) -> list[dict[str, Any]]:
    """The account's newest messages (the API lists oldest first, for export)."""
    return await visit.query(RECENT_SQL, visit.user.account_id, state, limit)


async def message(visit: Visit) -> web.StreamResponse:
    async with visit.app[DATABASE].pool.acquire() as conn:
        found = await story.load(conn, visit.request.match_info["id"], visit.user.account_id)
    return visit.render("message.html", story=found, base="/console")


async def send_test(visit: Visit) -> web.StreamResponse:
    sent = await visit.api(
        "POST",
        "/v1/sms",
        body={
            "to": visit.field("to"),
            "from": visit.field("from") or "WARPD",
            "text": visit.field("text") or "warpd test message",
        },
    )
    return redirect(f"/console/messages/{sent['id']}", notice="test message accepted")


async def keys(visit: Visit, shown_key: str = "") -> web.Response:
    async with visit.app[DATABASE].pool.acquire() as conn:
        rows = await credentials.list_keys(conn, visit.user.account_id)
    return visit.render("portal/keys.html", keys=rows, shown_key=shown_key)


async def show_keys(visit: Visit) -> web.StreamResponse:
    return await keys(visit)


async def create_key(visit: Visit) -> web.StreamResponse:
    account_id = visit.user.account_id
    assert account_id is not None
    async with visit.app[DATABASE].pool.acquire() as conn:
        created = await credentials.create_key(
            conn, visit.user.actor, account_id, name=visit.field("name")
        )
    # Shown in this one answer only; a reload shows the prefix and nothing more.
    return await keys(visit, shown_key=created["key"])


async def _own(visit: Visit, table: str, ident: int, what: str) -> None:
    rows = await visit.query(f"SELECT account_id FROM {table} WHERE id = $1", ident)
    if not rows or rows[0]["account_id"] != visit.user.account_id:
        raise not_found(f"{what} {ident}")


async def revoke_key(visit: Visit) -> web.StreamResponse:
    key_id = number(visit, "id")
    await _own(visit, "api_keys", key_id, "API key")
    async with visit.app[DATABASE].pool.acquire() as conn:
        row = await credentials.revoke_key(conn, visit.user.actor, str(key_id))
    visit.app[KEY_STORE].forget(row["prefix"])
    return redirect("/console/keys", notice=f"key {row['prefix']} revoked")


ATTEMPTS_SQL = """
SELECT d.webhook_id, d.id AS delivery_id, d.kind, d.state, a.attempt_no, a.status_code, a.error,
       a.latency_ms, a.attempted_at
  FROM deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id
 WHERE d.account_id = $1 AND d.webhook_id IS NOT NULL
 ORDER BY a.id DESC LIMIT 50
"""


async def webhooks(visit: Visit, shown_secret: str = "") -> web.Response:
    listed = await visit.api("GET", "/v1/webhooks")
    attempts = await visit.query(ATTEMPTS_SQL, visit.user.account_id)
    return visit.render(
        "portal/webhooks.html",
        webhooks=listed["webhooks"],
        attempts=attempts,
        callback_secret=listed["callback_secret"],
        shown_secret=shown_secret,
    )


async def show_webhooks(visit: Visit) -> web.StreamResponse:
    return await webhooks(visit)


async def create_webhook(visit: Visit) -> web.StreamResponse:
    events = [e for e in visit.form.getall("events", []) if isinstance(e, str)] or ["dlr", "mo"]
    created = await visit.api(
        "POST", "/v1/webhooks", body={"url": visit.field("url"), "events": events}
    )
    return await webhooks(visit, shown_secret=created["secret"])


async def delete_webhook(visit: Visit) -> web.StreamResponse:
    await visit.api("DELETE", "/v1/webhooks/{id}", params={"id": number(visit, "id")})
    return redirect("/console/webhooks", notice="webhook removed")


async def test_webhook(visit: Visit) -> web.StreamResponse:
    """A signed ``test`` event through the webhook sender, recorded like any delivery."""
    hook_id = number(visit, "id")
    await _own(visit, "webhooks", hook_id, "webhook")
    payload = {"type": "test", "webhook_id": hook_id, "sent_by": visit.user.username}
    async with visit.app[DATABASE].pool.acquire() as conn, conn.transaction():
        delivery = await conn.fetchval(
            "INSERT INTO deliveries (account_id, kind, via, webhook_id, payload, expires_at)"
            " VALUES ($1, 'test', 'webhook', $2, $3::jsonb, now() + interval '10 minutes')"
            " RETURNING id",
            visit.user.account_id,
            hook_id,
            orjson.dumps(payload).decode(),
        )
        await audit.record(
            conn,
            visit.user.actor,
            "webhook.test",
            "webhook",
            hook_id,
            after={"delivery_id": delivery},
        )
        await conn.execute("SELECT pg_notify('warpd_deliveries', '')")
    return redirect("/console/webhooks", notice="test event queued")


async def smpp(visit: Visit, shown_password: str = "") -> web.Response:
    async with visit.app[DATABASE].pool.acquire() as conn:
        rows = await credentials.list_smpp_users(conn, visit.user.account_id)
    return visit.render("portal/smpp.html", smpp_users=rows, shown_password=shown_password)


async def show_smpp(visit: Visit) -> web.StreamResponse:
    return await smpp(visit)


async def reset_smpp_password(visit: Visit) -> web.StreamResponse:
    if visit.user.role is not Role.CUSTOMER_ADMIN:
        raise ApiError(403, "forbidden", "only the account's admin resets the SMPP password")
    user_id = number(visit, "id")
    await _own(visit, "smpp_users", user_id, "SMPP user")
    password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(8))
    await visit.api(
        "PATCH", "/v1/admin/smpp-users/{id}", params={"id": user_id}, body={"password": password}
    )
    return await smpp(visit, shown_password=password)


async def otp(visit: Visit) -> web.StreamResponse:
    rows = await visit.query(
        f"SELECT {TEMPLATE_COLUMNS} FROM otp_templates WHERE account_id = $1",
        visit.user.account_id,
    )
    return visit.render("portal/otp.html", template=rows[0] if rows else DEFAULTS)


async def set_otp(visit: Visit) -> web.StreamResponse:
    body = {
        "text": visit.field("text"),
        "source_addr": visit.field("source_addr"),
        **{
            k: int(visit.field(k))
            for k in ("code_length", "lifetime_s", "max_attempts")
            if visit.field(k).isdigit()
        },
    }
    await visit.api(
        "PUT",
        "/v1/admin/accounts/{id}/otp-template",
        params={"id": visit.user.account_id},
        body=body,
    )
    return redirect("/console/otp", notice="OTP template saved")


async def cdr_csv(visit: Visit) -> web.StreamResponse:
    response: web.Response = await visit.api(
        "GET", "/v1/cdr", params={"format": "csv", "limit": 1000, **visit.request.query}
    )
    return attachment(response, "sms-cdrs.csv")


PAGES = (
    Page("GET", "/", home, "customer"),
    Page("GET", "/live", home_live, "customer"),
    Page("GET", "/messages", history, "customer"),
    Page("GET", "/messages/{id}", message, "customer"),
    Page("POST", "/send-test", send_test, "customer"),
    Page("GET", "/keys", show_keys, "customer"),
    Page("POST", "/keys", create_key, "customer"),
    Page("POST", "/keys/{id}/revoke", revoke_key, "customer"),
    Page("GET", "/webhooks", show_webhooks, "customer"),
    Page("POST", "/webhooks", create_webhook, "customer"),
    Page("POST", "/webhooks/{id}/delete", delete_webhook, "customer"),
    Page("POST", "/webhooks/{id}/test", test_webhook, "customer"),
    Page("GET", "/smpp", show_smpp, "customer"),
    Page("POST", "/smpp/{id}/password", reset_smpp_password, "customer"),
    Page("GET", "/otp", otp, "customer"),
    Page("POST", "/otp", set_otp, "customer"),
    Page("GET", "/cdr.csv", cdr_csv, "customer"),
)
