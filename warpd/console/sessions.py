"""Console sessions: an opaque cookie, its SHA-256 in PostgreSQL, a CSRF token beside it.

The cookie is HttpOnly (scripts cannot read it), SameSite=Strict (other sites'
pages cannot send it) and Secure when the request came over TLS. Every change
also carries the session's CSRF token in its form, compared in constant time,
so a forged form is refused even by a browser that ignores SameSite.
Sessions live in the database so any instance behind a balancer knows them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

from warpd.console.users import Role, User
from warpd.store.migrate import Conn

COOKIE = "warpd_console"
LIFETIME = dt.timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf_token.encode())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


async def open_session(conn: Conn, user: User) -> tuple[str, Session]:
    """A new session for ``user``: the cookie value and the session."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO console_sessions (token_sha256, user_id, csrf_token, expires_at)"
        " VALUES ($1, $2, $3, now() + $4::interval)",
        _digest(token),
        user.id,
        csrf,
        LIFETIME,
    )
    # Expired sessions of anyone leave with each login: few rows, no sweeper task.
    await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
    return token, Session(user, csrf)


async def find(conn: Conn, token: str | None) -> Session | None:
    if not token:
        return None
    row = await conn.fetchrow(
        "SELECT u.id, u.username, u.role, u.account_id, s.csrf_token FROM console_sessions s"
        " JOIN console_users u ON u.id = s.user_id"
        " WHERE s.token_sha256 = $1 AND s.expires_at > now() AND u.enabled",
        _digest(token),
    )
    if row is None:
        return None
    user = User(row["id"], row["username"], Role(row["role"]), row["account_id"])
    return Session(user, row["csrf_token"])


async def close(conn: Conn, token: str | None) -> None:
    if token:
        await conn.execute("DELETE FROM console_sessions WHERE token_sha256 = $1", _digest(token))


def set_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/console",
        max_age=int(LIFETIME.total_seconds()),
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/console")
