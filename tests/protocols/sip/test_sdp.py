"""SDP (RFC 4566) parsing, B2BUA rewrites and codec listing, on RFC 3264 / RFC 4317 bodies."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip.errors import SdpError
from protocols.sip.sdp import Connection, Direction, Origin, RtpMap, parse_sdp

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "sip"


def body(name: str) -> bytes:
    lines = (VECTOR_DIR / f"{name}.sdp").read_bytes().split(b"\n")
    while lines[0].startswith(b"# "):
        lines.pop(0)
    return b"\r\n".join(lines)


ALL = sorted(p.stem for p in VECTOR_DIR.glob("*.sdp"))


@pytest.mark.parametrize("name", ALL)
def test_unmodified_sdp_serializes_to_its_bytes(name: str) -> None:
    data = body(name)
    sdp = parse_sdp(data)
    assert sdp.serialize() == data
    rebuilt = sdp.with_direction(Direction.SENDRECV).serialize()
    assert parse_sdp(rebuilt).media_connection(0) == sdp.media_connection(0)


def test_rfc4317_offer_fields_and_codecs() -> None:
    sdp = parse_sdp(body("rfc4317-2.1-offer"))
    assert sdp.origin == Origin(
        "alice", "2890844526", 2890844526, "IN", "IP4", "host.atlanta.example.com"
    )
    assert sdp.connection == Connection("host.atlanta.example.com")
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        49170,
        "RTP/AVP",
        ("0", "8", "97"),
    )
    assert audio.rtpmaps[97] == RtpMap(97, "iLBC", 8000)
    assert video.m_line == "video 51372 RTP/AVP 31 32"
    assert sdp.codecs() == ("PCMU", "PCMA", "iLBC", "H261", "MPV")
    assert sdp.direction(0) is Direction.SENDRECV
    assert not sdp.is_hold(0)


def test_rejected_stream_is_not_counted_as_a_codec() -> None:
    sdp = parse_sdp(body("rfc3264-10.1-answer"))
    assert sdp.media[1].port == 0
    assert sdp.codecs() == ("PCMU", "MPV")


def test_dtmf_ipv6_rtcp_ptime_fmtp() -> None:
    sdp = parse_sdp(body("composed-dtmf-ipv6-offer"))
    (audio,) = sdp.media
    assert sdp.media_connection(0) == Connection("2001:db8::10", "IP6")
    assert audio.codecs() == ("PCMU", "G729", "telephone-event")
    assert audio.fmtp == {101: "0-15", 18: "annexb=no"}
    assert audio.ptime == 20
    assert audio.rtcp == (49171, Connection("2001:db8::11", "IP6"))
    assert audio.direction is Direction.SENDRECV
    assert audio.attribute("sendrecv") == ""
    assert audio.attribute("nonexistent") is None


def test_hold_forms() -> None:
    legacy = parse_sdp(body("rfc3264-8.4-hold-legacy"))
    assert legacy.is_hold(0)
    offer = parse_sdp(body("rfc4317-2.1-offer"))
    held = offer.with_direction(Direction.SENDONLY, 0)
    assert held.is_hold(0)
    assert not held.is_hold(1)
    assert parse_sdp(held.serialize()).media[0].direction is Direction.SENDONLY
    inactive = offer.with_direction(Direction.INACTIVE)
    assert all(inactive.is_hold(i) for i in range(2))


def test_session_level_direction_applies_to_media_without_one() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\na=recvonly\r\nm=audio 4000 RTP/AVP 0\r\n"
    sdp = parse_sdp(data)
    assert sdp.direction(0) is Direction.RECVONLY
    assert sdp.connection is None
    assert sdp.media_connection(0) is None


def test_b2bua_rewrite_of_addresses_ports_and_origin() -> None:
    sdp = parse_sdp(body("rfc4317-2.1-answer"))
    relayed = (
        sdp.with_connection_address("2001:db8::99", "IP6")
        .with_media_port(0, 30000)
        .with_origin(Origin("warpd", "1", 2, "IN", "IP6", "2001:db8::99"))
    )
    again = parse_sdp(relayed.serialize())
    assert again == relayed
    assert again.connection == Connection("2001:db8::99", "IP6")
    assert again.media[0].port == 30000
    assert again.origin.sess_version == 2
    assert again.codecs() == sdp.codecs()
    assert sdp.media[0].port == 49174  # the original is untouched


def test_media_level_connection_is_rewritten_too() -> None:
    data = (
        b"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000/2 RTP/AVP 0\nc=IN IP4 192.0.2.7\n"
    )
    sdp = parse_sdp(data)
    assert sdp.eol == "\n"
    assert sdp.media[0].port_count == 2
    assert sdp.media_connection(0) == Connection("192.0.2.7")
    assert (sdp.media[0].attributes, sdp.media[0].attribute("ptime")) == ((), None)
    out = sdp.with_connection_address("198.51.100.1")
    assert out.media_connection(0) == Connection("198.51.100.1")
    assert out.serialize().endswith(b"m=audio 4000/2 RTP/AVP 0\nc=IN IP4 198.51.100.1\n")


BAD = [
    b"",
    b"v=1\r\no=- 1 1 IN IP4 h\r\ns=-\r\n",
    b"v=0\r\ns=-\r\n",
    b"v=0\r\no=- x 1 IN IP4 h\r\ns=-\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nbad line\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio port RTP/AVP 0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\n\xff\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nx=\r\n\r\n",
]


@pytest.mark.parametrize("data", BAD)
def test_malformed_sdp_raises_sdp_error(data: bytes) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(data)
    assert info.value.status_code == 400


HEAD = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0 96\r\n"


@pytest.mark.parametrize(
    ("line", "read"),
    [
        (b"c=IN IP4", lambda s: s.media_connection(0)),
        (b"c=IN IPX 1.2.3.4", lambda s: s.media_connection(0)),
        (b"a=rtpmap:96 opus", lambda s: s.media[0].rtpmaps),
        (b"a=fmtp:x 1", lambda s: s.media[0].fmtp),
        (b"a=ptime:twenty", lambda s: s.media[0].ptime),
        (b"a=rtcp:99999", lambda s: s.media[0].rtcp),
    ],
)
def test_malformed_attributes_raise_when_read(line: bytes, read: object) -> None:
    sdp = parse_sdp(HEAD + line + b"\r\n")
    with pytest.raises(SdpError):
        read(sdp)  # type: ignore[operator]


def test_oversized_sdp_is_413() -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(b"v=0\r\n" + b"a=x\r\n" * 20000)
    assert info.value.status_code == 413


def test_missing_attributes_are_none() -> None:
    flags = parse_sdp(HEAD + b"a=rtpmap\r\na=fmtp\r\n").media[0]
    assert (flags.rtpmaps, flags.fmtp) == ({}, {})
    sdp = parse_sdp(HEAD)
    media = sdp.media[0]
    assert (media.ptime, media.rtcp, media.direction, media.connection) == (None, None, None, None)
    assert media.codecs() == ("PCMU", "96")
    assert media.attributes == ()


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_sdp_error(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        sdp = parse_sdp(data)
        sdp.codecs()
        for i in range(len(sdp.media)):
            sdp.is_hold(i)
            _ = (sdp.media[i].fmtp, sdp.media[i].ptime, sdp.media[i].rtcp)


@given(
    st.lists(
        st.sampled_from(
            [
                b"a=sendonly",
                b"c=IN IP4 0.0.0.0",
                b"a=rtpmap:0 PCMU/8000",
                b"m=video 0 RTP/AVP 31",
                b"a=ptime:30",
                b"b=AS:64",
            ]
        ),
        max_size=8,
    )
)
def test_mutated_valid_sdp_raises_only_sdp_error(extra: list[bytes]) -> None:
    data = HEAD + b"\r\n".join(extra) + (b"\r\n" if extra else b"")
    sdp = parse_sdp(data)
    assert sdp.serialize() == data
    for i in range(len(sdp.media)):
        assert isinstance(sdp.is_hold(i), bool)
    assert parse_sdp(sdp.with_direction(Direction.INACTIVE).serialize()).is_hold(0)
