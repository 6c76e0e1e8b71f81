"""The webhook sender against real receivers on loopback and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from warpd.api import signing
from warpd.api.webhook_policy import Verdict, backoff, decide
from warpd.api.webhook_sender import CHANNEL, WebhookSender
from warpd.config.schema import DatabaseConfig, WebhooksConfig
from warpd.store import Database

README = Path(__file__).resolve().parents[3] / "README.md"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.1, "timeout": 1.0, "allow_private": True}


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The README's recipe, run as written."""
    block = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", README.read_text(), re.S)
    assert block is not None, "README lost its signature recipe"
    assert len([line for line in block[1].splitlines() if line.strip()]) == 5
    scope: dict[str, Any] = {}
    exec(block[1], scope)
    return scope["verify"]  # type: ignore[no-any-return]


class Receiver:
    """A customer endpoint: answers from a script of statuses, then 200."""

    def __init__(self, script: list[int] | None = None, delay: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay = delay
        self.posts: list[tuple[dict[str, str], bytes, float]] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self.posted = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            body = await request.read()
            self.posts.append((dict(request.headers), body, time.monotonic()))
            self.posted.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.script.pop(0) if self.script else 200)
        finally:
            self.concurrent -= 1

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest_asyncio.fixture
async def db(database_dsn: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_dsn, DatabaseConfig(pool_min=1, pool_max=10))
    await database.ensure_schema(apply=True)
    yield database
    await database.close(2.0)


async def make_account(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "INSERT INTO accounts (name, currency) VALUES ($1, 'EUR') RETURNING id",
        f"acct-{uuid.uuid4().hex[:8]}",
    ))  # fmt: skip


async def make_webhook(conn: Any, account_id: int, url: str, secret: str = "whsec_t") -> int:
    return int(await conn.fetchval(
        "INSERT INTO webhooks (account_id, url, secret) VALUES ($1, $2, $3) RETURNING id",
        account_id, url, secret,
    ))  # fmt: skip


async def make_delivery(
    conn: Any, account_id: int, *, webhook_id: int | None = None, url: str | None = None,
    expires_in: float = 3600.0,
) -> int:  # fmt: skip
    message_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO messages (id, account_id, channel, source_addr, destination_addr, body,"
        " currency, expires_at) VALUES ($1, $2, 'http', 'WARPD', '447700900123', 'hi', 'EUR',"
        " now() + interval '1 day')",
        message_id, account_id,
    )  # fmt: skip
    payload = {"type": "dlr", "message_id": str(message_id), "account_id": account_id,
               "state": "delivered", "part": 1, "parts": 1, "error_code": 0}  # fmt: skip
    return int(await conn.fetchval(
        "INSERT INTO deliveries (account_id, kind, message_id, via, webhook_id, url, payload,"
        " expires_at) VALUES ($1, 'dlr', $2, 'webhook', $3, $4, $5::jsonb,"
        " now() + make_interval(secs => $6)) RETURNING id",
        account_id, message_id, webhook_id, url, orjson.dumps(payload).decode(), expires_in,
    ))  # fmt: skip


async def wait_states(
    db: Database, ids: list[int], want: set[str], timeout: float = 10.0
) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        async with db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, state FROM deliveries WHERE id = ANY($1)", ids)
        states = {r["id"]: r["state"] for r in rows}
        if all(s in want for s in states.values()) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def sender_factory(db: Database) -> AsyncIterator[Callable[..., Any]]:
    senders: list[WebhookSender] = []

    async def make(instance: str = "test-1", **overrides: Any) -> WebhookSender:
        sender = WebhookSender(db, WebhooksConfig(**{**FAST, **overrides}), instance, 30.0)
        await sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop()


def test_backoff_doubles_up_to_its_cap_and_expires_past_the_deadline() -> None:
    assert [backoff(n, 5, 3600) for n in (1, 2, 3, 10, 11, 500)] == [
        5, 10, 20, 2560, 3600, 3600
    ]  # fmt: skip
    import datetime as dt

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    common = {"now": now, "initial": 5.0, "maximum": 60.0}
    soon = now + dt.timedelta(seconds=30)
    assert decide(status=204, permanent=False, attempt_no=9, deadline=now, **common).verdict is (
        Verdict.DELIVERED
    )
    retry = decide(status=503, permanent=False, attempt_no=2, deadline=soon, **common)
    assert retry.next_attempt_at == now + dt.timedelta(seconds=10)
    assert decide(status=None, permanent=False, attempt_no=4, deadline=soon, **common).verdict is (
        Verdict.EXPIRED
    )
    assert decide(status=None, permanent=True, attempt_no=1, deadline=soon, **common).verdict is (
        Verdict.FAILED
    )


def test_signature_verifies_with_the_readme_recipe_and_catches_tampering() -> None:
    verify = readme_verify()
    body = b'{"type":"dlr"}'
    header = signing.sign("whsec_x", int(time.time()), body)
    assert verify("whsec_x", header, body)
    assert signing.verify("whsec_x", header, body, time.time())
    assert not verify("whsec_y", header, body)
    assert not verify("whsec_x", header, body + b" ")
    stale = signing.sign("whsec_x", int(time.time()) - 3600, body)
    assert not verify("whsec_x", stale, body)
    assert not signing.verify("whsec_x", stale, body, time.time())
    assert not signing.verify("whsec_x", "garbage", body, time.time())


async def test_a_receiver_that_comes_back_gets_the_delivery_signed(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver([500, 503, 500]).start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            hook = await make_webhook(conn, account, receiver.url, "whsec_back")
            delivery = await make_delivery(conn, account, webhook_id=hook)
        await sender_factory()
        assert await wait_states(db, [delivery], {"delivered"}) == {delivery: "delivered"}
        assert len(receiver.posts) == 4
        verify = readme_verify()
        for headers, body, _ in receiver.posts:
            assert verify("whsec_back", headers[signing.HEADER], body)
            assert orjson.loads(body)["type"] == "dlr"
            assert headers["X-Warpd-Delivery"] == str(delivery)
        gaps = [b[2] - a[2] for a, b in zip(receiver.posts, receiver.posts[1:], strict=False)]
        assert all(g >= 0.04 for g in gaps), gaps
        async with db.pool.acquire() as conn:
            attempts = await conn.fetch(
                "SELECT attempt_no, status_code FROM webhook_attempts WHERE delivery_id = $1"
                " ORDER BY attempt_no", delivery,
            )  # fmt: skip
            row = await conn.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery)
        assert [(a["attempt_no"], a["status_code"]) for a in attempts] == [
            (1, 500), (2, 503), (3, 500), (4, 200)
        ]  # fmt: skip
        assert row["attempts"] == 4
        assert row["delivered_at"] is not None
        assert row["claimed_by"] is None
    finally:
        await receiver.stop()


async def test_a_callback_url_is_signed_with_the_account_secret(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            secret = await conn.fetchval("SELECT callback_secret FROM accounts WHERE id = $1",
                                         account)  # fmt: skip
            delivery = await make_delivery(conn, account, url=receiver.url)
        await sender_factory()
        assert (await wait_states(db, [delivery], {"delivered"}))[delivery] == "delivered"
        headers, body, _ = receiver.posts[0]
        assert readme_verify()(secret, headers[signing.HEADER], body)
    finally:
        await receiver.stop()


async def test_a_dead_endpoint_expires_and_every_attempt_is_recorded(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    async with db.pool.acquire() as conn:
        account = await make_account(conn)
        # Port 9 on loopback: nothing listens, the connection is refused.
        hook = await make_webhook(conn, account, "http://127.0.0.1:9/hook")
        # Long enough for several attempts even when the sender is slow to start.
        delivery = await make_delivery(conn, account, webhook_id=hook, expires_in=2.0)
    await sender_factory()
    assert await wait_states(db, [delivery], {"expired"}) == {delivery: "expired"}
    async with db.pool.acquire() as conn:
        attempts = await conn.fetch(
            "SELECT status_code, error FROM webhook_attempts WHERE delivery_id = $1", delivery
        )
    assert len(attempts) >= 2
    assert all(a["status_code"] is None and a["error"] for a in attempts)


async def test_private_addresses_are_refused_unless_allowed(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            by_ip = await make_delivery(conn, account, url=receiver.url)
            by_name = await make_delivery(
                conn, account, url=receiver.url.replace("127.0.0.1", "localhost")
            )
        await sender_factory(allow_private=False)
        states = await wait_states(db, [by_ip, by_name], {"failed"})
        assert states == {by_ip: "failed", by_name: "failed"}
        assert receiver.posts == []
        async with db.pool.acquire() as conn:
            errors = [r[0] for r in await conn.fetch("SELECT error FROM webhook_attempts")]
        assert len(errors) == 2
        assert all("private" in e for e in errors), errors
    finally:
        await receiver.stop()


async def test_a_deleted_webhook_fails_its_pending_deliveries(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    async with db.pool.acquire() as conn:
        account = await make_account(conn)
        hook = await make_webhook(conn, account, "http://127.0.0.1:9/hook")
        delivery = await make_delivery(conn, account, webhook_id=hook)
        await conn.execute("UPDATE webhooks SET enabled = false WHERE id = $1", hook)
    await sender_factory()
    assert await wait_states(db, [delivery], {"failed"}) == {delivery: "failed"}


async def test_a_slow_endpoint_never_delays_another_customer(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    slow = await Receiver(delay=0.8).start()
    fast = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            a, b = await make_account(conn), await make_account(conn)
            slow_hook = await make_webhook(conn, a, slow.url)
            fast_hook = await make_webhook(conn, b, fast.url)
            slow_ids = [await make_delivery(conn, a, webhook_id=slow_hook) for _ in range(40)]
            fast_ids = [await make_delivery(conn, b, webhook_id=fast_hook) for _ in range(10)]
        started = time.monotonic()
        await sender_factory(per_endpoint=2, max_in_flight=20, timeout=2.0)
        assert set((await wait_states(db, fast_ids, {"delivered"}, 5)).values()) == {"delivered"}
        assert time.monotonic() - started < 1.5
        assert slow.max_concurrent <= 2
        async with db.pool.acquire() as conn:
            pending = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE id = ANY($1) AND state = 'pending'",
                slow_ids,
            )
        assert pending > 30  # still working through the slow one, two at a time
    finally:
        await slow.stop()
        await fast.stop()


async def test_two_instances_never_post_the_same_delivery(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            hook = await make_webhook(conn, account, receiver.url)
            ids = [await make_delivery(conn, account, webhook_id=hook) for _ in range(150)]
        await asyncio.gather(sender_factory("one"), sender_factory("two"))
        states = await wait_states(db, ids, {"delivered"}, 15)
        assert set(states.values()) == {"delivered"}
        seen = collections.Counter(h["X-Warpd-Delivery"] for h, _, _ in receiver.posts)
        assert len(seen) == 150
        assert max(seen.values()) == 1
    finally:
        await receiver.stop()


async def test_notify_wakes_the_sender_before_its_poll(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver().start()
    try:
        await sender_factory()
        await asyncio.sleep(0.3)
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            hook = await make_webhook(conn, account, receiver.url)
            delivery = await make_delivery(conn, account, webhook_id=hook)
            await conn.execute(f"NOTIFY {CHANNEL}")
        assert (await wait_states(db, [delivery], {"delivered"}, 5))[delivery] == "delivered"
    finally:
        await receiver.stop()


@pytest.mark.parametrize("status", [301, 404, 410])
async def test_non_2xx_answers_are_retried(
    db: Database, sender_factory: Callable[..., Any], status: int
) -> None:
    receiver = await Receiver([status]).start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            hook = await make_webhook(conn, account, receiver.url)
            delivery = await make_delivery(conn, account, webhook_id=hook)
        await sender_factory()
        assert (await wait_states(db, [delivery], {"delivered"}))[delivery] == "delivered"
        assert len(receiver.posts) == 2
    finally:
        await receiver.stop()


@pytest.mark.parametrize(
    ("successor", "lease"),
    [("successor", 1.0), ("crashed", 600.0)],
    ids=["another-instance-after-the-lease", "the-same-instance-restarted-at-once"],
)
async def test_a_crashed_instance_claims_are_posted_by_the_next_sender(
    db: Database, successor: str, lease: float
) -> None:
    """Another instance takes a crashed one's claims over once their lease lapses; the
    crashed one restarted under its own name (``cluster.instance_id``, as systemd restarts
    it) posts them at once, without waiting out the lease (600 s there)."""
    receiver = await Receiver(delay=0.5).start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            hook = await make_webhook(conn, account, receiver.url)
            ids = [await make_delivery(conn, account, webhook_id=hook) for _ in range(6)]
        config = WebhooksConfig(**{**FAST, "timeout": 0.25})
        crashed = WebhookSender(db, config, "crashed", lease_seconds=lease)
        await crashed.start()
        async with asyncio.timeout(5):
            while len(receiver.posts) < 4:  # noqa: ASYNC110 - bounded by the timeout
                await asyncio.sleep(0.01)
        await kill_9(crashed)
        assert await held_by(db, "crashed") == 6
        receiver.delay = 0.0
        next_sender = WebhookSender(db, WebhooksConfig(**FAST), successor, lease_seconds=lease)
        await next_sender.start()
        try:
            states = await wait_states(db, ids, {"delivered"}, 10)
        finally:
            await next_sender.stop()
        assert set(states.values()) == {"delivered"}, states
    finally:
        await receiver.stop()


async def kill_9(sender: WebhookSender) -> None:
    """What kill -9 leaves: no hand-back, no flush; the claims stay in the table."""
    assert sender._runner is not None
    sender._runner.cancel()
    for task in list(sender._tasks):
        task.cancel()
    await asyncio.sleep(0)
    assert sender._session is not None
    await sender._session.close()


async def held_by(db: Database, instance: str) -> int:
    async with db.pool.acquire() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE claimed_by = $1", instance
        ))  # fmt: skip


@pytest.mark.parametrize("url", ["http://", "https://:80/x", "http://[::1/x"])
async def test_an_unusable_callback_url_fails_alone(
    db: Database, sender_factory: Callable[..., Any], url: str
) -> None:
    receiver = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            bad = await make_delivery(conn, account, url=url)
            good = await make_delivery(conn, account, url=receiver.url)
        await sender_factory()
        states = await wait_states(db, [bad, good], {"failed", "delivered"})
        assert states == {bad: "failed", good: "delivered"}
    finally:
        await receiver.stop()


async def test_the_payload_is_sent_as_stored_to_the_digit(
    db: Database, sender_factory: Callable[..., Any]
) -> None:
    receiver = await Receiver().start()
    try:
        async with db.pool.acquire() as conn:
            account = await make_account(conn)
            delivery = await make_delivery(conn, account, url=receiver.url)
            await conn.execute(
                "UPDATE deliveries SET payload = jsonb_build_object('n',"
                " 123456789012345678901234567890::numeric) WHERE id = $1", delivery,
            )  # fmt: skip
        await sender_factory()
        assert (await wait_states(db, [delivery], {"delivered"}))[delivery] == "delivered"
        assert receiver.posts[0][1] == b'{"n": 123456789012345678901234567890}'
    finally:
        await receiver.stop()
