"""Call flows between two in-memory endpoints (RFC 3665 shapes), pumped over a fake wire.

``Wire`` moves ``datagrams_to_send`` of one endpoint into ``receive_datagram``
of the other, advances a fake clock through both endpoints' timers, and can
drop chosen datagrams. The TU side of each test is written out in the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from protocols.sip.dialog import Dialog
from protocols.sip.digest import (
    DigestAlgorithm,
    DigestClient,
    DigestCredentials,
)
from protocols.sip.digest_server import DigestPolicy, DigestServer, Verdict
from protocols.sip.endpoint import Endpoint, EndpointConfig
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.parser import parse_message
from protocols.sip.timers import TimerConfig, TimerName
from protocols.sip.transaction import (
    Addr,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionKey,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
)

A_ADDR: Addr = ("10.0.0.1", 5060)
B_ADDR: Addr = ("10.0.0.2", 5060)
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


Drop = Callable[[bytes, Addr, Addr], bool]


@dataclass
class Wire:
    reliable: bool = False
    timers: TimerConfig = field(default_factory=TimerConfig)
    now: float = 0.0
    drop: Drop | None = None
    log: list[tuple[Addr, Addr, bytes]] = field(default_factory=list)
    dropped: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        def config(addr: Addr) -> EndpointConfig:
            transport = "TCP" if self.reliable else "UDP"
            return EndpointConfig(
                f"{addr[0]}:{addr[1]}", transport, reliable=self.reliable, timers=self.timers
            )

        self.a = Endpoint(config(A_ADDR), ids("a"))
        self.b = Endpoint(config(B_ADDR), ids("b"))
        self.ends = {A_ADDR: self.a, B_ADDR: self.b}
        self.events: dict[Addr, list[Event]] = {A_ADDR: [], B_ADDR: []}

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for src, end in self.ends.items():
                for data, dst in end.datagrams_to_send(self.now):
                    moved = True
                    self.log.append((src, dst, data))
                    if self.drop is not None and self.drop(data, src, dst):
                        self.dropped.append(data)
                        continue
                    self.ends[dst].receive_datagram(data, src, self.now)
        for addr, end in self.ends.items():
            while (event := end.next_event()) is not None:
                self.events[addr].append(event)

    def advance(self, until: float) -> None:
        """Run both endpoints' timers up to ``until``, pumping after each firing."""
        self.pump()
        while True:
            deadlines = [t for e in self.ends.values() if (t := e.get_timer()) is not None]
            due = min(deadlines, default=None)
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            for end in self.ends.values():
                end.handle_timer(self.now)
            self.pump()
        self.now = max(self.now, until)

    def take(self, addr: Addr) -> list[Event]:
        out, self.events[addr] = self.events[addr], []
        return out

    def sent(self, src: Addr, start: str) -> list[bytes]:
        return [d for s, _, d in self.log if s == src and d.startswith(start.encode())]


def of_type(events: list[Event], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


def requests(events: list[Event]) -> list[RequestReceived]:
    return [e for e in events if isinstance(e, RequestReceived)]


def responses(events: list[Event]) -> list[ResponseReceived]:
    return [e for e in events if isinstance(e, ResponseReceived)]


def statuses(events: list[Event]) -> list[int]:
    return [e.response.status for e in responses(events)]


def invite(call_id: str = "call-1", cseq: int = 1, extra: tuple = ()) -> SipRequest:
    return SipRequest.build(
        "INVITE",
        "sip:bob@10.0.0.2",
        [
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@a.example>;tag=alice1"),
            ("To", "<sip:bob@b.example>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} INVITE"),
            ("Contact", "<sip:alice@10.0.0.1:5060>"),
            *extra,
        ],
        SDP,
        "application/sdp",
    )


def answer(
    request: SipRequest,
    status: int,
    tag: str = "bob1",
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
    **kw: object,
) -> SipResponse:
    return make_response(
        request,
        status,
        to_tag=tag,
        headers=[("Contact", "<sip:bob@10.0.0.2:5060>"), *headers],
        **kw,  # type: ignore[arg-type]
    )


def drop_first(start: str, count: int = 1) -> Drop:
    left = [count]

    def drop(data: bytes, src: Addr, dst: Addr) -> bool:
        if data.startswith(start.encode()) and left[0] > 0:
            left[0] -= 1
            return True
        return False

    return drop


@dataclass
class Call:
    """The state a test's two TUs keep for one INVITE."""

    wire: Wire
    key: TransactionKey
    request: SipRequest
    server_key: TransactionKey
    uac: Dialog | None = None
    uas: Dialog | None = None


def start_call(wire: Wire, call_id: str = "call-1") -> Call:
    key = wire.a.send_request(invite(call_id), B_ADDR, wire.now)
    wire.pump()
    (received,) = requests(wire.take(B_ADDR))
    assert received.key is not None
    return Call(wire, key, received.request, received.key)


def answer_and_ack(call: Call) -> SipRequest:
    """UAS sends 200 and starts retransmitting it; the UAC ACKs every 2xx it hears."""
    wire = call.wire
    ok = answer(call.request, 200, body=SDP, content_type="application/sdp")
    assert wire.b.respond(call.server_key, ok, wire.now)
    call.uas = Dialog.as_uas(call.request, ok, wire.timers)
    call.uas.start_2xx(ok, wire.now)
    return ok


def uac_handle(call: Call, events: list[Event]) -> None:
    wire = call.wire
    for event in responses(events):
        response = event.response
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            if call.uac is None:
                invite_sent = wire.a.transaction(call.key)
                assert invite_sent is not None
                call.uac = Dialog.as_uac(invite_sent.request, response, wire.timers)
            wire.a.send_ack(call.uac.create_ack(response.cseq.number), B_ADDR)


def uas_handle(call: Call, events: list[Event]) -> None:
    assert call.uas is not None
    for event in requests(events):
        if event.request.method == "ACK":
            call.uas.receive_ack(event.request)


def run_dialog_timers(call: Call, until: float) -> None:
    """Advance the wire and the UAS dialog's 2xx retransmissions together, the two
    TUs reacting to every event before the next timer fires."""
    wire = call.wire
    uas = call.uas
    assert uas is not None
    while True:
        wire.pump()
        a_events, b_events = wire.take(A_ADDR), wire.take(B_ADDR)
        if a_events or b_events:
            uac_handle(call, a_events)
            uas_handle(call, b_events)
            continue
        timers = [uas.get_timer(), wire.a.get_timer(), wire.b.get_timer()]
        due = min((t for t in timers if t is not None), default=None)
        if due is None or due > until:
            wire.now = max(wire.now, until)
            return
        wire.now = max(wire.now, due)
        wire.a.handle_timer(wire.now)
        wire.b.handle_timer(wire.now)
        uas.handle_timer(wire.now)
        for again in uas.responses_to_send():
            wire.b.respond(call.server_key, again, wire.now)


@pytest.mark.parametrize("reliable", [False, True])
def test_basic_call_invite_100_180_200_ack_bye_200(reliable: bool) -> None:
    wire = Wire(reliable=reliable)
    call = start_call(wire)
    # The TU says nothing for 200 ms: the transaction sends 100 Trying itself.
    wire.advance(0.2)
    assert statuses(wire.take(A_ADDR)) == [100]
    wire.b.respond(call.server_key, answer(call.request, 180), wire.now)
    wire.pump()
    assert statuses(wire.take(A_ADDR)) == [180]
    answer_and_ack(call)
    run_dialog_timers(call, 1.0)
    assert call.uac is not None
    assert call.uas is not None
    assert not call.uas.awaiting_ack
    assert len(wire.sent(A_ADDR, "ACK")) == 1
    assert len(wire.sent(B_ADDR, "SIP/2.0 200")) == 1
    # BYE from the caller, within the dialog.
    bye = call.uac.create_request("BYE")
    bye_key = wire.a.send_request(bye, B_ADDR, wire.now)
    wire.pump()
    (got,) = requests(wire.take(B_ADDR))
    assert got.request.method == "BYE"
    assert call.uas.receive_request(got.request) is None
    assert got.key is not None
    wire.b.respond(got.key, make_response(got.request, 200), wire.now)
    wire.pump()
    assert [r.key for r in responses(wire.take(A_ADDR))] == [bye_key]
    assert wire.sent(B_ADDR, "SIP/2.0 200")[-1].endswith(b"\r\n\r\n")
    # Every transaction ends by its timers (Timer L/M for the INVITE, K/J for BYE).
    wire.advance(wire.now + 64)
    assert len(wire.a) == 0
    assert len(wire.b) == 0
    assert wire.a.get_timer() is None
    assert wire.b.get_timer() is None


def test_lost_200_is_retransmitted_until_ack() -> None:
    wire = Wire(drop=drop_first("SIP/2.0 200", 2))
    call = start_call(wire)
    answer_and_ack(call)
    run_dialog_timers(call, 10.0)
    assert call.uas is not None
    assert not call.uas.awaiting_ack
    # 200 at 0, retransmitted at 0.5 and 1.5; the third copy arrives and is ACKed.
    assert len(wire.sent(B_ADDR, "SIP/2.0 200")) == 3
    assert len(wire.dropped) == 2
    assert len(wire.sent(A_ADDR, "ACK")) == 1


def test_lost_ack_means_another_200_and_another_ack() -> None:
    wire = Wire(drop=drop_first("ACK", 1))
    call = start_call(wire)
    answer_and_ack(call)
    run_dialog_timers(call, 10.0)
    assert call.uas is not None
    assert not call.uas.awaiting_ack
    assert len(wire.sent(A_ADDR, "ACK")) == 2
    assert len(wire.sent(B_ADDR, "SIP/2.0 200")) == 2


def test_2xx_never_acked_gives_up_after_64_t1() -> None:
    wire = Wire(drop=lambda data, src, dst: data.startswith(b"ACK"))
    call = start_call(wire)
    answer_and_ack(call)
    run_dialog_timers(call, 40.0)
    assert call.uas is not None
    event = call.uas.next_event()
    assert event is not None
    assert event.cseq == 1
    # T1 doubling capped at T2: 0.5 1.5 3.5 7.5 11.5 15.5 19.5 23.5 27.5 31.5.
    assert len(wire.sent(B_ADDR, "SIP/2.0 200")) == 11


def test_cancel_before_final_gets_200_and_487_acked() -> None:
    wire = Wire()
    call = start_call(wire)
    wire.b.respond(call.server_key, answer(call.request, 180), wire.now)
    wire.pump()
    assert statuses(wire.take(A_ADDR)) == [180]
    assert wire.a.cancel(call.key, wire.now)
    wire.pump()
    events_b = wire.take(B_ADDR)
    (cancelled,) = of_type(events_b, CancelReceived)
    assert cancelled.key == call.server_key  # type: ignore[attr-defined]
    a_events = wire.take(A_ADDR)
    by_method = {(e.response.cseq.method, e.response.status) for e in responses(a_events)}
    assert by_method == {("CANCEL", 200), ("INVITE", 487)}
    # The 487 carries the 180's To tag and is ACKed inside the client transaction.
    (ack,) = wire.sent(A_ADDR, "ACK")
    assert b"tag=bob1" in ack
    txn = wire.b.transaction(call.server_key)
    assert txn is not None
    assert txn.state is TransactionState.CONFIRMED
    # A late 200 from the TU is refused: the INVITE is already answered.
    assert not wire.b.respond(call.server_key, answer(call.request, 200), wire.now)
    wire.advance(40.0)
    assert len(wire.a) == 0
    assert len(wire.b) == 0


def test_cancel_crossing_200_caller_acks_then_byes() -> None:
    wire = Wire()
    call = start_call(wire)
    wire.b.respond(call.server_key, answer(call.request, 180), wire.now)
    wire.pump()
    wire.take(A_ADDR)
    # Both leave before either arrives: the CANCEL and the 200 cross on the wire.
    assert wire.a.cancel(call.key, wire.now)
    answer_and_ack(call)
    wire.pump()
    events_b = wire.take(B_ADDR)
    assert of_type(events_b, CancelReceived)
    a_events = wire.take(A_ADDR)
    got = {(e.response.cseq.method, e.response.status) for e in responses(a_events)}
    assert got == {("CANCEL", 200), ("INVITE", 200)}
    assert not wire.sent(B_ADDR, "SIP/2.0 487")
    uac_handle(call, a_events)  # ACK the 200 ...
    assert call.uac is not None
    wire.a.send_request(call.uac.create_request("BYE"), B_ADDR, wire.now)  # ... then BYE it
    wire.pump()
    methods = [e.request.method for e in requests(wire.take(B_ADDR))]
    assert methods == ["ACK", "BYE"]


def test_cancel_before_any_provisional_waits_for_one() -> None:
    wire = Wire()
    key = wire.a.send_request(invite(), B_ADDR, wire.now)
    assert wire.a.cancel(key, wire.now)
    wire.pump()
    assert not wire.sent(A_ADDR, "CANCEL")
    wire.advance(0.2)  # 100 Trying from the server transaction releases the CANCEL
    assert len(wire.sent(A_ADDR, "CANCEL")) == 1
    assert statuses(wire.take(A_ADDR)) == [100, 200, 487]


def test_unknown_cancel_gets_481() -> None:
    wire = Wire()
    key = wire.a.send_request(invite(), B_ADDR, wire.now)
    txn = wire.a.transaction(key)
    assert txn is not None
    from protocols.sip.transaction import cancel_for

    wire.b.receive_datagram(bytes(cancel_for(txn.request)), A_ADDR, wire.now)
    (data, dst), *_ = wire.b.datagrams_to_send(wire.now)
    assert dst == A_ADDR
    response = parse_message(data)
    assert isinstance(response, SipResponse)
    assert response.status == 481
    assert response.cseq.method == "CANCEL"


def test_merged_request_gets_482() -> None:
    wire = Wire()
    call = start_call(wire)
    # The same INVITE arriving by a second path: new branch, same From tag/Call-ID/CSeq.
    copy = call.request.without_top_via().with_top_via(
        "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKother"
    )
    wire.b.receive_datagram(bytes(copy), ("10.0.0.9", 5060), wire.now)
    out = wire.b.datagrams_to_send(wire.now)
    assert len(out) == 1
    response = parse_message(out[0][0])
    assert isinstance(response, SipResponse)
    assert response.status == 482
    assert out[0][1] == ("10.0.0.9", 5060)
    assert not requests([e for e in iter(wire.b.next_event, None)])


@pytest.mark.parametrize("algorithm", list(DigestAlgorithm))
@pytest.mark.parametrize(
    ("status", "header"), [(401, "WWW-Authenticate"), (407, "Proxy-Authenticate")]
)
def test_digest_challenge_answered_and_verified(
    algorithm: DigestAlgorithm, status: int, header: str
) -> None:
    wire = Wire()
    server = DigestServer(DigestPolicy("b.example", (algorithm,)), b"secret", lambda n: b"\x07" * n)
    client = DigestClient("alice", "pw", ids("cn"))
    cred_header = "Authorization" if status == 401 else "Proxy-Authorization"
    first = start_call(wire)
    challenge = [(header, str(c)) for c in server.challenges(1000.0)]
    wire.b.respond(first.server_key, answer(first.request, status, headers=challenge), wire.now)
    wire.pump()
    (resp,) = responses(wire.take(A_ADDR))
    assert resp.response.status == status
    assert wire.sent(A_ADDR, "ACK")  # the 4xx is ACKed by the transaction
    values = resp.response.www_authenticate if status == 401 else resp.response.proxy_authenticate
    creds = client.answer(values, "INVITE", "sip:bob@10.0.0.2")
    assert creds is not None
    retry = invite(cseq=2, extra=((cred_header, str(creds)),))
    wire.a.send_request(retry, B_ADDR, wire.now)
    wire.pump()
    (got,) = requests(wire.take(B_ADDR))
    auth = got.request.authorization if status == 401 else got.request.proxy_authorization
    parsed = DigestCredentials.parse(auth[0])
    assert server.verify(parsed, got.request.method, 1001.0, password="pw") is Verdict.OK
    # The same Authorization replayed: refused.
    assert server.verify(parsed, got.request.method, 1002.0, password="pw") is Verdict.REPLAY
    # Past the nonce lifetime, a new nc on the same nonce is stale.
    later = client.answer(values, "INVITE", "sip:bob@10.0.0.2")
    assert later is not None
    assert server.verify(later, "INVITE", 1000.0 + 301, password="pw") is Verdict.STALE


def test_non_invite_timeout_timer_f() -> None:
    wire = Wire(drop=lambda data, src, dst: True)
    options = SipRequest.build(
        "OPTIONS",
        "sip:b.example",
        [
            ("From", "<sip:a@a>;tag=t"),
            ("To", "<sip:b@b>"),
            ("Call-ID", "opt"),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    key = wire.a.send_request(options, B_ADDR, 0.0)
    wire.advance(31.9)
    assert not of_type(wire.take(A_ADDR), TransactionTimeout)
    wire.advance(32.0)
    events = wire.take(A_ADDR)
    assert of_type(events, TransactionTimeout) == [TransactionTimeout(key, TimerName.F)]
    assert TransactionTerminated(key) in events
    # E: 0.5 1.5 3.5 7.5 11.5 15.5 ... every T2 = 4 s until F at 32 s.
    assert len(wire.sent(A_ADDR, "OPTIONS")) == 11


@pytest.mark.parametrize(("reliable", "copies"), [(False, 7), (True, 1)])
def test_invite_timeout_timer_b(reliable: bool, copies: int) -> None:
    wire = Wire(reliable=reliable, drop=lambda data, src, dst: True)
    key = wire.a.send_request(invite(), B_ADDR, 0.0)
    wire.advance(40.0)
    events = wire.take(A_ADDR)
    assert TransactionTimeout(key, TimerName.B) in events
    # A: 0.5 1.5 3.5 7.5 15.5 31.5 (uncapped doubling) then B at 32.
    assert len(wire.sent(A_ADDR, "INVITE")) == copies


def test_retransmitted_request_gets_the_response_again() -> None:
    wire = Wire(drop=drop_first("SIP/2.0 180", 1))
    call = start_call(wire)
    wire.b.respond(call.server_key, answer(call.request, 180), wire.now)
    wire.advance(0.6)  # the INVITE's Timer A retransmission at 0.5 fetches the 180 again
    assert len(wire.sent(B_ADDR, "SIP/2.0 180")) == 2
    assert statuses(wire.take(A_ADDR)) == [180]
    assert len(requests(wire.take(B_ADDR))) == 0  # absorbed, not a new request
