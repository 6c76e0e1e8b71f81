"""The asyncio driver of a sans-I/O SIP endpoint (RFC 3261 section 18).

One UDP socket, the TCP/TLS connections (``transport_stream``), one
``Endpoint`` (transactions) and one ``DialogTable`` (2xx retransmissions).
Every input (a datagram, a framed stream message, a timer) is handed to them
with ``loop.time()``, then ``flush()`` sends what they queued (a ``StreamAddr``
on its connection, any other address as a datagram), passes their events to
the TU callback and re-arms one timer at their earliest deadline. The TU calls
the endpoint directly and then ``flush()``; flushing is not re-entrant, so a TU
that answers from inside an event callback is flushed by the outer loop.

Before anything is parsed, each source address spends a token of its request
budget or of its response budget (told apart by the first bytes, ``SIP/`` for a
response): a request flood from a gateway's address, spoofed or not, leaves the
gateway's answers to warpd's own requests alone.

The socket buffers are raised to several MB: at 800 calls/s the default
208 KB receive buffer overflowed and the kernel dropped datagrams.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from protocols.sip.dialogs import DialogAckTimeout, DialogTable
from protocols.sip.endpoint import Endpoint
from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest, SipResponse
from protocols.sip.transaction import Addr, Event, StreamAddr

log = structlog.get_logger(__name__)

# Timer resolution: SIP's shortest timer is T1 (500 ms); 10 ms late is nothing to it.
TICK = 0.01

EventHandler = Callable[[Event], None]
AckTimeoutHandler = Callable[[DialogAckTimeout[Any]], None]
# (source address, now, is a response) -> whether its budget lets it in.
Admission = Callable[[str, float, bool], bool]


class StreamSender(Protocol):
    def send(self, data: bytes, addr: StreamAddr) -> None: ...


def is_response(data: bytes) -> bool:
    """A status line starts ``SIP/2.0`` (RFC 3261 7.2); a request line, a method."""
    return data[:4] == b"SIP/"


def open_udp_socket(host: str, port: int, buffer_bytes: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class SipTransport(asyncio.DatagramProtocol):
    def __init__(
        self,
        endpoint: Endpoint,
        dialogs: DialogTable[Any],
        on_event: EventHandler,
        on_ack_timeout: AckTimeoutHandler,
        *,
        admit: Admission | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.dialogs = dialogs
        self._on_event = on_event
        self._on_ack_timeout = on_ack_timeout
        # A per-source admission check (rate limit) run before any parsing.
        self._admit = admit
        self._transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flushing = False
        self.local_addr: tuple[str, int] = ("", 0)
        self.streams: StreamSender | None = None
        self.dropped = 0

    async def start(self, sock: socket.socket) -> tuple[str, int]:
        """Serve on ``sock`` (from ``open_udp_socket``)."""
        self.local_addr = sock.getsockname()[:2]
        await self._loop.create_datagram_endpoint(lambda: self, sock=sock)
        return self.local_addr

    def admit(self, source: str, now: float, response: bool) -> bool:
        if self._admit is None or self._admit(source, now, response):
            return True
        self.dropped += 1
        return False

    def receive_message(self, message: SipRequest | SipResponse, addr: StreamAddr) -> None:
        """A message a stream framed (and ``admit`` let in)."""
        self.endpoint.receive_message(message, addr, self._loop.time())
        self.flush()

    def transport_failed(self, addr: StreamAddr) -> None:
        """No connection to ``addr`` could be opened: what waited for it fails now."""
        self.endpoint.transport_failed(addr, self._loop.time())
        self.flush()

    def refuse(self, error: SipError, addr: StreamAddr) -> None:
        """What a stream's framer refused: answered on the stream when it can be."""
        self.endpoint.refuse(error, addr)
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDPTransport does not subclass asyncio.DatagramTransport.
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = self._loop.time()
        source: Addr = (addr[0], addr[1])
        if not self.admit(source[0], now, is_response(data)):
            return
        self.endpoint.receive_datagram(data, source, now)
        self.flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket name no request; the transaction's
        # own timers decide (a gateway that is down times out and fails over).
        log.debug("sip_udp_error", error=str(exc))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        self.endpoint.handle_timer(now)
        self.dialogs.handle_timer(now)
        self.flush()

    # -- the pump --------------------------------------------------------------------

    def flush(self) -> None:
        """Send what is queued, deliver events, re-arm the timer."""
        if self._flushing:
            return
        self._flushing = True
        try:
            self._pump()
        finally:
            self._flushing = False
        self._arm()

    def _pump(self) -> None:
        endpoint, dialogs = self.endpoint, self.dialogs
        while True:
            now = self._loop.time()
            out = endpoint.datagrams_to_send(now)
            out += dialogs.datagrams_to_send()
            if out:
                self._send(out)
            event = endpoint.next_event()
            if event is not None:
                self._deliver(self._on_event, event)
                continue
            ack_timeout = dialogs.next_event()
            if ack_timeout is not None:
                self._deliver(self._on_ack_timeout, ack_timeout)
                continue
            if not out:
                return

    def _deliver(self, handler: Callable[[Any], None], event: object) -> None:
        try:
            handler(event)
        except Exception:
            # One call's bug must not stop the transport serving the others.
            log.exception("sip_event_handler_failed", event=type(event).__name__)

    def _send(self, out: list[tuple[bytes, Addr]]) -> None:
        transport = self._transport
        for data, addr in out:
            if isinstance(addr, StreamAddr):
                if self.streams is not None:
                    self.streams.send(data, addr)
                continue
            if transport is None:
                continue
            try:
                transport.sendto(data, addr)
            except (OSError, ValueError) as exc:
                log.warning("sip_send_failed", addr=addr, error=str(exc))

    def _arm(self) -> None:
        """One loop timer at the earliest deadline, rounded up to a ``TICK`` boundary.

        At 1,000 calls/s the transactions' deadlines are a few hundred
        microseconds apart; on a grid they share wake-ups, and the handle is
        replaced only when a deadline falls into an earlier slot."""
        deadline = self.endpoint.get_timer()
        dialogs = self.dialogs.get_timer()
        if deadline is None or (dialogs is not None and dialogs < deadline):
            deadline = dialogs
        if deadline is None:
            return  # an armed timer fires, finds nothing due and is not re-armed
        slot = math.ceil(deadline / TICK) * TICK
        if self._timer_at is not None and self._timer_at <= slot:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = slot
        self._timer = self._loop.call_at(slot, self._on_timer)
