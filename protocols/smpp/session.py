"""The sans-I/O SMPP 3.4 session, for either end (SMPP 3.4 sections 2.2-2.9 and 7.2).

Bytes go in with ``receive_data(data, now)``; typed events come out of
``next_event()``; ``send(pdu, now)`` queues a PDU (numbering requests 1 ..
0x7FFFFFFF and wrapping, section 5.1.4); ``data_to_send()`` drains the wire
bytes; ``get_timer()``/``handle_timer(now)`` drive the section 7.2 timers.

The session answers on its own what needs no policy: enquire_link, requests
the bind state forbids (ESME_RINVBNDSTS), binds while bound (ESME_RALYBND),
unknown commands (generic_nack ESME_RINVCMDID), undecodable PDUs (their
response, or generic_nack) and a broken command_length (generic_nack
ESME_RINVCMDLEN, then CLOSED).  Everything else is the glue's decision: it
gets BindRequested / PduReceived and answers with ``send``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from protocols.record import replace
from protocols.smpp.codec import encode
from protocols.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    RESPONSE_CLASSES,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    EnquireLink,
    EnquireLinkResp,
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
)
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

MAX_SEQUENCE_NUMBER = 0x7FFFFFFF
_QUIET = frozenset({CommandId.ENQUIRE_LINK, CommandId.ENQUIRE_LINK_RESP})
_BindPdu = BindTransmitter | BindReceiver | BindTransceiver
_BindRespPdu = BindTransmitterResp | BindReceiverResp | BindTransceiverResp


@dataclass(slots=True)
class _Outstanding:
    request: Pdu
    deadline: float
    internal: bool  # an enquire_link the session sent on its own


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
        if not 1 <= first_sequence_number <= MAX_SEQUENCE_NUMBER:
            raise ValueError("sequence numbers run 1..0x7FFFFFFF")
        self.role = role
        self.config = config or SessionConfig()
        self.state = _OPEN
        self._reader = PduReader(self.config.max_pdu_size)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._next_seq = first_sequence_number
        # Insertion order is deadline order: one response_timeout for all.
        self._outstanding: dict[int, _Outstanding] = {}
        self._windowed = 0
        self._owed: set[int] = set()  # inbound requests handed to the glue, unanswered
        self._pending_bind: Pdu | None = None
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
        """Feed bytes from the transport; every complete PDU is handled now."""
        if self.state is _CLOSED:
            return
        reader = self._reader
        reader.feed(data)
        while not self.closed:
            try:
                pdu = reader.next_pdu()
            except SmppError as error:
                self._reject(error)
                if error.stream_unusable:
                    self._close("command_length out of range")
                continue
            if pdu is None:
                return
            self._last_rx = now
            if pdu.command_id & RESPONSE_BIT:
                self._on_response(pdu, now)
            else:
                self._on_request(pdu, now)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def send(self, pdu: Pdu, now: float) -> Pdu:
        """Queue ``pdu``; a request gets the next sequence_number and is returned numbered.

        Raises NotAllowed when the bind state forbids it and WindowFull when
        ``config.window`` requests are already in flight (check ``window_free``).
        """
        if self.state is _CLOSED:
            raise NotAllowed("the session is closed")
        if pdu.command_id & RESPONSE_BIT:
            self._send_response(pdu)
            return pdu
        cid = pdu.command_id
        if (self.role, self.state, cid) not in OUTBOUND:
            raise NotAllowed(
                f"{type(pdu).__name__} not allowed for {self.role.name} in {self.state.name}"
            )
        if cid in BINDS and self._pending_bind is not None:
            raise NotAllowed("a bind is already in progress")
        if cid in WINDOWED and self._windowed >= self.config.window:
            raise WindowFull(self.config.window)
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
        first = next(iter(self._outstanding.values()), None)
        if first is not None:
            deadlines.append(first.deadline)
        if self.state is _OPEN and config.session_init_timeout is not None:
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
            self.state is _OPEN
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

    # -- state the glue reads ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is _CLOSED

    @property
    def window_free(self) -> int:
        """How many more windowed requests ``send`` accepts now."""
        return self.config.window - self._windowed

    @property
    def owed(self) -> int:
        """Inbound requests handed to the glue and not yet answered (pause reading when high)."""
        return len(self._owed)

    # -- inbound ------------------------------------------------------------

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
        if self._pending_bind is not None:
            self._refuse(pdu, CommandStatus.ESME_RALYBND)
            return
        self._pending_bind = pdu
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
        entry = self._outstanding.get(pdu.sequence_number)
        if entry is None or pdu.command_id not in (
            entry.request.command_id | RESPONSE_BIT,
            _GENERIC_NACK,
        ):
            self._events.append(StrayResponse(pdu))
            return
        del self._outstanding[pdu.sequence_number]
        request = entry.request
        if request.command_id in WINDOWED:
            self._windowed -= 1
        if entry.internal:
            self._enquiring = False
            return
        if pdu.command_id not in _QUIET:
            self._last_traffic = now
        self._events.append(ResponseReceived(request, pdu))
        if request.command_id in BINDS:
            self._bind_answered(request, pdu)
        elif request.command_id == _UNBIND:
            self._events.append(Unbound())
            self._close("unbound")

    def _bind_answered(self, request: Pdu, response: Pdu) -> None:
        self._pending_bind = None
        if response.command_status or response.command_id == _GENERIC_NACK:
            # Section 2.2: the SMSC refused; it closes the link, and so do we.
            self._close(f"bind refused with status 0x{response.command_status:08x}")
            return
        self.state = STATE_AFTER_BIND[request.command_id]
        system_id = response.system_id if isinstance(response, _BindRespPdu) else ""
        self._events.append(Bound(self.state, system_id))

    # -- outbound -----------------------------------------------------------

    def _send_request(self, pdu: Pdu, now: float, *, internal: bool) -> Pdu:
        seq = self._next_seq
        while seq in self._outstanding:  # only after a full wrap with old requests in flight
            seq = seq % MAX_SEQUENCE_NUMBER + 1
        pdu = replace(pdu, sequence_number=seq)
        self._write(pdu)  # raises before any state changes if a field is invalid
        self._next_seq = seq % MAX_SEQUENCE_NUMBER + 1
        cid = pdu.command_id
        if cid not in _QUIET:
            self._last_traffic = now
        if cid in RESPONSE_CLASSES:
            self._outstanding[seq] = _Outstanding(pdu, now + self.config.response_timeout, internal)
            if cid in WINDOWED:
                self._windowed += 1
        if cid in BINDS:
            self._pending_bind = pdu
        elif cid == _UNBIND:
            self.state = _UNBOUND
        return pdu

    def _send_response(self, pdu: Pdu) -> None:
        self._write(pdu)
        seq = pdu.sequence_number
        self._owed.discard(seq)
        pending = self._pending_bind
        if (
            self.role is _SMSC
            and pending is not None
            and seq == pending.sequence_number
            and pdu.command_id == pending.command_id | RESPONSE_BIT
        ):
            self._bind_decided(pending, pdu)
        if self._peer_unbind is not None and not self._owed and not self.closed:
            self._finish_peer_unbind()

    def _bind_decided(self, request: Pdu, response: Pdu) -> None:
        self._pending_bind = None
        if response.command_status:
            # smpp.md section 2: send bind_resp with the error, then close.
            self._close(f"bind refused with status 0x{response.command_status:08x}")
            return
        self.state = STATE_AFTER_BIND[request.command_id]
        system_id = request.system_id if isinstance(request, _BindPdu) else ""
        self._events.append(Bound(self.state, system_id))

    def _write(self, pdu: Pdu) -> None:
        self._out += encode(pdu)

    def _expire_requests(self, now: float) -> None:
        outstanding = self._outstanding
        while outstanding:
            seq, entry = next(iter(outstanding.items()))
            if entry.deadline > now:
                return
            del outstanding[seq]
            cid = entry.request.command_id
            if cid in WINDOWED:
                self._windowed -= 1
            if entry.internal:
                self._close("enquire_link unanswered: the link is dead")
                return
            self._events.append(ResponseTimeout(entry.request))
            if cid in BINDS or cid == _UNBIND:
                self._close(f"{type(entry.request).__name__} unanswered")
                return

    def _close(self, reason: str) -> None:
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        unacknowledged = tuple(
            e.request for e in self._outstanding.values() if e.request.command_id in WINDOWED
        )
        self._outstanding.clear()
        self._windowed = 0
        self._events.append(Closed(reason, unacknowledged))
