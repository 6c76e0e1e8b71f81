"""The demo's console users: an operator admin and the demo account's customer admin.

Their passwords are kept across restarts through ``demo-credentials.json``
(the caller passes its ``"console"`` entry back), and a password that no
longer matches, or a lockout from a newcomer's typos, is reset at start.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

from warpd.auth.passwords import hash_password, verify_password
from warpd.console.users import MIN_PASSWORD, Role
from warpd.store.migrate import Conn

ADMIN_USER, CUSTOMER_USER = "admin", "demo"


def _password(known: Mapping[str, Any], field: str) -> str:
    value = known.get(field)
    if isinstance(value, str) and len(value) >= MIN_PASSWORD:
        return value
    return secrets.token_urlsafe(12)


async def _ensure(
    conn: Conn, username: str, password: str, role: Role, account_id: int | None
) -> None:
    stored = await conn.fetchval(
        "SELECT password_hash FROM console_users WHERE username = $1", username
    )
    if stored is not None and await asyncio.to_thread(verify_password, password, stored):
        await conn.execute(
            "UPDATE console_users SET failed_logins = 0, locked_until = NULL WHERE username = $1",
            username,
        )
        return
    await conn.execute(
        "INSERT INTO console_users (username, password_hash, role, account_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO UPDATE"
        " SET password_hash = excluded.password_hash, role = excluded.role,"
        " account_id = excluded.account_id, failed_logins = 0, locked_until = NULL",
        username,
        await asyncio.to_thread(hash_password, password),
        role.value,
        account_id,
    )


async def provision_console(
    conn: Conn, account_id: int, known: Mapping[str, Any]
) -> dict[str, str]:
    """The ``"console"`` entry of demo-credentials.json (its ``url`` is added once HTTP listens)."""
    admin_password = _password(known, "admin_password")
    customer_password = _password(known, "customer_password")
    await _ensure(conn, ADMIN_USER, admin_password, Role.OPERATOR_ADMIN, None)
    await _ensure(conn, CUSTOMER_USER, customer_password, Role.CUSTOMER_ADMIN, account_id)
    return {
        "admin_user": ADMIN_USER,
        "admin_password": admin_password,
        "customer_user": CUSTOMER_USER,
        "customer_password": customer_password,
    }
