"""The stream framer (protocols.sip.framing, RFC 3261 18.3, RFC 5626 4.4.1): partial reads,
several messages in one read, keep-alives, and every bound a stream can breach."""

from __future__ import annotations

import pytest

from protocols.sip.errors import SipError
from protocols.sip.framing import KeepAlive, SipStreamFramer
from protocols.sip.message import SipRequest, SipResponse

BODY = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"


def request(body: bytes = b"", length: str | None = None, call_id: str = "f1") -> bytes:
    declared = str(len(body)) if length is None else length
    return (
        "INVITE sip:b@192.0.2.2 SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 198.51.100.4:5060;branch=z9hG4bKf1\r\n"
        "From: <sip:a@a.example>;tag=f\r\nTo: <sip:b@b.example>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode() + body


RESPONSE = (
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKx\r\n"
    b"From: <sip:a@a.example>;tag=f\r\nTo: <sip:b@b.example>;tag=t\r\n"
    b"Call-ID: f2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def drain(framer: SipStreamFramer) -> list[object]:
    return list(iter(framer.next_message, None))


def test_a_message_fed_in_pieces_comes_out_once_whole() -> None:
    data = request(BODY)
    framer = SipStreamFramer()
    out: list[object] = []
    for piece in (data[:7], data[7:60], data[60:-3], data[-3:-1], data[-1:]):
        framer.receive_data(piece)
        out += drain(framer)
    (message,) = out
    assert isinstance(message, SipRequest)
    assert message.body == BODY
    assert message.call_id == "f1"
    assert framer.buffered == 0


def test_several_messages_and_keepalives_in_one_read() -> None:
    framer = SipStreamFramer()
    framer.receive_data(request(BODY) + b"\r\n\r\n" + RESPONSE + request(call_id="f3") + b"INV")
    first, ping, response, third = drain(framer)
    assert isinstance(first, SipRequest)
    assert first.body == BODY
    assert ping is KeepAlive.PING
    assert isinstance(response, SipResponse)
    assert response.status == 180
    assert isinstance(third, SipRequest)
    assert third.call_id == "f3"
    assert framer.buffered == 3  # the start of the next message waits


def test_a_ping_split_across_reads_and_a_pong_before_a_message() -> None:
    framer = SipStreamFramer()
    framer.receive_data(b"\r\n")
    assert drain(framer) == []  # a ping or a pong: too early to say
    framer.receive_data(b"\r\n")
    assert drain(framer) == [KeepAlive.PING]
    framer.receive_data(b"\r\n" + RESPONSE)
    pong, response = drain(framer)
    assert pong is KeepAlive.PONG
    assert isinstance(response, SipResponse)


def test_a_body_still_arriving_is_waited_for() -> None:
    data = request(BODY)
    framer = SipStreamFramer()
    framer.receive_data(data[:-5])
    assert drain(framer) == []
    framer.receive_data(data[-5:])
    (message,) = drain(framer)
    assert isinstance(message, SipRequest)
    assert message.body == BODY


def test_a_missing_content_length_is_400_with_the_head_to_answer_from() -> None:
    data = request().replace(b"Content-Length: 0\r\n", b"")
    framer = SipStreamFramer()
    framer.receive_data(data)
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 400
    assert "Content-Length" in str(info.value)
    assert isinstance(info.value.message, SipRequest)  # the endpoint can answer it
    with pytest.raises(SipError):  # the stream cannot be resynchronized: it stays refused
        framer.next_message()


@pytest.mark.parametrize("length", ["-1", "12x", " ", "9999999999"])
def test_a_negative_or_malformed_content_length_is_400(length: str) -> None:
    framer = SipStreamFramer()
    framer.receive_data(request(length=length))
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 400


def test_a_content_length_over_the_bound_is_413_before_the_body_arrives() -> None:
    framer = SipStreamFramer(max_size=4096)
    framer.receive_data(request(length="100000"))  # the head only: no body was sent
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 413
    assert isinstance(info.value.message, SipRequest)
    assert framer.buffered < 4096


def test_a_header_block_over_the_bound_is_413_without_its_end() -> None:
    framer = SipStreamFramer(max_size=4096)
    head = b"INVITE sip:b@192.0.2.2 SIP/2.0\r\n" + b"X-Pad: " + b"a" * 5000
    for i in range(0, len(head), 1000):  # no empty line ever comes
        framer.receive_data(head[i : i + 1000])
        if framer.buffered <= 4096:
            assert drain(framer) == []
    with pytest.raises(SipError) as info:
        framer.next_message()
    assert info.value.status_code == 413


def test_a_message_exactly_at_the_bound_passes_and_one_byte_more_does_not() -> None:
    bound = len(request(b"x" * 10))
    fits = SipStreamFramer(max_size=bound)
    fits.receive_data(request(b"x" * 10))
    assert len(drain(fits)) == 1
    over = SipStreamFramer(max_size=bound)
    over.receive_data(request(b"x" * 11))
    with pytest.raises(SipError) as info:
        over.next_message()
    assert info.value.status_code == 413


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 8,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\r\n",
    ],
)
def test_garbage_on_the_stream_raises_only_sip_error(garbage: bytes) -> None:
    framer = SipStreamFramer()
    framer.receive_data(garbage + b"\r\n\r\n")
    with pytest.raises(SipError):
        drain(framer)


def test_a_long_stream_keeps_the_buffer_compact() -> None:
    framer = SipStreamFramer()
    one = request(BODY)
    for n in range(2000):
        framer.receive_data(one[:50])
        framer.receive_data(one[50:])
        assert len(drain(framer)) == 1, n
    assert framer.buffered == 0
    assert len(framer._buf) < 2 * len(one)
