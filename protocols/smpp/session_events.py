"""Events and configuration of the sans-I/O SMPP session (STYLE.md section 2).

Timer names follow SMPP 3.4 section 7.2: session_init_timer,
enquire_link_timer, inactivity_timer and response_timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.constants import INTERFACE_VERSION_33, CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import BindRequest, BindResponse, Pdu
from protocols.smpp.session_state import BindState
from protocols.smpp.tlv import Tag, tlv_int


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Timers (seconds) and the outstanding-request window; None disables a timer."""

    #: Requests (submit_sm, deliver_sm, data_sm, ...) in flight before ``send`` refuses.
    window: int = 10
    #: response_timer: how long a request waits for its response.
    response_timeout: float = 30.0
    #: enquire_link_timer: idle time (nothing received) before we send enquire_link.
    enquire_link_interval: float | None = 30.0
    #: inactivity_timer: time without traffic (enquire_link does not count) before unbinding.
    inactivity_timeout: float | None = None
    #: session_init_timer: time from connect to a completed bind (Jasmin uses 30 s).
    session_init_timeout: float | None = 30.0
    #: Largest command_length accepted.
    max_pdu_size: int = 65536

    def __post_init__(self) -> None:
        if self.window < 1 or self.response_timeout <= 0:
            raise ValueError("window must be >= 1 and response_timeout > 0")
        for value in (
            self.enquire_link_interval,
            self.inactivity_timeout,
            self.session_init_timeout,
        ):
            if value is not None and value <= 0:
                raise ValueError("timers must be > 0 or None")


class WindowFull(SmppError):
    """``send`` of a request while ``window`` requests are outstanding: back off.

    command_status ESME_RMSGQFUL is what the glue may answer a customer with
    when it cannot queue the message elsewhere.
    """

    def __init__(self, window: int) -> None:
        super().__init__(CommandStatus.ESME_RMSGQFUL, f"{window} requests outstanding")


class NotAllowed(SmppError):
    """``send`` of a PDU the bind state does not allow (the glue's mistake)."""

    def __init__(self, message: str) -> None:
        super().__init__(CommandStatus.ESME_RINVBNDSTS, message)


@dataclass(frozen=True, slots=True)
class PduReceived:
    """A request from the peer that the glue must act on (and answer, if it has a response)."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class BindRequested:
    """SMSC side: a bind_* arrived in OPEN; answer with ``send(bind_response(pdu, ...))``.

    Nothing received after the bind is handled until that answer is sent.
    """

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class Bound:
    """The bind completed.

    ``system_id`` and ``interface_version`` are the peer's: on the SMSC side
    from its bind, on the ESME side from the bind_resp (its system_id, and its
    sc_interface_version TLV, 0x33 when absent as from a 3.3 SMSC).
    ``system_type`` and ``address_range`` are the bind's, on both sides.
    """

    state: BindState
    system_id: str
    interface_version: int
    system_type: str
    address_range: str

    @classmethod
    def from_bind(cls, state: BindState, bind: BindRequest) -> Bound:
        """The SMSC side: everything from the peer's bind."""
        return cls(
            state, bind.system_id, bind.interface_version, bind.system_type, bind.address_range
        )

    @classmethod
    def from_bind_resp(cls, state: BindState, bind: BindRequest, resp: BindResponse) -> Bound:
        """The ESME side: the SMSC's system_id and version, our bind's system_type and range."""
        version = tlv_int(resp.tlvs, Tag.SC_INTERFACE_VERSION)
        return cls(
            state,
            resp.system_id,
            INTERFACE_VERSION_33 if version is None else version,
            bind.system_type,
            bind.address_range,
        )


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response (or generic_nack) to a request we sent."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class ResponseTimeout:
    """No response within response_timeout: requeue or fail the request."""

    request: Pdu


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response whose sequence_number matches nothing outstanding (late, or a peer bug)."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class PduRejected:
    """Inbound bytes the session answered with an error itself (for logs and metrics)."""

    error: SmppError


@dataclass(frozen=True, slots=True)
class WindowOpen:
    """The window was full and a response or a timeout freed a slot: ``send`` may go on.

    Emitted once per full -> not full transition, while bound, after the
    ResponseReceived or ResponseTimeout that freed the slot.
    """


@dataclass(frozen=True, slots=True)
class Unbound:
    """The unbind handshake completed (either side started it)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: close the transport.

    ``unacknowledged`` are the requests we sent that never got a response;
    SMPP gives no delivery guarantee for them, so the glue requeues them.
    """

    reason: str
    unacknowledged: tuple[Pdu, ...] = ()


Event = (
    PduReceived
    | BindRequested
    | Bound
    | ResponseReceived
    | ResponseTimeout
    | StrayResponse
    | PduRejected
    | WindowOpen
    | Unbound
    | Closed
)
