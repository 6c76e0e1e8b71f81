"""Request bodies checked against the same JSON Schema the OpenAPI document shows.

A small subset of JSON Schema 2020-12 (what the v1 API uses): ``type`` (one or
a list), ``properties``, ``required``, ``additionalProperties: false``,
``minLength``/``maxLength``/``pattern``, ``minimum``/``maximum``, ``enum``,
``items``/``minItems``/``maxItems`` and ``format: date-time``. Keeping one
schema for both the check and the document is how the two never disagree.
Each refusal names the JSON path, so ``$.messages[3].to`` tells the client
which message in a batch was wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from warpd.api.errors import ApiError, invalid
from warpd.api.keys import CONFIG

Schema = Mapping[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


Checker = Callable[[Any, str], None]


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the reading of ``request``'s body by ``[http] body_timeout``: aiohttp waits
    for a trickled body as long as the keep-alive timeout allows (slowloris by body)."""
    timeout = request.app[CONFIG].http.body_timeout
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the request body did not arrive within {timeout:g} s",
            headers={"Connection": "close"},
        ) from None  # fmt: skip


async def read_json(request: web.Request, checker: Checker) -> Any:
    """The body as JSON, passed through ``checker`` (``compiled(schema)``); 4xx ApiError
    otherwise."""
    # The usual header as it is, without aiohttp parsing it into type and parameters.
    if (
        request.headers.get("Content-Type") != "application/json"
        and request.content_type != "application/json"
    ):
        raise ApiError(
            415, "unsupported_media_type", "send the body as Content-Type: application/json"
        )
    try:
        async with body_deadline(request):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "body_too_large", exc.text or "request body too large") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
    checker(value, "$")
    return value


def check(schema: Schema, value: Any, path: str = "$") -> None:
    """Raise 400 invalid_request (or unknown_field) if ``value`` breaks ``schema``."""
    compiled(schema)(value, path)


# id(schema) -> (schema, its checker): the schema is held, so its id is not reused.
_COMPILED: dict[int, tuple[Schema, Checker]] = {}
_COMPILED_MAX = 1024


def compiled(schema: Schema) -> Checker:
    """``schema``'s checker, made once: a request then walks closures, not the schema's
    dictionaries (the MESSAGE schema: 19 -> 4 us a send on this box)."""
    entry = _COMPILED.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    checker = _compile(schema)
    _COMPILED[id(schema)] = (schema, checker)
    return checker


def _compile(schema: Schema) -> Checker:
    kinds = schema.get("type")
    names = (kinds,) if isinstance(kinds, str) else tuple(kinds) if kinds is not None else None
    # A bool is only ever a "boolean" (Python's bool is an int).
    types = tuple(t for n in names or () if n != "boolean" for t in _TYPES[n])
    boolean = names is not None and "boolean" in names
    enum = schema.get("enum")
    string = _string(schema)
    number = _number(schema)
    array = _array(schema)
    obj = _object(schema)

    # What a value of each JSON type goes through (orjson makes these exact types).
    by_type: dict[type, Checker | None] = {
        str: string, int: number, float: number, list: array, dict: obj, bool: None,
    }  # fmt: skip

    def run(value: Any, path: str) -> None:
        kind = type(value)
        if names is not None and not (boolean if kind is bool else isinstance(value, types)):
            raise invalid(f"{path}: must be {' or '.join(names)}, not {_kind(value)}")
        if value is None:
            return
        if enum is not None and value not in enum:
            allowed = ", ".join(repr(v) for v in enum)
            raise invalid(f"{path}: must be one of {allowed}")
        checker = by_type[kind] if kind in by_type else _by_class(value, by_type)
        if checker is not None:
            checker(value, path)

    return run


def _by_class(value: Any, by_type: Mapping[type, Checker | None]) -> Checker | None:
    """The checker for a subclass of a JSON type (a str subclass, an IntEnum)."""
    for kind in (str, list, dict):
        if isinstance(value, kind):
            return by_type[kind]
    return by_type[int] if isinstance(value, int | float) else None


def _string(schema: Schema) -> Checker | None:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    pattern = schema.get("pattern")
    search = re.compile(pattern).search if pattern is not None else None
    timestamp = schema.get("format") == "date-time"
    if not low and high is None and search is None and not timestamp:
        return None

    def run(value: str, path: str) -> None:
        if len(value) < low:
            raise invalid(f"{path}: must have at least {low} characters")
        if high is not None and len(value) > high:
            raise invalid(f"{path}: must have at most {high} characters")
        if search is not None and not search(value):
            raise invalid(f"{path}: must match {pattern}")
        if timestamp and parse_time(value) is None:
            raise invalid(f"{path}: must be an RFC 3339 date-time with a time zone")

    return run


def _number(schema: Schema) -> Checker | None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return None

    def run(value: float, path: str) -> None:
        if low is not None and value < low:
            raise invalid(f"{path}: must be at least {low}")
        if high is not None and value > high:
            raise invalid(f"{path}: must be at most {high}")

    return run


def _array(schema: Schema) -> Checker | None:
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    items = compiled(schema["items"]) if "items" in schema else None

    def run(value: list[Any], path: str) -> None:
        if len(value) < low:
            raise invalid(f"{path}: must have at least {low} items")
        if high is not None and len(value) > high:
            raise invalid(f"{path}: must have at most {high} items")
        if items is not None:
            for i, item in enumerate(value):
                items(item, f"{path}[{i}]")

    return run


def _object(schema: Schema) -> Checker | None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    closed = schema.get("additionalProperties") is False
    required = tuple(schema.get("required", ()))
    fields = {key: compiled(sub) for key, sub in properties.items()}
    known = ", ".join(sorted(properties)) or "none"

    def run(value: dict[str, Any], path: str) -> None:
        if closed and not fields.keys() >= value.keys():
            key = next(k for k in value if k not in fields)
            raise ApiError(400, "unknown_field", f"{path}.{key}: unknown field (known: {known})")
        for key in required:
            if key not in value:
                raise invalid(f"{path}.{key}: required")
        try:
            for key, item in value.items():  # the few fields given, not all the schema has
                sub = fields.get(key)
                if sub is not None:
                    sub(item, f"{path}.{key}")
        except ApiError:
            # Several bad fields: name the first in the schema's order, whatever the body's.
            for key, sub in fields.items():
                if key in value:
                    sub(value[key], f"{path}.{key}")
            raise

    return run


def parse_time(text: str) -> dt.datetime | None:
    """An RFC 3339 timestamp with its offset, else None (naive times are ambiguous)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for name, types in _TYPES.items():
        if isinstance(value, types):
            return name
    return type(value).__name__
