"""Console users: who may log in, with which role, and the lockout after failed logins.

Passwords are the same scrypt strings as SMPP users' (:mod:`warpd.auth.passwords`),
checked in a thread so a login never stalls the loop (~40 ms of CPU each).
Five wrong passwords in a row lock a user for 15 minutes, whatever address
they come from; the address throttle (:class:`LoginThrottle`) bounds how
fast any one client may guess across users. An unknown user costs the same
hash as a known one, so timing does not say which usernames exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import asyncpg

from warpd.api import audit
from warpd.api.errors import ApiError, invalid
from warpd.api.ratelimit import Bucket, take
from warpd.auth.passwords import hash_password, verify_password
from warpd.store.migrate import Conn

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
# Per client address: 20 attempts at once, then one a second (the lockout is per user).
THROTTLE_RATE, THROTTLE_BURST = 1.0, 20
_THROTTLE_MAX = 10_000
USER_COLUMNS = "id, username, role, account_id, enabled, locked_until, created_at, last_login_at"


class Role(Enum):
    OPERATOR_ADMIN = "operator_admin"
    OPERATOR_READONLY = "operator_readonly"
    CUSTOMER_ADMIN = "customer_admin"
    CUSTOMER_DEVELOPER = "customer_developer"

    @property
    def operator(self) -> bool:
        return self in (Role.OPERATOR_ADMIN, Role.OPERATOR_READONLY)

    @property
    def may_change(self) -> bool:
        return self is not Role.OPERATOR_READONLY


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    account_id: int | None

    @property
    def actor(self) -> str:
        """The audit log's name for this user's changes."""
        return f"console:{self.username}"


@dataclass(frozen=True, slots=True)
class Lock:
    failed: int
    until: dt.datetime | None


def after_failure(failed: int, now: dt.datetime) -> Lock:
    """The next lock state after one more wrong password."""
    failed += 1
    return Lock(failed, now + LOCKOUT if failed >= MAX_FAILURES else None)


def locked(until: dt.datetime | None, now: dt.datetime) -> bool:
    return until is not None and until > now


class LoginThrottle:
    """A token bucket per client address (monotonic time, memory bounded)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def allow(self, remote: str) -> float:
        """0.0 when this address may try now, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(remote) or Bucket.full(THROTTLE_RATE, THROTTLE_BURST, now)
        bucket, wait = take(bucket, now)
        if len(self._buckets) >= _THROTTLE_MAX:
            self._buckets.clear()
        self._buckets[remote] = bucket
        return wait


@functools.cache
def _dummy_hash() -> str:
    """A real hash to check unknown usernames against, so they take as long as known ones."""
    return hash_password("not-a-user-password")


async def authenticate(conn: Conn, username: str, password: str) -> User:
    """The user, or ApiError 401 (wrong or unknown) / 423 (locked)."""
    row = await conn.fetchrow(
        "SELECT id, username, role, account_id, enabled, password_hash, failed_logins,"
        " locked_until FROM console_users WHERE username = $1",
        username,
    )
    stored = row["password_hash"] if row is not None else await asyncio.to_thread(_dummy_hash)
    good = await asyncio.to_thread(verify_password, password, stored)
    now = dt.datetime.now(dt.UTC)
    if row is not None and locked(row["locked_until"], now):
        raise ApiError(423, "locked", "too many failed logins: try again later")
    if row is None or not row["enabled"] or not good:
        if row is not None:
            lock = after_failure(row["failed_logins"], now)
            await conn.execute(
                "UPDATE console_users SET failed_logins = $2, locked_until = $3 WHERE id = $1",
                row["id"],
                lock.failed,
                lock.until,
            )
            if lock.until is not None:
                await audit.record(
                    conn, f"console:{username}", "console_user.locked", "console_user", row["id"]
                )
        raise ApiError(401, "unauthorized", "wrong username or password")
    await conn.execute(
        "UPDATE console_users SET failed_logins = 0, locked_until = NULL,"
        " last_login_at = now() WHERE id = $1",
        row["id"],
    )
    return User(row["id"], row["username"], Role(row["role"]), row["account_id"])


async def create(
    conn: Conn, actor: str, *, username: str, password: str, role: Role, account_id: int | None
) -> dict[str, Any]:
    if len(password) < MIN_PASSWORD:
        raise invalid(f"a console password has at least {MIN_PASSWORD} characters")
    if role.operator != (account_id is None):
        raise invalid("operators have no account; customer users need one")
    digest = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO console_users (username, password_hash, role, account_id)"
                f" VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}",
                username,
                digest,
                role.value,
                account_id,
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a console user named {username!r} exists") from None
        except asyncpg.CheckViolationError:
            raise invalid("a username is 1-64 letters, digits and ._@-") from None
        assert row is not None
        await audit.record(conn, actor, "console_user.create", "console_user", row["id"], after=row)
    return dict(row)


async def set_password(conn: Conn, actor: str, username: str, password: str) -> None:
    """Set (or reset) a user's password and lift any lockout; the demo keeps its own."""
    digest = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        user_id = await conn.fetchval(
            "UPDATE console_users SET password_hash = $2, failed_logins = 0, locked_until = NULL"
            " WHERE username = $1 RETURNING id",
            username,
            digest,
        )
        if user_id is None:
            raise ApiError(404, "not_found", f"console user {username} not found")
        await audit.record(conn, actor, "console_user.password", "console_user", user_id)


async def list_all(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT u.{USER_COLUMNS.replace(', ', ', u.')}, a.name AS account FROM console_users u"
        " LEFT JOIN accounts a ON a.id = u.account_id ORDER BY u.id"
    )
    return [dict(r) for r in rows]
