"""SipMessage API: typed accessors, modification, building, make_response (RFC 3261)."""

from __future__ import annotations

import pytest

from protocols.sip.errors import SipError
from protocols.sip.headers import NameAddr, Via
from protocols.sip.message import SipRequest, SipResponse, make_response
from protocols.sip.parser import parse_message
from protocols.sip.uri import SipUri

INVITE = (
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;rport\r\n"
    b"Via: SIP/2.0/TCP [::1]:5060;branch=z9hG4bKx, SIP/2.0/UDP a.b;received=1.2.3.4\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.com>\r\n"
    b'f: "Alice \\"A\\"" <sip:alice@atlanta.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>;expires=30,"
    b" <sip:x@[2001:db8::1]:5070;transport=tcp>\r\n"
    b'Authorization: Digest username="alice", realm="atlanta.com",\r\n nonce="a,b", nc=00000001\r\n'
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_typed_accessors() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("sip", "biloxi.com", user="bob")
    assert [v.host for v in msg.via] == ["pc33.atlanta.com", "[::1]", "a.b"]
    assert msg.top_via.branch == "z9hG4bKnashds8"
    assert msg.top_via.has_rport
    assert msg.top_via.rport is None
    assert msg.via[1].port == 5060
    assert msg.via[2].received == "1.2.3.4"
    assert msg.from_.display_name == 'Alice "A"'
    assert msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.com"
    assert (msg.cseq.number, msg.cseq.method) == (314159, "INVITE")
    assert msg.max_forwards == 70
    assert msg.contact[0].expires == 30
    assert msg.contact[1].uri == SipUri(
        "sip", "[2001:db8::1]", user="x", port=5070, params=(("transport", "tcp"),)
    )
    (auth,) = msg.authorization
    assert auth.scheme == "Digest"
    assert auth.param("NONCE") == "a,b"
    assert auth.param_dict["nc"] == "00000001"
    ctype = msg.content_type
    assert ctype is not None
    assert ctype.mime == "application/sdp"
    assert msg.content_length == 4
    assert msg.body == b"v=0\n"
    assert msg.header("from") == msg.header("F")
    assert msg.serialize() == INVITE


def test_modification_returns_new_messages() -> None:
    msg = parse_message(INVITE)
    top = Via("UDP", "me.example", 5062, (("branch", "z9hG4bKme"),))
    out = msg.with_top_via(top).without_header("Authorization").with_body(None, b"")
    assert msg.top_via.host == "pc33.atlanta.com"
    assert out.top_via == top
    assert len(out.via) == 4
    assert out.content_length == 0
    assert not out.has_header("Content-Type")
    assert not out.has_header("Authorization")
    again = parse_message(out.serialize())
    assert again == out
    assert again.without_top_via().without_top_via().via == msg.via[1:]


def test_make_response_copies_rfc3261_8_2_6_headers() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, SipRequest)
    resp = make_response(req, 180, to_tag="abc", record_route=True)
    assert isinstance(resp, SipResponse)
    assert resp.status == 180
    assert resp.reason_phrase == "Ringing"
    assert resp.via == req.via
    assert resp.to.tag == "abc"
    assert resp.from_ == req.from_
    assert resp.call_id == req.call_id
    assert resp.cseq == req.cseq
    assert resp.record_route == req.record_route
    assert make_response(req, 100).record_route == ()


def test_make_response_adds_contact_in_any_form() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, SipRequest)
    uri = SipUri("sip", "192.0.2.2", "warpd", port=5060)
    for contact in (uri, NameAddr(uri), "<sip:warpd@192.0.2.2:5060>"):
        resp = make_response(req, 200, to_tag="t", contact=contact)
        assert resp.header_values("Contact") == ("<sip:warpd@192.0.2.2:5060>",)
    assert make_response(req, 200, to_tag="t").header("Contact") is None


def test_make_response_copies_a_to_it_cannot_parse() -> None:
    req = parse_message(INVITE.replace(b"To: Bob <", b"To: Bob <<", 1))
    assert isinstance(req, SipRequest)
    with pytest.raises(SipError):
        req.to  # noqa: B018
    resp = make_response(req, 400, to_tag="t")
    assert resp.header("To") == "Bob <<sip:bob@biloxi.com>"


def test_bad_version_is_505() -> None:
    with pytest.raises(SipError) as info:
        parse_message(INVITE.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1))
    assert info.value.status_code == 505
