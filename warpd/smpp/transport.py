"""What both SMPP ends share: one asyncio Protocol driving one sans-I/O session.

``data_received`` never awaits (STYLE.md, aiohttp): it feeds the session,
hands each event to the subclass, writes what the session queued once, and
re-arms the session's single timer with ``loop.call_at``. The session's
clock is the loop's (monotonic), so its deadlines are the loop's times.
"""

from __future__ import annotations

import asyncio
import typing

from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import Event


class SessionProtocol(asyncio.Protocol):
    session: SmppSession
    #: At most this many events per callback; the rest wait for the next loop
    #: turn, with reading paused, so one peer's burst (a customer's window of
    #: submits in one read) does not hold up the carrier responses that keep
    #: the upstream windows full. None: all at once.
    events_per_turn: int | None = None

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._flush_pending = False
        self._turn_pending = False
        self.peer = ""

    # -- subclass hooks ------------------------------------------------------

    def handle_event(self, event: Event) -> None:
        raise NotImplementedError

    def after_events(self) -> None:
        """Called once per read or timer, after every event: pump windows here."""

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = typing.cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, self._loop.time())
        self.process()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.session.closed:
            self.session.close("connection lost" if exc is None else f"connection lost: {exc}")
        self._drain_events(None)
        self.transport = None

    # -- driving the session ---------------------------------------------------

    def process(self) -> None:
        self._drain_events(self.events_per_turn)
        self.after_events()
        self.flush()

    def reading_paused(self, paused: bool) -> None:
        """Events wait for a later turn (True) or are all handled (False)."""

    def flush_soon(self) -> None:
        """Write what the session queued once this loop iteration ends.

        Answers that complete outside ``data_received`` (a group commit
        answering a thousand submits, a journal batch settling receipts)
        would each cost a send(2); collected, they cost one.
        """
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush_later)

    def _flush_later(self) -> None:
        self._flush_pending = False
        self.flush()

    def flush(self) -> None:
        session, transport = self.session, self.transport
        data = session.data_to_send()
        if transport is None:
            return
        if data:
            transport.write(data)
        if session.closed:
            transport.close()
            return
        self._arm_timer()

    def _drain_events(self, budget: int | None) -> None:
        session = self.session
        event = session.next_event()
        while event is not None:
            self.handle_event(event)
            if budget is not None:
                budget -= 1
                if budget <= 0 and session.events_pending:
                    if not self._turn_pending:
                        self._turn_pending = True
                        self.reading_paused(True)
                        self._loop.call_soon(self._next_turn)
                    return
            event = session.next_event()

    def _next_turn(self) -> None:
        self._turn_pending = False
        self.process()
        if not self._turn_pending:
            self.reading_paused(False)

    def _arm_timer(self) -> None:
        deadline = self.session.get_timer()
        timer = self._timer
        if timer is not None:
            if timer.when() == deadline:
                return
            timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def now(self) -> float:
        return self._loop.time()

    def _on_timer(self) -> None:
        self._timer = None
        self.session.handle_timer(self._loop.time())
        self.process()
