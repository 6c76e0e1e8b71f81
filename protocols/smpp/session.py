"""The sans-I/O SMPP 3.4 session, for either end (SMPP 3.4 sections 2.2-2.9 and 7.2).

Bytes go in with ``receive_data(data, now)``; typed events come out of
``next_event()``; ``send(pdu, now)`` queues a PDU (a request is numbered and
tracked by session_requests.py); ``data_to_send()`` drains the wire bytes;
``get_timer()``/``handle_timer(now)`` drive the section 7.2 timers.

The session answers on its own what needs no policy: enquire_link, requests
the bind state forbids (ESME_RINVBNDSTS), binds while bound (ESME_RALYBND),
unknown commands (generic_nack ESME_RINVCMDID), undecodable PDUs (their
response, or generic_nack) and a broken command_length (generic_nack
ESME_RINVCMDLEN, then CLOSED).  A response is never answered: an undecodable
one is reported (PduRejected) and, when its header names an outstanding
request, settles it as a generic_nack carrying the error status.  Everything
else is the glue's decision: it gets BindRequested / PduReceived and answers
with ``send``.

A bind is decided before anything after it: once BindRequested is out, the
session leaves the rest of the received bytes unread until the glue sends the
bind_resp, then handles them inside that ``send`` (section 2.2: nothing is
answered before the bind_resp). A failed bind, whoever refused it, closes.
"""

from __future__ import annotations

from collections import deque

from protocols.record import replace
from protocols.smpp.codec import encode
from protocols.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    RESPONSE_CLASSES,
    BindRequest,
    BindResponse,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
    error_response,
)
from protocols.smpp.session_events import (
    BindRequested,
    Bound,
    Closed,
    Event,
    NotAllowed,
    PduReceived,
    PduRejected,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    StrayResponse,
    Unbound,
    WindowFull,
    WindowOpen,
)
from protocols.smpp.session_requests import MAX_SEQUENCE_NUMBER, Outstanding, Requests
from protocols.smpp.session_state import (
    BINDS,
    BOUND_STATES,
    INBOUND,
    OUTBOUND,
    STATE_AFTER_BIND,
    WINDOWED,
    Action,
    BindState,
    Role,
)

__all__ = ["MAX_SEQUENCE_NUMBER", "SmppSession"]

_QUIET = frozenset({CommandId.ENQUIRE_LINK, CommandId.ENQUIRE_LINK_RESP})

# Enum class attributes cost a metaclass lookup on Python 3.11; the per-PDU
# paths use these module globals.
_OPEN, _UNBOUND, _CLOSED = BindState.OPEN, BindState.UNBOUND, BindState.CLOSED
_SMSC = Role.SMSC
_GENERIC_NACK, _UNBIND = CommandId.GENERIC_NACK, CommandId.UNBIND


class SmppSession:
    """One SMPP connection's protocol state; the glue owns the socket and the clock."""

    def __init__(
        self,
        role: Role,
        config: SessionConfig | None = None,
        *,
        now: float,
        first_sequence_number: int = 1,
    ) -> None:
        self.role = role
        self.config = config = config or SessionConfig()
        self.state = _OPEN
        self._requests = Requests(config.window, config.response_timeout, first_sequence_number)
        self._reader = PduReader(config.max_pdu_size)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._owed: set[int] = set()  # inbound requests handed to the glue, unanswered
        self._pending_bind: Pdu | None = None
        # SMSC: BindRequested is out and its bind_resp not yet sent; what
        # follows the bind stays in the reader until then.
        self._deciding_bind = False
        self._peer_unbind: Pdu | None = None
        self._drain_deadline = 0.0
        self._created = now
        self._last_rx = now
        self._last_traffic = now
        self._enquiring = False
        self._actions = {
            Action.SURFACE: self._surface,
            Action.BIND: self._bind_requested,
            Action.ENQUIRE_LINK: self._answer_enquire_link,
            Action.UNBIND: self._unbind_requested,
            Action.ALREADY_BOUND: self._already_bound,
        }

    # -- the sans-I/O contract -------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport; every complete PDU is handled now.

        Except after a bind (SMSC): the PDUs behind it wait for its bind_resp.
        """
        if self.state is _CLOSED:
            return
        self._reader.feed(data)
        if not self._deciding_bind:
            self._handle_buffered(now)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def events_pending(self) -> int:
        """Events handled by the session and not yet taken with ``next_event``."""
        return len(self._events)

    def send(self, pdu: Pdu, now: float) -> Pdu:
        """Queue ``pdu``; a request gets the next sequence_number and is returned numbered.

        Raises NotAllowed when the bind state forbids it and WindowFull when
        ``config.window`` requests are already in flight (check ``window_free``).
        """
        if self.state is _CLOSED:
            raise NotAllowed("the session is closed")
        if pdu.command_id & RESPONSE_BIT:
            self._send_response(pdu, now)
            return pdu
        cid = pdu.command_id
        if (self.role, self.state, cid) not in OUTBOUND:
            raise NotAllowed(
                f"{type(pdu).__name__} not allowed for {self.role.name} in {self.state.name}"
            )
        if cid in BINDS and self._pending_bind is not None:
            raise NotAllowed("a bind is already in progress")
        requests = self._requests
        if cid in WINDOWED and requests.windowed >= requests.window:
            raise WindowFull(requests.window)
        return self._send_request(pdu, now, internal=False)

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """The next moment ``handle_timer`` has work to do, or None."""
        if self.state is _CLOSED:
            return None
        config = self.config
        deadlines: list[float] = []
        first = self._requests.deadline
        if first is not None:
            deadlines.append(first)
        if self._awaiting_bind and config.session_init_timeout is not None:
            deadlines.append(self._created + config.session_init_timeout)
        if self._peer_unbind is not None:
            deadlines.append(self._drain_deadline)
        if self.state in BOUND_STATES:
            if config.inactivity_timeout is not None:
                deadlines.append(self._last_traffic + config.inactivity_timeout)
            if config.enquire_link_interval is not None and not self._enquiring:
                deadlines.append(self._last_rx + config.enquire_link_interval)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        if self.state is _CLOSED:
            return
        self._expire_requests(now)
        if self.closed:  # a dead link or an unanswered bind/unbind
            return
        config = self.config
        if (
            self._awaiting_bind
            and config.session_init_timeout is not None
            and now >= self._created + config.session_init_timeout
        ):
            self._close("session_init_timer expired before a bind")
        elif self._peer_unbind is not None and now >= self._drain_deadline:
            self._finish_peer_unbind()
        elif self.state in BOUND_STATES:
            if (
                config.inactivity_timeout is not None
                and now >= self._last_traffic + config.inactivity_timeout
            ):
                self._send_request(Unbind(), now, internal=False)
            elif (
                config.enquire_link_interval is not None
                and not self._enquiring
                and now >= self._last_rx + config.enquire_link_interval
            ):
                self._enquiring = True
                self._send_request(EnquireLink(), now, internal=True)

    def close(self, reason: str = "connection lost") -> None:
        """The transport is gone (or the glue drops it): CLOSED, with a Closed event."""
        self._close(reason)

    @property
    def _awaiting_bind(self) -> bool:
        # session_init_timer runs until a bind arrives: one the peer sent in time
        # is decided however long the glue takes to check its password.
        return self.state is _OPEN and not (self.role is _SMSC and self._pending_bind is not None)

    # -- state the glue reads ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is _CLOSED

    def may_send(self, command_id: int) -> bool:
        """True when ``send`` accepts a PDU with ``command_id`` in this role and state.

        The window is apart (``window_free``): this answers only what the bind
        state, the role and a bind in progress allow. A response may be sent
        until the session closes.
        """
        state = self.state
        if state is _CLOSED:
            return False
        if command_id & RESPONSE_BIT:
            return True
        if command_id in BINDS and self._pending_bind is not None:
            return False
        return (self.role, state, command_id) in OUTBOUND

    @property
    def window_free(self) -> int:
        """How many more windowed requests ``send`` accepts now."""
        return self._requests.window - self._requests.windowed

    @property
    def owed(self) -> int:
        """Inbound requests handed to the glue and not yet answered (pause reading when high)."""
        return len(self._owed)

    # -- inbound ------------------------------------------------------------

    def _handle_buffered(self, now: float) -> None:
        reader = self._reader
        while self.state is not _CLOSED:
            try:
                pdu = reader.next_pdu()
            except SmppError as error:
                self._on_undecodable(error, now)
                continue
            if pdu is None:
                return
            self._last_rx = now
            if pdu.command_id & RESPONSE_BIT:
                self._on_response(pdu, now)
            else:
                self._on_request(pdu, now)
                if self._deciding_bind:
                    return

    def _on_undecodable(self, error: SmppError, now: float) -> None:
        self._last_rx = now  # a PDU, if a bad one: the link is alive
        self._reject(error)  # error_response never answers a response
        command_id = error.command_id or 0  # always read when the stream is usable
        if error.stream_unusable:
            self._close("command_length out of range")
        elif command_id & RESPONSE_BIT:
            self._settle_undecodable(error, command_id, now)
        elif command_id in BINDS and self.role is _SMSC and self.state is _OPEN:
            # Section 2.2 (smpp.md section 2): a failed bind is answered, then closed.
            self._close(f"bind refused with status 0x{error.command_status:08x}")

    def _settle_undecodable(self, error: SmppError, command_id: int, now: float) -> None:
        # A response whose header was readable still answers its request: left
        # outstanding, the request would hold its window slot until the
        # response timer and then be sent again (a duplicate to the handset).
        seq = error.sequence_number or 0  # never outstanding: numbers start at 1
        entry = self._requests.answered(seq, command_id)
        if entry is None:
            return
        status = error.received_status or error.command_status
        self._settle(entry, GenericNack(sequence_number=seq, command_status=status), now)

    def _on_request(self, pdu: Pdu, now: float) -> None:
        if pdu.command_id not in _QUIET:
            self._last_traffic = now
        action = INBOUND.get((self.role, self.state, pdu.command_id))
        if action is None:
            self._refuse(pdu, CommandStatus.ESME_RINVBNDSTS)
        else:
            self._actions[action](pdu, now)

    def _surface(self, pdu: Pdu, now: float) -> None:
        if pdu.command_id in RESPONSE_CLASSES:
            self._owed.add(pdu.sequence_number)
        self._events.append(PduReceived(pdu))

    def _bind_requested(self, pdu: Pdu, now: float) -> None:
        self._pending_bind = pdu
        self._deciding_bind = True
        self._owed.add(pdu.sequence_number)
        self._events.append(BindRequested(pdu))

    def _answer_enquire_link(self, pdu: Pdu, now: float) -> None:
        self._write(EnquireLinkResp(sequence_number=pdu.sequence_number))

    def _unbind_requested(self, pdu: Pdu, now: float) -> None:
        # Section 2.9: answer once the responses the glue owes are sent, so
        # nothing accepted is left unanswered; the drain is bounded in time.
        self._peer_unbind = pdu
        self._drain_deadline = now + self.config.response_timeout
        self.state = _UNBOUND
        if not self._owed:
            self._finish_peer_unbind()

    def _already_bound(self, pdu: Pdu, now: float) -> None:
        self._refuse(pdu, CommandStatus.ESME_RALYBND)

    def _finish_peer_unbind(self) -> None:
        assert self._peer_unbind is not None
        self._write(UnbindResp(sequence_number=self._peer_unbind.sequence_number))
        self._events.append(Unbound())
        self._close("unbound by the peer")

    def _refuse(self, pdu: Pdu, status: CommandStatus) -> None:
        error = SmppError(
            status,
            f"{type(pdu).__name__} refused for {self.role.name} in {self.state.name}",
            command_id=pdu.command_id,
            sequence_number=pdu.sequence_number,
        )
        self._reject(error)

    def _reject(self, error: SmppError) -> None:
        answer = error_response(error)
        if answer is not None:
            self._write(answer)
        self._events.append(PduRejected(error))

    def _on_response(self, pdu: Pdu, now: float) -> None:
        entry = self._requests.answered(pdu.sequence_number, pdu.command_id)
        if entry is None:
            self._events.append(StrayResponse(pdu))
            return
        self._settle(entry, pdu, now)

    def _settle(self, entry: Outstanding, response: Pdu, now: float) -> None:
        reopened = self._requests.remove(entry)
        request = entry.request
        cid = request.command_id
        if entry.internal:
            self._enquiring = False
            return
        if response.command_id not in _QUIET:
            self._last_traffic = now
        events = self._events
        events.append(ResponseReceived(request, response))
        if reopened and self.state in BOUND_STATES:
            events.append(WindowOpen())
        if cid in BINDS:
            self._bind_answered(request, response)
        elif cid == _UNBIND:
            events.append(Unbound())
            self._close("unbound")

    def _bind_answered(self, request: Pdu, response: Pdu) -> None:
        self._pending_bind = None
        if (
            response.command_status
            or response.command_id == _GENERIC_NACK
            or not isinstance(request, BindRequest)
            or not isinstance(response, BindResponse)
        ):
            # Section 2.2: the SMSC refused; it closes the link, and so do we.
            self._close(f"bind refused with status 0x{response.command_status:08x}")
            return
        self.state = state = STATE_AFTER_BIND[request.command_id]
        self._events.append(Bound.from_bind_resp(state, request, response))

    # -- outbound -----------------------------------------------------------

    def _send_request(self, pdu: Pdu, now: float, *, internal: bool) -> Pdu:
        requests = self._requests
        pdu = replace(pdu, sequence_number=requests.number())
        self._write(pdu)  # raises before any state changes if a field is invalid
        requests.add(pdu, now, internal=internal)
        cid = pdu.command_id
        if cid not in _QUIET:
            self._last_traffic = now
        if cid in BINDS:
            self._pending_bind = pdu
        elif cid == _UNBIND:
            self.state = _UNBOUND
        return pdu

    def _send_response(self, pdu: Pdu, now: float) -> None:
        seq = pdu.sequence_number
        try:
            self._write(pdu)
        except SmppError:
            # Not sent, and not owed any more: an unbind must not wait for it.
            self._owed.discard(seq)
            self._after_response(pdu, None, now)
            raise
        self._owed.discard(seq)
        if self._deciding_bind or self._peer_unbind is not None:
            self._after_response(pdu, pdu, now)

    def _after_response(self, pdu: Pdu, sent: Pdu | None, now: float) -> None:
        pending = self._pending_bind
        if (
            self._deciding_bind
            and pending is not None
            and pdu.sequence_number == pending.sequence_number
            and pdu.command_id in (pending.command_id | RESPONSE_BIT, _GENERIC_NACK)
        ):
            self._bind_decided(pending, sent, now)
        if self._peer_unbind is not None and not self._owed and self.state is not _CLOSED:
            self._finish_peer_unbind()

    def _bind_decided(self, request: Pdu, response: Pdu | None, now: float) -> None:
        self._pending_bind = None
        self._deciding_bind = False
        if response is None:
            self._close("the bind_resp could not be encoded")
            return
        if (
            response.command_status
            or response.command_id == _GENERIC_NACK
            or not isinstance(request, BindRequest)
        ):
            # smpp.md section 2: send bind_resp with the error, then close;
            # what the peer sent after the bind is never read.
            self._close(f"bind refused with status 0x{response.command_status:08x}")
            return
        self.state = state = STATE_AFTER_BIND[request.command_id]
        self._events.append(Bound.from_bind(state, request))
        self._handle_buffered(now)

    def _write(self, pdu: Pdu) -> None:
        self._out += encode(pdu)

    def _expire_requests(self, now: float) -> None:
        requests = self._requests
        while (entry := requests.expired(now)) is not None:
            reopened = requests.remove(entry)
            cid = entry.request.command_id
            if entry.internal:
                self._close("enquire_link unanswered: the link is dead")
                return
            self._events.append(ResponseTimeout(entry.request))
            if reopened and self.state in BOUND_STATES:
                self._events.append(WindowOpen())
            if cid in BINDS or cid == _UNBIND:
                self._close(f"{type(entry.request).__name__} unanswered")
                return

    def _close(self, reason: str) -> None:
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        self._events.append(Closed(reason, self._requests.clear()))
