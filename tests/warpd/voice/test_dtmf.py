"""SIP INFO bodies to the digit RTPEngine plays (``warpd.voice.dtmf``)."""

from __future__ import annotations

import pytest

from warpd.voice.dtmf import PLAIN, RELAY, Digit, info_digit


@pytest.mark.parametrize(
    ("mime", "body", "digit"),
    [
        (RELAY, b"Signal=5\r\nDuration=160\r\n", Digit("5", 160)),
        (RELAY, b"signal= #\nduration=250", Digit("#", 250)),
        (RELAY, b"Signal=*\r\n", Digit("*", None)),
        (RELAY, b"Signal=a\r\nDuration=40\r\n", Digit("A", 100)),  # rtpengine's minimum
        (RELAY, b"Signal=11\r\nDuration=9000\r\n", Digit("#", 5000)),  # event 11, capped
        (PLAIN, b"7\r\n", Digit("7", None)),
    ],
)
def test_dtmf_bodies_give_their_digit(mime: str, body: bytes, digit: Digit) -> None:
    assert info_digit(mime, body) == digit


@pytest.mark.parametrize(
    ("mime", "body"),
    [
        (RELAY, b"Signal=X\r\nDuration=160\r\n"),
        (RELAY, b"Signal=16\r\n"),  # hook flash: no tone to play
        (RELAY, b"Duration=160\r\n"),
        (RELAY, b""),
        (RELAY, b"\xff\xfe=\x00"),
        (PLAIN, b"55"),
        ("application/sdp", b"Signal=5\r\n"),
        (None, b"Signal=5\r\n"),
    ],
)
def test_what_is_not_a_digit_plays_nothing(mime: str | None, body: bytes) -> None:
    assert info_digit(mime, body) is None
