"""The consoles' aiohttp sub-app: sessions, roles, CSRF, and calls into the API's route table.

Mounted at ``/console`` inside the API app, so one process serves both. Each
:class:`Page` says who may see it (operators, customers, anyone); the
middleware finds the session, sends strangers to the login form, refuses a
change from a read-only operator and any POST without its session's CSRF
token. Pages change nothing themselves: :meth:`Visit.api` runs the same
endpoint record the HTTP API mounts (its schema check, then its handler),
with the console user as the audit log's actor, and a customer's calls run
on that user's own account, never one taken from the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import jinja2
import orjson
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from yarl import URL

from warpd.api.endpoints import Call, Endpoint, _convert
from warpd.api.errors import ApiError
from warpd.api.keys import DATABASE
from warpd.api.validate import body_deadline
from warpd.console import sessions
from warpd.console.live import close_streams, live_ctx
from warpd.console.sessions import Session
from warpd.console.users import LoginThrottle, User

Audience = Literal["operator", "customer", "anyone"]
PageHandler = Callable[["Visit"], Awaitable[web.StreamResponse]]
STATIC = Path(__file__).parent / "static"
SESSION = web.AppKey("console_session", Session)

TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
API = web.AppKey("console_api", dict)
THROTTLE = web.AppKey("console_throttle", LoginThrottle)


@dataclass(frozen=True, slots=True)
class Page:
    method: str
    path: str
    handler: PageHandler
    audience: Audience


@dataclass(frozen=True, slots=True)
class ConsoleCall(Call):
    """An API call made for a console user: a customer's account is the user's own."""

    account: int | None = None

    @property
    def account_id(self) -> int:
        assert self.account is not None, "only a customer's console call has an account"
        return self.account


@dataclass(frozen=True, slots=True)
class Visit:
    request: web.Request
    session: Session | None
    form: MultiDictProxy[str | bytes | Any]

    @property
    def user(self) -> User:
        assert self.session is not None, "a logged-in page always has a session"
        return self.session.user

    @property
    def app(self) -> web.Application:
        return self.request.app

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def render(self, page: str, status: int = 200, **context: Any) -> web.Response:
        env = self.app[TEMPLATES]
        html = env.get_template(page).render(
            session=self.session,
            user=self.session.user if self.session else None,
            notice=self.request.query.get("notice", ""),
            error=self.request.query.get("error", ""),
            path=self.request.path,
            **context,
        )
        return web.Response(
            text=html, status=status, content_type="text/html", headers=_SECURITY_HEADERS
        )

    async def api(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Run the API endpoint ``method path`` as this user; its JSON answer (or the response
        itself when it is not JSON). Raises ApiError as the API would answer."""
        endpoint: Endpoint = self.app[API][(method, path)]
        checked = {
            p.name: _convert(p, str(params[p.name]))
            for p in endpoint.params
            if params is not None and params.get(p.name) not in (None, "")
        }
        if endpoint.body is not None:
            from warpd.api.validate import check

            check(endpoint.body, body)
        account = self.user.account_id if not self.user.role.operator else None
        call = ConsoleCall(self.request, None, self.user.actor, body, checked, account=account)
        response = await endpoint.handler(call)
        if isinstance(response, web.Response) and response.content_type == "application/json":
            assert isinstance(response.body, bytes)
            return orjson.loads(response.body)
        return response

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.app[DATABASE].pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql, *args)]


_SECURITY_HEADERS = {
    # Scripts and styles only from this package's static files; no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def redirect(location: str, **query: str) -> web.Response:
    target = f"{location}?{urlencode(query)}" if query else location
    return web.Response(status=303, headers={"Location": target})


def attachment(response: web.Response, filename: str) -> web.Response:
    """A CSV answer the browser saves rather than shows."""
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response


def _back(request: web.Request) -> str:
    """Where a refused change returns to: the page it came from, if on this console."""
    referer = URL(request.headers.get("Referer", ""))
    if referer.path.startswith("/console") and referer.host in (None, request.url.host):
        return referer.path
    return "/console/"


async def _session(request: web.Request) -> Session | None:
    async with request.app[DATABASE].pool.acquire() as conn:
        return await sessions.find(conn, request.cookies.get(sessions.COOKIE))


def _wrap(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        session = await _session(request)
        if page.audience != "anyone":
            if session is None:
                return redirect("/console/login", next=request.path_qs)
            if page.audience == "operator" and not session.user.role.operator:
                raise ApiError(403, "forbidden", "the operator console is for operators")
            if page.audience == "customer" and session.user.role.operator:
                return redirect("/console/admin")
        async with body_deadline(request):
            form = await request.post()
        if request.method == "POST" and page.audience != "anyone":
            assert session is not None
            sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
            if not session.csrf_ok(sent if isinstance(sent, str) else None):
                raise ApiError(403, "csrf", "this form's CSRF token is missing or wrong: reload")
            if not session.user.role.may_change:
                raise ApiError(403, "read_only", "a read-only operator cannot change anything")
        visit = Visit(request, session, form)
        try:
            return await page.handler(visit)
        except ApiError as exc:
            if request.method == "POST" and exc.code not in ("csrf", "read_only"):
                return redirect(_back(request), error=exc.message)
            raise

    handle.__name__ = page.handler.__name__
    return handle


@web.middleware
async def error_pages(request: web.Request, handler: Any) -> web.StreamResponse:
    """Errors as HTML pages for people, with the API's status (and its message)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        status, message = exc.status, exc.message
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.reason
    session = await _session(request)
    visit = Visit(request, session, MultiDictProxy(MultiDict()))
    return visit.render("error.html", status=status, status_code=status, message=message)


def _money(micros: int | None) -> str:
    """Micro-units as a decimal string in major units, exactly (no float)."""
    if micros is None:
        return ""
    sign, whole = ("-" if micros < 0 else ""), abs(micros)
    return f"{sign}{whole // 1_000_000}.{whole % 1_000_000:06d}".rstrip("0").rstrip(".") or "0"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("warpd.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = _money
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    return env


def make_console(api: web.Application, routes: Sequence[Endpoint], pages: Sequence[Page]) -> None:
    """Mount the consoles at ``/console`` inside ``api``; the sub-app shares its keys."""
    console = web.Application(middlewares=[error_pages])
    for key in list(api):
        if isinstance(key, web.AppKey):
            console[key] = api[key]
    console[TEMPLATES] = templates()
    console[API] = {(e.method, e.path): e for e in routes}
    console[THROTTLE] = LoginThrottle()
    for page in pages:
        console.router.add_route(page.method, page.path, _wrap(page))
    console.router.add_static("/static", STATIC, append_version=True)
    console.cleanup_ctx.append(live_ctx)
    console.on_shutdown.append(close_streams)
    api.add_subapp("/console", console)
    api.router.add_get("/console", _go_console)


async def _go_console(_: web.Request) -> web.Response:
    return redirect("/console/")
