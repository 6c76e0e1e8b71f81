"""Operations endpoints: ``/health`` (liveness), ``/ready``, ``/metrics``."""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warpd.api.keys import DATABASE, DRAINING, METRICS

# /ready must answer fast even when PostgreSQL does not.
READY_CHECK_TIMEOUT = 1.0


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    """Liveness: the loop answers. Says nothing of dependencies, by design."""
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    app = request.app
    if app[DRAINING].is_set():
        return json_response({"ready": False, "reason": "shutting down"}, status=503)
    problem = await app[DATABASE].check(READY_CHECK_TIMEOUT)
    if problem:
        return json_response({"ready": False, "reason": problem}, status=503)
    schema = app[DATABASE].schema
    return json_response({"ready": True, "schema_version": schema.current if schema else None})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
