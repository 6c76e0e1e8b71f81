"""Accounts and their money, shared by the admin API and the CLI.

A balance moves only by a ledger row (the v1 schema's trigger keeps
``accounts.balance_micros`` equal to the ledger's sum); every change here also
writes an audit row in the same transaction, so the log and the change
commit or fail together.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from warpd.api import audit
from warpd.api.errors import ApiError, not_found
from warpd.store.migrate import Conn

ACCOUNT_COLUMNS = (
    "id, name, currency, balance_micros, credit_limit_micros, reserved_micros, charge_mode,"
    " rate_plan_id, status, created_at, updated_at"
)
#: When a message is paid for: charged when accepted (refunded if it fails), or
#: reserved when accepted and charged once delivered (released if it fails).
CHARGE_MODES = ("at_acceptance", "on_delivery")
MONEY_KINDS = ("topup", "adjustment")


async def get(conn: Conn, account_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1", account_id)
    if row is None:
        raise not_found(f"account {account_id}")
    return dict(row)


async def find(conn: Conn, ref: str) -> dict[str, Any]:
    """By id (digits) or by name: what the CLI accepts."""
    if ref.isdigit():
        return await get(conn, int(ref))
    row = await conn.fetchrow(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1", ref)
    if row is None:
        raise not_found(f"account {ref!r}")
    return dict(row)


async def list_all(conn: Conn, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > $1 ORDER BY id LIMIT $2", after, limit
    )
    return [dict(r) for r in rows]


async def create(
    conn: Conn,
    actor: str,
    *,
    name: str,
    currency: str,
    credit_limit_micros: int = 0,
    rate_plan_id: int | None = None,
    charge_mode: str = "at_acceptance",
) -> dict[str, Any]:
    async with conn.transaction():
        if rate_plan_id is not None:
            await _plan_currency_matches(conn, rate_plan_id, currency)
        try:
            row = await conn.fetchrow(
                "INSERT INTO accounts (name, currency, credit_limit_micros, rate_plan_id,"
                f" charge_mode) VALUES ($1, $2, $3, $4, $5) RETURNING {ACCOUNT_COLUMNS}",
                name,
                currency,
                credit_limit_micros,
                rate_plan_id,
                charge_mode,
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"an account named {name!r} exists") from None
        assert row is not None
        await audit.record(conn, actor, "account.create", "account", row["id"], after=row)
    return dict(row)


async def update(
    conn: Conn,
    actor: str,
    account_id: int,
    *,
    status: str | None = None,
    credit_limit_micros: int | None = None,
    rate_plan_id: int | None = None,
    charge_mode: str | None = None,
) -> dict[str, Any]:
    """A new mode applies to messages accepted from now on; each message already
    accepted is settled the way it was paid for (its reservation says which)."""
    async with conn.transaction():
        before = await locked(conn, account_id)
        if rate_plan_id is not None:
            await _plan_currency_matches(conn, rate_plan_id, before["currency"])
        row = await conn.fetchrow(
            "UPDATE accounts SET status = coalesce($2, status),"
            " credit_limit_micros = coalesce($3, credit_limit_micros),"
            " rate_plan_id = coalesce($4, rate_plan_id),"
            " charge_mode = coalesce($5, charge_mode), updated_at = now()"
            f" WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}",
            account_id,
            status,
            credit_limit_micros,
            rate_plan_id,
            charge_mode,
        )
        assert row is not None
        await audit.record(
            conn, actor, "account.update", "account", account_id, before=before, after=row
        )
    return dict(row)


async def move_money(
    conn: Conn, actor: str, account_id: int, *, kind: str, amount_micros: int, note: str
) -> dict[str, Any]:
    """A top-up (positive) or an adjustment (either sign, with a reason) as one ledger row."""
    if kind not in MONEY_KINDS:
        raise ApiError(400, "invalid_request", f"kind must be one of {MONEY_KINDS}")
    if amount_micros == 0 or (kind == "topup" and amount_micros < 0):
        raise ApiError(400, "invalid_amount", "a top-up is positive; an adjustment is not zero")
    async with conn.transaction():
        before = await locked(conn, account_id)
        entry = await conn.fetchrow(
            "INSERT INTO ledger (account_id, amount_micros, kind, note) VALUES ($1, $2, $3, $4)"
            " RETURNING id, account_id, amount_micros, kind, note, created_at",
            account_id,
            amount_micros,
            kind,
            note,
        )
        assert entry is not None
        after = await get(conn, account_id)
        await audit.record(
            conn, actor, f"account.{kind}", "account", account_id, before=before, after=after
        )
    return {"ledger": dict(entry), "account": after}


async def ledger(
    conn: Conn, account_id: int, *, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, amount_micros, kind, message_id, call_id, note, created_at FROM ledger"
        " WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        account_id,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def locked(conn: Conn, account_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 FOR UPDATE", account_id
    )
    if row is None:
        raise not_found(f"account {account_id}")
    return dict(row)


async def _plan_currency_matches(conn: Conn, rate_plan_id: int, currency: str) -> None:
    plan_currency = await conn.fetchval(
        "SELECT currency FROM rate_plans WHERE id = $1", rate_plan_id
    )
    if plan_currency is None:
        raise not_found(f"rate plan {rate_plan_id}")
    if plan_currency != currency:
        raise ApiError(
            409, "currency_mismatch", f"rate plan is in {plan_currency}, the account in {currency}"
        )
