"""SIP over TCP and TLS (RFC 3261 section 18.3, RFC 5626 section 4.4.1): listeners,
connections and the connections warpd opens.

Each connection frames its bytes with ``SipStreamFramer`` and hands whole
messages to the ``SipTransport`` with the connection's ``StreamAddr`` as their
address, so responses and in-dialog requests go back on it (18.2.2). A request
warpd sends to a ``StreamAddr`` that no connection holds opens one (TLS checked
against ``[sip] tls_ca``); what is sent meanwhile waits, bounded.

Every bound closes only its own connection, with a log line saying why: a
message over ``max_message_size`` or without Content-Length (answered 413 or
400 first when it can be), garbage, a peer that does not read what it is sent,
more than ``max_connections_per_ip`` connections from one address, a message's
headers not complete ``header_timeout`` seconds after it started (or after the
connection opened: slowloris), nothing at all for ``idle_timeout`` seconds. A
double-CRLF ping is answered with a CRLF pong.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import structlog

from protocols.sip.errors import SipError
from protocols.sip.framing import KeepAlive, SipStreamFramer
from protocols.sip.message import SipResponse
from protocols.sip.parser import MAX_MESSAGE_SIZE
from protocols.sip.transaction import StreamAddr, Transport
from warpd.voice.transport import SipTransport

log = structlog.get_logger(__name__)

# What a connection may hold unsent (a peer that stops reading), and what may
# wait for a connection being opened, before it is given up.
MAX_WRITE_BUFFER = 1 << 20
MAX_PENDING = 64
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_per_ip: int = 64
    idle_timeout: float = 300.0
    header_timeout: float = 10.0
    max_message_size: int = MAX_MESSAGE_SIZE


class SipConnection(asyncio.Protocol):
    """One TCP or TLS connection: bytes to framed messages, deadlines, writes."""

    def __init__(self, streams: SipStreams, transport: Transport, addr: StreamAddr | None) -> None:
        self._streams = streams
        self._kind = transport
        # Known before connecting when warpd opens it; the peer's source otherwise.
        self.addr = addr
        self.inbound = addr is None
        self._framer = SipStreamFramer(streams.limits.max_message_size)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._last_message = self._loop.time()
        self._head_due: float | None = None  # a message (or the first one) must be in by then
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self.inbound:
            peer = transport.get_extra_info("peername")
            self.addr = StreamAddr(str(peer[0]), int(peer[1]), self._kind)
            if not self._streams.accept(self):
                self._transport.abort()
                return
            self._head_due = self._loop.time() + self._streams.limits.header_timeout
        else:
            assert self.addr is not None
            self._streams.opened(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        addr, sip = self.addr, self._streams.sip
        assert addr is not None
        framer = self._framer
        framer.receive_data(data)
        now = self._loop.time()
        while True:
            try:
                item = framer.next_message()
            except SipError as exc:
                self._refused(exc)
                return
            if item is None:
                break
            self._last_message = now
            if item is KeepAlive.PING:
                self.send(KeepAlive.PONG.value)
            elif isinstance(item, KeepAlive):
                continue
            elif sip.admit(addr.host, now, isinstance(item, SipResponse)):
                sip.receive_message(item, addr)
        # A message begun must have its headers within header_timeout.
        if framer.buffered == 0:
            self._head_due = None
        elif self._head_due is None:
            self._head_due = now + self._streams.limits.header_timeout
            if self._timer_at > self._head_due:
                self._arm()

    def eof_received(self) -> bool | None:
        if self._framer.buffered:
            log.info("sip_stream_closed_mid_message", peer=self._peer(),
                     buffered=self._framer.buffered)  # fmt: skip
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._streams.closed(self)
        self._transport = None

    # -- writing ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("sip_stream_not_reading", peer=self._peer(), buffered=MAX_WRITE_BUFFER)
            transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- bounds ----------------------------------------------------------------------

    def _refused(self, exc: SipError) -> None:
        """The stream cannot be read on: answer what can be answered, then close."""
        assert self.addr is not None
        log.info("sip_stream_refused", peer=self._peer(), status=exc.status_code, reason=str(exc))
        self._streams.sip.refuse(exc, self.addr)
        self.close()  # after the answer: close() flushes what is written

    def _arm(self) -> None:
        due = self._last_message + self._streams.limits.idle_timeout
        if self._head_due is not None:
            due = min(due, self._head_due)
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        # One timer per connection, re-armed when it fires (not on every message).
        self._timer = None
        if self._transport is None:
            return
        now = self._loop.time()
        limits = self._streams.limits
        if self._head_due is not None and now >= self._head_due:
            log.info("sip_stream_header_timeout", peer=self._peer(), seconds=limits.header_timeout,
                     buffered=self._framer.buffered)  # fmt: skip
            self._transport.abort()
        elif now >= self._last_message + limits.idle_timeout:
            log.info("sip_stream_idle", peer=self._peer(), seconds=limits.idle_timeout)
            self._transport.close()
        else:
            self._arm()

    def _peer(self) -> str:
        addr = self.addr
        return "" if addr is None else f"{addr.transport.value.lower()}:{addr.host}:{addr.port}"


class SipStreams:
    """The TCP and TLS listeners and every open connection, by ``StreamAddr``."""

    def __init__(
        self, limits: StreamLimits, *, client_tls: Callable[[], ssl.SSLContext] | None = None
    ) -> None:
        self._sip: SipTransport | None = None
        self.limits = limits
        self._client_tls = client_tls
        self._loop = asyncio.get_running_loop()
        self.connections: dict[StreamAddr, SipConnection] = {}
        self._per_ip: Counter[str] = Counter()
        self._pending: dict[StreamAddr, list[bytes]] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.addresses: dict[Transport, tuple[str, int]] = {}
        self.accepted = 0
        self.refused = 0

    async def listen(
        self, transport: Transport, host: str, port: int, context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        server = await self._loop.create_server(
            lambda: SipConnection(self, transport, None), host, port, ssl=context,
            reuse_address=True, backlog=1024,
            # A TLS handshake that never ends is slowloris too.
            ssl_handshake_timeout=self.limits.header_timeout if context else None,
            start_serving=False,
        )  # fmt: skip
        self._servers.append(server)
        name = server.sockets[0].getsockname()
        bound = (str(name[0]), int(name[1]))
        self.addresses[transport] = bound
        return bound

    async def serve(self, sip: SipTransport) -> None:
        """Accept connections, handing their messages to ``sip`` (bound listeners wait)."""
        self._sip = sip
        sip.streams = self
        for server in self._servers:
            await server.start_serving()

    @property
    def sip(self) -> SipTransport:
        assert self._sip is not None, "serve() comes before any connection"
        return self._sip

    # -- connections -----------------------------------------------------------------

    def accept(self, conn: SipConnection) -> bool:
        addr = conn.addr
        assert addr is not None
        if self._per_ip[addr.host] >= self.limits.max_per_ip:
            self.refused += 1
            log.warning("sip_stream_limit", peer=addr.host, open=self._per_ip[addr.host])
            return False
        self._per_ip[addr.host] += 1
        self.accepted += 1
        self.connections[addr] = conn
        return True

    def opened(self, conn: SipConnection) -> None:
        addr = conn.addr
        assert addr is not None
        self.connections[addr] = conn
        for data in self._pending.pop(addr, []):
            conn.send(data)

    def closed(self, conn: SipConnection) -> None:
        addr = conn.addr
        if addr is None or self.connections.get(addr) is not conn:
            return
        del self.connections[addr]
        if conn.inbound:
            self._per_ip[addr.host] -= 1
            if self._per_ip[addr.host] <= 0:
                del self._per_ip[addr.host]

    def send(self, data: bytes, addr: StreamAddr) -> None:
        """On the connection to ``addr``, opened first if there is none (18.1.1)."""
        conn = self.connections.get(addr)
        if conn is not None:
            conn.send(data)
            return
        pending = self._pending.get(addr)
        if pending is None:
            self._pending[addr] = [data]
            task = self._loop.create_task(self._connect(addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif len(pending) < MAX_PENDING:
            pending.append(data)

    async def _connect(self, addr: StreamAddr) -> None:
        context = None
        if addr.transport is Transport.TLS:
            context = self._client_tls() if self._client_tls else ssl.create_default_context()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._loop.create_connection(
                    lambda: SipConnection(self, addr.transport, addr), addr.host, addr.port,
                    ssl=context, server_hostname=addr.host if context else None,
                )  # fmt: skip
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            dropped = len(self._pending.pop(addr, []))
            log.warning("sip_connect_failed", peer=f"{addr.transport.value.lower()}:"
                        f"{addr.host}:{addr.port}", error=str(exc) or type(exc).__name__,
                        dropped=dropped)  # fmt: skip
            # The transactions waiting on it time out now: a call fails over at once.
            self.sip.transport_failed(addr)

    def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections.values()):
            conn.close()
