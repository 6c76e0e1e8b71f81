"""The operator console's catalog and search pages: routes, tariffs, voice, messages, CDRs.

Routes carry the admin API's "what would happen to this number" decision;
a tariff CSV is previewed (rows added, changed, removed) before the same
import endpoint the API has commits it. Trunks, gateways and DIDs are
enabled and disabled here, each change in the audit log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from warpd.api import audit
from warpd.api.errors import ApiError, invalid, not_found
from warpd.api.keys import DATABASE
from warpd.api.tariff_csv import Tariff, TariffError, parse
from warpd.api.v1_account import MESSAGE_STATES, csv_response
from warpd.console import story
from warpd.console.app import Page, Visit, attachment, redirect
from warpd.console.operator import number
from warpd.console.tariff_preview import preview

MT_ROUTES_SQL = """
SELECT r.id, r.priority, a.name AS account, r.prefix, r.mcc_mnc, r.source_regex, r.strategy,
       r.enabled, array_agg(c.name ORDER BY rc.position) FILTER (WHERE c.name IS NOT NULL)
       AS connectors
  FROM mt_routes r LEFT JOIN accounts a ON a.id = r.account_id
  LEFT JOIN mt_route_connectors rc ON rc.route_id = r.id
  LEFT JOIN connectors c ON c.id = rc.connector_id
 GROUP BY r.id, a.name ORDER BY r.priority, r.id
"""
MO_ROUTES_SQL = """
SELECT r.id, r.priority, r.number, r.keyword, a.name AS account, r.deliver_via, r.enabled
  FROM mo_routes r JOIN accounts a ON a.id = r.account_id ORDER BY r.number, r.priority
"""
# The voice tables an operator may switch on and off here, and what the audit log calls them.
VOICE_TABLES = {"trunk": "sip_trunks", "gateway": "carrier_gateways", "did": "dids"}
SEARCH_SQL = """
SELECT m.id, a.name AS account, m.source_addr, m.destination_addr, m.state, m.parts,
       m.price_micros, m.currency, c.name AS connector, m.created_at, m.done_at
  FROM messages m JOIN accounts a ON a.id = m.account_id
  LEFT JOIN connectors c ON c.id = m.connector_id
 WHERE m.created_at >= $1 AND m.created_at < $2
   AND ($3::text = '' OR m.destination_addr = $3 OR m.source_addr = $3)
   AND ($4::text = '' OR m.state = $4)
   AND ($5::bigint IS NULL OR m.account_id = $5)
 ORDER BY m.created_at DESC LIMIT $6
"""
SMS_CDR_COLUMNS = (
    "id",
    "account",
    "source_addr",
    "destination_addr",
    "state",
    "parts",
    "price_micros",
    "currency",
    "connector",
    "created_at",
    "done_at",
)
VOICE_CDR_COLUMNS = (
    "id",
    "account",
    "trunk",
    "gateway",
    "direction",
    "src_e164",
    "dst_e164",
    "start_at",
    "answer_at",
    "end_at",
    "billsec",
    "disposition",
    "sip_code",
    "price_micros",
)
VOICE_CDR_SQL = """
SELECT v.id, a.name AS account, t.name AS trunk, g.name AS gateway, v.direction, v.src_e164,
       v.dst_e164, v.start_at, v.answer_at, v.end_at, v.billsec, v.disposition, v.sip_code,
       v.price_micros
  FROM voice_cdrs v LEFT JOIN accounts a ON a.id = v.account_id
  LEFT JOIN sip_trunks t ON t.id = v.trunk_id LEFT JOIN carrier_gateways g ON g.id = v.gateway_id
 WHERE v.start_at >= $1 AND v.start_at < $2
   AND ($3::text = '' OR v.dst_e164 = $3 OR v.src_e164 = $3)
 ORDER BY v.start_at DESC LIMIT $4
"""


def window(visit: Visit) -> tuple[dt.datetime, dt.datetime]:
    """The search window from ``from``/``to`` (dates or times, UTC); the last day by default."""
    now = dt.datetime.now(dt.UTC)

    def when(name: str, default: dt.datetime) -> dt.datetime:
        text = visit.request.query.get(name, "").strip()
        if not text:
            return default
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise invalid(f"{name}: a date or time like 2026-12-02T10:00") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    end = when("to", now + dt.timedelta(minutes=1))
    return when("from", end - dt.timedelta(days=1)), end


async def routes(visit: Visit) -> web.StreamResponse:
    query = visit.request.query
    decision: Any = None
    if query.get("destination"):
        decision = await visit.api(
            "POST",
            "/v1/admin/route/decision",
            body={
                "account_id": number(visit, "account_id"),
                "destination": query["destination"].strip(),
                "source": query.get("source", ""),
            },
        )
    accounts = await visit.query("SELECT id, name FROM accounts ORDER BY name")
    return visit.render(
        "admin/routes.html",
        mt=await visit.query(MT_ROUTES_SQL),
        mo=await visit.query(MO_ROUTES_SQL),
        decision=decision,
        accounts=accounts,
        query=query,
    )


async def plans(visit: Visit) -> web.StreamResponse:
    listed = await visit.api("GET", "/v1/admin/rate-plans")
    return visit.render("admin/plans.html", plans=listed["rate_plans"])


async def create_plan(visit: Visit) -> web.StreamResponse:
    row = await visit.api(
        "POST",
        "/v1/admin/rate-plans",
        body={"name": visit.field("name"), "currency": visit.field("currency")},
    )
    return redirect(f"/console/admin/rate-plans/{row['id']}", notice="rate plan created")


async def _tariffs(visit: Visit, plan_id: int) -> list[Tariff]:
    rows = await visit.query(
        "SELECT prefix, mcc_mnc, price_micros, CASE WHEN isfinite(valid_from) THEN valid_from"
        " END AS valid_from FROM sms_rates WHERE rate_plan_id = $1"
        " ORDER BY prefix, mcc_mnc NULLS FIRST, valid_from",
        plan_id,
    )
    return [Tariff(r["prefix"], r["mcc_mnc"], r["price_micros"], r["valid_from"]) for r in rows]


async def plan(visit: Visit, **extra: Any) -> web.Response:
    plan_id = number(visit, "id")
    rows = await visit.query("SELECT id, name, currency FROM rate_plans WHERE id = $1", plan_id)
    if not rows:
        raise not_found(f"rate plan {plan_id}")
    return visit.render(
        "admin/plan.html",
        plan=rows[0],
        tariffs=await _tariffs(visit, plan_id),
        **{"preview": None, "csv": "", "mode": "replace", **extra},
    )


async def show_plan(visit: Visit) -> web.StreamResponse:
    return await plan(visit)


async def import_tariffs(visit: Visit) -> web.StreamResponse:
    """``step=preview`` shows what the CSV changes; ``step=import`` commits it."""
    plan_id, text, mode = number(visit, "id"), visit.field("csv"), visit.field("mode", "replace")
    if visit.field("step") == "import":
        done = await visit.api(
            "POST",
            "/v1/admin/rate-plans/{id}/tariffs",
            params={"id": plan_id},
            body={"csv": text + "\n", "mode": mode},
        )
        return redirect(
            f"/console/admin/rate-plans/{plan_id}",
            notice=f"imported {done['imported']}, removed {done['removed']}",
        )
    try:
        incoming = parse(text)
    except TariffError as exc:
        raise ApiError(400, "invalid_csv", str(exc)) from None
    changes = preview(await _tariffs(visit, plan_id), incoming, replace=mode == "replace")
    return await plan(visit, preview=changes, csv=text, mode=mode)


async def export_tariffs(visit: Visit) -> web.StreamResponse:
    response: web.Response = await visit.api(
        "GET", "/v1/admin/rate-plans/{id}/tariffs", params={"id": number(visit, "id")}
    )
    return attachment(response, "tariffs.csv")


async def voice(visit: Visit) -> web.StreamResponse:
    return visit.render(
        "admin/voice.html",
        trunks=await visit.query(
            "SELECT t.id, t.name, a.name AS account, t.auth_mode, t.allowed_ips::text[] AS ips,"
            " t.max_channels, t.max_cps::float8 AS max_cps, t.enabled FROM sip_trunks t"
            " JOIN accounts a ON a.id = t.account_id ORDER BY t.id"
        ),
        gateways=await visit.query(
            "SELECT id, name, host, port, transport, max_channels, enabled FROM carrier_gateways"
            " ORDER BY id"
        ),
        dids=await visit.query(
            "SELECT d.id, d.number, a.name AS account, t.name AS trunk, d.sms_enabled, d.enabled"
            " FROM dids d JOIN accounts a ON a.id = d.account_id"
            " LEFT JOIN sip_trunks t ON t.id = d.trunk_id ORDER BY d.number"
        ),
    )


async def set_voice(visit: Visit) -> web.StreamResponse:
    kind, ident = visit.request.match_info["kind"], number(visit, "id")
    enabled = visit.request.match_info["action"] == "enable"
    table = VOICE_TABLES[kind]
    async with visit.app[DATABASE].pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 FOR UPDATE", ident)
        if before is None:
            raise not_found(f"{kind} {ident}")
        after = await conn.fetchrow(
            f"UPDATE {table} SET enabled = $2 WHERE id = $1 RETURNING *", ident, enabled
        )
        hidden = {
            "password",
            "ha1_md5",
            "ha1_sha256",
            "ha1_sha512_256",
        }  # secrets never enter the audit log
        await audit.record(
            conn,
            visit.user.actor,
            f"{kind}.{'enable' if enabled else 'disable'}",
            kind,
            ident,
            before={k: v for k, v in dict(before).items() if k not in hidden},
            after={k: v for k, v in dict(after or {}).items() if k not in hidden},
        )
    return redirect(
        "/console/admin/voice", notice=f"{kind} {ident} {'en' if enabled else 'dis'}abled"
    )


async def messages(visit: Visit) -> web.StreamResponse:
    query = visit.request.query
    wanted = query.get("q", "").strip()
    if len(wanted) == 36 and wanted.count("-") == 4:
        return redirect(f"/console/admin/messages/{wanted}")
    state = query.get("state", "")
    if state and state not in MESSAGE_STATES:
        raise invalid(f"state: one of {', '.join(MESSAGE_STATES)}")
    start, end = window(visit)
    account = number(visit, "account_id") if query.get("account_id") else None
    limit = 100_000 if query.get("format") == "csv" else 200
    rows = await visit.query(SEARCH_SQL, start, end, wanted.lstrip("+"), state, account, limit)
    if query.get("format") == "csv":
        return attachment(csv_response(SMS_CDR_COLUMNS, rows), "sms-cdrs.csv")
    return visit.render(
        "admin/messages.html",
        messages=rows,
        states=MESSAGE_STATES,
        query=query,
        accounts=await visit.query("SELECT id, name FROM accounts ORDER BY name"),
    )


async def message(visit: Visit) -> web.StreamResponse:
    async with visit.app[DATABASE].pool.acquire() as conn:
        found = await story.load(conn, visit.request.match_info["id"], None)
    return visit.render("message.html", story=found, base="/console/admin")


async def cdrs(visit: Visit) -> web.StreamResponse:
    start, end = window(visit)
    wanted = visit.request.query.get("q", "").strip().lstrip("+")
    if visit.request.query.get("format") == "csv":
        rows = await visit.query(VOICE_CDR_SQL, start, end, wanted, 100_000)
        return attachment(csv_response(VOICE_CDR_COLUMNS, rows), "voice-cdrs.csv")
    rows = await visit.query(VOICE_CDR_SQL, start, end, wanted, 200)
    return visit.render("admin/cdrs.html", cdrs=rows, query=visit.request.query)


PAGES = (
    Page("GET", "/admin/routes", routes, "operator"),
    Page("GET", "/admin/rate-plans", plans, "operator"),
    Page("POST", "/admin/rate-plans", create_plan, "operator"),
    Page("GET", "/admin/rate-plans/{id}", show_plan, "operator"),
    Page("POST", "/admin/rate-plans/{id}/tariffs", import_tariffs, "operator"),
    Page("GET", "/admin/rate-plans/{id}/tariffs.csv", export_tariffs, "operator"),
    Page("GET", "/admin/voice", voice, "operator"),
    Page(
        "POST",
        "/admin/voice/{kind:trunk|gateway|did}/{id}/{action:enable|disable}",
        set_voice,
        "operator",
    ),
    Page("GET", "/admin/messages", messages, "operator"),
    Page("GET", "/admin/messages/{id}", message, "operator"),
    Page("GET", "/admin/cdrs", cdrs, "operator"),
)
