"""Both consoles in headless Chromium against one running warpd (see conftest.py).

The cases share the daemon and two logged-in pages, so each tags its own
numbers and leaves the connectors as it found them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from tests.console.conftest import Console
from warpd.api import signing
from warpd.sim.cli import add_esme_arguments, esme_config
from warpd.sim.esme import run_esme

pytestmark = pytest.mark.asyncio(loop_scope="package")
# The newest point of each series, as the chart keeps it for whoever reads the page.
LAST = "JSON.parse(document.getElementById('traffic-chart').dataset.last || '{}')"
SAMPLES = "Number(document.getElementById('traffic-chart').dataset.samples || 0)"


async def test_customer_sends_a_test_sms_sees_it_delivered_and_the_balance_drop(
    console: Console, customer: Page
) -> None:
    await customer.goto(console.url)
    assert customer.url.endswith("/console/")
    before = int(await customer.locator("#balance").get_attribute("data-micros") or "")
    await customer.get_by_label("To").fill("+447700900123")
    await customer.get_by_role("button", name="Send test SMS").click()
    await expect(customer.locator(".notice")).to_have_text("test message accepted")
    # The receipt comes ~0.1 s later: wait for it in the database, then read the page once
    # (a reload costs seconds of Chromium on a loaded box).
    message = customer.url.rsplit("/", 1)[1].split("?")[0]
    await _until(console, "SELECT state = 'delivered' FROM messages WHERE id = $1::uuid", message)
    await customer.reload()
    await expect(customer.locator("#message-state")).to_have_text("delivered")
    await expect(customer.locator("#message-facts")).to_contain_text("447700900123")
    await console.shot(customer, "portal-message")
    await customer.get_by_role("link", name="Overview").click()
    after = int(await customer.locator("#balance").get_attribute("data-micros") or "")
    assert after == before - 5_000  # the demo's price for one part
    # The live view keeps the balance up to date without a reload: an operator's top-up shows.
    await customer.wait_for_function(f"() => {SAMPLES} >= 1", timeout=10_000)
    account = await console.running.value("SELECT id FROM accounts WHERE name = 'demo'")
    status, _ = await console.api("POST", f"/v1/admin/accounts/{account}/topup",
                                  console.credentials["http"]["admin_token"],
                                  {"amount_micros": 1_000_000, "note": "live"})  # fmt: skip
    assert status == 201
    await expect(customer.locator("#balance")).to_have_attribute(
        "data-micros", str(after + 1_000_000), timeout=10_000
    )
    await console.shot(customer, "portal")


async def test_an_api_key_is_shown_once_and_works(console: Console, customer: Page) -> None:
    await customer.goto(console.base + "/console/keys")
    await customer.get_by_label("Name").fill("browser test")
    await customer.get_by_role("button", name="Create API key").click()
    key = await customer.locator("#new-key").inner_text()
    prefix = key.split("_")[1]
    status, balance = await console.api("GET", "/v1/balance", key)
    assert status == 200, balance
    await customer.goto(console.base + "/console/keys")
    await expect(customer.locator("#new-key")).to_have_count(0)
    await expect(customer.locator("#keys")).to_contain_text(prefix)
    assert key not in await customer.content()


async def test_a_webhook_is_configured_and_its_test_attempt_is_shown(
    console: Console, customer: Page
) -> None:
    posts: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        posts.append((dict(request.headers), await request.read()))
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await customer.goto(console.base + "/console/webhooks")
        await customer.get_by_label("URL").fill(f"http://127.0.0.1:{port}/hook")
        await customer.get_by_role("button", name="Add webhook").click()
        secret = await customer.locator("#new-secret").inner_text()
        await customer.get_by_role("button", name="Send test event").first.click()
        await expect(customer.locator(".notice")).to_have_text("test event queued")
        for _ in range(50):
            if posts:
                break
            await asyncio.sleep(0.1)
        headers, body = posts[0]
        assert headers["X-Warpd-Event"] == "test"
        assert signing.verify(secret, headers[signing.HEADER], body, time.time())
        assert json.loads(body)["type"] == "test"
        await _until(console, "SELECT count(*) > 0 FROM webhook_attempts")
        await customer.reload()
        await expect(customer.locator("#attempts td.answer").first).to_have_text("200")
    finally:
        await runner.cleanup()


async def _until(console: Console, sql: str, *args: object) -> None:
    """Wait (10 s at most) for ``sql`` to answer true."""
    for _ in range(200):
        if await console.running.value(sql, *args):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still false after 10 s: {sql}")


async def _send(console: Console, to: str, count: int) -> list[str]:
    key = console.credentials["http"]["api_key"]
    ids = []
    for _ in range(count):
        status, sent = await console.api(
            "POST", "/v1/sms", key, {"to": to, "from": "TEST", "text": "failover"}
        )
        assert status == 202, sent
        ids.append(sent["id"])
    done = "SELECT bool_and(state = 'delivered') FROM messages WHERE id = ANY($1::uuid[])"
    await _until(console, done, ids)
    return ids


async def test_the_operator_disables_a_connector_and_traffic_moves_to_the_next(
    console: Console, operator: Page
) -> None:
    before, after = "447700901001", "447700901002"
    sent_before = await _send(console, before, 2)
    await operator.goto(console.base + "/console/admin/connectors")
    await operator.get_by_role("button", name="Disable demo-sim").click()
    await expect(operator.locator(".notice")).to_contain_text("disabled")
    try:
        await _send(console, after, 3)
        used = "SELECT array_agg(DISTINCT c.name) FROM messages m JOIN connectors c"
        used += " ON c.id = m.connector_id WHERE m.id = ANY($1::uuid[])"
        assert await console.running.value(used, sent_before) == ["demo-sim"]
        await operator.goto(console.base + "/console/admin/messages")
        await operator.get_by_label("Id or number").fill(after)
        await operator.get_by_role("button", name="Search").click()
        await expect(operator.locator("#message-results td.connector")).to_have_text(
            ["backup-sim"] * 3
        )
        audit = await console.running.value(
            "SELECT actor FROM audit_log WHERE action = 'connector.disable' ORDER BY id DESC"
        )
        assert audit == "console:admin"
    finally:
        await operator.goto(console.base + "/console/admin/connectors")
        live = operator.locator("tr[data-connector=backup-sim] .live-binds")
        await expect(live).to_have_text("1")
        await console.shot(operator, "operator-connectors")
        await operator.get_by_role("button", name="Enable demo-sim").click()
        await expect(operator.locator(".notice")).to_contain_text("enabled")


async def test_the_dashboard_chart_moves_while_sim_esme_sends(
    console: Console, operator: Page
) -> None:
    await operator.goto(console.base + "/console/admin")
    await operator.wait_for_function(f"() => {SAMPLES} >= 1", timeout=10_000)
    host, port = console.running.smpp
    # `warpd sim-esme`'s own arguments and load generator, in this process: a second
    # interpreter would spend seconds importing on a loaded box before its first submit.
    parser = argparse.ArgumentParser()
    add_esme_arguments(parser)
    args = parser.parse_args([
        "--host", host, "--port", str(port), "--system-id", console.running.system_id,
        "--password", console.running.password, "--duration", "6", "--rate", "40",
        "--destination", "447700902000-447700902999",
    ])  # fmt: skip
    esme = asyncio.create_task(run_esme(esme_config(args)))
    try:
        await operator.wait_for_function(f"() => {LAST}.in > 5", timeout=15_000)
        await expect(operator.locator("#account-table")).to_contain_text("demo")
        await expect(operator.locator("#connector-table")).to_contain_text("demo-sim")
        await operator.wait_for_function(f"() => {LAST}.receipts > 0", timeout=10_000)
        await console.shot(operator, "operator-dashboard")
    finally:
        esme.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await esme


async def test_a_customer_cannot_open_another_accounts_message(
    console: Console, customer: Page, operator: Page
) -> None:
    token = console.credentials["http"]["admin_token"]
    plan = await console.running.value("SELECT id FROM rate_plans WHERE name = 'demo'")
    status, other = await console.api("POST", "/v1/admin/accounts", token, {
        "name": f"other-{uuid.uuid4().hex[:6]}", "currency": "EUR", "rate_plan_id": plan,
        "balance_micros": 1_000_000})  # fmt: skip
    assert status == 201, other
    status, key = await console.api("POST", "/v1/admin/keys", token, {"account_id": other["id"]})
    assert status == 201
    status, sent = await console.api("POST", "/v1/sms", key["key"], {
        "to": "447700903000", "from": "OTHER", "text": "not yours"})  # fmt: skip
    assert status == 202, sent
    refused = await customer.goto(f"{console.base}/console/messages/{sent['id']}")
    assert refused is not None
    assert refused.status == 404
    await expect(customer.locator("#refusal")).to_contain_text("not found")
    assert "447700903000" not in await customer.content()
    # The same page for the customer's own message, and the operator's for this one, answer.
    shown = await operator.goto(f"{console.base}/console/admin/messages/{sent['id']}")
    assert shown is not None
    assert shown.status == 200
    await expect(operator.locator("#message-facts")).to_contain_text("447700903000")


async def test_a_form_posted_without_its_csrf_token_is_refused(
    console: Console, customer: Page
) -> None:
    count = "SELECT count(*) FROM api_keys WHERE name = 'forged'"
    await customer.goto(console.base + "/console/keys")
    await customer.get_by_label("Name").fill("forged")
    await customer.locator("form[action='/console/keys'] input[name=csrf]").evaluate(
        "input => input.remove()"
    )
    async with customer.expect_navigation() as refused:
        await customer.get_by_role("button", name="Create API key").click()
    assert (await refused.value).status == 403
    await expect(customer.locator("#refusal")).to_contain_text("CSRF")
    assert await console.running.value(count) == 0
