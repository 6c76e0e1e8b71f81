"""The OpenAPI 3.1 document (``/v1/openapi.json``) and its HTML page (``/docs``).

Built from the endpoint table that also mounts the routes and checks the
bodies, so the document cannot drift from the code; a test also walks the
router to prove it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

import warpd
from warpd.api.endpoints import Call, Endpoint, Param
from warpd.api.errors import STATUS_CODES
from warpd.api.keys import DOCS_HTML, OPENAPI_JSON

ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable; clients branch on it"},
        "message": {"type": "string", "description": "for people; may be reworded"},
    },
}
ERROR_STATUSES = {
    "key": (400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 429, 503),
    "admin": (400, 401, 403, 404, 405, 409, 413, 415, 503),
    "none": (404, 405, 503),
}
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = _PATH_PARAM.sub(r"{\1}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "warpd HTTP API",
            "version": warpd.__version__,
            "description": (
                "Send SMS, read receipts, balances, usage and CDRs; manage webhooks. "
                "Errors are JSON {code, message}. Money is integer micro-units of the "
                "account's currency (1 EUR = 1000000)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "responses": {
                "Error": {
                    "description": "an error: " + ", ".join(sorted(set(STATUS_CODES.values()))),
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "wk_... API key"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "admin token"},
            },
        },
    }


def _operation(endpoint: Endpoint, path: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"),
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "security": {"key": [{"apiKey": []}], "admin": [{"adminToken": []}], "none": []}[
            endpoint.auth
        ],
    }
    if endpoint.scope and endpoint.auth == "key":
        op["description"] = f"Needs an API key with the `{endpoint.scope}` scope."
    if endpoint.params:
        op["parameters"] = [_parameter(p) for p in endpoint.params]
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body}},
        }
    success: dict[str, Any] = {"description": "success"}
    if endpoint.status != 204:
        success["content"] = {t: {"schema": endpoint.response} for t in endpoint.produces}
    responses: dict[str, Any] = {str(endpoint.status): success}
    statuses = sorted({*ERROR_STATUSES[endpoint.auth], *endpoint.extra_errors})
    for status in statuses:
        if status == 415 and endpoint.body is None:
            continue
        responses[str(status)] = {"$ref": "#/components/responses/Error"}
    op["responses"] = responses
    return op


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where, "schema": dict(param.schema)}
    if param.description:
        out["description"] = param.description
    if param.required or param.where == "path":
        out["required"] = True
    return out


async def openapi_json(call: Call) -> web.Response:
    return web.Response(body=call.app[OPENAPI_JSON], content_type="application/json")


async def docs(call: Call) -> web.Response:
    return web.Response(body=call.app[DOCS_HTML], content_type="text/html", charset="utf-8")


ENDPOINTS = (
    Endpoint("GET", "/v1/openapi.json", openapi_json, "This document (OpenAPI 3.1)", "ops",
             "none"),
    Endpoint("GET", "/docs", docs, "The API reference as HTML", "ops", "none",
             produces=("text/html",), response={"type": "string"}),
)  # fmt: skip


def publish(app: web.Application, endpoints: Sequence[Endpoint]) -> None:
    """Build the document once, at start-up; requests serve the bytes."""
    doc = document(endpoints)
    app[OPENAPI_JSON] = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    app[DOCS_HTML] = render_html(doc).encode()


def render_html(doc: dict[str, Any]) -> str:
    """A plain, self-contained reference page: no scripts, no CDN, works offline."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>warpd API</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}code,pre{background:#f4f4f4}"
        "h3{margin-bottom:.2em}pre{padding:.5em;overflow:auto}</style></head><body>",
        f"<h1>{html.escape(doc['info']['title'])} {html.escape(doc['info']['version'])}</h1>",
        f"<p>{html.escape(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/v1/openapi.json'>/v1/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            parts.append(
                f"<h3><code>{method.upper()} {html.escape(path)}</code></h3>"
                f"<p>{html.escape(op['summary'])}. {html.escape(op.get('description', ''))}</p>"
            )
            for param in op.get("parameters", ()):
                parts.append(
                    f"<div><code>{html.escape(param['name'])}</code> ({param['in']}): "
                    f"{html.escape(param.get('description', ''))} "
                    f"<code>{html.escape(orjson.dumps(param['schema']).decode())}</code></div>"
                )
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                text = orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()
                parts.append(f"<pre>{html.escape(text)}</pre>")
            codes = ", ".join(op["responses"])
            parts.append(f"<div>Answers: {codes}</div>")
    parts.append("</body></html>")
    return "".join(parts)
