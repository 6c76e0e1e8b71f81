"""The API on a real aiohttp server on loopback, over a fresh, migrated PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio

from tests.fixtures.ports import free_port
from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd
from warpd.api.server import HttpServer, make_app
from warpd.config import Config
from warpd.config.schema import AdminConfig, DatabaseConfig, HttpConfig, WebhooksConfig
from warpd.metrics import Metrics
from warpd.store import Database

ADMIN_TOKEN = "wa_0123abcd_test-admin-token-not-a-secret-000000000000"


@dataclass
class Api:
    base: str
    session: aiohttp.ClientSession
    database: Database
    app: Any
    dsn: str

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=hdrs
        ) as response:
            body: Any
            if response.content_type == "application/json":
                body = await response.json()
            else:
                body = await response.text()
            return response.status, body, response

    async def admin_call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        status, body, _ = await self.call(method, path, token=ADMIN_TOKEN, json=json)
        return status, body

    async def account_with_key(
        self, balance: int = 10_000_000, **key: Any
    ) -> tuple[dict[str, Any], str]:
        status, account = await self.admin_call(
            "POST",
            "/v1/admin/accounts",
            {"name": f"acme-{uuid.uuid4().hex[:8]}", "currency": "EUR", "balance_micros": balance},
        )
        assert status == 201, account
        status, created = await self.admin_call(
            "POST", "/v1/admin/keys", {"account_id": account["id"], **key}
        )
        assert status == 201, created
        return account, created["key"]


def api_config(dsn: str, **webhooks: Any) -> Config:
    return dataclasses.replace(
        Config(),
        database=DatabaseConfig(dsn=dsn, pool_min=1, pool_max=8),
        http=HttpConfig(listen="127.0.0.1:0", max_body_bytes=64 * 1024),
        admin=AdminConfig(token_hash=hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()),
        webhooks=WebhooksConfig(allow_private=True, **webhooks),
    )


@pytest_asyncio.fixture
async def api(database_dsn: str) -> AsyncIterator[Api]:
    config = api_config(database_dsn)
    database = await Database.connect(database_dsn, config.database)
    await database.ensure_schema(apply=True)
    server = HttpServer(make_app(config, database, Metrics()), config.http.listen, 2.0)
    await server.start()
    host, port = server.addresses[0]
    async with aiohttp.ClientSession() as session:
        yield Api(f"http://{host}:{port}", session, database, server.app, database_dsn)
    await server.stop()
    await database.close(2.0)


EXTRA = (
    f"[admin]\ntoken_hash = '{hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()}'\n"
    "[webhooks]\nallow_private = true\nbackoff_initial = 0.1\nbackoff_max = 1.0\n"
    "[api]\ndefault_rate_per_s = 100000.0\ndefault_burst = 100000\n"
)


@dataclass
class Http:
    running: Running
    base: str
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, token: str = ADMIN_TOKEN, json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        hdrs = {"Authorization": f"Bearer {token}", **(headers or {})}
        async with self.session.request(method, self.base + path, json=json, headers=hdrs) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def customer(self, balance: int = 1_000_000, keys: int = 1) -> tuple[int, list[str]]:
        plan = await self.running.value("SELECT id FROM rate_plans WHERE name = 'demo'")
        status, account = await self.call("POST", "/v1/admin/accounts", json={
            "name": f"c-{uuid.uuid4().hex[:8]}", "currency": "EUR", "rate_plan_id": plan,
            "balance_micros": balance,
        })  # fmt: skip
        assert status == 201, account
        made = []
        for _ in range(keys):
            status, key = await self.call("POST", "/v1/admin/keys",
                                          json={"account_id": account["id"]})  # fmt: skip
            assert status == 201
            made.append(key["key"])
        return account["id"], made


@pytest_asyncio.fixture
async def http(database_dsn: str, tmp_path: Path) -> AsyncIterator[Http]:
    running = await start_warpd(database_dsn, tmp_path / "state", free_port(), EXTRA)
    assert running.daemon.http is not None
    host, port = running.daemon.http.addresses[0]
    async with aiohttp.ClientSession() as session:
        yield Http(running, f"http://{host}:{port}", session)
    await stop_warpd(running)
