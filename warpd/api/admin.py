"""The admin API (``/v1/admin/...``): accounts, money, credentials, connectors, tariffs.

Behind the admin token and address allow-list (:class:`~warpd.api.auth.AdminGate`).
Every change writes the audit log; the routing and billing caches see it on
their next reload, and revoked keys leave this instance's cache at once.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from warpd.api import accounts, audit, catalog, credentials
from warpd.api.auth import SCOPES
from warpd.api.endpoints import MAX_BIGINT, Call, Endpoint, Param, id_param
from warpd.api.keys import DATABASE, KEY_STORE
from warpd.api.ops import json_response
from warpd.api.v1_otp import DEFAULTS, TEMPLATE_COLUMNS

MONEY = {"type": "integer", "minimum": -MAX_BIGINT, "maximum": MAX_BIGINT}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
CIDRS = {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 100}
LIST_PARAMS = (
    Param("after", {"type": "integer", "minimum": 0, "maximum": MAX_BIGINT}, "id cursor"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
    Param("account_id", {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT}),
)


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


async def list_accounts(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await accounts.list_all(
            conn, after=call.params.get("after", 0), limit=call.params.get("limit", 100)
        )
    return json_response({"accounts": rows})


async def create_account(call: Call) -> web.Response:
    b = call.body
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await accounts.create(
            conn,
            call.actor,
            name=b["name"],
            currency=b["currency"],
            credit_limit_micros=b.get("credit_limit_micros", 0),
            rate_plan_id=b.get("rate_plan_id"),
            charge_mode=b.get("charge_mode", "at_acceptance"),
        )
        if b.get("balance_micros"):
            row = (
                await accounts.move_money(
                    conn,
                    call.actor,
                    row["id"],
                    kind="topup",
                    amount_micros=b["balance_micros"],
                    note="opening balance",
                )
            )["account"]
    await call.changed()
    return json_response(row, status=201)


async def show_account(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        return json_response(await accounts.get(conn, call.params["id"]))


async def update_account(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await accounts.update(conn, call.actor, call.params["id"], **call.body)
    await call.changed()
    return json_response(row)


async def topup(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        result = await accounts.move_money(
            conn,
            call.actor,
            call.params["id"],
            kind="topup",
            amount_micros=call.body["amount_micros"],
            note=call.body.get("note", ""),
        )
    await call.changed()
    return json_response(result, status=201)


async def adjust(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        result = await accounts.move_money(
            conn,
            call.actor,
            call.params["id"],
            kind="adjustment",
            amount_micros=call.body["amount_micros"],
            note=call.body["reason"],
        )
    await call.changed()
    return json_response(result, status=201)


async def account_ledger(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        await accounts.get(conn, call.params["id"])
        rows = await accounts.ledger(
            conn,
            call.params["id"],
            after=call.params.get("after", 0),
            limit=call.params.get("limit", 100),
        )
    return json_response({"ledger": rows})


async def list_keys(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        return json_response(
            {"keys": await credentials.list_keys(conn, call.params.get("account_id"))}
        )


async def create_key(call: Call) -> web.Response:
    b = dict(call.body)
    account_id = b.pop("account_id")
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await credentials.create_key(conn, call.actor, account_id, **b)
    return json_response(row, status=201)


async def revoke_key(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await credentials.revoke_key(conn, call.actor, str(call.params["id"]))
    call.app[KEY_STORE].forget(row["prefix"])
    return json_response(row)


async def list_smpp_users(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await credentials.list_smpp_users(conn, call.params.get("account_id"))
    return json_response({"smpp_users": rows})


async def create_smpp_user(call: Call) -> web.Response:
    b = dict(call.body)
    account_id, system_id, password = b.pop("account_id"), b.pop("system_id"), b.pop("password")
    allowed_ips = b.pop("allowed_ips", ())
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await credentials.create_smpp_user(
            conn,
            call.actor,
            account_id,
            system_id=system_id,
            password=password,
            allowed_ips=allowed_ips,
            options=b,
        )
    await call.changed()
    return json_response(row, status=201)


async def update_smpp_user(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await credentials.update_smpp_user(conn, call.actor, call.params["id"], call.body)
    await call.changed()
    return json_response(row)


async def list_plans(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        return json_response({"rate_plans": await catalog.list_plans(conn)})


async def create_plan(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        row = await catalog.create_plan(
            conn, call.actor, name=call.body["name"], currency=call.body["currency"]
        )
    await call.changed()
    return json_response(row, status=201)


async def import_tariffs(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        result = await catalog.import_tariffs(
            conn,
            call.actor,
            call.params["id"],
            call.body["csv"],
            replace=call.body.get("mode", "replace") == "replace",
        )
    await call.changed()
    return json_response(result, status=201)


async def import_costs(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        result = await catalog.import_costs(
            conn, call.actor, call.params["id"], call.body["csv"],
            replace=call.body.get("mode", "replace") == "replace",
        )  # fmt: skip
    await call.changed()
    return json_response(result, status=201)


async def export_costs(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        text = await catalog.export_costs(conn, call.params["id"])
    return web.Response(text=text, content_type="text/csv")


async def export_tariffs(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        text = await catalog.export_tariffs(conn, call.params["id"])
    return web.Response(text=text, content_type="text/csv")


async def set_otp_template(call: Call) -> web.Response:
    account_id = call.params["id"]
    values = {**DEFAULTS, **call.body}
    async with call.app[DATABASE].pool.acquire() as conn, conn.transaction():
        await accounts.get(conn, account_id)
        before = await conn.fetchrow(
            f"SELECT {TEMPLATE_COLUMNS} FROM otp_templates WHERE account_id = $1", account_id
        )
        row = await conn.fetchrow(
            "INSERT INTO otp_templates (account_id, text, source_addr, code_length, lifetime_s,"
            " max_attempts) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE"
            " SET text = $2, source_addr = $3, code_length = $4, lifetime_s = $5,"
            f" max_attempts = $6 RETURNING {TEMPLATE_COLUMNS}",
            account_id, values["text"], values["source_addr"], values["code_length"],
            values["lifetime_s"], values["max_attempts"],
        )  # fmt: skip
        await audit.record(conn, call.actor, "otp_template.set", "account", account_id,
                           before=before, after=row)  # fmt: skip
    return json_response(dict(row) if row else {})


async def audit_log(call: Call) -> web.Response:
    async with call.app[DATABASE].pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, actor, action, object_type, object_id, before, after, at FROM audit_log"
            " WHERE id > $1 ORDER BY id LIMIT $2",
            call.params.get("after", 0),
            call.params.get("limit", 100),
        )
    import orjson

    entries = [
        {
            **dict(r),
            "before": orjson.loads(r["before"]) if r["before"] else None,
            "after": orjson.loads(r["after"]) if r["after"] else None,
        }
        for r in rows
    ]
    return json_response({"entries": entries})


ACCOUNT_ID = {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT}
SMPP_OPTIONS = {
    "allowed_ips": CIDRS,
    "max_binds": {"type": "integer", "minimum": 1, "maximum": 1000},
    "throughput_tps": {"type": "number", "minimum": 0.001, "maximum": 1_000_000},
    "burst": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    "window_size": {"type": "integer", "minimum": 1, "maximum": 10_000},
    "tls_required": {"type": "boolean"},
}
PASSWORD = {"type": "string", "minLength": 1, "maxLength": 8}
CSV_BODY = _obj({"csv": {"type": "string", "minLength": 1},
                 "mode": {"type": "string", "enum": ["replace", "append"]}}, ("csv",))  # fmt: skip
SENDER = {"type": "string", "pattern": "^([+]?[0-9]{1,20}|[ -~]{1,11})$"}
CHARGE_MODE = {
    "type": "string",
    "enum": list(accounts.CHARGE_MODES),
    "description": "at_acceptance: charged when accepted, refunded if it fails;"
    " on_delivery: reserved when accepted, charged when delivered",
}

ENDPOINTS = (
    Endpoint("GET", "/v1/admin/accounts", list_accounts, "List accounts", "admin", "admin",
             params=LIST_PARAMS[:2]),
    Endpoint("POST", "/v1/admin/accounts", create_account, "Create an account", "admin", "admin",
             body=_obj({"name": NAME, "currency": CURRENCY,
                        "credit_limit_micros": {**MONEY, "minimum": 0},
                        "rate_plan_id": ACCOUNT_ID, "charge_mode": CHARGE_MODE,
                        "balance_micros": {**MONEY, "minimum": 0}}, ("name", "currency")),
             status=201),
    Endpoint("GET", "/v1/admin/accounts/{id}", show_account, "Show an account", "admin", "admin",
             params=(id_param(),)),
    Endpoint("PATCH", "/v1/admin/accounts/{id}", update_account,
             "Suspend, reactivate, close, change credit limit, rate plan or charge mode",
             "admin", "admin", params=(id_param(),),
             body=_obj({"status": {"type": "string", "enum": ["active", "suspended", "closed"]},
                        "credit_limit_micros": {**MONEY, "minimum": 0},
                        "rate_plan_id": ACCOUNT_ID, "charge_mode": CHARGE_MODE})),
    Endpoint("POST", "/v1/admin/accounts/{id}/topup", topup, "Top up a balance", "admin", "admin",
             params=(id_param(),), status=201,
             body=_obj({"amount_micros": {**MONEY, "minimum": 1},
                        "note": {"type": "string", "maxLength": 500}}, ("amount_micros",))),
    Endpoint("POST", "/v1/admin/accounts/{id}/adjust", adjust,
             "Adjust a balance (either sign) with a reason", "admin", "admin",
             params=(id_param(),), status=201,
             body=_obj({"amount_micros": MONEY,
                        "reason": {"type": "string", "minLength": 1, "maxLength": 500}},
                       ("amount_micros", "reason"))),
    Endpoint("GET", "/v1/admin/accounts/{id}/ledger", account_ledger, "An account's ledger",
             "admin", "admin", params=(id_param(), *LIST_PARAMS[:2])),
    Endpoint("GET", "/v1/admin/keys", list_keys, "List API keys (never their secrets)", "admin",
             "admin", params=(LIST_PARAMS[2],)),
    Endpoint("POST", "/v1/admin/keys", create_key, "Create an API key (the key is shown once)",
             "admin", "admin", status=201,
             body=_obj({"account_id": ACCOUNT_ID, "name": {"type": "string", "maxLength": 200},
                        "scopes": {"type": "array", "maxItems": 20,
                                   "items": {"type": "string", "enum": list(SCOPES)}},
                        "allowed_ips": CIDRS,
                        "rate_per_s": {"type": "number", "minimum": 0.001,
                                       "maximum": 1_000_000},
                        "burst": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
                       ("account_id",))),
    Endpoint("DELETE", "/v1/admin/keys/{id}", revoke_key, "Revoke an API key", "admin", "admin",
             params=(id_param(),)),
    Endpoint("GET", "/v1/admin/smpp-users", list_smpp_users, "List SMPP users", "admin", "admin",
             params=(LIST_PARAMS[2],)),
    Endpoint("POST", "/v1/admin/smpp-users", create_smpp_user, "Create an SMPP user", "admin",
             "admin", status=201,
             body=_obj({"account_id": ACCOUNT_ID,
                        "system_id": {"type": "string", "pattern": "^[ -~]{1,15}$"},
                        "password": PASSWORD, **SMPP_OPTIONS},
                       ("account_id", "system_id", "password"))),
    Endpoint("PATCH", "/v1/admin/smpp-users/{id}", update_smpp_user,
             "Change an SMPP user's password, allow-list, limits or state", "admin", "admin",
             params=(id_param(),),
             body=_obj({"password": PASSWORD, "enabled": {"type": "boolean"}, **SMPP_OPTIONS})),
    Endpoint("POST", "/v1/admin/connectors/{id}/costs", import_costs,
             "Import a carrier's costs from CSV (prefix,mcc_mnc,cost,currency,quality,valid_from)",
             "admin", "admin", params=(id_param(),), status=201, body=CSV_BODY),
    Endpoint("GET", "/v1/admin/connectors/{id}/costs", export_costs,
             "Export a connector's costs as CSV", "admin", "admin", params=(id_param(),),
             produces=("text/csv",), response={"type": "string"}),
    Endpoint("GET", "/v1/admin/rate-plans", list_plans, "List rate plans", "admin", "admin"),
    Endpoint("POST", "/v1/admin/rate-plans", create_plan, "Create a rate plan", "admin", "admin",
             status=201, body=_obj({"name": NAME, "currency": CURRENCY}, ("name", "currency"))),
    Endpoint("POST", "/v1/admin/rate-plans/{id}/tariffs", import_tariffs,
             "Import tariffs from CSV (prefix,mcc_mnc,price,valid_from)", "admin", "admin",
             params=(id_param(),), status=201, body=CSV_BODY),
    Endpoint("GET", "/v1/admin/rate-plans/{id}/tariffs", export_tariffs, "Export tariffs as CSV",
             "admin", "admin", params=(id_param(),), produces=("text/csv",),
             response={"type": "string"}),
    Endpoint("PUT", "/v1/admin/accounts/{id}/otp-template", set_otp_template,
             "Set an account's one-time code template", "admin", "admin", params=(id_param(),),
             body=_obj({"text": {"type": "string", "minLength": 6, "maxLength": 480,
                                 "pattern": "[{]code[}]"},
                        "source_addr": SENDER,
                        "code_length": {"type": "integer", "minimum": 4, "maximum": 10},
                        "lifetime_s": {"type": "integer", "minimum": 60, "maximum": 86400},
                        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10}})),
    Endpoint("GET", "/v1/admin/audit", audit_log, "The audit log", "admin", "admin",
             params=LIST_PARAMS[:2]),
)  # fmt: skip
