"""What the endpoint answers to requests it refuses, and whom it answers (RFC 3261 8.2, 18.2.2).

Issue 10's independent-UAS findings: refused requests answered from what the
parser read (505/416/400/413, a reason that says why, parsed once), RFC 2543
clients served, a bare-cookie branch not taken as unique, duplicate
single-value headers refused, responses sent to the Via's sent-by port.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.sip.parser as parser_module
from protocols.sip.endpoint import Endpoint
from protocols.sip.errors import SipError
from protocols.sip.framing import SipStreamFramer
from protocols.sip.headers import parse_via
from protocols.sip.inbound import response_address
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.parser import SINGLE_HEADERS, parse_message
from protocols.sip.transaction import (
    CancelReceived,
    MalformedMessage,
    RequestReceived,
    TransactionState,
    cancel_for,
)
from protocols.sip.txn_server import InviteServerTransaction
from protocols.sip.uri import SipUri
from tests.protocols.sip.test_endpoint import SRC, endpoint, events, raw_request
from tests.protocols.sip.test_message_vectors import VECTORS, Vector

Addr = tuple[str, int]


def answers(end: Endpoint) -> list[tuple[SipResponse, Addr]]:
    out = []
    for data, addr in end.datagrams_to_send(0.0):
        message = parse_message(data)
        assert isinstance(message, SipResponse)
        out.append((message, addr))
    return out


def refused(data: bytes, src: Addr = SRC) -> tuple[SipResponse, Addr, MalformedMessage]:
    end = endpoint()
    end.receive_datagram(data, src, 0.0)
    ((response, addr),) = answers(end)
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert event.answered
    assert event.status == response.status
    return response, addr, event


# -- vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_gets_its_answer(vector: Vector) -> None:
    end = endpoint()
    end.receive_datagram(vector.data, ("192.0.2.9", 5060), 0.0)
    statuses = [response.status for response, _ in answers(end)]
    assert statuses == ([] if vector.answer is None else [vector.answer])
    if vector.expect is not None:
        (event,) = events(end)
        assert isinstance(event, MalformedMessage)
        assert event.status == vector.expect
        assert event.answered == (vector.answer is not None)


# -- item 1: answered from what was read, with a reason, once ----------------------


def test_bad_version_is_505_naming_the_version() -> None:
    data = raw_request().replace(b"SIP/2.0\r\n", b"SIP/3.1\r\n", 1)
    response, addr, event = refused(data)
    assert response.status == 505
    assert response.reason_phrase == "Version Not Supported (SIP version 'SIP/3.1')"
    assert response.call_id == "ep-1"
    assert response.to.tag is not None
    assert addr == SRC
    assert isinstance(event.message, SipRequest)
    assert event.message.method == "OPTIONS"


def test_unsupported_scheme_is_416() -> None:
    data = raw_request().replace(b"sip:b@192.0.2.2", b"im:b@example.com", 1)
    response, _, _ = refused(data)
    assert response.status == 416
    assert "'im'" in response.reason_phrase
    assert response.cseq.method == "OPTIONS"


@pytest.mark.parametrize("name", ["From", "To"])
def test_unparseable_from_or_to_is_copied_into_the_400(name: str) -> None:
    bad = f"{name}: <sip:a@a.example"
    lines = raw_request().decode().split("\r\n")
    lines = [bad if line.startswith(f"{name}:") else line for line in lines]
    response, _, event = refused("\r\n".join(lines).encode())
    assert response.status == 400
    assert response.header(name) == bad.partition(": ")[2]
    assert "name-addr" in response.reason_phrase or "URI" in response.reason_phrase
    assert event.message is not None


def test_reason_phrase_drops_what_a_phrase_may_not_hold() -> None:
    data = raw_request(cseq='1 "OPTIONS\\')
    response, _, event = refused(data)
    assert response.status == 400
    assert '"' not in response.reason_phrase
    assert "\\" not in response.reason_phrase
    assert '"' in event.detail  # the log keeps the detail as it was
    assert parse_message(response.serialize()).status == 400


def test_short_body_and_oversize_are_answered_from_the_head() -> None:
    data = raw_request().replace(b"Content-Length: 0", b"Content-Length: 50")
    response, _, event = refused(data)
    assert (response.status, event.detail) == (400, "Content-Length 50 exceeds the 0 body bytes")
    end = endpoint(max_message_size=300)
    end.receive_datagram(raw_request(extra="Subject: " + "x" * 300 + "\r\n"), SRC, 0.0)
    ((response, _),) = answers(end)
    assert response.status == 413


@pytest.mark.parametrize("drop", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_a_refusal_without_what_it_needs_is_dropped(drop: str) -> None:
    lines = raw_request().decode().replace("1 OPTIONS", "1 INVITE").split("\r\n")
    data = "\r\n".join(line for line in lines if not line.startswith(f"{drop}:")).encode()
    end = endpoint()
    end.receive_datagram(data, SRC, 0.0)
    assert answers(end) == []
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert not event.answered


def test_an_overlarge_cseq_is_still_answered_with_its_raw_value() -> None:
    response, _, _ = refused(raw_request(cseq="99999999999999999999 OPTIONS"))
    assert response.status == 400
    assert response.header("CSeq") == "99999999999999999999 OPTIONS"


def test_the_head_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = parser_module.parse_head

    def counting(data: bytes) -> parser_module.Head:
        calls.append(data)
        return real(data)

    monkeypatch.setattr(parser_module, "parse_head", counting)
    for data in (
        raw_request().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1),
        raw_request().replace(b"Content-Length: 0", b"Content-Length: 9"),
        raw_request(extra="To: <sip:c@c>\r\n"),
    ):
        end = endpoint()
        calls.clear()
        end.receive_datagram(data, SRC, 0.0)
        assert len(calls) == 1
        assert len(end.datagrams_to_send(0.0)) == 1


def test_a_stream_framer_error_is_answered_over_the_connection() -> None:
    end = endpoint(transport="TCP", reliable=True)
    framer = SipStreamFramer(max_size=200)
    framer.receive_data(raw_request(via_host="pbx.example:5070").replace(b": 0", b": 900"))
    with pytest.raises(SipError) as info:
        framer.next_message()
    end.refuse(info.value, SRC)
    ((response, addr),) = answers(end)
    assert (response.status, addr) == (413, SRC)
    end.refuse(SipError("header section too large", 413), SRC)
    assert answers(end) == []
    assert [e.answered for e in events(end) if isinstance(e, MalformedMessage)] == [True, False]


FAULTS: list[tuple[bytes, bytes, int]] = [
    (b" SIP/2.0\r\n", b" SIP/9.9\r\n", 505),
    (b"sip:b@192.0.2.2 ", b"urn:b:c ", 416),
    (b"To: <sip:b@b.example>", b"To: <sip:b@b.example", 400),
    (b"From: <sip:a@a.example>", b"From: sip:a@a.example<", 400),
    (b"Call-ID: ep-1", b"Call-ID: ep 1", 400),
    (b"Content-Length: 0", b"Content-Length: zero", 400),
    (b"OPTIONS sip", b"OPT(ONS sip", 400),
]


@settings(max_examples=200)
@given(
    faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=3, unique=True),
    duplicate=st.one_of(st.none(), st.sampled_from(SINGLE_HEADERS)),
    method=st.sampled_from(["OPTIONS", "INVITE", "BYE", "REGISTER"]),
)
def test_any_fault_with_readable_headers_is_answered(
    faults: list[tuple[bytes, bytes, int]], duplicate: str | None, method: str
) -> None:
    data = raw_request(method).replace(b"OPTIONS", method.encode())
    for old, new, _ in faults:
        data = data.replace(old.replace(b"OPTIONS", method.encode()), new, 1)
    if duplicate is not None:
        data = data.replace(b"\r\n\r\n", f"\r\n{duplicate}: 1\r\n\r\n".encode())
    end = endpoint()
    end.receive_datagram(data, SRC, 0.0)
    ((response, addr),) = answers(end)
    assert addr == SRC
    assert response.status in {status for _, _, status in faults} | {400}
    assert response.header("Call-ID") is not None
    assert response.top_via.branch == "z9hG4bKr1"
    (event,) = events(end)
    assert isinstance(event, MalformedMessage)
    assert event.answered


@settings(max_examples=300)
@given(at=st.integers(0, 400), junk=st.binary(min_size=1, max_size=6))
def test_corrupted_requests_never_raise_and_answers_are_well_formed(at: int, junk: bytes) -> None:
    data = raw_request("INVITE")
    data = data[:at] + junk + data[at + len(junk) :]
    end = endpoint()
    end.receive_datagram(data, SRC, 0.0)
    for response, _ in answers(end):
        assert response.status >= 400
    kinds = {type(e) for e in events(end)}
    assert kinds <= {MalformedMessage, RequestReceived}


# -- item 4: duplicate single-value headers --------------------------------------------


@pytest.mark.parametrize("name", SINGLE_HEADERS)
def test_duplicate_single_value_header_is_400_naming_it(name: str) -> None:
    value = {"CSeq": "1 OPTIONS", "Call-ID": "ep-1", "Content-Length": "0"}.get(name, "70")
    if name in ("To", "From"):
        value = "<sip:x@x.example>"
    compact = {"To": "t", "From": "f", "Call-ID": "i", "Content-Length": "l"}.get(name, name)
    extra = f"{compact}: {value}\r\n"
    if name == "Max-Forwards":  # raw_request has none of its own
        extra *= 2
    response, _, _ = refused(raw_request(extra=extra))
    assert response.status == 400
    assert response.reason_phrase == f"Bad Request (duplicate {name} header)"


def test_repeated_list_headers_stay_accepted() -> None:
    end = endpoint()
    end.receive_datagram(
        raw_request(extra="Via: SIP/2.0/UDP 10.0.0.9\r\nRoute: <sip:p>\r\n"), SRC, 0
    )
    (event,) = events(end)
    assert isinstance(event, RequestReceived)


# -- items 2 and 3: RFC 2543 clients, bare-cookie branches ------------------------------


def test_from_without_tag_is_served_and_matched_by_rfc2543_rules() -> None:
    end = endpoint()
    invite = raw_request("INVITE", branch="z9hG4bK", from_tag="", via_host="198.51.100.4:40000")
    end.receive_datagram(invite, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    assert event.request.from_.tag is None
    end.receive_datagram(invite, SRC, 0.1)  # a retransmission: absorbed
    assert events(end) == []
    end.respond(event.key, end.build_response(event.key, 486), 0.2)
    ((busy, _),) = answers(end)
    ack = raw_request("ACK", branch="z9hG4bK", from_tag="", via_host="198.51.100.4:40000")
    ack = ack.replace(b"To: <sip:b@b.example>", f"To: {busy.header('To')}".encode())
    end.receive_datagram(ack, SRC, 0.3)
    txn = end.transaction(event.key)
    assert isinstance(txn, InviteServerTransaction)
    assert txn.state is TransactionState.CONFIRMED  # the ACK matched the INVITE


def test_bare_cookie_branches_are_two_transactions_not_one() -> None:
    end = endpoint()
    for call_id in ("bb-1", "bb-2"):
        end.receive_datagram(raw_request(branch="z9hG4bK", call_id=call_id), SRC, 0.0)
    keys = [e.key for e in events(end) if isinstance(e, RequestReceived)]
    assert len(keys) == 2
    assert len(set(keys)) == 2
    assert len(end) == 2


def test_bare_cookie_invite_can_be_cancelled() -> None:
    end = endpoint()
    end.receive_datagram(raw_request("INVITE", branch="z9hG4bK"), SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    end.receive_datagram(bytes(cancel_for(event.request)), SRC, 0.1)
    assert any(isinstance(e, CancelReceived) for e in events(end))
    assert sorted(r.status for r, _ in answers(end)) == [200, 487]


# -- item 6: where responses go ---------------------------------------------------------


@pytest.mark.parametrize(
    ("via", "reliable", "expected"),
    [
        ("SIP/2.0/UDP 198.51.100.4:5070", False, ("198.51.100.4", 5070)),
        ("SIP/2.0/UDP pbx.example", False, ("198.51.100.4", 5060)),
        ("SIP/2.0/UDP 10.0.0.1:5080;received=203.0.113.66", False, ("198.51.100.4", 5080)),
        ("SIP/2.0/UDP pbx.example:5070;maddr=239.255.255.1", False, ("239.255.255.1", 5070)),
        ("SIP/2.0/UDP pbx.example;maddr=[ff02::1]", False, ("ff02::1", 5060)),
        ("SIP/2.0/UDP 198.51.100.4:5070;rport", False, SRC),
        ("SIP/2.0/UDP 198.51.100.4:5070;rport=40000", False, SRC),
        ("SIP/2.0/TCP 198.51.100.4:5070", True, SRC),
    ],
)
def test_response_address(via: str, reliable: bool, expected: Addr) -> None:
    assert response_address(parse_via(via), SRC, reliable=reliable) == expected


def test_responses_go_to_the_sent_by_port_without_rport() -> None:
    end = endpoint()
    end.receive_datagram(raw_request("INVITE", via_host="pbx.example:5070"), SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.addr == SRC  # the TU still learns where the request came from
    assert event.key is not None
    end.handle_timer(0.3)  # the automatic 100 Trying
    end.respond(event.key, end.build_response(event.key, 180), 0.3)
    assert [(r.status, addr) for r, addr in answers(end)] == [
        (100, ("198.51.100.4", 5070)),
        (180, ("198.51.100.4", 5070)),
    ]
    refused_at = refused(raw_request(via_host="pbx.example", cseq="1 BYE"))[1]
    assert refused_at == ("198.51.100.4", 5060)


# -- item 8: one To tag per server transaction, Contact ---------------------------------


def test_build_response_keeps_one_to_tag_and_adds_contact() -> None:
    end = endpoint()
    end.receive_datagram(raw_request("INVITE"), SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    key = event.key
    assert key is not None
    trying = end.build_response(key, 100)
    ringing = end.build_response(key, 180, contact="<sip:warpd@192.0.2.2>")
    ok = end.build_response(key, 200, contact=SipUri("sip", "192.0.2.2", "warpd"))
    assert trying.to.tag is None
    assert ringing.to.tag is not None
    assert ok.to.tag == ringing.to.tag
    assert ringing.header("Contact") == ok.header("Contact") == "<sip:warpd@192.0.2.2>"
    end.respond(key, ringing, 0.1)
    end.receive_datagram(bytes(cancel_for(event.request)), SRC, 0.2)
    tags = {r.status: r.to.tag for r, _ in answers(end)}
    assert tags[487] == tags[200] == ringing.to.tag  # the 487 and the CANCEL's 200 too
    with pytest.raises(KeyError):
        end.build_response(key.__class__(key.role, "z9hG4bKnone", "INVITE"), 200)


def test_build_response_keeps_the_tag_the_tu_chose() -> None:
    end = endpoint()
    end.receive_datagram(raw_request("INVITE"), SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    end.respond(event.key, make_response(event.request, 183, to_tag="mine"), 0.0)
    assert end.build_response(event.key, 200).to.tag == "mine"


def test_build_response_in_a_dialog_keeps_the_request_tag() -> None:
    end = endpoint()
    data = raw_request("BYE").replace(b"To: <sip:b@b.example>", b"To: <sip:b@b.example>;tag=d1")
    end.receive_datagram(data, SRC, 0.0)
    (event,) = events(end)
    assert isinstance(event, RequestReceived)
    assert event.key is not None
    assert end.build_response(event.key, 200).to.tag == "d1"


def test_a_response_refused_is_dropped_with_what_was_read() -> None:
    end = endpoint()
    bad = b"SIP/2.0 200 OK\r\nVia: nonsense\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    end.receive_datagram(bad, SRC, 0.0)
    end.receive_datagram(bad.replace(b"SIP/2.0 200", b"SIP/2.0 2000"), SRC, 0.0)
    assert answers(end) == []
    first, second = events(end)
    assert isinstance(first, MalformedMessage)
    assert isinstance(first.message, SipResponse)
    assert isinstance(second, MalformedMessage)
    assert second.message is None  # a status line that does not parse: nothing to keep
