"""Typed header values (RFC 3261 section 20, RFC 3326 Reason) and the lexical helpers."""

from __future__ import annotations

import pytest

from protocols.sip.errors import SipError
from protocols.sip.grammar import canonical_name, quote, split_list, unquote
from protocols.sip.headers import (
    AuthValue,
    ContentType,
    CSeq,
    NameAddr,
    Reason,
    Via,
    parse_auth,
    parse_content_type,
    parse_cseq,
    parse_name_addr,
    parse_reason,
    parse_uint,
    parse_via,
)
from protocols.sip.uri import SipUri, TelUri


def test_via_accessors_and_rewrites() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1;rport;maddr=224.0.0.1;ttl=16")
    assert via.sent_protocol == "SIP/2.0/UDP"
    assert (via.host, via.port, via.branch, via.maddr, via.ttl) == (
        "[2001:db8::9]",
        5060,
        "z9hG4bK1",
        "224.0.0.1",
        16,
    )
    assert via.has_rport
    assert via.rport is None
    answered = via.with_param("rport", "40000").with_param("received", "192.0.2.9")
    assert answered.rport == 40000
    assert answered.received == "192.0.2.9"
    assert answered.param("RPORT") == "40000"
    assert str(answered.without_param("maddr")) == (
        "SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1;rport=40000;ttl=16;received=192.0.2.9"
    )
    assert parse_via(str(answered)) == answered
    bare = parse_via("SIP/2.0/TCP host")
    assert (bare.port, bare.params, bare.ttl, bare.branch, bare.has_rport) == (
        None,
        (),
        None,
        None,
        False,
    )
    assert bare != ("TCP", "host", None, (), "SIP", "2.0")
    assert bare == Via("TCP", "host")
    assert hash(bare) == hash(Via("TCP", "host"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host;;",
        "S P/2.0/UDP h",
    ],
)
def test_bad_via(text: str) -> None:
    with pytest.raises(SipError):
        parse_via(text)
    with pytest.raises(SipError):
        parse_via("SIP/2.0/UDP h;ttl=999").ttl  # noqa: B018


def test_name_addr_forms() -> None:
    quoted = parse_name_addr('"Alice \\"A\\"" <sip:alice@atlanta.com>;tag=1;expires=60;q=0.5')
    assert quoted.display_name == 'Alice "A"'
    assert (quoted.tag, quoted.expires, quoted.q) == ("1", 60, "0.5")
    assert quoted.param("TAG") == "1"
    assert parse_name_addr(str(quoted)) == quoted
    tokens = parse_name_addr("Bob Smith <tel:+15551234>")
    assert tokens == NameAddr(TelUri("+15551234"), "Bob Smith")
    spec = parse_name_addr("sip:carol@chicago.com;tag=9")
    assert spec == NameAddr(SipUri("sip", "chicago.com", "carol"), None, (("tag", "9"),))
    assert str(spec.without_param("tag")) == "<sip:carol@chicago.com>"
    assert spec.with_param("lr").params == (("tag", "9"), ("lr", None))
    assert parse_name_addr("<sip:a@b>").display_name is None
    escaped = parse_name_addr("<sip:%61:p%41ss@h>")  # escapes go through the general path
    assert (escaped.uri.user, escaped.uri.password) == ("%61", "p%41ss")  # type: ignore[union-attr]
    assert parse_name_addr("<sip:a:p%41ss@h>").uri.password == "p%41ss"  # type: ignore[union-attr]
    assert parse_name_addr("<sip:a:pw@h>").uri.password == "pw"  # type: ignore[union-attr]
    with pytest.raises(SipError):
        parse_name_addr("<sip:a:p%4@h>")
    assert spec != tuple(spec)
    assert hash(spec) == hash(parse_name_addr(str(spec)))


@pytest.mark.parametrize(
    "text",
    ['"unterminated <sip:a@b>', "Bad,Name <sip:a@b>", "<sip:a@b", "<sip:a@b> junk", "sip:a@b;=x"],
)
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(SipError):
        parse_name_addr(text)


def test_cseq() -> None:
    assert parse_cseq(" 4711   INVITE ") == CSeq(4711, "INVITE")
    assert str(CSeq(1, "BYE")) == "1 BYE"
    assert CSeq(1, "BYE") != (1, "BYE")
    assert hash(CSeq(1, "BYE")) == hash(parse_cseq("1 BYE"))
    for bad in ("INVITE", "1", "x INVITE", "2147483648 INVITE", "1 IN VITE"):
        with pytest.raises(SipError):
            parse_cseq(bad)


def test_auth_values() -> None:
    value = parse_auth('Digest realm="atlanta.com", nonce="a,b\\"c", qop="auth", stale=FALSE')
    assert value.scheme == "Digest"
    assert value.param("nonce") == 'a,b"c'
    assert value.param("missing") is None
    assert value.param_dict == {
        "realm": "atlanta.com",
        "nonce": 'a,b"c',
        "qop": "auth",
        "stale": "FALSE",
    }
    assert parse_auth(str(value)) == value
    built = AuthValue("Digest", (("username", quote("bob")), ("nc", "00000001")))
    assert str(built) == 'Digest username="bob", nc=00000001'
    basic = parse_auth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert basic.token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert str(basic) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert parse_auth("Digest a=b,, c=d").params == (("a", "b"), ("c", "d"))
    bad_values = ('Di"gest a=b', "Digest a=b, =c", 'Digest a="x', "Digest a=b c, d=e")
    for bad in (*bad_values, "Digest a=, b=c", 'Digest a="x"y'):
        with pytest.raises(SipError):
            parse_auth(bad)


def test_content_type_and_reason() -> None:
    ctype = parse_content_type("Application/SDP ; charset=utf-8")
    assert ctype == ContentType("Application", "SDP", (("charset", "utf-8"),))
    assert ctype.mime == "application/sdp"
    assert ctype.param("charset") == "utf-8"
    assert str(ctype) == "Application/SDP;charset=utf-8"
    assert parse_content_type("text/plain").params == ()
    for bad in ("text", "text/", "te xt/plain"):
        with pytest.raises(SipError):
            parse_content_type(bad)
    reason = parse_reason('Q.850 ;cause=16 ;text="Normal call clearing"')
    assert reason == Reason("Q.850", (("cause", "16"), ("text", '"Normal call clearing"')))
    assert (reason.cause, reason.text) == (16, "Normal call clearing")
    assert str(reason) == 'Q.850;cause=16;text="Normal call clearing"'
    assert parse_reason("SIP").cause is None
    with pytest.raises(SipError):
        parse_reason("Q 850;cause=1")


def test_uint_and_grammar_helpers() -> None:
    assert parse_uint(" 70 ", "Max-Forwards", 255) == 70
    for bad in ("-1", "256", "", "７", "12345678901"):
        with pytest.raises(SipError):
            parse_uint(bad, "Max-Forwards", 255)
    assert canonical_name("v") == "Via"
    assert canonical_name("X-Custom") == "X-Custom"
    with pytest.raises(SipError):
        canonical_name("Bad Name")
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert unquote('"a\\"b\\\\c"') == 'a"b\\c'
    assert unquote("token") == "token"
    assert split_list('"a, \\" b" <sip:x,y>, c,, d') == ['"a, \\" b" <sip:x,y>', "c", "d"]
    assert split_list("  ") == []
    for bad in ('"a, b', "<sip:a, b"):
        with pytest.raises(SipError):
            split_list(bad)
