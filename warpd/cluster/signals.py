"""Wake-ups between instances over PostgreSQL LISTEN/NOTIFY.

The durable state is always a row (a queued message, a pending delivery);
a notification only tells the instance that can act on it to look now
rather than at its next poll. A lost notification therefore costs latency,
never data, which is why the hand-over needs nothing stronger (README
"Running several instances" has the RabbitMQ comparison).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Work for a connector left in the table for an instance that holds its bind.
QUEUED = "warpd_queued"
# A receipt or MO waits for a customer bound to another instance; sent by the
# journal's own transaction (warpd/sms/journal.py).
SMPP_DELIVERIES = "warpd_smpp_deliveries"

# Notifications are gathered this long, so a busy second sends a few, not thousands.
COALESCE = 0.02
RECONNECT = 2.0

Handler = Callable[[str], None]


class Signals:
    def __init__(self, dsn: str, *, timeout: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._handlers: dict[str, Handler] = {}
        self._outgoing: set[tuple[str, str]] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.received = 0

    def on(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler

    def notify(self, channel: str, payload: str = "") -> None:
        """Tell the other instances, soon; repeats within COALESCE go as one."""
        self._outgoing.add((channel, payload))
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(COALESCE, self._send_soon)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster-signals")

    async def stop(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.close(timeout=1.0)

    async def _run(self) -> None:
        while True:
            lost = asyncio.get_running_loop().create_future()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
                conn.add_termination_listener(lambda _c, lost=lost: _settle(lost))
                for channel in self._handlers:
                    await conn.add_listener(channel, self._received)
                self._conn = conn
                # Whatever was said while we were away is in the tables: look now.
                for handler in self._handlers.values():
                    handler("")
                await lost
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cluster_signals_lost", error=str(exc))
            self._conn = None
            await asyncio.sleep(RECONNECT)

    def _received(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if self._conn is not None and pid == self._conn.get_server_pid():
            return  # our own
        self.received += 1
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(str(payload))

    def _send_soon(self) -> None:
        self._flush = None
        asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        conn, batch = self._conn, self._outgoing
        self._outgoing = set()
        if conn is None or not batch:
            return  # the others poll; the rows are there
        channels, payloads = zip(*batch, strict=True)
        try:
            await conn.execute(
                "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)",
                list(channels),
                list(payloads),
            )
            self.sent += len(batch)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cluster_notify_failed", error=str(exc))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
