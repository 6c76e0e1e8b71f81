"""The HTTP server inside the daemon (aiohttp AppRunner/TCPSite).

Every error leaves as JSON (``{"code": ..., "message": ...}``) with its status,
so API clients never parse an HTML error page, and every request is counted.
Bad input is always a 4xx: a database constraint that still trips after the
schema checks is a 409, an unreachable database a 503, and only a bug is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from warpd import console
from warpd.api import (
    admin,
    admin_connectors,
    admin_routing,
    charges,
    openapi,
    ops,
    v1_account,
    v1_events,
    v1_otp,
    v1_sms,
    v1_webhooks,
)
from warpd.api.auth import AdminGate, KeyStore
from warpd.api.endpoints import Endpoint, mount
from warpd.api.errors import ApiError, error_response, from_http_exception
from warpd.api.housekeeping import housekeeping
from warpd.api.keys import (
    ACCEPTANCE,
    ADMIN_GATE,
    CONFIG,
    CONNECTORS,
    DATABASE,
    DRAINING,
    KEY_STORE,
    METRICS,
    ON_CHANGE,
)
from warpd.api.slowloris import GuardedSite
from warpd.api.webhook_metrics import WebhookCollector
from warpd.api.webhook_sender import WebhookSender
from warpd.config import Config, parse_listen
from warpd.metrics import Metrics
from warpd.smpp.connector import CarrierConnector
from warpd.sms.acceptance import Acceptance
from warpd.store import Database

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    route = _route_name(request)
    started = time.perf_counter()
    try:
        limit = request.app[CONFIG].http.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            # aiohttp applies client_max_size only while a handler reads the body, so a
            # declared length past it is refused here, before its body is waited for.
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=length)
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.headers)
        if exc.status == 408:  # the rest of the body may never come: do not wait for it
            response.force_close()
    except web.HTTPException as exc:
        response = from_http_exception(exc)
    except asyncio.CancelledError:
        raise
    except asyncpg.IntegrityConstraintViolationError as exc:
        response = error_response(409, "conflict", exc.args[0] if exc.args else "conflict")
    except asyncpg.DataError as exc:
        response = error_response(400, "invalid_request", str(exc))
    except _UNAVAILABLE as exc:
        log.warning("http_unavailable", route=route, error=repr(exc))
        response = error_response(503, "unavailable", "the database is unavailable; retry")
    except Exception:
        log.exception("http_handler_failed", route=route, method=request.method)
        response = error_response(500, "internal", "internal error")
    requests, latency = _series(metrics, route, response.status)
    requests.inc()
    latency.observe(time.perf_counter() - started)
    return response


@functools.lru_cache(maxsize=4096)
def _series(metrics: Metrics, route: str, status: int) -> tuple[Any, Any]:
    """The labelled counter and histogram of a route and status, looked up once:
    ``labels()`` takes a lock and checks its arguments on every call (~2 us a request).
    Routes are the table's canonical paths and statuses few, so the cache stays small."""
    return metrics.http_requests.labels(route, str(status)), metrics.http_latency.labels(route)


def endpoints() -> list[Endpoint]:
    """Every route the API serves, in the order the document lists them."""
    return [
        *ops.endpoints(),
        *openapi.ENDPOINTS,
        *v1_sms.ENDPOINTS,
        *v1_account.ENDPOINTS,
        *v1_events.ENDPOINTS,
        *v1_otp.ENDPOINTS,
        *v1_webhooks.ENDPOINTS,
        *admin.ENDPOINTS,
        *admin_connectors.ENDPOINTS,
        *admin_routing.ENDPOINTS,
        *charges.ENDPOINTS,
    ]


def make_app(
    config: Config,
    database: Database,
    metrics: Metrics,
    *,
    acceptance: Acceptance | None = None,
    on_change: Callable[[], Awaitable[None]] | None = None,
    connectors: Mapping[int, CarrierConnector] | None = None,
) -> web.Application:
    """The API app; ``acceptance`` enables the send endpoints, ``on_change`` runs after an
    admin change so the next message sees it (the SMS core's reload), ``connectors`` (the
    SMS core's, kept current by it) give the admin API their live state and rebind."""
    app = web.Application(middlewares=[observe], client_max_size=config.http.max_body_bytes)
    app[DATABASE] = database
    app[METRICS] = metrics
    app[DRAINING] = asyncio.Event()
    app[CONFIG] = config
    app[KEY_STORE] = KeyStore(database, config.api)
    app[ADMIN_GATE] = AdminGate(config.admin)
    if acceptance is not None:
        app[ACCEPTANCE] = acceptance
    if on_change is not None:
        app[ON_CHANGE] = on_change
    if connectors is not None:
        app[CONNECTORS] = connectors
    app.cleanup_ctx.append(housekeeping)
    routes = endpoints()
    mount(app, routes)
    openapi.publish(app, routes)
    console.mount(app, routes)  # /console and /console/admin, over the same route table
    return app


async def start_webhooks(
    stack: contextlib.AsyncExitStack,
    config: Config,
    database: Database,
    registry: CollectorRegistry | None = None,
) -> WebhookSender:
    """The webhook sender, stopped (in-flight POSTs finished, results written) with the stack;
    its series join ``registry`` when given."""
    instance = config.cluster.instance_id or socket.gethostname()
    sender = WebhookSender(database, config.webhooks, instance, config.cluster.lease_seconds)
    await sender.start()
    stack.push_async_callback(sender.stop)
    if registry is not None:
        registry.register(WebhookCollector(sender))
    return sender


async def apply_config(app: web.Application, config: Config) -> None:
    """SIGHUP: key cache, rate defaults and admin access change without a restart."""
    app[KEY_STORE].config = config.api
    app[ADMIN_GATE].configure(config.admin)


class HttpServer:
    def __init__(self, app: web.Application, listen: str, shutdown_timeout: float) -> None:
        self.app = app
        self._host, self._port = parse_listen(listen)
        self._header_timeout = app[CONFIG].http.header_timeout
        # After an answer given before the body was read (401, 408, 413), aiohttp reads and
        # drops what still comes for lingering_time (10 s by default) before it closes, so
        # a trickled body held the connection that long: one second is enough for a client
        # to take the answer.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout,
            lingering_time=1.0,
        )  # fmt: skip
        self.addresses: list[tuple[str, int]] = []

    async def start(self) -> None:
        await self._runner.setup()
        site = GuardedSite(self._runner, self._host, self._port, self._header_timeout)
        await site.start()
        self.addresses = [(a[0], a[1]) for a in self._runner.addresses]
        log.info("http_listening", addresses=[f"{h}:{p}" for h, p in self.addresses])

    def drain(self) -> None:
        self.app[DRAINING].set()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the shutdown timeout."""
        await self._runner.cleanup()
