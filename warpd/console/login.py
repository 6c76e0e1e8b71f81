"""Logging in and out of the consoles.

The login form is itself protected from cross-site posting by a double-submit
token (a cookie and a hidden field that must match), since there is no
session yet to hold one. Each address is throttled before any password is
hashed, and the user's own lockout is in :func:`warpd.console.users.authenticate`.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from warpd.api.errors import ApiError
from warpd.api.keys import DATABASE
from warpd.api.ratelimit import retry_after_header
from warpd.console import sessions, users
from warpd.console.app import THROTTLE, Page, Visit, redirect

LOGIN_COOKIE = "warpd_console_login"


def _home(user: users.User) -> str:
    return "/console/admin" if user.role.operator else "/console/"


def _safe_next(target: str) -> str:
    """Only a path on this console: never an open redirect to another site."""
    return target if target.startswith("/console") and not target.startswith("//") else ""


async def login_form(visit: Visit) -> web.StreamResponse:
    if visit.session is not None:
        return redirect(_home(visit.user))
    token = secrets.token_urlsafe(24)
    response = visit.render(
        "login.html", login_token=token, next=_safe_next(visit.request.query.get("next", ""))
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=visit.request.secure,
        path="/console/login",
    )
    return response


async def login(visit: Visit) -> web.StreamResponse:
    request = visit.request
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), visit.field("csrf").encode()):
        raise ApiError(403, "csrf", "the login form expired: reload it")
    wait = request.app[THROTTLE].allow(request.remote or "")
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many logins from this address: wait a moment",
            headers={"Retry-After": retry_after_header(wait)},
        )
    async with request.app[DATABASE].pool.acquire() as conn:
        try:
            user = await users.authenticate(conn, visit.field("username"), visit.field("password"))
        except ApiError as exc:
            return redirect("/console/login", error=exc.message)
        token, _ = await sessions.open_session(conn, user)
    response = redirect(_safe_next(visit.field("next")) or _home(user))
    sessions.set_cookie(response, request, token)
    response.del_cookie(LOGIN_COOKIE, path="/console/login")
    return response


async def logout(visit: Visit) -> web.StreamResponse:
    async with visit.app[DATABASE].pool.acquire() as conn:
        await sessions.close(conn, visit.request.cookies.get(sessions.COOKIE))
    response = redirect("/console/login", notice="logged out")
    sessions.clear_cookie(response)
    return response


PAGES = (
    Page("GET", "/login", login_form, "anyone"),
    Page("POST", "/login", login, "anyone"),
    # A change (it ends the session), so it needs the session's CSRF token like any other.
    Page("POST", "/logout", logout, "customer"),
    Page("POST", "/admin/logout", logout, "operator"),
)
