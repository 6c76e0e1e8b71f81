"""Operations endpoints: ``/health`` (liveness), ``/ready``, ``/metrics``."""

from __future__ import annotations

import decimal
import uuid
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warpd.api.keys import DATABASE, DRAINING, METRICS

if TYPE_CHECKING:
    from warpd.api.endpoints import Call, Endpoint

# /ready must answer fast even when PostgreSQL does not.
READY_CHECK_TIMEOUT = 1.0


def _default(value: object) -> str:
    # asyncpg's own UUID type and numeric's Decimal: orjson knows neither.
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


async def health(call: Call) -> web.Response:
    """Liveness: the loop answers. Says nothing of dependencies, by design."""
    return json_response({"status": "ok"})


async def ready(call: Call) -> web.Response:
    app = call.app
    if app[DRAINING].is_set():
        return json_response({"ready": False, "reason": "shutting down"}, status=503)
    problem = await app[DATABASE].check(READY_CHECK_TIMEOUT)
    if problem:
        return json_response({"ready": False, "reason": problem}, status=503)
    schema = app[DATABASE].schema
    return json_response({"ready": True, "schema_version": schema.current if schema else None})


async def metrics(call: Call) -> web.Response:
    body = generate_latest(call.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def endpoints() -> tuple[Endpoint, ...]:
    from warpd.api.endpoints import Endpoint

    return (
        Endpoint("GET", "/health", health, "Liveness: the process answers", "ops", "none"),
        Endpoint("GET", "/ready", ready, "Readiness: database reachable, schema current",
                 "ops", "none"),
        Endpoint("GET", "/metrics", metrics, "Prometheus metrics", "ops", "none",
                 produces=("text/plain",), response={"type": "string"}),
    )  # fmt: skip
