"""The API's route table: one record per operation drives routing, auth, checks and docs.

Each :class:`Endpoint` names its method, path, who may call it (an API key
with a scope, the admin token, or anyone), its query parameters and body
schema. :func:`mount` registers a wrapper that authenticates, rate-limits,
parses and checks the request before the handler sees a :class:`Call`; the
OpenAPI document is built from the same records, so an undocumented route
cannot exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from warpd.api.auth import ApiKey, KeyStore
from warpd.api.errors import invalid
from warpd.api.keys import ADMIN_GATE, KEY_STORE, ON_CHANGE
from warpd.api.validate import Schema, check, compiled, parse_time, read_json

Auth = Literal["key", "admin", "none"]
MAX_BIGINT = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    required: bool = False
    where: Literal["query", "path", "header"] = "query"


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, its caller and its checked inputs."""

    request: web.Request
    key: ApiKey | None
    actor: str
    body: Any
    params: Mapping[str, Any]

    @property
    def account_id(self) -> int:
        assert self.key is not None, "a key endpoint always has a key"
        return self.key.account_id

    @property
    def app(self) -> web.Application:
        return self.request.app

    async def changed(self) -> None:
        """Let the SMS core see a change before the next message, not at its next reload."""
        reload = self.app.get(ON_CHANGE)
        if reload is not None:
            await reload()


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Auth = "key"
    scope: str = ""
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    status: int = 200
    response: Schema = field(default_factory=lambda: {"type": "object"})
    # Tokens a call takes from the key's bucket: a batch costs per message.
    cost: Callable[[Any], int] | None = None
    produces: tuple[str, ...] = ("application/json",)
    # Error statuses this endpoint answers beyond its auth kind's usual ones.
    extra_errors: tuple[int, ...] = ()


def id_param(name: str = "id", description: str = "") -> Param:
    return Param(
        name,
        {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT},
        description,
        required=True,
        where="path",
    )


def uuid_param(name: str = "id", description: str = "") -> Param:
    return Param(
        name, {"type": "string", "format": "uuid"}, description, required=True, where="path"
    )


def mount(app: web.Application, endpoints: Sequence[Endpoint]) -> None:
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint))


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    checker = compiled(endpoint.body) if endpoint.body is not None else None

    async def handle(request: web.Request) -> web.StreamResponse:
        key: ApiKey | None = None
        actor = ""
        header = request.headers.get("Authorization")
        if endpoint.auth == "key":
            store: KeyStore = request.app[KEY_STORE]
            key = await store.authenticate(header, request.remote, endpoint.scope)
            actor = f"key:{key.prefix}"
        elif endpoint.auth == "admin":
            actor = request.app[ADMIN_GATE].check(header, request.remote)
        params = _params(endpoint.params, request)
        body = await read_json(request, checker) if checker is not None else None
        if key is not None:
            request.app[KEY_STORE].charge(key, endpoint.cost(body) if endpoint.cost else 1)
        return await endpoint.handler(Call(request, key, actor, body, params))

    handle.__name__ = endpoint.handler.__name__
    return handle


def _params(params: Sequence[Param], request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in params:
        # Only the source asked for: request.query parses the query string when first
        # read, and a send (its one parameter a header) has none.
        source: Mapping[str, str] = (
            request.headers
            if param.where == "header"
            else request.query
            if param.where == "query"
            else request.match_info
        )
        raw = source.get(param.name)
        if raw is None:
            if param.required:
                raise invalid(f"{param.name}: required")
            continue
        values[param.name] = _convert(param, raw)
    return values


def _convert(param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    value: Any = raw
    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"{param.name}: must be an integer") from None
    elif kind == "boolean":
        if raw not in ("true", "false"):
            raise invalid(f"{param.name}: must be true or false")
        value = raw == "true"
    check(param.schema, value, param.name)
    fmt = param.schema.get("format")
    if fmt == "date-time":
        return parse_time(value)
    if fmt == "uuid":
        import uuid

        try:
            return uuid.UUID(value)
        except ValueError:
            raise invalid(f"{param.name}: must be a UUID") from None
    return value
