"""SIP/SIPS/tel URIs (RFC 3261 section 19.1, RFC 3966) and the 19.1.4 comparison rules."""

from __future__ import annotations

import pytest

from protocols.sip.errors import SipError
from protocols.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri

# RFC 3261 section 19.1.4: pairs the RFC lists as equivalent / not equivalent.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:a:pw1@h", "sip:a:pw2@h"),
    ("sips:bob@biloxi.com", "sip:bob@biloxi.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert isinstance(ua, SipUri)
    assert ua.equivalent(ub)
    assert ub.equivalent(ua)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_non_equivalent_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert isinstance(ua, SipUri)
    assert not ua.equivalent(ub)
    assert not ub.equivalent(ua)  # type: ignore[union-attr]


def test_sip_uri_parts_and_accessors() -> None:
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=TLS;lr;maddr=239.255.255.1?x=1")
    assert uri == SipUri(
        "sips",
        "[2001:db8::1]",
        "alice",
        "secret",
        5061,
        (("transport", "TLS"), ("lr", None), ("maddr", "239.255.255.1")),
        (("x", "1"),),
    )
    assert isinstance(uri, SipUri)
    assert uri.transport == "tls"
    assert uri.lr
    assert uri.maddr == "239.255.255.1"
    assert uri.has_param("LR")
    assert uri.host_key == "[2001:db8::1]"
    assert (
        str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=TLS;lr;maddr=239.255.255.1?x=1"
    )
    plain = uri.without_param("lr").with_param("transport", "tcp")
    assert (
        str(plain) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;maddr=239.255.255.1?x=1"
    )
    assert parse_uri("sip:h").transport is None  # type: ignore[union-attr]
    assert [str(parse_uri(t)) for t in ("sip:h", "sip:u@h")] == ["sip:h", "sip:u@h"]
    assert not uri.equivalent("sips:alice@[2001:db8::1]")
    assert uri != tuple(uri)
    assert hash(uri) == hash(parse_uri(str(uri)))


def test_user_part_may_hold_semicolons_and_escapes() -> None:
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", ())


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert tel == TelUri("+1-201-555-0123", (("phone-context", "example.com"),))
    assert isinstance(tel, TelUri)
    assert tel.is_global
    assert tel.digits == "+12015550123"
    assert tel.param("phone-context") == "example.com"
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    assert str(parse_uri("tel:911")) == "tel:911"
    assert not parse_uri("tel:911").is_global  # type: ignore[union-attr]
    mail = parse_uri("mailto:alice@example.com")
    assert mail == AbsoluteUri("mailto", "alice@example.com")
    assert str(mail) == "mailto:alice@example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:us er@host",
        "sip:user@",
        "sip:host:99999",
        "sip:host:port",
        "sip:[::1",
        "sip:%zz@host",
        "sip:a@b@c",
        "sip:host;=x",
        "sip:host?&",
        "sip:host?a=<",
        "tel:xyz",
        "1sip:host",
        "no-colon",
        "mailto:has space",
        "sip:-host",
    ],
)
def test_malformed_uris_raise_sip_error(text: str) -> None:
    with pytest.raises(SipError) as info:
        parse_uri(text)
    assert info.value.status_code == 400


def test_escaped_param_names_and_values_are_read_unescaped() -> None:
    # RFC 3261 19.1.4: "%6C%72" is "lr"; escapes and characters are the same URI.
    uri = parse_uri("sip:proxy.example;%6C%72;%74ransport=%54CP;maddr=10.0.0.1")
    assert isinstance(uri, SipUri)
    assert uri.lr
    assert uri.has_param("LR")
    assert uri.param("lr") == ""
    assert uri.transport == "tcp"
    assert uri.param("maddr") == "10.0.0.1"
    assert uri.param("ttl") is None
    assert not uri.has_param("ttl")
    assert str(uri) == "sip:proxy.example;%6C%72;%74ransport=%54CP;maddr=10.0.0.1"  # as written
    assert uri.without_param("lr").params == (("%74ransport", "%54CP"), ("maddr", "10.0.0.1"))
    assert uri.with_param("transport", "udp").params[1] == ("transport", "udp")
    assert uri.with_param("ttl", "1").params[-1] == ("ttl", "1")
    assert uri.equivalent(parse_uri("sip:proxy.example;lr;transport=tcp;maddr=10.0.0.1"))
    assert not uri.equivalent(parse_uri("sip:proxy.example;lr;transport=udp;maddr=10.0.0.1"))


def test_params_without_escapes_keep_the_plain_lookups() -> None:
    uri = parse_uri("sip:gw.example;transport=udp;lr")
    assert isinstance(uri, SipUri)
    assert uri.with_param("transport", "tcp").params == (("transport", "tcp"), ("lr", None))
    assert uri.without_param("LR").params == (("transport", "udp"),)
