"""A deadline for each connection's first request head on the HTTP listener.

aiohttp has no timeout for reading a request's headers: a client that sends one
header byte every few seconds keeps its connection, and a slot of the listener,
until ``keepalive_timeout`` (75 s) has passed since it connected; a few thousand
of them exhaust the process's file descriptors (slowloris). aiohttp's own
keep-alive timer bounds what follows the first response, so only the first head
needs a guard.

The guard sits at the protocol level, between the transport and aiohttp's
request handler: it passes every callback through unchanged, watches the bytes
for the blank line that ends the head (RFC 9112 section 2.1; a bare LF line end
too, as section 2.2 lets a recipient accept it), and aborts the connection if
that line has not arrived by the deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

_HEAD_ENDS = (b"\n\r\n", b"\n\n")


class HeadDeadline(asyncio.Protocol):
    """Wraps one aiohttp request handler; aborts its connection if the first head is late."""

    __slots__ = ("_inner", "_tail", "_timeout", "_timer", "_transport")

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a blank line split across reads
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._timer.cancel()
                self._timer = None
            else:
                self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        log.info("http_head_timeout", peer=str(peer), seconds=self._timeout)
        # abort, not close: nothing was asked, so nothing is owed, and close() would
        # wait for a write buffer the peer may never drain. (A stream transport: uvloop's
        # do not subclass asyncio.WriteTransport, so no isinstance check.)
        cast(asyncio.Transport, transport).abort()


class GuardedSite(web.BaseSite):
    """aiohttp's TCPSite, with every accepted connection wrapped in a HeadDeadline."""

    __slots__ = ("_head_timeout", "_host", "_port")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, head_timeout: float, **kw: Any
    ) -> None:
        super().__init__(runner, **kw)
        self._host, self._port, self._head_timeout = host, port, head_timeout

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        handler_of = self._runner.server
        assert handler_of is not None, "the runner is set up before its sites start"
        timeout = self._head_timeout
        self._server = await asyncio.get_running_loop().create_server(
            lambda: HeadDeadline(handler_of(), timeout), self._host, self._port,
            reuse_address=True,
        )  # fmt: skip
