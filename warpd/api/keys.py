"""Typed application keys (aiohttp ``web.AppKey``) shared by the handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from warpd.metrics import Metrics
from warpd.store import Database

DATABASE = web.AppKey("database", Database)
METRICS = web.AppKey("metrics", Metrics)
# Set when shutdown begins: /ready turns 503 so load balancers move away first.
DRAINING = web.AppKey("draining", asyncio.Event)
