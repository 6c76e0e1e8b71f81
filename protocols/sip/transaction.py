"""SIP transactions, the shared part (RFC 3261 section 17, RFC 6026).

A transaction is a state machine fed three kinds of input: a message from the
network, a response from the TU (server side), and a timer. Each concrete
class (``txn_client``, ``txn_server``) is a table keyed by ``(state, input)``
whose values are handlers. A pair missing from a table is ignored by design:
the network retransmits and reorders, so a late 1xx in Completed or an ACK in
Confirmed is absorbed, and a TU response that races the transaction's own end
(a 200 crossing a CANCEL's 487) is refused by ``respond()`` returning False.
Nothing here raises on network input.

Output is queued: ``outbox`` holds messages for the transaction's peer address
and ``events`` what the TU must hear; the endpoint drains both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, NamedTuple

from protocols.sip.message import SipMessage, SipRequest, SipResponse
from protocols.sip.timers import TimerConfig, TimerName, Timers


class Transport(Enum):
    """The sent-protocol of a Via (RFC 3261 section 18): what carries a message."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"


class StreamAddr(NamedTuple):
    """A peer over TCP or TLS: its messages travel on one connection (18.2.2, 18.3).

    For a connection the peer opened, host and port are its source; for one
    warpd opens, the destination. Distinct from a UDP peer at the same address.
    """

    host: str
    port: int
    transport: Transport


# Where a message goes or came from: (host, port) over UDP, or a stream peer.
Addr = tuple[str, int] | StreamAddr


def is_reliable(addr: Addr) -> bool:
    """Reliable transports (TCP, TLS) retransmit nothing themselves (17.1.1.2, 17.2.1)."""
    return isinstance(addr, StreamAddr)


def transport_of(addr: Addr) -> Transport:
    return addr.transport if isinstance(addr, StreamAddr) else Transport.UDP


# RFC 3261 section 8.1.1.7: a branch starting with this was made by a 3261 stack.
MAGIC_COOKIE = "z9hG4bK"


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"

    # Members are singletons compared by identity: hash them so too. Enum's own
    # __hash__ is a Python-level call, and these key the per-message tables.
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """What matches a message to a transaction (sections 17.1.3 and 17.2.3).

    ``method`` is the CSeq method, with ACK folded into INVITE on the server
    side; ``sent_by`` is the top Via's host:port on the server side (two
    clients could pick the same branch) and empty on the client side.
    """

    role: Role
    branch: str
    method: str
    sent_by: str = ""


class TransactionState(Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"

    __hash__ = object.__hash__  # as Role's


class Input(Enum):
    """Message inputs; timers are the other inputs and use ``TimerName``."""

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_1XX = "TU sends 1xx"
    TU_2XX = "TU sends 2xx"
    TU_FINAL = "TU sends 300-699"

    __hash__ = object.__hash__  # as Role's


def response_input(status: int, *, from_tu: bool) -> Input:
    if status < 200:
        return Input.TU_1XX if from_tu else Input.RECV_1XX
    if status < 300:
        return Input.TU_2XX if from_tu else Input.RECV_2XX
    return Input.TU_FINAL if from_tu else Input.RECV_FINAL


# -- events for the TU ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request (``key`` is its server transaction) or an ACK for a 2xx (``key`` None)."""

    request: SipRequest
    addr: Addr
    key: TransactionKey | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction, or a stray one (``key`` None, section 17.1.1.2:
    2xx retransmissions after the transaction ended reach the core directly)."""

    response: SipResponse
    addr: Addr
    key: TransactionKey | None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B or F: no final response (the TU acts as on a 408, section 8.1.3.1);
    Timer H: the ACK for our non-2xx final never came."""

    key: TransactionKey
    timer: TimerName


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched the INVITE server transaction ``key`` (section 9.2).

    The endpoint has already answered the CANCEL with 200 and, when no final
    response was sent, the INVITE with 487; the TU tears its side down.
    """

    key: TransactionKey
    request: SipRequest


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    key: TransactionKey


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """Input refused: answered with ``status`` when ``answered``, else dropped.

    ``message`` is the message as far as it was read (its header section),
    None when not even that parsed.
    """

    addr: Addr
    detail: str
    answered: bool
    status: int = 400
    message: SipRequest | SipResponse | None = None


Event = (
    RequestReceived
    | ResponseReceived
    | TransactionTimeout
    | CancelReceived
    | TransactionTerminated
    | MalformedMessage
)

Handler = Callable[[Any, SipMessage | None, float], None]
TableKey = tuple[TransactionState, Input | TimerName]


class Transaction:
    """State, timers and queues shared by the four transaction kinds."""

    TABLE: ClassVar[Mapping[TableKey, Handler]] = {}
    # Slotted: ~4 transactions per call live 32 s after it is set up (Timers L, M, J).
    __slots__ = (
        "_request",
        "addr",
        "config",
        "events",
        "key",
        "outbox",
        "reliable",
        "scheduled",
        "state",
        "timers",
    )  # fmt: skip

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        addr: Addr,
        *,
        reliable: bool,
        config: TimerConfig,
        state: TransactionState,
    ) -> None:
        self.key = key
        self._request: SipRequest | None = request
        self.addr = addr
        self.reliable = reliable
        self.config = config
        self.state = state
        self.timers = Timers()
        self.outbox: list[SipMessage] = []
        self.events: list[Event] = []
        # The deadline the endpoint's timer heap holds for this transaction.
        self.scheduled: float | None = None

    @property
    def request(self) -> SipRequest:
        """The request this transaction is for; an INVITE server transaction lets it
        go once Accepted (RFC 6026): the TU has answered, nothing is answered from it
        again and retransmissions of the INVITE are absorbed by key."""
        if self._request is None:
            raise ValueError(f"{self.key} is Accepted: its request is no longer held")
        return self._request

    def _release_request(self) -> None:
        # An answered INVITE's transaction lives 32 s more (Timer L): the INVITE need not.
        self._request = None

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def get_timer(self) -> float | None:
        return self.timers.earliest()

    def handle_timer(self, now: float) -> None:
        while (name := self.timers.pop_due(now)) is not None:
            self._dispatch(name, None, now)

    def _dispatch(self, inp: Input | TimerName, message: SipMessage | None, now: float) -> bool:
        handler = self.TABLE.get((self.state, inp))
        if handler is None:
            return False
        handler(self, message, now)
        return True

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self.timers.clear()
        self.events.append(TransactionTerminated(self.key))

    def _end(self, message: SipMessage | None, now: float) -> None:
        """A table handler for the timers (D, I, J, K, L, M) that only end the transaction."""
        self._terminate()

    def _wait_then_terminate(self, name: TimerName, wait: float, now: float) -> None:
        # A zero wait (Timers D, I, J, K over a reliable transport) ends the
        # transaction now rather than on the next handle_timer call.
        if wait <= 0:
            self._terminate()
        else:
            self.timers.start(name, now + wait)


def server_key(request: SipRequest) -> TransactionKey:
    """The 17.2.3 matching key of a request (raises SipError on a bad Via/CSeq)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    branch = via.branch or ""
    if not branch.startswith(MAGIC_COOKIE) or len(branch) == len(MAGIC_COOKIE):
        # An RFC 2543 peer's branch is not unique (nor is a bare cookie, which
        # every request of a broken client carries); approximate 17.2.3's
        # RFC 2543 matching rules with Call-ID, From tag and CSeq number.
        tag = request.from_.tag or ""
        branch = f"2543;{request.call_id};{tag};{request.cseq.number};{branch}"
    return TransactionKey(Role.SERVER, branch, method, sent_by)


def client_key(response: SipResponse) -> TransactionKey:
    return TransactionKey(Role.CLIENT, response.top_via.branch or "", response.cseq.method)


def _copied(request: SipRequest, name: str) -> list[tuple[str, str]]:
    return [(name, value) for value in request.header_values(name)]


def ack_for_non_2xx(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK a client transaction sends for a 300-699 (section 17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and Route as the INVITE, To
    from the response (its tag), and only the INVITE's top Via (same branch).
    """
    headers = [
        ("Via", str(invite.top_via)),
        *_copied(invite, "Route"),
        ("Max-Forwards", "70"),
        ("From", invite.header("From")),
        ("To", response.header("To")),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
    ]
    return SipRequest.build("ACK", invite.uri_text, headers)


def cancel_for(invite: SipRequest) -> SipRequest:
    """A CANCEL for ``invite`` (section 9.1): its Request-URI, Call-ID, To, From,
    CSeq number, Route and top Via (so the CANCEL has the INVITE's branch)."""
    headers = [
        ("Via", str(invite.top_via)),
        *_copied(invite, "Route"),
        ("Max-Forwards", "70"),
        ("From", invite.header("From")),
        ("To", invite.header("To")),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
    ]
    return SipRequest.build("CANCEL", invite.uri_text, headers)
