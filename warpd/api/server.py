"""The HTTP server inside the daemon (aiohttp AppRunner/TCPSite).

Every error leaves as JSON (``{"error": ...}``) with its status, so API
clients never parse an HTML error page, and every request is counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from warpd.api import ops
from warpd.api.keys import DATABASE, DRAINING, METRICS
from warpd.config import Config, parse_listen
from warpd.metrics import Metrics
from warpd.store import Database

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        response = await handler(request)
    except web.HTTPException as exc:
        response = ops.json_response({"error": exc.reason}, status=exc.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("http_handler_failed", route=route, method=request.method)
        response = ops.json_response({"error": "internal error"}, status=500)
    metrics.http_requests.labels(route, str(response.status)).inc()
    metrics.http_latency.labels(route).observe(time.perf_counter() - started)
    return response


def make_app(config: Config, database: Database, metrics: Metrics) -> web.Application:
    app = web.Application(middlewares=[observe], client_max_size=config.http.max_body_bytes)
    app[DATABASE] = database
    app[METRICS] = metrics
    app[DRAINING] = asyncio.Event()
    ops.add_routes(app)
    return app


class HttpServer:
    def __init__(self, app: web.Application, listen: str, shutdown_timeout: float) -> None:
        self.app = app
        self._host, self._port = parse_listen(listen)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
        )
        self.addresses: list[tuple[str, int]] = []

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        self.addresses = [(a[0], a[1]) for a in self._runner.addresses]
        log.info("http_listening", addresses=[f"{h}:{p}" for h, p in self.addresses])

    def drain(self) -> None:
        self.app[DRAINING].set()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the shutdown timeout."""
        await self._runner.cleanup()
