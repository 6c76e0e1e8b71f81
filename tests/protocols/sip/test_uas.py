"""protocols.sip.uas: the UAS checks of RFC 3261 8.2.1-8.2.3 and 16.3, on vectors and requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip.endpoint import Endpoint
from protocols.sip.message import SipRequest
from protocols.sip.parser import parse_message
from protocols.sip.transaction import RequestReceived
from protocols.sip.uas import DEFAULT_ALLOW, Refusal, UasPolicy, check_request
from tests.protocols.sip.test_endpoint import SRC, endpoint, events
from tests.protocols.sip.test_message_vectors import VECTORS, Vector

POLICY = UasPolicy()
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def request(
    method: str = "INVITE",
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 198.51.100.4:5060;branch=z9hG4bKu1"),
        ("Max-Forwards", "70"),
        ("From", "<sip:a@a.example>;tag=1"),
        ("To", "<sip:b@b.example>"),
        ("Call-ID", "uas-1"),
        ("CSeq", f"1 {method}"),
        *extra,
    ]
    return SipRequest.build(method, "sip:b@b.example", headers, body, content_type)


REQUEST_VECTORS = [v for v in VECTORS if v.uas_said]


def test_uas_vectors_were_found() -> None:
    assert len(REQUEST_VECTORS) >= 4


@pytest.mark.parametrize("vector", REQUEST_VECTORS, ids=lambda v: v.name)
def test_vector_gets_its_uas_decision(vector: Vector) -> None:
    message = parse_message(vector.data)
    assert isinstance(message, SipRequest)
    refusal = check_request(message, POLICY, forwarding=True)
    assert (None if refusal is None else refusal.status) == vector.uas


def test_unknown_method_is_501_with_allow() -> None:
    refusal = check_request(request("PUBLISH"), POLICY, forwarding=True)
    assert refusal == Refusal(
        501, "Not Implemented (PUBLISH not implemented)", (("Allow", ", ".join(DEFAULT_ALLOW)),)
    )
    narrow = UasPolicy(allow=("INVITE", "ACK", "CANCEL", "BYE"))
    refusal = check_request(request("OPTIONS"), narrow, forwarding=False)
    assert refusal is not None
    assert refusal.headers == (("Allow", "INVITE, ACK, CANCEL, BYE"),)


def test_require_names_what_is_unsupported() -> None:
    extra = (("Require", "timer, 100rel"), ("Require", "foo"))
    refusal = check_request(request(extra=extra), POLICY, forwarding=True)
    assert refusal is not None
    assert refusal.status == 420
    assert refusal.headers == (("Unsupported", "100rel, foo"),)
    assert check_request(request(extra=(("Require", "timer"),)), POLICY, forwarding=True) is None
    # Option tags compare case-sensitively (RFC 3261 19.2).
    upper = request(extra=(("Require", "Timer"),))
    assert check_request(upper, POLICY, forwarding=True) is not None


def test_unsupported_body_is_415_with_accept() -> None:
    xml = request(body=b"<x/>", content_type="application/xml")
    refusal = check_request(xml, POLICY, forwarding=True)
    assert refusal is not None
    assert (refusal.status, refusal.headers) == (415, (("Accept", "application/sdp"),))
    sdp = request(body=SDP, content_type="Application/SDP;charset=utf-8")
    assert check_request(sdp, POLICY, forwarding=True) is None
    untyped = request(body=SDP)
    assert check_request(untyped, POLICY, forwarding=True) is not None
    gzipped = request(
        extra=(("Content-Encoding", "gzip"),), body=SDP, content_type="application/sdp"
    )
    refusal = check_request(gzipped, POLICY, forwarding=True)
    assert refusal is not None
    assert refusal.headers == (("Accept-Encoding", "identity"),)
    # INFO carries DTMF, not a session description: the TU judges its body.
    info = request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    assert check_request(info, POLICY, forwarding=True) is None
    assert check_request(request(), POLICY, forwarding=True) is None  # no body, nothing to check


def test_max_forwards_zero_is_483_only_for_what_would_be_forwarded() -> None:
    zero = (("Max-Forwards", "0"),)
    invite = request().with_header("Max-Forwards", "0")
    refusal = check_request(invite, POLICY, forwarding=True)
    assert refusal is not None
    assert refusal.status == 483
    assert check_request(invite, POLICY, forwarding=False) is None
    options = request("OPTIONS").with_header(*zero[0])
    assert check_request(options, POLICY, forwarding=True) is None
    assert (
        check_request(request().with_header("Max-Forwards", "1"), POLICY, forwarding=True) is None
    )


def status(req: SipRequest) -> int | None:
    refusal = check_request(req, POLICY, forwarding=True)
    return None if refusal is None else refusal.status


def test_order_method_then_hops_then_require_then_body() -> None:
    assert status(request("PUBLISH").with_header("Max-Forwards", "0")) == 501
    hops = request(extra=(("Require", "foo"),), body=b"x", content_type="text/plain")
    assert status(hops.with_header("Max-Forwards", "0")) == 483
    assert status(hops) == 420
    assert status(hops.without_header("Require")) == 415


def test_ack_and_cancel_are_never_refused() -> None:
    for method in ("ACK", "CANCEL"):
        odd = request(method, extra=(("Require", "foo"),), body=b"x", content_type="text/plain")
        assert check_request(odd.with_header("Max-Forwards", "0"), POLICY, forwarding=True) is None


def test_a_bad_header_value_is_refused_with_its_status() -> None:
    bad = request(body=b"x", content_type="not a type")
    refusal = check_request(bad, POLICY, forwarding=True)
    assert refusal is not None
    assert refusal.status == 400
    assert "Content-Type" in refusal.reason


@given(method=st.sampled_from([*DEFAULT_ALLOW, "PUBLISH", "SUBSCRIBE", "X-ODD"]))
def test_refusals_become_responses_through_the_endpoint(method: str) -> None:
    end: Endpoint = endpoint()
    end.receive_datagram(bytes(request(method).with_header("Max-Forwards", "0")), SRC, 0.0)
    received = [e for e in events(end) if isinstance(e, RequestReceived)]
    if method in ("ACK", "CANCEL"):
        return  # an ACK reaches the TU without a transaction; a CANCEL is answered already
    (event,) = received
    assert event.key is not None
    refusal = check_request(event.request, POLICY, forwarding=True)
    if method == "OPTIONS":
        assert refusal is None  # answered by the element itself (16.3 step 3)
        return
    assert refusal is not None
    response = end.build_response(
        event.key, refusal.status, refusal.reason, headers=refusal.headers
    )
    assert end.respond(event.key, response, 0.0)
    (data, _), *_ = end.datagrams_to_send(0.0)
    sent = parse_message(data)
    assert sent.start_line() == f"SIP/2.0 {refusal.status} {refusal.reason}"
    assert sent.to.tag is not None
    for name, value in refusal.headers:
        assert sent.header(name) == value
