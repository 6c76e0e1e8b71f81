"""The asyncio ng client for one rtpengine instance (rtpengine-ng.md section 3).

One connected UDP socket; each request gets a fresh cookie
``<instance-prefix>_<random32>_<seq>`` (Kamailio's scheme) and a future keyed by
it. Without a reply within ``timeout`` the SAME bytes go out again with the SAME
cookie: rtpengine caches replies by cookie for 30-60 s, so a retransmission
returns the byte-identical reply and is never executed twice. After
``attempts`` sends the request fails with ``NgTimeout``. Waiting is a timer
handle and a future, so other calls proceed meanwhile (Kamailio blocks its
worker in ``poll()`` for up to 5 s instead).

The socket is connected so that the kernel drops datagrams from other sources
and reports ICMP port-unreachable as ``error_received``: an rtpengine that is
not running fails its requests at once instead of after every retransmission.

Requests go as JSON (see protocols/ng/messages.py for why and when not). An
rtpengine too old to read JSON answers ``Invalid NG data format``: the client
then speaks bencode to that instance from that request on.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

from media.errors import NgSendError, NgTimeout
from media.metrics import ErrorKind, InstanceMetrics, NgMetrics
from protocols.ng.errors import INVALID_FORMAT, LOAD_LIMIT, NgError
from protocols.ng.messages import Ping, Request, encode_request
from protocols.ng.replies import Reply, Result, decode_reply


class _Pending:
    """One request in flight: its bytes, its future and its retransmission timer."""

    __slots__ = ("attempts_left", "command", "data", "future", "retransmitted", "sent_at", "timer")

    def __init__(self, data: bytes, future: asyncio.Future[Reply], command: str, attempts: int):
        self.data = data
        self.future = future
        self.command = command
        self.attempts_left = attempts
        self.retransmitted = False
        self.sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None


class _NgDatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._client._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        self._client._on_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._on_lost(exc)


class NgClient:
    """Requests to one rtpengine at ``(host, port)``; open() before use."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str | None = None,
        instance_prefix: str = "warpd",
        timeout: float = 0.5,
        attempts: int = 3,
        metrics: InstanceMetrics | None = None,
    ) -> None:
        if attempts < 1 or timeout <= 0:
            raise ValueError("attempts must be >= 1 and timeout > 0")
        if not instance_prefix or " " in instance_prefix:
            raise ValueError("instance_prefix must be a non-empty token without spaces")
        self.host = host
        self.port = port
        self.name = name if name is not None else f"{host}:{port}"
        self.timeout = timeout
        self.attempts = attempts
        self.metrics = metrics if metrics is not None else NgMetrics().instance(self.name)
        # The random part keeps a restarted process from colliding with
        # cookies rtpengine still caches from its previous life.
        self._cookie_prefix = f"{instance_prefix}_{secrets.randbits(32):08x}_".encode()
        self._seq = itertools.count(1)
        self._pending: dict[bytes, _Pending] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.speaks_json = True
        """False once the instance refused a JSON request as not ng data."""

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _NgDatagramProtocol(self), remote_addr=(self.host, self.port)
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._fail_all(NgSendError(f"rtpengine client {self.name} closed"))

    async def __aenter__(self) -> NgClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def request(self, request: Request) -> Reply:
        """Send and await the reply. ``result: error`` and ``load limit`` raise
        ``NgError``; no reply raises ``NgTimeout``; a socket error ``NgSendError``."""
        reply = await self._exchange(request, self.speaks_json)
        if self.speaks_json and reply.error_reason == INVALID_FORMAT:
            # Our JSON is valid, so the instance does not read JSON at all.
            self.speaks_json = False
            reply = await self._exchange(request, False)
        return self._check(reply)

    async def _exchange(self, request: Request, prefer_json: bool) -> Reply:
        transport, loop = self._transport, self._loop
        if transport is None or loop is None:
            raise NgSendError(f"rtpengine client {self.name} is not open")
        cookie = self._cookie_prefix + b"%d" % next(self._seq)
        command = request.command.value
        data = encode_request(cookie, request, prefer_json=prefer_json)
        pending = _Pending(data, loop.create_future(), command, self.attempts)
        self._pending[cookie] = pending
        self.metrics.request(command)
        try:
            self._transmit(cookie, pending)
            reply = await pending.future
        finally:
            # Also on cancellation: no timer may fire for a forgotten request.
            if pending.timer is not None:
                pending.timer.cancel()
            del self._pending[cookie]
        return reply

    async def ping(self) -> None:
        """Raises unless the instance answers ``pong``."""
        reply = await self.request(Ping())
        if reply.result is not Result.PONG:
            raise NgError(f"ping answered {reply.result.value!r}, not pong")

    def _transmit(self, cookie: bytes, pending: _Pending) -> None:
        transport, loop = self._transport, self._loop
        if transport is None or loop is None:
            self.metrics.error(ErrorKind.SEND)
            pending.future.set_exception(NgSendError(f"rtpengine client {self.name} closed"))
            return
        pending.attempts_left -= 1
        pending.sent_at = loop.time()
        try:
            transport.sendto(pending.data)
        except OSError as exc:
            self.metrics.error(ErrorKind.SEND)
            pending.future.set_exception(NgSendError(f"{self.name}: {exc}"))
            return
        pending.timer = loop.call_later(self.timeout, self._on_timer, cookie)

    def _on_timer(self, cookie: bytes) -> None:
        pending = self._pending.get(cookie)
        if pending is None or pending.future.done():
            return
        if pending.attempts_left > 0:
            pending.retransmitted = True
            self.metrics.retransmission()
            self._transmit(cookie, pending)
            return
        self.metrics.error(ErrorKind.TIMEOUT)
        pending.future.set_exception(
            NgTimeout(f"{self.name}: no reply to {pending.command} after {self.attempts} sends")
        )

    def _on_datagram(self, data: bytes) -> None:
        space = data.find(b" ")
        pending = self._pending.get(data[:space]) if space > 0 else None
        if pending is None or pending.future.done():
            # A late duplicate of a reply already taken, or not ours at all.
            self.metrics.error(ErrorKind.UNKNOWN_COOKIE)
            return
        try:
            _, reply = decode_reply(data)
        except NgError as exc:
            self.metrics.error(ErrorKind.MALFORMED)
            pending.future.set_exception(exc)
            return
        # Karn's rule: after a retransmission we cannot tell which send this
        # reply answers, so the sample would be wrong.
        if not pending.retransmitted and self._loop is not None:
            self.metrics.round_trip(pending.command, self._loop.time() - pending.sent_at)
        pending.future.set_result(reply)

    def _on_error(self, exc: Exception) -> None:
        # On a connected UDP socket the error concerns our one peer, so every
        # request to it fails now rather than after its retransmissions.
        self.metrics.error(ErrorKind.SEND)
        self._fail_all(NgSendError(f"{self.name}: {exc}"))

    def _on_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail_all(NgSendError(f"{self.name}: socket closed ({exc})"))

    def _fail_all(self, exc: NgSendError) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)

    def _check(self, reply: Reply) -> Reply:
        if reply.result is Result.ERROR:
            error = NgError(reply.error_reason or "error without error-reason")
        elif reply.result is Result.LOAD_LIMIT:
            error = NgError(LOAD_LIMIT)
        else:
            return reply
        self.metrics.error(ErrorKind.OVERLOAD if error.is_overload else ErrorKind.ERROR_REPLY)
        raise error
