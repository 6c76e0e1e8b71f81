"""API errors: one JSON shape, ``{"code": "...", "message": "..."}``, with stable codes.

Clients branch on ``code`` (it never changes once published, and the OpenAPI
document lists them); ``message`` is for people and may be reworded.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from warpd.errors import WarpdError

# HTTP status -> the code an aiohttp HTTPException (routing, body size) becomes.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    426: "upgrade_required",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(WarpdError):
    """An answer other than success, raised anywhere below a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    """A request that parsed but breaks the documented schema (400 invalid_request)."""
    return ApiError(400, "invalid_request", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps({"code": code, "message": message}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def from_http_exception(exc: web.HTTPException) -> web.Response:
    code = STATUS_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal")
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return error_response(exc.status, code, exc.reason, headers)
