"""Connectors, rate plans and tariffs, shared by the admin API and the CLI.

Changes reach the routing and billing caches on their next reload
(``[sms] reload_interval``), without a restart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from warpd.api import audit
from warpd.api.errors import ApiError, invalid, not_found
from warpd.api.tariff_csv import (
    Cost,
    Tariff,
    TariffError,
    parse,
    parse_costs,
    render,
    render_costs,
)
from warpd.store.migrate import Conn

CONNECTOR_COLUMNS = (
    "id, name, host, port, tls, system_id, system_type, bind_type, binds, window_size,"
    " tps::float8 AS tps, split_mode, dlr_id_format, enabled, created_at"
)
PLAN_COLUMNS = "id, name, currency, created_at"


async def list_connectors(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {CONNECTOR_COLUMNS} FROM connectors ORDER BY id")
    return [dict(r) for r in rows]


async def find_connector(conn: Conn, ref: str) -> dict[str, Any]:
    column = "id" if ref.isdigit() else "name"
    value: object = int(ref) if ref.isdigit() else ref
    row = await conn.fetchrow(
        f"SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE {column} = $1", value
    )
    if row is None:
        raise not_found(f"connector {ref}")
    return dict(row)


async def set_connector_enabled(
    conn: Conn, actor: str, connector_id: int, enabled: bool
) -> dict[str, Any]:
    async with conn.transaction():
        before = await conn.fetchrow(
            f"SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = $1 FOR UPDATE", connector_id
        )
        if before is None:
            raise not_found(f"connector {connector_id}")
        row = await conn.fetchrow(
            f"UPDATE connectors SET enabled = $2 WHERE id = $1 RETURNING {CONNECTOR_COLUMNS}",
            connector_id,
            enabled,
        )
        action = "connector.enable" if enabled else "connector.disable"
        await audit.record(conn, actor, action, "connector", connector_id, before=before, after=row)
    assert row is not None
    return dict(row)


async def create_plan(conn: Conn, actor: str, *, name: str, currency: str) -> dict[str, Any]:
    async with conn.transaction():
        try:
            row = await conn.fetchrow(
                f"INSERT INTO rate_plans (name, currency) VALUES ($1, $2) RETURNING {PLAN_COLUMNS}",
                name,
                currency,
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a rate plan named {name!r} exists") from None
        assert row is not None
        await audit.record(conn, actor, "rate_plan.create", "rate_plan", row["id"], after=row)
    return dict(row)


async def list_plans(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(f"SELECT {PLAN_COLUMNS} FROM rate_plans ORDER BY id")]


async def find_plan(conn: Conn, ref: str) -> dict[str, Any]:
    column = "id" if ref.isdigit() else "name"
    value: object = int(ref) if ref.isdigit() else ref
    row = await conn.fetchrow(f"SELECT {PLAN_COLUMNS} FROM rate_plans WHERE {column} = $1", value)
    if row is None:
        raise not_found(f"rate plan {ref}")
    return dict(row)


async def import_tariffs(
    conn: Conn, actor: str, plan_id: int, text: str, *, replace: bool = True
) -> dict[str, Any]:
    """Load a CSV into a plan in one transaction: all rows or none.

    ``replace`` swaps the plan's whole table (what an operator's price list
    means); otherwise rows are added beside the existing ones.
    """
    try:
        tariffs = parse(text)
    except TariffError as exc:
        raise ApiError(400, "invalid_csv", str(exc)) from None
    async with conn.transaction():
        plan = await conn.fetchrow(
            f"SELECT {PLAN_COLUMNS} FROM rate_plans WHERE id = $1 FOR UPDATE", plan_id
        )
        if plan is None:
            raise not_found(f"rate plan {plan_id}")
        removed = 0
        if replace:
            status = await conn.execute("DELETE FROM sms_rates WHERE rate_plan_id = $1", plan_id)
            removed = int(status.split()[-1])
        await conn.copy_records_to_table(
            "sms_rates",
            records=[
                (plan_id, t.prefix, t.mcc_mnc, t.price_micros, t.valid_from or _FOREVER_AGO)
                for t in tariffs
            ],
            columns=("rate_plan_id", "prefix", "mcc_mnc", "price_micros", "valid_from"),
        )
        summary = {
            "rate_plan_id": plan_id,
            "imported": len(tariffs),
            "removed": removed,
            "replace": replace,
        }
        await audit.record(conn, actor, "tariff.import", "rate_plan", plan_id, after=summary)
    return summary


async def export_tariffs(conn: Conn, plan_id: int) -> str:
    await find_plan(conn, str(plan_id))
    rows = await conn.fetch(
        "SELECT prefix, mcc_mnc, price_micros, valid_from, isfinite(valid_from) AS bounded"
        " FROM sms_rates WHERE rate_plan_id = $1 ORDER BY prefix, mcc_mnc NULLS FIRST, valid_from",
        plan_id,
    )
    return render(
        Tariff(
            r["prefix"], r["mcc_mnc"], r["price_micros"], r["valid_from"] if r["bounded"] else None
        )
        for r in rows
    )


async def import_costs(
    conn: Conn, actor: str, connector_id: int, text: str, *, replace: bool = True
) -> dict[str, Any]:
    """A carrier's price list into ``sms_costs`` for one connector, all rows or none."""
    try:
        costs = parse_costs(text)
    except TariffError as exc:
        raise ApiError(400, "invalid_csv", str(exc)) from None
    async with conn.transaction():
        locked = await conn.fetchval(
            "SELECT id FROM connectors WHERE id = $1 FOR UPDATE", connector_id
        )
        if locked is None:
            raise not_found(f"connector {connector_id}")
        removed = 0
        if replace:
            status = await conn.execute("DELETE FROM sms_costs WHERE connector_id = $1",
                                        connector_id)  # fmt: skip
            removed = int(status.split()[-1])
        await conn.copy_records_to_table(
            "sms_costs",
            records=[
                (
                    connector_id,
                    c.prefix,
                    c.mcc_mnc,
                    c.cost_micros,
                    c.currency,
                    c.quality,
                    c.valid_from or _FOREVER_AGO,
                )
                for c in costs
            ],
            columns=(
                "connector_id",
                "prefix",
                "mcc_mnc",
                "cost_micros",
                "currency",
                "quality",
                "valid_from",
            ),
        )
        summary = {"connector_id": connector_id, "imported": len(costs), "removed": removed,
                   "replace": replace}  # fmt: skip
        await audit.record(conn, actor, "cost.import", "connector", connector_id, after=summary)
    return summary


async def export_costs(conn: Conn, connector_id: int) -> str:
    await find_connector(conn, str(connector_id))
    rows = await conn.fetch(
        "SELECT prefix, mcc_mnc, cost_micros, currency, quality, valid_from,"
        " isfinite(valid_from) AS bounded FROM sms_costs WHERE connector_id = $1"
        " ORDER BY prefix, mcc_mnc NULLS FIRST, valid_from",
        connector_id,
    )
    return render_costs(
        Cost(r["prefix"], r["mcc_mnc"], r["cost_micros"], r["currency"], r["quality"],
             r["valid_from"] if r["bounded"] else None)
        for r in rows
    )  # fmt: skip


def check_currency(currency: str) -> str:
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise invalid("currency must be an ISO 4217 code such as EUR")
    return currency


# asyncpg maps PostgreSQL's -infinity to datetime.min; the column's default.
_FOREVER_AGO = dt.datetime.min.replace(tzinfo=dt.UTC)
