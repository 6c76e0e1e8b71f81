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

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from aiohttp import web

from warpd.api.errors import ApiError, invalid

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


async def read_json(request: web.Request, schema: Schema) -> Any:
    """The body as JSON, checked against ``schema``; 4xx ApiError otherwise."""
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "send the body as Content-Type: application/json"
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "body_too_large", exc.text or "request body too large") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
    check(schema, value)
    return value


def check(schema: Schema, value: Any, path: str = "$") -> None:
    """Raise 400 invalid_request (or unknown_field) if ``value`` breaks ``schema``."""
    kinds = schema.get("type")
    if kinds is not None and not (
        _is(kinds, value) if isinstance(kinds, str) else any(_is(k, value) for k in kinds)
    ):
        names = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        raise invalid(f"{path}: must be {' or '.join(names)}, not {_kind(value)}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        raise invalid(f"{path}: must be one of {allowed}")
    if isinstance(value, str):
        _check_string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise invalid(f"{path}: must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise invalid(f"{path}: must be at most {schema['maximum']}")
    elif isinstance(value, list):
        _check_array(schema, value, path)
    elif isinstance(value, dict):
        _check_object(schema, value, path)


def _is(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return name == "boolean"
    return isinstance(value, _TYPES[name])


def _check_string(schema: Schema, value: str, path: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise invalid(f"{path}: must have at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise invalid(f"{path}: must have at most {schema['maxLength']} characters")
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise invalid(f"{path}: must match {schema['pattern']}")
    if schema.get("format") == "date-time" and parse_time(value) is None:
        raise invalid(f"{path}: must be an RFC 3339 date-time with a time zone")


def _check_array(schema: Schema, value: list[Any], path: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise invalid(f"{path}: must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise invalid(f"{path}: must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for i, item in enumerate(value):
            check(items, item, f"{path}[{i}]")


def _check_object(schema: Schema, value: dict[str, Any], path: str) -> None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        for key in value:
            if key not in properties:
                known = ", ".join(sorted(properties)) or "none"
                raise ApiError(
                    400, "unknown_field", f"{path}.{key}: unknown field (known: {known})"
                )
    for key in schema.get("required", ()):
        if key not in value:
            raise invalid(f"{path}.{key}: required")
    for key, sub in properties.items():
        if key in value:
            check(sub, value[key], f"{path}.{key}")


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


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
