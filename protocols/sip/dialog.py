"""SIP dialogs (RFC 3261 section 12, and 13.2.2.4 / 13.3.1.4 for the INVITE's 2xx).

A ``Dialog`` is the state two UAs share after an INVITE: its id (Call-ID,
local tag, remote tag), the route set, the remote target, both CSeq counters.
It builds requests within the dialog (12.2.1.1), checks the ones it receives
(12.2.2) and, on the UAS side, retransmits its 2xx until the ACK arrives
(13.3.1.4: T1 doubling up to T2, for 64*T1; then an ``AckTimeout`` event so
the B2BUA hangs up). Sans-I/O like the transactions: ``get_timer`` /
``handle_timer(now)``, ``responses_to_send()`` and ``next_event()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from protocols.sip.errors import SipError
from protocols.sip.headers import NameAddr
from protocols.sip.message import HeaderInput, SipRequest, SipResponse
from protocols.sip.timers import TimerConfig, TimerName, Timers
from protocols.sip.uri import SipUri, Uri


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Section 12: Call-ID, local tag and remote tag, as seen from this side."""

    call_id: str
    local_tag: str
    remote_tag: str


def id_of_request(request: SipRequest) -> DialogId:
    """The id of the dialog a received in-dialog request belongs to (To tag is ours)."""
    return DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")


def id_of_response(response: SipResponse) -> DialogId:
    """The id of the dialog a received response belongs to (From tag is ours)."""
    return DialogId(response.call_id, response.from_.tag or "", response.to.tag or "")


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """13.3.1.4: our 2xx went unacknowledged for 64*T1; the session should end (BYE)."""

    dialog_id: DialogId
    cseq: int


# Methods that replace the remote target (12.2: target refresh requests).
_TARGET_REFRESH = frozenset(("INVITE", "UPDATE"))


class Dialog:
    """One dialog; create it with ``as_uac`` or ``as_uas``."""

    __slots__ = (
        "_events",
        "_interval",
        "_outbox",
        "_pending_2xx",
        "config",
        "id",
        "local",
        "local_contact",
        "local_seq",
        "remote",
        "remote_seq",
        "remote_target",
        "route_set",
        "state",
        "timers",
    )  # fmt: skip

    def __init__(
        self,
        dialog_id: DialogId,
        *,
        state: DialogState,
        local: NameAddr,
        remote: NameAddr,
        local_contact: NameAddr,
        remote_target: Uri,
        route_set: tuple[NameAddr, ...],
        local_seq: int,
        remote_seq: int | None,
        config: TimerConfig,
    ) -> None:
        self.id = dialog_id
        self.state = state
        self.local = local
        self.remote = remote
        self.local_contact = local_contact
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.config = config
        self.timers = Timers()
        self._pending_2xx: SipResponse | None = None
        self._interval = config.t1
        self._outbox: list[SipResponse] = []
        # A list, not a deque: it holds one event at most, and an empty deque is ~600 bytes.
        self._events: list[AckTimeout] = []

    @classmethod
    def as_uac(
        cls, request: SipRequest, response: SipResponse, config: TimerConfig | None = None
    ) -> Dialog:
        """12.1.2: from the INVITE we sent and a 101-299 response carrying a To tag."""
        tag, state = _established_by(response)
        return cls(
            DialogId(request.call_id, request.from_.tag or "", tag),
            state=state,
            local=request.from_,
            remote=response.to,
            local_contact=_first_contact(request),
            remote_target=_first_contact(response).uri,
            # The UAC reverses Record-Route: the first hop is the nearest proxy.
            route_set=tuple(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            config=config or TimerConfig(),
        )

    @classmethod
    def as_uas(
        cls, request: SipRequest, response: SipResponse, config: TimerConfig | None = None
    ) -> Dialog:
        """12.1.1: from the INVITE received and our 101-299 response (with our To tag)."""
        tag, state = _established_by(response)
        return cls(
            DialogId(request.call_id, tag, request.from_.tag or ""),
            state=state,
            local=response.to,
            remote=request.from_,
            local_contact=_first_contact(response),
            remote_target=_first_contact(request).uri,
            route_set=request.record_route,
            local_seq=0,
            remote_seq=request.cseq.number,
            config=config or TimerConfig(),
        )

    # -- requests we send (12.2.1.1) ------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        headers: Iterable[HeaderInput] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """BYE, re-INVITE, UPDATE, INFO...: CSeq is the local sequence plus one.

        ACK and CANCEL have their own builders (they reuse the INVITE's CSeq).
        The endpoint adds the Via.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} reuses the INVITE's CSeq; use create_ack/cancel_for")
        self.local_seq += 1
        return self._build(method, self.local_seq, headers, body, content_type)

    def create_ack(
        self, cseq: int, *, body: bytes = b"", content_type: str | None = None
    ) -> SipRequest:
        """The ACK for a 2xx to the INVITE with CSeq ``cseq`` (13.2.2.4)."""
        return self._build("ACK", cseq, (), body, content_type)

    def _build(
        self,
        method: str,
        cseq: int,
        headers: Iterable[HeaderInput],
        body: bytes,
        content_type: str | None,
    ) -> SipRequest:
        uri, routes = self._request_target()
        lines: list[HeaderInput] = [("Route", str(route)) for route in routes]
        lines += [
            ("Max-Forwards", "70"),
            ("From", str(self.local)),
            ("To", str(self.remote)),
            ("Call-ID", self.id.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method in _TARGET_REFRESH or method == "ACK":
            lines.append(("Contact", str(self.local_contact)))
        lines += list(headers)
        return SipRequest.build(method, uri, lines, body, content_type)

    def _request_target(self) -> tuple[Uri, tuple[NameAddr, ...]]:
        """12.2.1.1: loose routing keeps the remote target as Request-URI; a strict
        router (first route without ``lr``) becomes the Request-URI instead."""
        if not self.route_set:
            return self.remote_target, ()
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, self.route_set
        strict_uri = first.without_param("lr") if isinstance(first, SipUri) else first
        return strict_uri, (*self.route_set[1:], NameAddr(self.remote_target))

    # -- what we receive --------------------------------------------------------------

    def receive_request(self, request: SipRequest) -> int | None:
        """Check an in-dialog request (12.2.2); the status to refuse it with, or None.

        A CSeq lower than the last one is out of order: 500. ACK and CANCEL
        carry the INVITE's CSeq and are not counted.
        """
        if request.method not in ("ACK", "CANCEL"):
            number = request.cseq.number
            if self.remote_seq is not None and number <= self.remote_seq:
                return 500
            self.remote_seq = number
        if request.method in _TARGET_REFRESH and request.contact:
            self.remote_target = request.contact[0].uri
        if request.method == "BYE":
            self.terminate()
        return None

    def receive_response(self, response: SipResponse) -> None:
        """A response to a request we sent in this dialog (early -> confirmed on 2xx;
        a 2xx to a target refresh replaces the remote target, 12.2.1.2)."""
        method = response.cseq.method
        if 200 <= response.status < 300 and method in _TARGET_REFRESH:
            if self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
            if response.contact:
                self.remote_target = response.contact[0].uri
        elif method == "INVITE" and response.status >= 300 and self.state is DialogState.EARLY:
            # 12.3: a non-2xx final to the INVITE ends the early dialog.
            self.terminate()

    def confirm(self) -> None:
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED
        self.timers.clear()
        self._pending_2xx = None

    # -- UAS: 2xx retransmission until ACK (13.3.1.4) ---------------------------------

    def start_2xx(self, response: SipResponse, now: float) -> None:
        """Our 2xx to the INVITE went out; retransmit it until ``receive_ack``."""
        self.confirm()
        self._pending_2xx = response
        self._interval = self.config.t1
        self.timers.start(TimerName.RETRANSMIT_2XX, now + self._interval)
        self.timers.start(TimerName.GIVE_UP_2XX, now + self.config.timeout)

    def receive_ack(self, ack: SipRequest) -> bool:
        """True when ``ack`` acknowledges the 2xx being retransmitted."""
        pending = self._pending_2xx
        if pending is None or ack.cseq.number != pending.cseq.number:
            return False
        self._pending_2xx = None
        self.timers.stop(TimerName.RETRANSMIT_2XX, TimerName.GIVE_UP_2XX)
        return True

    @property
    def awaiting_ack(self) -> bool:
        return self._pending_2xx is not None

    def get_timer(self) -> float | None:
        return self.timers.earliest()

    def handle_timer(self, now: float) -> None:
        while (name := self.timers.pop_due(now)) is not None:
            pending = self._pending_2xx
            assert pending is not None, "both 2xx timers stop with the pending 2xx"
            if name is TimerName.RETRANSMIT_2XX:
                self._outbox.append(pending)
                self._interval = self.config.next_interval(self._interval)
                self.timers.start(TimerName.RETRANSMIT_2XX, now + self._interval)
            else:
                self.timers.stop(TimerName.RETRANSMIT_2XX)
                self._pending_2xx = None
                self._events.append(AckTimeout(self.id, pending.cseq.number))

    def responses_to_send(self) -> list[SipResponse]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> AckTimeout | None:
        return self._events.pop(0) if self._events else None


def _established_by(response: SipResponse) -> tuple[str, DialogState]:
    """12.1: the remote or local To tag, and the state, of a dialog ``response`` creates."""
    tag = response.to.tag
    if tag is None or not 100 < response.status < 300:
        raise SipError("a dialog needs a 101-299 response with a To tag")
    return tag, DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY


def _first_contact(message: SipRequest | SipResponse) -> NameAddr:
    contacts = message.contact
    if not contacts:
        raise SipError("no Contact to build a dialog from")
    return contacts[0]
