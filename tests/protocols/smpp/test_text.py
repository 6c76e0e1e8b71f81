"""GSM 03.38 / Latin-1 / UCS-2 text codecs (protocols/smpp/text.py)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import ProtocolError
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.text import (
    GSM7_BASIC_CHARS,
    GSM7_EXTENSION_CHARS,
    Encoding,
    TextError,
    choose_encoding,
    decode_gsm7,
    decode_text,
    encode_auto,
    encode_gsm7,
    encode_latin1,
    encode_text,
    encode_ucs2,
    fits_gsm7,
    pack_septets,
    udh_fill_bits,
    unpack_septets,
)

GSM_ALPHABET = "".join(sorted(GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS))
gsm_text = st.text(alphabet=GSM_ALPHABET)

# GSM 03.38 section 6.2.1 spot checks, hand-read from the table.
BASIC_VECTORS = [
    ("@", 0x00),
    ("£", 0x01),
    ("$", 0x02),
    ("\n", 0x0A),
    ("\r", 0x0D),
    ("Δ", 0x10),
    ("_", 0x11),
    ("Ξ", 0x1A),
    ("É", 0x1F),
    (" ", 0x20),
    ("¤", 0x24),
    ("¡", 0x40),
    ("A", 0x41),
    ("§", 0x5F),
    ("¿", 0x60),
    ("a", 0x61),
    ("à", 0x7F),
]
EXTENSION_VECTORS = [
    ("\f", 0x0A),
    ("^", 0x14),
    ("{", 0x28),
    ("}", 0x29),
    ("\\", 0x2F),
    ("[", 0x3C),
    ("~", 0x3D),
    ("]", 0x3E),
    ("|", 0x40),
    ("€", 0x65),
]


@pytest.mark.parametrize(("char", "code"), BASIC_VECTORS)
def test_basic_table(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([code])
    assert decode_gsm7(bytes([code])) == char


@pytest.mark.parametrize(("char", "code"), EXTENSION_VECTORS)
def test_extension_costs_two_septets(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == char


def test_tables_are_complete() -> None:
    assert len(GSM7_BASIC_CHARS) == 127  # 128 codes, ESC has no character
    assert len(GSM7_EXTENSION_CHARS) == 10
    assert len(encode_gsm7(GSM_ALPHABET)) == 127 + 2 * 10


def test_euro_sign_in_both_alphabets() -> None:
    assert encode_gsm7("€") == b"\x1b\x65"
    assert encode_ucs2("€") == b"\x20\xac"


def test_unknown_escape_shows_basic_char_and_trailing_escape_is_space() -> None:
    assert decode_gsm7(b"\x1b\x41") == "A"
    assert decode_gsm7(b"ab\x1b") == "ab "


def test_gsm7_refuses_non_gsm_chars_with_smpp_error() -> None:
    with pytest.raises(TextError) as info:
        encode_gsm7("hello ж")
    assert isinstance(info.value, SmppError)
    assert isinstance(info.value, ProtocolError)
    assert info.value.command_status == CommandStatus.ESME_RINVDCS


def test_decode_gsm7_refuses_high_octets() -> None:
    with pytest.raises(TextError):
        decode_gsm7(b"ab\x80")


@given(gsm_text)
def test_gsm7_round_trip(text: str) -> None:
    encoded = encode_gsm7(text)
    assert decode_gsm7(encoded) == text
    assert fits_gsm7(text)


def test_pack_known_vector() -> None:
    # GSM 03.38 / 23.040 textbook example: "hellohello" packs into 9 octets.
    assert pack_septets(encode_gsm7("hellohello")) == bytes.fromhex("e8329bfd4697d9ec37")
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37"), 10) == b"hellohello"


def test_fill_bits_after_udh() -> None:
    assert udh_fill_bits(6) == 1  # 8-bit concat UDH: 48 bits -> 1 fill bit
    assert udh_fill_bits(7) == 0  # 16-bit concat UDH: 56 bits, already aligned
    assert udh_fill_bits(0) == 0


@given(st.binary().map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets


def test_pack_errors() -> None:
    with pytest.raises(TextError):
        pack_septets(b"\x80")
    with pytest.raises(ValueError, match="fill_bits"):
        pack_septets(b"a", 7)
    with pytest.raises(ValueError, match="fill_bits"):
        unpack_septets(b"a", 1, -1)
    with pytest.raises(TextError):
        unpack_septets(b"\x00", 2)
    assert unpack_septets(b"") == b""
    assert unpack_septets(bytes(7)) == bytes(8)


def test_encode_auto() -> None:
    assert encode_auto("a{") == (Encoding.GSM7, b"a\x1b\x28")
    assert encode_auto("aé€") == (Encoding.GSM7, b"a\x05\x1b\x65")
    assert encode_auto("a`") == (Encoding.UCS2, b"\x00a\x00`")
    assert encode_auto("ô") == (Encoding.UCS2, b"\x00\xf4")
    assert encode_auto("ô", allow_latin1=True) == (Encoding.LATIN1, b"\xf4")


def test_ascii_outside_gsm_is_refused() -> None:
    for char in "`\x00\x7f\t":
        assert not fits_gsm7(char)
        with pytest.raises(TextError):
            encode_gsm7("ok" + char)


def test_choose_encoding() -> None:
    assert choose_encoding("hello {world}") is Encoding.GSM7
    assert choose_encoding("naïve") is Encoding.UCS2
    assert choose_encoding("naïve", allow_latin1=True) is Encoding.LATIN1
    assert choose_encoding("привет", allow_latin1=True) is Encoding.UCS2
    assert Encoding.UCS2.data_coding == 8


def test_ucs2_surrogate_pairs() -> None:
    assert encode_ucs2("😀") == b"\xd8\x3d\xde\x00"
    with pytest.raises(TextError):
        encode_ucs2("\ud800")
    with pytest.raises(TextError):
        decode_text(b"\xd8\x3d", 8)


def test_latin1() -> None:
    assert encode_latin1("é") == b"\xe9"
    with pytest.raises(TextError):
        encode_latin1("€")
    assert encode_text("é", Encoding.LATIN1) == b"\xe9"


@pytest.mark.parametrize(
    ("data", "dc", "expected"),
    [
        (b"\x00A", 0x00, "@A"),
        (b"AB", 0x01, "AB"),
        (b"\x01\x02", 0x02, b"\x01\x02"),
        (b"\xe9", 0x03, "é"),
        (b"\x01\x02", 0x04, b"\x01\x02"),
        (b"\xd0", 0x06, "а"),
        (b"\xe0", 0x07, "א"),
        (b"\x04\x3f", 0x08, "п"),
        (b"\x1b\x65", 0xF0, "€"),
        (b"\x1b\x65", 0xF3, "€"),
        (b"\x1b\x65", 0xF4, b"\x1b\x65"),
        (b"\x99", 0x09, b"\x99"),
        (b"\x99", 0x42, b"\x99"),
    ],
)
def test_decode_each_data_coding(data: bytes, dc: int, expected: str | bytes) -> None:
    assert decode_text(data, dc) == expected


def test_decode_refuses_invalid_octets() -> None:
    with pytest.raises(TextError):
        decode_text(b"\xff", 0x01)
    with pytest.raises(TextError):
        decode_text(b"\xff", 0x07)


@given(st.binary(max_size=300), st.integers(0, 255))
def test_decode_any_bytes_never_crashes(data: bytes, dc: int) -> None:
    with contextlib.suppress(SmppError):
        decode_text(data, dc)


@given(st.text(max_size=200), st.booleans())
def test_choose_then_encode_round_trips(text: str, latin1: bool) -> None:
    encoding = choose_encoding(text, allow_latin1=latin1)
    assert decode_text(encode_text(text, encoding), encoding.data_coding) == text
