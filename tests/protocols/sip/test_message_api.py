"""The message API other layers build on: building, editing, errors (RFC 3261 7, 8.2.6)."""

from __future__ import annotations

import contextlib
import time

import pytest

from protocols.sip.errors import SipError
from protocols.sip.framing import KeepAlive, SipStreamFramer
from protocols.sip.grammar import parse_params, split_list
from protocols.sip.headers import NameAddr, Via, parse_auth, parse_name_addr, parse_via
from protocols.sip.message import SipMessage, SipRequest, SipResponse
from protocols.sip.parser import MAX_HEADERS, parse_head, parse_message
from protocols.sip.uri import SipUri, parse_uri

BASE = [
    ("Via", Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bKa"),))),
    ("From", NameAddr(SipUri("sip", "a.example", "alice")).with_tag("1")),
    ("To", NameAddr(SipUri("sip", "b.example", "bob"))),
    ("Call-ID", "c1@a.example"),
    ("CSeq", "1 INVITE"),
]


def invite(**kw: object) -> SipRequest:
    return SipRequest.build("INVITE", "sip:bob@b.example", BASE, **kw)  # type: ignore[arg-type]


def test_build_computes_length_and_serializes() -> None:
    msg = invite(body=b"v=0\r\n", content_type="application/sdp")
    assert msg.header("Content-Length") == "5"
    assert msg.headers[-2:] == (("Content-Type", "application/sdp"), ("Content-Length", "5"))
    wire = bytes(msg)
    assert wire.startswith(b"INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060")
    assert wire.endswith(b"\r\n\r\nv=0\r\n")
    assert parse_message(wire) == msg
    assert msg.serialize() is msg.serialize()  # computed once
    assert repr(msg) == "<SipRequest 'INVITE sip:bob@b.example SIP/2.0'>"
    assert hash(msg) == hash(parse_message(wire))
    assert msg != parse_message(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert msg.uri_text == "sip:bob@b.example"
    replaced = SipRequest.build(
        "INVITE", "sip:x@y", [*BASE, ("Content-Type", "text/plain")], content_type="a/b"
    )
    assert replaced.header_values("Content-Type") == ("a/b",)


def test_builders_refuse_what_would_corrupt_the_wire() -> None:
    with pytest.raises(ValueError, match="CR/LF"):
        SipRequest.build("INVITE", "sip:a@b", [("Subject", "x\r\nVia: evil")])
    with pytest.raises(ValueError, match="request line"):
        SipRequest.build("IN VITE", "sip:a@b")
    with pytest.raises(SipError):
        SipRequest.build("INVITE", "not a uri")
    with pytest.raises(ValueError, match="status"):
        SipResponse.build(99)
    with pytest.raises(SipError):
        SipRequest.build("INVITE", "sip:a@b", [("Bad Name", "x")])


def test_compact_serialization_maps_names_back() -> None:
    msg = invite(body=b"v=0\r\n", content_type="application/sdp").with_header("X-Other", "1")
    compact = msg.serialize_compact()
    assert b"\r\nv: SIP/2.0/UDP" in compact
    assert b"\r\nf: <sip:alice@a.example>;tag=1\r\n" in compact
    assert b"\r\ni: c1@a.example\r\nCSeq: 1 INVITE\r\n" in compact
    assert b"\r\nc: application/sdp\r\nl: 5\r\nX-Other: 1\r\n\r\n" in compact
    assert len(compact) < len(msg.serialize())
    assert parse_message(compact) == msg


def test_response_build() -> None:
    resp = SipResponse.build(183, headers=BASE, body=b"x", content_type="application/sdp")
    assert (resp.status, resp.reason_phrase, resp.is_provisional) == (183, "Session Progress", True)
    assert not SipResponse.build(200, "Fine").is_provisional
    assert SipResponse.build(200, "Fine").start_line() == "SIP/2.0 200 Fine"
    assert resp.content_type is not None
    assert resp.content_length == 1


def test_header_edits() -> None:
    msg = (
        invite().with_added_header("Route", "<sip:p1;lr>").with_added_header("Route", "<sip:p2;lr>")
    )
    assert [str(r.uri) for r in msg.route] == ["sip:p1;lr", "sip:p2;lr"]
    first = msg.with_added_header("Route", "<sip:p0;lr>", first=True)
    assert [str(r.uri) for r in first.route] == ["sip:p0;lr", "sip:p1;lr", "sip:p2;lr"]
    one = first.with_header("route", "<sip:only;lr>")
    assert [str(r.uri) for r in one.route] == ["sip:only;lr"]
    assert one.headers.index(("Route", "<sip:only;lr>")) == first.headers.index(
        ("Route", "<sip:p0;lr>")
    )
    assert one.without_header("Route").route == ()
    assert msg.without_header("X-Absent") is msg
    assert msg.without_first_value("X-Absent") is msg
    joined = msg.with_header("Route", "<sip:a;lr>, <sip:b;lr>")
    assert [str(r.uri) for r in joined.without_first_value("Route").route] == ["sip:b;lr"]
    assert msg.with_header("X-New", 1).header("x-new") == "1"
    assert msg.has_header("ROUTE")
    assert not msg.has_header("X-New")
    assert msg.with_top_via("SIP/2.0/TCP me").without_top_via() == msg


def test_unknown_and_list_headers_lookup() -> None:
    msg = parse_message(
        b"OPTIONS sip:a@b SIP/2.0\r\nX-Multi: 1, 2\r\nx-multi: 3\r\n"
        b"Supported: timer, 100rel\r\nk: path\r\nContent-Length: 0\r\n\r\n"
    )
    assert msg.header("X-MULTI") == "1, 2"
    assert msg.header_values("x-multi") == ("1, 2", "3")
    assert msg.header_values("Supported") == ("timer", "100rel", "path")
    assert msg.header("X-Absent") is None
    assert msg.max_forwards is None
    assert msg.expires is None
    assert msg.content_type is None


def test_missing_and_bad_mandatory_headers_are_400() -> None:
    msg = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: a b\r\nVia: ,,\r\nl: 0\r\n\r\n")
    for read in (lambda: msg.from_, lambda: msg.cseq, lambda: msg.call_id, lambda: msg.top_via):
        with pytest.raises(SipError) as info:
            read()
        assert info.value.status_code == 400
    empty = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n")
    with pytest.raises(SipError):
        _ = empty.top_via


def test_contact_star_and_auth_headers() -> None:
    msg = parse_message(
        b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nExpires: 0\r\n"
        b'Proxy-Authorization: Digest username="a", realm="r"\r\n'
        b'Proxy-Authenticate: Digest realm="r", nonce="n"\r\nContent-Length: 0\r\n\r\n'
    )
    assert msg.contact_star
    assert msg.contact == ()
    assert msg.expires == 0
    assert msg.proxy_authorization[0].param("username") == "a"
    assert msg.proxy_authenticate[0].param("nonce") == "n"
    mixed = msg.with_header("Contact", "*, <sip:a@b>")
    with pytest.raises(SipError):
        _ = mixed.contact


def test_duplicate_content_length_is_refused_on_input_and_collapsed_on_output() -> None:
    with pytest.raises(SipError, match="duplicate Content-Length"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\nl: 2\r\n\r\nhi")
    msg = SipRequest.build("OPTIONS", "sip:a@b", [("Content-Length", "2"), ("l", "2")], b"hi")
    assert msg.header_values("Content-Length") == ("2",)
    rebuilt = msg.with_body("text/plain", b"hello")
    assert rebuilt.header_values("Content-Length") == ("5",)
    assert rebuilt.content_type is not None


def test_abstract_base_needs_a_start_line() -> None:
    base = SipMessage((), b"", None)
    with pytest.raises(NotImplementedError):
        base.start_line()
    with pytest.raises(NotImplementedError):
        base._make((), b"")


def test_with_uri() -> None:
    msg = invite()
    moved = msg.with_uri(SipUri("sip", "gw.example", "+15551234", port=5080))
    assert moved.uri_text == "sip:+15551234@gw.example:5080"
    assert moved.headers == msg.headers


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"X" * 70000, 413),
        (b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n", 413),
        (b"SIP/2.0 2000 OK\r\n\r\n", 400),
        (b"SIP/2.0 099 Low\r\n\r\n", 400),
        (b"SIP/2.0 700 High\r\n\r\n", 400),
        (b"HTTP/1.1 200 OK\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"SIP/3.0 200 OK\r\n\r\n", 505),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNo colon\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\n", 400),
        (b"OPTIONS :a SIP/2.0\r\n\r\n", 400),
        (b"OPTIONS http://a SIP/2.0\r\n\r\n", 416),
    ],
)
def test_parse_errors(data: bytes, status: int) -> None:
    with pytest.raises(SipError) as info:
        parse_message(data)
    assert info.value.status_code == status


def test_parse_head_refuses_an_empty_section() -> None:
    with pytest.raises(SipError):
        parse_head(b"")


def test_datagram_without_content_length_takes_the_rest() -> None:
    msg = parse_message(b"\r\n\r\nMESSAGE sip:a@b SIP/2.0\r\nX-A:  padded  \r\n\r\nhello")
    assert msg.body == b"hello"
    assert msg.header("X-A") == "padded"
    assert msg.header("Content-Length") == "5"
    assert parse_message(msg.serialize()) == msg


def test_framer_limits_and_errors() -> None:
    framer = SipStreamFramer(max_size=64)
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X" * 60)
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 413
    with pytest.raises(SipError):  # the stream stays broken
        framer.next_message()

    framer = SipStreamFramer(max_size=64)
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nX-Long: " + b"y" * 60 + b"\r\n\r\n")
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 413

    framer = SipStreamFramer(max_size=64)
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n")
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 413

    framer = SipStreamFramer()
    framer.receive_data(b"\r\n\rX")
    with pytest.raises(SipError):
        framer.next_message()


def test_framer_keepalives_and_compaction() -> None:
    framer = SipStreamFramer()
    framer.receive_data(b"\r\n")
    assert framer.next_message() is None  # could still become a ping
    framer.receive_data(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n")
    assert framer.next_message() is KeepAlive.PING
    assert framer.next_message() is KeepAlive.PONG
    assert framer.next_message() is None
    framer.receive_data(b"\r\n")
    item = framer.next_message()
    assert isinstance(item, SipRequest)
    assert framer.buffered == 0
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n")
    assert isinstance(framer.next_message(), SipRequest)


_N = 20000
HOSTILE = {
    "via blanks": lambda: parse_via("SIP/2.0/UDP " + "a" * _N + " " * _N + "x"),
    "via params": lambda: parse_via("SIP/2.0/UDP h" + ";a  " * _N + "!"),
    "quoted param": lambda: parse_params('a="' + "\\x" * _N),
    "display tokens": lambda: parse_name_addr("a " * _N + "<"),
    "user without @": lambda: parse_name_addr("<sip:" + "a;" * _N + ">"),
    "long userinfo": lambda: parse_uri("sip:" + "a" * _N + "@" + "b" * _N + ":"),
    "auth params": lambda: parse_auth("Digest " + "a=b," * _N + '"'),
    "list": lambda: split_list('"' + "a," * _N),
    "folds": lambda: parse_message(
        b"OPTIONS sip:a@b SIP/2.0\r\nX: y" + b"\r\n z" * 8000 + b"\r\n\r\n"
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_inputs_take_linear_time(name: str) -> None:
    """No regex here may backtrack super-linearly on what a peer controls."""
    start = time.perf_counter()
    with contextlib.suppress(SipError):
        HOSTILE[name]()
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "contacts",
    [
        ["<sip:a@192.0.2.1:5060;transport=udp>"],
        ['"Bob" <sip:bob@example.com>;expires=60'],
        ["<sip:a@h1>, <sip:b@h2>;q=0.5"],
        ["<sip:a@h1>", "<sip:b@h2>"],
        ["*"],
        ["sip:plain@example.com;expires=0"],
    ],
)
def test_contact_fast_path_agrees_with_the_list_path(contacts: list[str]) -> None:
    msg = SipRequest.build("REGISTER", "sip:example.com", [("Contact", c) for c in contacts], b"")
    values = [v for c in contacts for v in split_list(c)]
    expected = () if values == ["*"] else tuple(map(parse_name_addr, values))
    assert msg.contact == expected


def test_an_empty_or_bad_contact_is_not_taken_by_the_fast_path() -> None:
    msg = SipRequest.build("REGISTER", "sip:example.com", [("Contact", " ")], b"")
    assert msg.contact == ()
    bad = SipRequest.build("REGISTER", "sip:example.com", [("Contact", "<sip:a@h1")], b"")
    with pytest.raises(SipError):
        _ = bad.contact
