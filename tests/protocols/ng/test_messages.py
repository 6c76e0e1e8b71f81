"""ng requests, framing and replies (rtpengine-ng.md sections 1-2). Request
bodies are checked by decoding them with bencode.py, not with our own codec."""

from __future__ import annotations

import contextlib

import bencodepy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.ng.errors import NgError
from protocols.ng.messages import (
    MAX_DATAGRAM,
    Answer,
    Codec,
    Delete,
    Ice,
    Json,
    ListCalls,
    Offer,
    Ping,
    PlayDtmf,
    Query,
    Request,
    StartRecording,
    Statistics,
    StopRecording,
    TransportProtocol,
    decode_body,
    decode_frame,
    encode_request,
    split_cookie,
)
from protocols.ng.replies import Counters, Result, decode_reply, parse_reply

KNOWN_KEYS = [
    "result",
    "error-reason",
    "warning",
    "sdp",
    "calls",
    "totals",
    "RTP",
    "RTCP",
    "SSRC",
    "1",
    "tags",
    "medias",
    "streams",
    "stats",
    "flags",
    "packets",
    "average MOS",
    "MOS",
    "local port",
    "created",
]
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def body_of(request: Request) -> dict[bytes, object]:
    cookie, body = encode_request(b"ck_1", request).split(b" ", 1)
    assert cookie == b"ck_1"
    decoded: dict[bytes, object] = bencodepy.decode(body)
    return decoded


REQUESTS: list[tuple[Request, dict[bytes, object]]] = [
    (Ping(), {b"command": b"ping"}),
    (Statistics(), {b"command": b"statistics"}),
    (ListCalls(limit=10), {b"command": b"list", b"limit": 10}),
    (
        Offer(call_id="c1", from_tag="ft", sdp=SDP),
        {b"command": b"offer", b"call-id": b"c1", b"from-tag": b"ft", b"sdp": SDP},
    ),
    (
        Answer(call_id="c1", from_tag="ft", to_tag="tt", sdp=SDP.decode()),
        {
            b"command": b"answer",
            b"call-id": b"c1",
            b"from-tag": b"ft",
            b"to-tag": b"tt",
            b"sdp": SDP,
        },
    ),
    (
        Delete(call_id="c1", from_tag="ft", flags=("fatal",), delete_delay=0),
        {
            b"command": b"delete",
            b"call-id": b"c1",
            b"from-tag": b"ft",
            b"flags": [b"fatal"],
            b"delete delay": 0,
        },
    ),
    (
        Query(call_id="c1", to_tag="tt"),
        {b"command": b"query", b"call-id": b"c1", b"to-tag": b"tt"},
    ),
    (
        PlayDtmf(call_id="c1", from_tag="ft", code="5", duration=120, volume=-10, pause=50),
        {
            b"command": b"play DTMF",
            b"call-id": b"c1",
            b"from-tag": b"ft",
            b"code": b"5",
            b"duration": 120,
            b"volume": -10,
            b"pause": 50,
        },
    ),
    (
        StartRecording(call_id="c1", from_tag="ft", via_branch="z9hG4bK1"),
        {
            b"command": b"start recording",
            b"call-id": b"c1",
            b"from-tag": b"ft",
            b"via-branch": b"z9hG4bK1",
        },
    ),
    (StopRecording(call_id="c1"), {b"command": b"stop recording", b"call-id": b"c1"}),
]


@pytest.mark.parametrize(("request_", "expected"), REQUESTS, ids=lambda r: type(r).__name__)
def test_request_bodies(request_: Request, expected: dict[bytes, object]) -> None:
    assert body_of(request_) == expected


def test_offer_with_every_typed_key() -> None:
    offer = Offer(
        call_id="c1",
        from_tag="ft",
        sdp=SDP,
        via_branch="z9hG4bKabc",
        flags=("trust-address", "symmetric"),
        replace=("origin", "session-connection"),
        ice=Ice.REMOVE,
        transport_protocol=TransportProtocol.RTP_SAVP,
        received_from=("IP4", "192.0.2.1"),
        media_address="192.0.2.2",
        address_family="IP4",
        codec=Codec(strip=("PCMA",), transcode=("G722",), except_=("PCMU",)),
        record_call=True,
        rtcp_mux=("demux",),
        dtls="off",
        sdes=("off",),
        ptime=20,
        label="caller",
        metadata="trunk=7",
        direction=("internal", "external"),
        extra={"DTMF-delay": 40},
    )
    assert body_of(offer) == {
        b"command": b"offer",
        b"call-id": b"c1",
        b"from-tag": b"ft",
        b"sdp": SDP,
        b"via-branch": b"z9hG4bKabc",
        b"flags": [b"trust-address", b"symmetric"],
        b"replace": [b"origin", b"session-connection"],
        b"ICE": b"remove",
        b"transport-protocol": b"RTP/SAVP",
        b"received-from": [b"IP4", b"192.0.2.1"],
        b"media address": b"192.0.2.2",
        b"address family": b"IP4",
        b"codec": {b"strip": [b"PCMA"], b"transcode": [b"G722"], b"except": [b"PCMU"]},
        b"record call": b"yes",
        b"rtcp-mux": [b"demux"],
        b"DTLS": b"off",
        b"SDES": [b"off"],
        b"ptime": 20,
        b"label": b"caller",
        b"metadata": b"trunk=7",
        b"direction": [b"internal", b"external"],
        b"DTMF-delay": 40,
    }


def json_of(request: Request) -> bytes:
    cookie, body = encode_request(b"ck_1", request, prefer_json=True).split(b" ", 1)
    assert cookie == b"ck_1"
    return body


@pytest.mark.parametrize(("request_", "expected"), REQUESTS, ids=lambda r: type(r).__name__)
def test_json_bodies_say_what_bencode_says(
    request_: Request, expected: dict[bytes, object]
) -> None:
    body = json_of(request_)
    assert body.startswith(b"{")
    # The bencode encoder, checked against bencodepy above, is the oracle.
    bencoded = encode_request(b"ck_1", request_).split(b" ", 1)[1]
    assert decode_body(body) == decode_body(bencoded)


def test_json_falls_back_to_bencode() -> None:
    not_utf8 = Offer(call_id="c1", from_tag="ft", sdp=SDP + b"s=caf\xe9\r\n")
    escaped_call_id = Delete(call_id=b"c\xff".decode("utf-8", "surrogateescape"))
    untyped = Delete(call_id="c1", extra={"flags": ["fast"]})
    for request in (not_utf8, escaped_call_id, untyped):
        body = json_of(request)
        assert body.startswith(b"d")
        assert body == encode_request(b"ck_1", request).split(b" ", 1)[1]
    assert bencodepy.decode(json_of(not_utf8))[b"sdp"] == SDP + b"s=caf\xe9\r\n"
    assert bencodepy.decode(json_of(escaped_call_id))[b"call-id"] == b"c\xff"


def test_extra_keys_override_typed_ones() -> None:
    delete = Delete(call_id="c1", extra={"call-id": "c2", "flags": ["fast"]})
    assert body_of(delete) == {b"command": b"delete", b"call-id": b"c2", b"flags": [b"fast"]}


def test_record_call_no() -> None:
    offer = Offer(call_id="c", from_tag="f", sdp=SDP, record_call=False)
    assert body_of(offer)[b"record call"] == b"no"


@pytest.mark.parametrize("cookie", [b"", b"a b"])
def test_invalid_cookie_is_refused(cookie: bytes) -> None:
    with pytest.raises(NgError, match="cookie"):
        encode_request(cookie, Ping())


def test_split_at_first_space_only() -> None:
    assert split_cookie(b"ck d3:sdp3:a ce") == (b"ck", b"d3:sdp3:a ce")
    for datagram in (b"nocookie", b" d7:command4:pinge", b""):
        with pytest.raises(NgError, match="no cookie"):
            split_cookie(datagram)


def test_frame_bencode_and_json() -> None:
    bencoded = decode_frame(b"9016_1 d6:result4:pong1:nli1ed1:k1:veee")
    frame = decode_frame(b'jsonck1 {"result":"pong","n":[1,{"k":"v"}]}')
    assert frame.is_json
    assert not bencoded.is_json
    assert (frame.cookie, frame.body) == (b"jsonck1", {"result": "pong", "n": [1, {"k": "v"}]})
    assert bencoded.body == frame.body
    # A bencoded string that is not UTF-8 keeps its bytes.
    odd = decode_frame(b"ck d1:s2:\xff\xfee").body["s"]
    assert isinstance(odd, str)
    assert odd.encode("utf-8", "surrogateescape") == b"\xff\xfe"


@pytest.mark.parametrize(
    "datagram",
    [
        b"ck notbencode",
        b"ck l4:spame",  # not a dictionary
        b"ck i1e",
        b'ck {"result": ',
        b'ck {"a":' + b"[" * 100_000,  # deeper than any JSON parser recursion
        b'ck {"a": 1' + b"0" * 5000 + b"}",
        b'ck {"\xff": 1}',
        b'ck {"a": "\\ud800"}',  # a lone surrogate
        b"ck " + b"d1:a" + b"x" * MAX_DATAGRAM + b"e",
    ],
)
def test_malformed_frames(datagram: bytes) -> None:
    with pytest.raises(NgError):
        decode_frame(datagram)


@pytest.mark.parametrize(
    "datagram",
    [
        b'ck {"result": 1.5}',
        b'ck {"result": true}',
        b'ck {"result": null}',
        b'ck {"result": "ok", "sdp": "v=0\\udc80"}',  # no bytes behind it
        b'ck {"result": "ok", "totals": {"RTP": {"packets": true}}}',
        b'ck {"result": "ok", "totals": {}, "SSRC": {"\xc2\xb2": {}}}',  # "2" superscript
        b'ck {"result": "ok", "totals": {}, "created": 1.5}',
    ],
)
def test_mistyped_json_replies(datagram: bytes) -> None:
    with pytest.raises(NgError):
        decode_reply(datagram)


# Replies as rtpengine 10.5 sent them (rtpengine-ng.md, and a live delete).
DELETE_REPLY = (
    b"ck d7:createdi1795291897e10:created_usi658814e11:last signali1795291897e"
    b"4:SSRCd4:4369d5:bytesi860e7:packetsi5e15:cumulative lossi2e"
    b"11:average MOSd3:MOSi43e15:round-trip timei250ee10:lowest MOSd3:MOSi39eeee"
    b"4:tagsd2:ftd7:createdi1795291897e6:mediasld5:flagsl4:sende8:protocol7:RTP/AVP"
    b"7:streamsld4:SSRCi4369e10:local porti43922e5:flagsl3:RTP6:fillede"
    b"5:statsd5:bytesi860e6:errorsi0e7:packetsi5eee"
    b"d10:local porti43923e5:flagsl4:RTCP6:fillede"
    b"5:statsd5:bytesi0e6:errorsi0e7:packetsi0eeeeeeee"
    b"6:totalsd4:RTCPd5:bytesi64e6:errorsi0e7:packetsi2ee"
    b"3:RTPd5:bytesi1720e6:errorsi0e7:packetsi10eee"
    b"6:result2:oke"
)


def test_delete_reply_stats() -> None:
    cookie, reply = decode_reply(DELETE_REPLY)
    assert (cookie, reply.result) == (b"ck", Result.OK)
    stats = reply.stats
    assert stats is not None
    assert (stats.created, stats.last_signal) == (1795291897, 1795291897)
    assert stats.rtp == Counters(packets=10, bytes=1720, errors=0)
    assert stats.rtcp == Counters(packets=2, bytes=64, errors=0)
    (ssrc,) = stats.ssrcs
    assert (ssrc.ssrc, ssrc.packets, ssrc.bytes, ssrc.cumulative_loss) == (4369, 5, 860, 2)
    assert (ssrc.average_mos, ssrc.lowest_mos) == (43, 39)
    rtp_stream, rtcp_stream = stats.streams
    assert (rtp_stream.tag, rtp_stream.local_port, rtp_stream.ssrc) == ("ft", 43922, 4369)
    assert not rtp_stream.rtcp
    assert rtp_stream.counters == Counters(packets=5, bytes=860, errors=0)
    assert rtcp_stream.rtcp
    assert rtcp_stream.ssrc is None
    assert reply.raw["created_us"] == 658814


def test_simple_replies() -> None:
    _, offer = decode_reply(b"ck d3:sdp3:v=06:result2:oke")
    assert (offer.result, offer.sdp, offer.stats) == (Result.OK, b"v=0", None)
    _, error = decode_reply(b"ck d6:result5:error12:error-reason15:Unknown call-ide")
    assert (error.result, error.error_reason) == (Result.ERROR, "Unknown call-id")
    _, full = decode_reply(b"ck d6:result10:load limite")
    assert full.result is Result.LOAD_LIMIT
    _, warned = decode_reply(b"ck d6:result2:ok7:warning5:oops!e")
    assert warned.warning == "oops!"
    _, listed = decode_reply(b"ck d5:callsl2:c12:c2e6:result2:oke")
    assert listed.calls == ("c1", "c2")
    # rtpengine 10.5's offer reply with "record call": the pcap it writes to.
    _, recorded = decode_reply(b"ck d10:recordingsl15:/r/pcaps/x.pcape6:result2:oke")
    assert (recorded.recordings, offer.recordings) == (("/r/pcaps/x.pcap",), ())
    _, odd = decode_reply(b"ck d6:result5:error12:error-reason2:\xff\xfee")
    assert odd.error_reason is not None
    assert odd.error_reason.encode("utf-8", "surrogateescape") == b"\xff\xfe"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"result": "maybe"},
        {"result": 1},
        {"result": "ok", "sdp": 1},
        {"result": "ok", "calls": "c1"},
        {"result": "ok", "calls": [1]},
        {"result": "ok", "recordings": "/r/x.pcap"},
        {"result": "ok", "totals": []},
        {"result": "ok", "totals": {"RTP": {"packets": "5"}}},
        {"result": "ok", "totals": {}, "SSRC": {"x": {}}},
        {"result": "ok", "totals": {}, "SSRC": {"1": 1}},
        {"result": "ok", "totals": {}, "tags": {"a": {"medias": [1]}}},
    ],
)
def test_malformed_replies(body: dict[str, object]) -> None:
    with pytest.raises(NgError):
        parse_reply(body)  # type: ignore[arg-type]


def test_ng_error_knows_overload_reasons() -> None:
    assert NgError("Ran out of ports").is_overload
    assert NgError("Parallel session limit reached").is_overload
    assert NgError("load limit").is_overload
    assert not NgError("Unknown call-id").is_overload
    assert NgError("Unknown call-id").reason == "Unknown call-id"


@given(st.binary(max_size=300))
def test_random_datagrams_raise_only_ng_error(data: bytes) -> None:
    with contextlib.suppress(NgError):
        decode_reply(data)


@given(st.binary(max_size=200))
def test_random_json_bodies_raise_only_ng_error(data: bytes) -> None:
    with contextlib.suppress(NgError):
        decode_reply(b"ck {" + data)


@given(st.binary(max_size=300))
def test_random_bodies_raise_only_ng_error(data: bytes) -> None:
    with contextlib.suppress(NgError):
        decode_reply(b"ck " + data)


leaves = st.integers(-5, 5) | st.sampled_from(["ok", "error", "pong", "1", "RTCP", "x"])
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(KNOWN_KEYS), values, max_size=6))
def test_mistyped_replies_raise_only_ng_error(body: dict[str, Json]) -> None:
    with contextlib.suppress(NgError):
        parse_reply(body)
