"""Typed application keys (aiohttp ``web.AppKey``) shared by the handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from warpd.api.auth import AdminGate, KeyStore
from warpd.config import Config
from warpd.metrics import Metrics
from warpd.smpp.connector import CarrierConnector
from warpd.sms.acceptance import Acceptance
from warpd.store import Database

DATABASE = web.AppKey("database", Database)
METRICS = web.AppKey("metrics", Metrics)
# Set when shutdown begins: /ready turns 503 so load balancers move away first.
DRAINING = web.AppKey("draining", asyncio.Event)
CONFIG = web.AppKey("config", Config)
# The SMS core's acceptance path; the daemon sets it (absent: send answers 503).
ACCEPTANCE = web.AppKey("acceptance", Acceptance)
# Run after an admin change so the next message sees it (the SMS core's reload).
ON_CHANGE = web.AppKey[Callable[[], Awaitable[None]]]("on_change")
# The SMS core's running connectors by id (live state, rebind); absent without the core.
CONNECTORS = web.AppKey[Mapping[int, CarrierConnector]]("connectors")
KEY_STORE = web.AppKey("key_store", KeyStore)
ADMIN_GATE = web.AppKey("admin_gate", AdminGate)
# The OpenAPI document and its HTML page, rendered once at start-up.
OPENAPI_JSON = web.AppKey("openapi_json", bytes)
DOCS_HTML = web.AppKey("docs_html", bytes)
