"""The operator console (``/console/admin``): dashboard, accounts, credentials, connectors.

Every change goes through the admin API's own endpoint (:meth:`Visit.api`),
so it is checked, audited and reloaded exactly as an API call would be; the
audit log names the console user. Amounts are typed in major units and
turned into micro-units with the tariff CSV's exact decimal rules.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from warpd.api.errors import ApiError, invalid
from warpd.api.keys import DATABASE
from warpd.api.tariff_csv import TariffError, to_micros
from warpd.console import live, users
from warpd.console.app import Page, Visit, redirect

SCOPES_DEFAULT = ["sms:send", "sms:read", "account:read", "webhooks", "otp"]


def micros(text: str, what: str = "amount") -> int:
    """A decimal amount in major units ("12.50") as exact micro-units; 400 otherwise."""
    negative = text.startswith("-")
    try:
        value = to_micros(text.removeprefix("-"))
    except TariffError:
        raise invalid(f"{what}: a decimal number with at most 6 places, like 12.50") from None
    return -value if negative else value


def number(visit: Visit, name: str) -> int:
    text = (
        visit.request.match_info.get(name)
        or visit.field(name)
        or visit.request.query.get(name, "").strip()
    )
    if not text.isdigit():
        raise invalid(f"{name}: a positive whole number")
    return int(text)


async def dashboard(visit: Visit) -> web.StreamResponse:
    return visit.render("admin/dashboard.html")


async def dashboard_live(visit: Visit) -> web.StreamResponse:
    async def shape(item: Any) -> Any:
        return item

    return await live.stream(visit.request, shape)


async def accounts(visit: Visit) -> web.StreamResponse:
    listed = await visit.api("GET", "/v1/admin/accounts", params={"limit": 1000})
    plans = await visit.api("GET", "/v1/admin/rate-plans")
    return visit.render(
        "admin/accounts.html", accounts=listed["accounts"], plans=plans["rate_plans"]
    )


async def create_account(visit: Visit) -> web.StreamResponse:
    body: dict[str, Any] = {"name": visit.field("name"), "currency": visit.field("currency")}
    if visit.field("rate_plan_id"):
        body["rate_plan_id"] = number(visit, "rate_plan_id")
    if visit.field("balance"):
        body["balance_micros"] = micros(visit.field("balance"), "opening balance")
    row = await visit.api("POST", "/v1/admin/accounts", body=body)
    return redirect(f"/console/admin/accounts/{row['id']}", notice="account created")


async def account(visit: Visit, shown_key: str = "") -> web.Response:
    account_id = number(visit, "id")
    params = {"id": account_id, "limit": 50}
    row = await visit.api("GET", "/v1/admin/accounts/{id}", params=params)
    ledger = await visit.api("GET", "/v1/admin/accounts/{id}/ledger", params=params)
    keys = await visit.api("GET", "/v1/admin/keys", params={"account_id": account_id})
    smpp = await visit.api("GET", "/v1/admin/smpp-users", params={"account_id": account_id})
    return visit.render(
        "admin/account.html",
        account=row,
        ledger=ledger["ledger"],
        keys=keys["keys"],
        smpp_users=smpp["smpp_users"],
        shown_key=shown_key,
        scopes=SCOPES_DEFAULT,
    )


async def show_account(visit: Visit) -> web.StreamResponse:
    return await account(visit)


async def set_status(visit: Visit) -> web.StreamResponse:
    account_id = number(visit, "id")
    await visit.api(
        "PATCH",
        "/v1/admin/accounts/{id}",
        params={"id": account_id},
        body={"status": visit.field("status")},
    )
    return redirect(f"/console/admin/accounts/{account_id}", notice=f"now {visit.field('status')}")


async def move_money(visit: Visit) -> web.StreamResponse:
    account_id, kind = number(visit, "id"), visit.request.match_info["kind"]
    amount = micros(visit.field("amount"))
    if kind == "topup":
        body: dict[str, Any] = {"amount_micros": amount, "note": visit.field("note")}
    else:
        body = {"amount_micros": amount, "reason": visit.field("reason")}
    await visit.api(
        "POST", f"/v1/admin/accounts/{{id}}/{kind}", params={"id": account_id}, body=body
    )
    return redirect(f"/console/admin/accounts/{account_id}", notice=f"{kind} recorded")


async def create_key(visit: Visit) -> web.StreamResponse:
    account_id = number(visit, "id")
    scopes = [s for s in visit.form.getall("scopes", []) if isinstance(s, str)]
    created = await visit.api(
        "POST",
        "/v1/admin/keys",
        body={"account_id": account_id, "name": visit.field("name"), "scopes": scopes},
    )
    # The secret is in this one page only: never stored, never in a URL.
    return await account(visit, shown_key=created["key"])


async def revoke_key(visit: Visit) -> web.StreamResponse:
    row = await visit.api("DELETE", "/v1/admin/keys/{id}", params={"id": number(visit, "key")})
    return redirect(f"/console/admin/accounts/{row['account_id']}", notice="key revoked")


async def create_smpp_user(visit: Visit) -> web.StreamResponse:
    account_id = number(visit, "id")
    await visit.api(
        "POST",
        "/v1/admin/smpp-users",
        body={
            "account_id": account_id,
            "system_id": visit.field("system_id"),
            "password": visit.field("password"),
        },
    )
    return redirect(f"/console/admin/accounts/{account_id}", notice="SMPP user created")


async def update_smpp_user(visit: Visit) -> web.StreamResponse:
    body: dict[str, Any] = {}
    if visit.field("password"):
        body["password"] = visit.field("password")
    if visit.field("enabled"):
        body["enabled"] = visit.field("enabled") == "true"
    row = await visit.api(
        "PATCH", "/v1/admin/smpp-users/{id}", params={"id": number(visit, "user")}, body=body
    )
    return redirect(f"/console/admin/accounts/{row['account_id']}", notice="SMPP user changed")


async def connectors(visit: Visit) -> web.StreamResponse:
    listed = await visit.api("GET", "/v1/admin/connectors")
    return visit.render("admin/connectors.html", connectors=listed["connectors"])


async def set_connector(visit: Visit) -> web.StreamResponse:
    connector_id, action = number(visit, "id"), visit.request.match_info["action"]
    path = "/v1/admin/connectors/{id}"
    if action == "rebind":
        # Disabled and enabled again: the SMS core unbinds and binds afresh with the
        # new settings, as after any change (its queue waits for the new binds).
        await visit.api("PATCH", path, params={"id": connector_id}, body={"enabled": False})
    await visit.api(
        "PATCH", path, params={"id": connector_id}, body={"enabled": action != "disable"}
    )
    return redirect("/console/admin/connectors", notice=f"connector {connector_id}: {action}d")


async def console_users(visit: Visit) -> web.StreamResponse:
    async with visit.app[DATABASE].pool.acquire() as conn:
        rows = await users.list_all(conn)
    listed = await visit.api("GET", "/v1/admin/accounts", params={"limit": 1000})
    return visit.render(
        "admin/users.html",
        users=rows,
        accounts=listed["accounts"],
        roles=[r.value for r in users.Role],
    )


async def create_console_user(visit: Visit) -> web.StreamResponse:
    if visit.user.role is not users.Role.OPERATOR_ADMIN:
        raise ApiError(403, "forbidden", "only an operator admin manages console users")
    try:
        role = users.Role(visit.field("role"))
    except ValueError:
        raise invalid("role: pick one of the four") from None
    account_id = number(visit, "account_id") if visit.field("account_id") else None
    async with visit.app[DATABASE].pool.acquire() as conn:
        await users.create(
            conn,
            visit.user.actor,
            username=visit.field("username"),
            password=visit.field("password"),
            role=role,
            account_id=account_id,
        )
    return redirect("/console/admin/users", notice="console user created")


async def audit_log(visit: Visit) -> web.StreamResponse:
    rows = await visit.query(
        "SELECT id, actor, action, object_type, object_id, before, after, at FROM audit_log"
        " WHERE ($1 = '' OR actor ILIKE '%' || $1 || '%' OR action ILIKE '%' || $1 || '%')"
        " ORDER BY id DESC LIMIT 200",
        visit.request.query.get("q", ""),
    )
    return visit.render("admin/audit.html", entries=rows, q=visit.request.query.get("q", ""))


PAGES = (
    Page("GET", "/admin", dashboard, "operator"),
    Page("GET", "/admin/live", dashboard_live, "operator"),
    Page("GET", "/admin/accounts", accounts, "operator"),
    Page("POST", "/admin/accounts", create_account, "operator"),
    Page("GET", "/admin/accounts/{id}", show_account, "operator"),
    Page("POST", "/admin/accounts/{id}/status", set_status, "operator"),
    Page("POST", "/admin/accounts/{id}/{kind:topup|adjust}", move_money, "operator"),
    Page("POST", "/admin/accounts/{id}/keys", create_key, "operator"),
    Page("POST", "/admin/keys/{key}/revoke", revoke_key, "operator"),
    Page("POST", "/admin/accounts/{id}/smpp-users", create_smpp_user, "operator"),
    Page("POST", "/admin/smpp-users/{user}", update_smpp_user, "operator"),
    Page("GET", "/admin/connectors", connectors, "operator"),
    Page(
        "POST", "/admin/connectors/{id}/{action:enable|disable|rebind}", set_connector, "operator"
    ),
    Page("GET", "/admin/users", console_users, "operator"),
    Page("POST", "/admin/users", create_console_user, "operator"),
    Page("GET", "/admin/audit", audit_log, "operator"),
)
