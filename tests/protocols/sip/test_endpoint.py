"""The transaction layer (protocols.sip.endpoint): matching, refusal of bad input, limits."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sip.endpoint import Endpoint, EndpointConfig
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.parser import parse_message
from protocols.sip.timers import TimerConfig
from protocols.sip.transaction import (
    CancelReceived,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    Role,
    StreamAddr,
    TransactionKey,
    TransactionState,
    TransactionTimeout,
    Transport,
    cancel_for,
    server_key,
)
from protocols.sip.txn_client import InviteClientTransaction
from tests.protocols.sip.test_flows import A_ADDR, B_ADDR, Wire, ids, invite

SRC = ("198.51.100.4", 40000)


def endpoint(**kw: object) -> Endpoint:
    return Endpoint(EndpointConfig("192.0.2.2:5060", **kw), ids("e"))  # type: ignore[arg-type]


def events(end: Endpoint) -> list[object]:
    return list(iter(end.next_event, None))


def raw_request(
    method: str = "OPTIONS",
    branch: str = "z9hG4bKr1",
    cseq: str | None = None,
    from_tag: str = ";tag=f",
    via_host: str = "198.51.100.4:40000;rport",
    extra: str = "",
    call_id: str = "ep-1",
) -> bytes:
    return (
        f"{method} sip:b@192.0.2.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\r\n"
        f"From: <sip:a@a.example>{from_tag}\r\n"
        "To: <sip:b@b.example>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq or '1 ' + method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def only_response(end: Endpoint) -> tuple[SipResponse, tuple[str, int]]:
    (data, addr), *rest = end.datagrams_to_send(0.0)
    assert not rest
    message = parse_message(data)
    assert isinstance(message, SipResponse)
    return message, addr


def test_garbage_is_dropped_with_an_event() -> None:
    end = endpoint()
    end.receive_datagram(b"\x00\xffhello", SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert not event.answered
    assert end.datagrams_to_send(0.0) == []


def test_crlf_keepalive_is_silent() -> None:
    end = endpoint()
    end.receive_datagram(b"\r\n\r\n", SRC, 0.0)
    assert events(end) == []
    assert end.datagrams_to_send(0.0) == []


def test_bad_request_gets_400_with_the_reason() -> None:
    end = endpoint()
    end.receive_datagram(raw_request(cseq="1 INVITE"), SRC, 0.0)
    response, addr = only_response(end)
    assert response.status == 400
    assert response.reason_phrase == "Bad Request (CSeq method INVITE is not OPTIONS)"
    assert response.to.tag is not None
    assert addr == SRC
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert event.answered
    assert event.status == 400
    assert isinstance(event.message, SipRequest)
    assert event.message.call_id == "ep-1"
    assert "CSeq method" in event.detail


def test_malformed_ack_is_never_answered() -> None:
    end = endpoint()
    end.receive_datagram(raw_request("ACK", cseq="1 INVITE"), SRC, 0.0)
    assert end.datagrams_to_send(0.0) == []
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert not event.answered


def test_short_body_answered_from_the_header_section() -> None:
    end = endpoint()
    data = raw_request().replace(b"Content-Length: 0", b"Content-Length: 50")
    end.receive_datagram(data, SRC, 0.0)
    assert only_response(end)[0].status == 400


def test_oversized_request_gets_413() -> None:
    end = endpoint(max_message_size=400)
    end.receive_datagram(raw_request(extra="Subject: " + "x" * 500 + "\r\n"), SRC, 0.0)
    assert only_response(end)[0].status == 413


def test_unanswerable_request_is_dropped() -> None:
    end = endpoint()
    data = raw_request(cseq="x").replace(b"Call-ID: ep-1\r\n", b"")
    end.receive_datagram(data, SRC, 0.0)
    assert end.datagrams_to_send(0.0) == []
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert not event.answered
    # The header section itself broken: nothing to answer from.
    end.receive_datagram(b"OPTIONS sip:b SIP/2.0\r\nBad Header\r\n\r\nxx", SRC, 0.0)
    end.receive_datagram(b"\r\nOPTIONS sip:b SIP/2.0\r\nVia: x", SRC, 0.0)
    assert [type(e) for e in events(end)] == [MalformedMessage, MalformedMessage]
    assert end.datagrams_to_send(0.0) == []


def test_response_with_bad_via_is_dropped_and_strays_reach_the_core() -> None:
    end = endpoint()
    bad = b"SIP/2.0 200 OK\r\nVia: nonsense\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    end.receive_datagram(bad, SRC, 0.0)
    stray = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKgone\r\n"
        b"From: <sip:a@a>;tag=1\r\nTo: <sip:b@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    end.receive_datagram(stray, SRC, 0.0)
    first, second = events(end)
    assert isinstance(first, MalformedMessage)
    assert isinstance(second, ResponseReceived)
    assert second.key is None


def test_via_gets_received_and_rport() -> None:
    end = endpoint()
    end.receive_datagram(raw_request(via_host="10.1.1.1:5060;rport"), SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    via = event.request.top_via
    assert (via.received, via.rport) == ("198.51.100.4", 40000)
    assert event.key is not None
    end.respond(event.key, make_response(event.request, 200, to_tag="x"), 0.0)
    response, addr = only_response(end)
    assert addr == SRC
    assert response.top_via.received == "198.51.100.4"
    # The Via already right: the request is passed on untouched.
    exact = raw_request(branch="z9hG4bKr2", via_host="198.51.100.4:40000", call_id="ep-2")
    end.receive_datagram(exact, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.request.serialize() == exact


def test_rfc2543_branchless_requests_match_their_transaction() -> None:
    end = endpoint()
    data = raw_request("INVITE", branch="old", via_host="198.51.100.4:40000")
    end.receive_datagram(data, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    assert event.key.branch.startswith("2543;ep-1;f;1;")
    end.receive_datagram(data, SRC, 0.1)  # a retransmission: absorbed
    assert events(end) == []
    cancel = cancel_for(event.request)
    end.receive_datagram(bytes(cancel), SRC, 0.2)
    kinds = [type(e) for e in events(end)]
    assert CancelReceived in kinds


def test_same_branch_from_two_hosts_are_two_transactions() -> None:
    end = endpoint()
    end.receive_datagram(raw_request(via_host="198.51.100.4:40000"), SRC, 0.0)
    second = raw_request(via_host="198.51.100.5:40000", call_id="ep-2")
    end.receive_datagram(second, ("198.51.100.5", 40000), 0.0)
    keys = [e.key for e in events(end) if isinstance(e, RequestReceived)]
    assert len(set(keys)) == 2


def test_transaction_cap_answers_503() -> None:
    end = endpoint(max_transactions=2)
    for i in range(3):
        end.receive_datagram(raw_request(branch=f"z9hG4bKc{i}", cseq=f"{i} OPTIONS"), SRC, 0.0)
    assert len(end) == 2
    statuses = [parse_message(d).status for d, _ in end.datagrams_to_send(0.0)]  # type: ignore[union-attr]
    assert statuses == [503]


def test_tu_misuse_is_refused() -> None:
    end = endpoint()
    ack = SipRequest.build("ACK", "sip:b@b", [("CSeq", "1 ACK")])
    for method in ("ACK", "CANCEL"):
        try:
            cancel = SipRequest.build("CANCEL", "sip:b@b", [("CSeq", "1 CANCEL")])
            end.send_request(ack if method == "ACK" else cancel, B_ADDR, 0.0)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{method} accepted")
    unknown = TransactionKey(Role.CLIENT, "z9hG4bKnone", "INVITE")
    assert not end.cancel(unknown, 0.0)
    assert not end.respond(unknown, make_response(invite(), 200), 0.0)
    options_key = end.send_request(
        SipRequest.build("OPTIONS", "sip:b", [("CSeq", "1 OPTIONS")]), B_ADDR, 0.0
    )
    assert not end.cancel(options_key, 0.0)


def test_cancel_too_late_and_only_once() -> None:
    wire = Wire()
    key = wire.a.send_request(invite(), B_ADDR, 0.0)
    wire.pump()
    (req,) = [e for e in wire.take(B_ADDR) if isinstance(e, RequestReceived)]
    assert req.key is not None
    wire.b.respond(req.key, make_response(req.request, 180, to_tag="t"), 0.0)
    wire.pump()
    assert wire.a.cancel(key, 0.0)
    assert wire.a.cancel(key, 0.0)  # a second CANCEL is the same transaction
    assert len(wire.a.datagrams_to_send(0.0)) == 1
    wire.b.respond(req.key, make_response(req.request, 486, to_tag="t"), 0.0)
    wire.pump()
    assert not wire.a.cancel(key, 0.0)  # answered: nothing to cancel


def test_timer_c_makes_the_endpoint_cancel() -> None:
    wire = Wire(timers=TimerConfig(timer_c=60.0))
    key = wire.a.send_request(invite(), B_ADDR, 0.0)
    wire.advance(1.0)  # 100 Trying arrives
    txn = wire.a.transaction(key)
    assert isinstance(txn, InviteClientTransaction)
    assert txn.state is TransactionState.PROCEEDING
    wire.advance(61.0)
    assert len(wire.sent(A_ADDR, "CANCEL")) == 1
    assert any(isinstance(e, CancelReceived) for e in wire.take(B_ADDR))
    statuses = [e.response.status for e in wire.take(A_ADDR) if isinstance(e, ResponseReceived)]
    assert 487 in statuses


def test_stale_heap_entries_are_compacted() -> None:
    end = endpoint()
    data = raw_request("INVITE")
    end.receive_datagram(data, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    for i in range(1200):
        end.receive_datagram(data, SRC, i * 0.0001)
    assert len(end._heap) < 1100
    assert end.get_timer() == 0.2
    end.respond(event.key, make_response(event.request, 180, to_tag="t"), 0.1)
    assert end.get_timer() is None  # Proceeding with a provisional: no timer left
    end.handle_timer(100.0)
    end.receive_datagram(data, SRC, 100.0)
    # Copies before any response got nothing; after the 180, a copy gets it again.
    assert len(end.datagrams_to_send(100.0)) == 2


def test_receive_message_from_a_stream_framer() -> None:
    end = endpoint(transport="TCP", reliable=True)
    message = parse_message(raw_request())
    end.receive_message(message, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    end.respond(event.key, make_response(event.request, 200, to_tag="x"), 0.0)
    assert len(end) == 0  # Timer J is zero over a reliable transport
    assert server_key(event.request).method == "OPTIONS"


# -- random traffic ----------------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("invite"), st.integers(0, 3)),
        st.tuples(st.just("options"), st.integers(0, 3)),
        st.tuples(st.just("answer"), st.sampled_from([100, 180, 200, 404, 487, 503])),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("wait"), st.floats(0.0, 5.0)),
    ),
    max_size=30,
)


@settings(max_examples=100)
@given(ops=OPS, seed=st.integers(0, 2**32 - 1), loss=st.sampled_from([0.0, 0.2, 0.5]))
def test_random_traffic_never_raises_and_everything_ends(
    ops: list[tuple[str, object]], seed: int, loss: float
) -> None:
    rng = random.Random(seed)
    wire = Wire(drop=lambda data, src, dst: rng.random() < loss)
    client_keys: list[TransactionKey] = []
    pending: list[tuple[TransactionKey, SipRequest]] = []
    for op, arg in ops:
        if op == "invite":
            client_keys.append(wire.a.send_request(invite(f"c{arg}"), B_ADDR, wire.now))
        elif op == "options":
            opt = SipRequest.build(
                "OPTIONS",
                "sip:b",
                [
                    ("From", "<sip:a@a>;tag=o"),
                    ("To", "<sip:b@b>"),
                    ("Call-ID", f"o{arg}"),
                    ("CSeq", f"{arg} OPTIONS"),
                ],
            )
            client_keys.append(wire.a.send_request(opt, B_ADDR, wire.now))
        elif op == "answer" and pending:
            key, request = pending[0]
            response = make_response(request, int(arg), to_tag="t")  # type: ignore[call-overload]
            if not wire.b.respond(key, response, wire.now) or int(arg) >= 200:  # type: ignore[call-overload]
                pending.pop(0)
        elif op == "cancel" and client_keys:
            wire.a.cancel(client_keys[int(arg) % len(client_keys)], wire.now)  # type: ignore[call-overload]
        elif op == "wait":
            wire.advance(wire.now + float(arg))  # type: ignore[arg-type]
        wire.pump()
        for event in wire.take(B_ADDR):
            if isinstance(event, RequestReceived) and event.key is not None:
                pending.append((event.key, event.request))
        wire.take(A_ADDR)
    # Every TU answers what it was asked; then only timers run.
    for key, request in pending:
        wire.b.respond(key, make_response(request, 500, to_tag="t"), wire.now)
    wire.advance(wire.now + 400.0)
    for event in wire.take(B_ADDR):
        if isinstance(event, RequestReceived) and event.key is not None:
            wire.b.respond(event.key, make_response(event.request, 500, to_tag="t"), wire.now)
    wire.advance(wire.now + 400.0)
    assert len(wire.a) == 0
    assert len(wire.b) == 0
    assert wire.a.get_timer() is None
    assert wire.b.get_timer() is None


def test_send_request_puts_our_via_on_top() -> None:
    end = endpoint()
    bare = SipRequest.build("OPTIONS", "sip:b", [("CSeq", "1 OPTIONS")], b"x", "text/plain")
    end.send_request(bare, B_ADDR, 0.0)
    relayed = bare.with_top_via("SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKup")
    end.send_request(relayed, B_ADDR, 0.0)
    first, second = (parse_message(d) for d, _ in end.datagrams_to_send(0.0))
    assert first.headers[0][0] == "Via"
    assert first.body == b"x"
    assert first.header("Content-Type") == "text/plain"
    assert [v.host for v in second.via] == ["192.0.2.2", "203.0.113.1"]
    assert second.top_via.branch == "z9hG4bKe2"
    assert second.top_via.has_rport


# -- stream peers (TCP, TLS): StreamAddr ------------------------------------------------

TCP_PEER = StreamAddr("198.51.100.4", 40312, Transport.TCP)


def test_a_request_to_a_stream_peer_has_its_via_and_no_retransmissions() -> None:
    end = endpoint(stream_sent_by=((Transport.TLS, "192.0.2.2:5061"),))
    tls = StreamAddr("198.51.100.9", 5061, Transport.TLS)
    end.send_request(invite("s-1"), tls, 0.0)
    end.send_request(invite("s-2"), TCP_PEER, 0.0)
    end.send_request(invite("s-3"), SRC, 0.0)
    sent = end.datagrams_to_send(0.0)
    assert [addr for _, addr in sent] == [tls, TCP_PEER, SRC]
    vias = [parse_message(data).top_via for data, _ in sent]
    assert [(v.transport, v.host, v.port) for v in vias] == [
        ("TLS", "192.0.2.2", 5061), ("TCP", "192.0.2.2", 5060), ("UDP", "192.0.2.2", 5060)
    ]  # fmt: skip
    end.handle_timer(1.0)  # Timer A fires for the UDP INVITE only (17.1.1.2)
    assert [addr for _, addr in end.datagrams_to_send(1.0)] == [SRC]


def test_responses_go_back_on_the_stream_a_request_came_on() -> None:
    end = endpoint()
    # No rport, another sent-by port: over UDP the answer would go to 5060 (18.2.2).
    data = raw_request(via_host="pbx.example:5060").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    end.receive_datagram(data, TCP_PEER, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.addr == TCP_PEER
    assert event.key is not None
    end.respond(event.key, make_response(event.request, 200, to_tag="t"), 0.0)
    response, addr = only_response(end)
    assert (response.status, addr) == (200, TCP_PEER)
    # A reliable non-INVITE server transaction ends at once (Timer J is zero).
    assert end.transaction(event.key) is None


def test_a_refused_stream_request_is_answered_on_its_stream() -> None:
    end = endpoint()
    end.receive_datagram(raw_request(cseq="1 INVITE", via_host="pbx.example"), TCP_PEER, 0.0)
    response, addr = only_response(end)
    assert (response.status, addr) == (400, TCP_PEER)


def test_a_failed_connection_times_out_only_what_waited_for_it() -> None:
    end = endpoint()
    invite_key = end.send_request(invite("f-1"), TCP_PEER, 0.0)
    udp_key = end.send_request(invite("f-2"), SRC, 0.0)
    other = StreamAddr("198.51.100.5", 5060, Transport.TCP)
    other_key = end.send_request(invite("f-3"), other, 0.0)
    end.datagrams_to_send(0.0)
    end.transport_failed(TCP_PEER, 0.5)
    timeouts = [e for e in events(end) if isinstance(e, TransactionTimeout)]
    assert [e.key for e in timeouts] == [invite_key]
    assert end.transaction(invite_key) is None
    assert end.transaction(udp_key) is not None
    assert end.transaction(other_key) is not None
