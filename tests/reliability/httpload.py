"""An HTTP customer for the crash runs: paced ``POST /v1/sms`` through restarts, and the
webhook endpoint its receipts come back to. Both live in the test process, so what they
saw survives every ``kill -9`` of warpd."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass(slots=True)
class HttpLog:
    """What the customer saw: ids answered 202, other answers by status, and failures."""

    accepted: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    offered: int = 0


@dataclass(slots=True)
class Receipts:
    """The receipts POSTed to the webhook endpoint, per message id."""

    states: dict[str, list[str]] = field(default_factory=dict)

    def duplicates(self) -> int:
        return sum(len(s) - 1 for s in self.states.values() if len(s) > 1)


@asynccontextmanager
async def webhook_sink() -> AsyncIterator[tuple[str, Receipts]]:
    """A loopback endpoint answering 204 to every receipt; yields its URL and what came."""
    receipts = Receipts()

    async def take(request: web.Request) -> web.Response:
        event = await request.json()
        receipts.states.setdefault(event["message_id"], []).append(event["state"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site.port}/hook", receipts
    finally:
        await runner.cleanup()


async def send_paced(
    base_url: str, api_key: str, callback_url: str, rate: float, until: asyncio.Event, log: HttpLog
) -> HttpLog:
    """Offer ``rate`` messages a second, each with its own request, until ``until`` is set;
    keep going while warpd is down (those fail and are not acknowledged)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    timeout = aiohttp.ClientTimeout(total=15)
    pending: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        body = {"to": f"+44770090{n % 10000:04d}", "from": "WARPD", "text": f"crash {n}",
                "callback_url": callback_url}  # fmt: skip
        try:
            async with session.post(f"{base_url}/v1/sms", json=body, headers=headers) as r:
                log.statuses[r.status] += 1
                if r.status == 202:
                    log.accepted.append((await r.json())["id"])
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.failures[type(exc).__name__] += 1

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        while not until.is_set():
            due = int((time.monotonic() - started) * rate) + 1
            while log.offered < due:
                log.offered += 1
                task = asyncio.create_task(one(session, log.offered))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.sleep(0.01)
        if pending:
            await asyncio.wait(pending)
    return log
