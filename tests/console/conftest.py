"""One warpd (demo, SMSC simulator, a second carrier) and one headless Chromium for the module.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright's async
API on the test's own event loop, beside the daemon; Playwright never
downloads a browser. Screenshots go to a temporary directory, or into
``tests/console/screenshots/`` (the README's) with ``WARPD_SCREENSHOTS=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.fixtures.ports import free_port
from tests.fixtures.postgres import TestServer
from tests.warpd.api.conftest import EXTRA
from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd
from tests.warpd.sms.helpers import add_connector, only_route, start_simulator
from warpd.sim import SmscSimulator

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"


@dataclass
class Console:
    running: Running
    base: str
    credentials: dict[str, Any]
    backup: SmscSimulator
    backup_id: int
    browser: Browser
    shots: Path
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.credentials["console"]["url"])

    async def login(self, username: str, password: str) -> tuple[BrowserContext, Page]:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(self.base + "/console/login")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Log in").click()
        assert "/login" not in page.url, await page.locator(".error").all_inner_texts()
        return context, page

    async def customer(self) -> tuple[BrowserContext, Page]:
        c = self.credentials["console"]
        return await self.login(c["customer_user"], c["customer_password"])

    async def operator(self) -> tuple[BrowserContext, Page]:
        c = self.credentials["console"]
        return await self.login(c["admin_user"], c["admin_password"])

    async def shot(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=False)

    async def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json() if r.content_type == "application/json" else None


@dataclass
class Client:
    """A logged-in console session without a browser, for the server's own refusals."""

    session: aiohttp.ClientSession
    base: str
    csrf: str
    landing: str  # the page the login ended on

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path, allow_redirects=False) as r:
            return r.status, await r.text()

    async def post(self, path: str, form: dict[str, str], csrf: bool = True) -> tuple[int, str]:
        data = {**form, "csrf": self.csrf} if csrf else form
        async with self.session.post(self.base + path, data=data, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", "") or await r.text()


async def login_client(base: str, username: str, password: str) -> Client:
    """Log in as a browser would (the login form's token, then the session's)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(base + "/console/login") as r:
        token = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert token is not None
    form = {"csrf": token[1], "username": username, "password": password}
    async with session.post(base + "/console/login", data=form) as r:
        page = await r.text()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    return Client(session, base, found[1] if found else "", page)


def _chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("headless Chromium is missing: apt-get install chromium chromium-driver")
    return CHROMIUM


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def console(
    pg_server: TestServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Console]:
    name = f"warpd_console_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    state = tmp_path_factory.mktemp("console")
    shots = SHOTS if os.environ.get("WARPD_SCREENSHOTS") == "1" else state / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    running = await start_warpd(pg_server.dsn(name), state / "state", free_port(), EXTRA)
    backup = await start_simulator(system_id="sim", password="sim", receipt_delay=0.05)
    try:
        assert running.daemon.http is not None
        host, port = running.daemon.http.addresses[0]
        demo_route = await running.value("SELECT id FROM connectors WHERE name = 'demo-sim'")
        backup_id = await add_connector(running, "backup-sim", backup.port)
        await only_route(running, [int(demo_route), backup_id])  # type: ignore[call-overload]
        assert running.daemon.sms is not None
        await running.daemon.sms.reload()
        credentials = json.loads((state / "state" / "demo-credentials.json").read_text())
        async with (
            async_playwright() as playwright,
            aiohttp.ClientSession() as http,
        ):
            browser = await playwright.chromium.launch(
                executable_path=str(_chromium()), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                yield Console(running, f"http://{host}:{port}", credentials, backup, backup_id,
                              browser, shots, http)  # fmt: skip
            finally:
                await browser.close()
    finally:
        await stop_warpd(running)
        await backup.stop()
        admin = await asyncpg.connect(pg_server.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        if shots != SHOTS:
            shutil.rmtree(shots, ignore_errors=True)


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def customer(console: Console) -> AsyncIterator[Page]:
    """The demo customer's admin, logged in once for the module."""
    context, page = await console.customer()
    yield page
    await context.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def operator(console: Console) -> AsyncIterator[Page]:
    """The demo's operator admin, logged in once for the module."""
    context, page = await console.operator()
    yield page
    await context.close()
