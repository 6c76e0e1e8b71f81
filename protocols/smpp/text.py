"""SMS text encodings for SMPP 3.4 ``data_coding`` (section 5.2.19) and GSM 03.38.

* GSM 03.38 section 6.2.1 default alphabet plus the section 6.2.1.1 extension
  table (reached through ESC 0x1B, so each extension character costs two
  septets).  SMPP carries ``data_coding`` 0 *unpacked*: one septet per octet.
  ``pack_septets``/``unpack_septets`` give the packed form of GSM 03.38
  section 6.1.2.1.1 (with fill bits after a UDH) for code that needs it.
* Latin-1 (``data_coding`` 3) and UCS-2 as UTF-16BE (``data_coding`` 8), where
  a character outside the BMP is a surrogate pair worth two UCS-2 units.
* ``choose_encoding`` picks the cheapest alphabet for a ``str`` (``encode_auto``
  also encodes it);
  ``decode_text`` turns any ``data_coding`` back into text, keeping the octets
  of a coding it does not know.
"""

from __future__ import annotations

import re
from enum import Enum

from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError

# GSM 03.38 section 6.2.1, indexed by septet value.  0x1B is ESC; it has no
# character of its own and is rendered as a space when it ends a message.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESC = 0x1B
# GSM 03.38 section 6.2.1.1: the characters reached through ESC.
_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
GSM7_EXTENSION_CHARS = frozenset(_EXTENSION.values())
GSM7_BASIC_CHARS = frozenset(_BASIC) - {"\x1b"}

# str.translate tables: character -> the octets as a Latin-1 string, so that a
# single C-level translate + encode("latin-1") produces unpacked septets.
_ENCODE_TABLE: dict[int, str] = {ord(c): chr(i) for i, c in enumerate(_BASIC) if i != ESC}
_ENCODE_TABLE.update({ord(c): "\x1b" + chr(code) for code, c in _EXTENSION.items()})
_DECODE_BASIC: dict[int, str] = {i: c for i, c in enumerate(_BASIC)}
_DECODE_BASIC[ESC] = " "

# ASCII fast path: most traffic is ASCII, and bytes.translate runs at C speed.
_ASCII_BASIC = bytes(ord(c) for c in GSM7_BASIC_CHARS if c.isascii())
_ASCII_EXTENSION = bytes(ord(c) for c in GSM7_EXTENSION_CHARS if c.isascii())
_ASCII_GSM7 = _ASCII_BASIC + _ASCII_EXTENSION
_ASCII_TO_GSM7 = bytes(
    ord(_ENCODE_TABLE[i]) if chr(i) in GSM7_BASIC_CHARS else 0 for i in range(256)
)

_NOT_GSM7 = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS)) + "]"
)
_NOT_LATIN1 = re.compile("[^\x00-\xff]")


class Encoding(Enum):
    """The alphabets warpd writes; ``value`` is the SMPP 3.4 ``data_coding``."""

    GSM7 = 0x00
    LATIN1 = 0x03
    UCS2 = 0x08

    # Members are singletons, so identity hashing is correct, and it runs in C
    # where Enum's default hashes the name in Python: these key hot-path tables.
    __hash__ = object.__hash__

    @property
    def data_coding(self) -> int:
        return DATA_CODING[self]


DATA_CODING = {encoding: encoding.value for encoding in Encoding}
# Enum class attributes cost a metaclass lookup on Python 3.11: hot paths use these.
_GSM7, _LATIN1, _UCS2 = Encoding.GSM7, Encoding.LATIN1, Encoding.UCS2


class TextError(SmppError):
    """Text that cannot be carried in the requested alphabet, or undecodable octets."""

    def __init__(self, message: str) -> None:
        super().__init__(CommandStatus.ESME_RINVDCS, message)


def fits_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default or extension table."""
    if text.isascii():
        return not text.encode("ascii").translate(None, _ASCII_GSM7)
    return _NOT_GSM7.search(text) is None


def _gsm7_or_none(text: str) -> bytes | None:
    if text.isascii():
        raw = text.encode("ascii")
        if not raw.translate(None, _ASCII_BASIC):
            return raw.translate(_ASCII_TO_GSM7)
    # The search stops at the first foreign character, so a UCS-2 text costs
    # almost nothing here before the translate would have walked all of it.
    if _NOT_GSM7.search(text) is not None:
        return None
    return text.translate(_ENCODE_TABLE).encode("latin-1")


def encode_gsm7(text: str) -> bytes:
    """GSM 03.38 septets, unpacked one per octet as SMPP ``data_coding`` 0 carries them.

    The length is the septet count: an extension character is two.
    """
    septets = _gsm7_or_none(text)
    if septets is None:
        bad = "".join(_NOT_GSM7.findall(text)[:5])
        raise TextError(f"characters {bad!r} are not in the GSM 03.38 alphabet")
    return septets


def decode_gsm7(data: bytes) -> str:
    """Unpacked GSM 03.38 septets to text.

    ESC followed by a code the extension table lacks shows the basic character
    (GSM 03.38 section 6.2.1.1: "the MS shall display the character shown in
    the main GSM 7 bit default alphabet table").
    """
    if not data.isascii():
        raise TextError("GSM 03.38 septet with the high bit set")
    if ESC not in data:
        return data.decode("ascii").translate(_DECODE_BASIC)
    out: list[str] = []
    i, end = 0, len(data)
    while i < end:
        code = data[i]
        if code == ESC and i + 1 < end:
            nxt = data[i + 1]
            out.append(_EXTENSION.get(nxt, _DECODE_BASIC[nxt]))
            i += 2
        else:
            out.append(_DECODE_BASIC[code])
            i += 1
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first (GSM 03.38 section 6.1.2.1.1) after ``fill_bits`` zero bits.

    ``fill_bits`` aligns the text on a septet boundary after a UDH
    (3GPP TS 23.040 section 9.2.3.24): ``udh_fill_bits(len(udh))``.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    value = 0
    for i, septet in enumerate(septets):
        if septet > 0x7F:
            raise TextError("septet value above 0x7F")
        value |= septet << (7 * i)
    bits = fill_bits + 7 * len(septets)
    return (value << fill_bits).to_bytes((bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Inverse of ``pack_septets``; ``count`` (TP-UDL) removes the padding ambiguity."""
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    available = max(0, (8 * len(data) - fill_bits) // 7)
    if count is None:
        count = available
    elif count > available:
        raise TextError(f"{count} septets announced, {available} present")
    value = int.from_bytes(data, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


def udh_fill_bits(udh_octets: int) -> int:
    """Fill bits that put the first septet after a UDH of ``udh_octets`` on a boundary."""
    return (7 - (8 * udh_octets) % 7) % 7


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE; lone surrogates in ``text`` are refused."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise TextError(f"cannot encode as UCS-2: {exc.reason}") from None


def encode_latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise TextError(f"cannot encode as Latin-1: {exc.reason}") from None


def choose_encoding(text: str, *, allow_latin1: bool = False) -> Encoding:
    """The cheapest alphabet that carries ``text``: GSM7, then (if allowed) Latin-1, else UCS-2.

    Latin-1 is opt-in because many handsets and SMSCs mishandle
    ``data_coding`` 3; an operator enables it per connector.
    """
    if fits_gsm7(text):
        return _GSM7
    if allow_latin1 and _NOT_LATIN1.search(text) is None:
        return _LATIN1
    return _UCS2


def encode_auto(text: str, *, allow_latin1: bool = False) -> tuple[Encoding, bytes]:
    """``choose_encoding`` and ``encode_text`` in one pass over ``text``."""
    septets = _gsm7_or_none(text)
    if septets is not None:
        return _GSM7, septets
    if allow_latin1 and _NOT_LATIN1.search(text) is None:
        return _LATIN1, text.encode("latin-1")
    return _UCS2, encode_ucs2(text)


def encode_text(text: str, encoding: Encoding) -> bytes:
    """``text`` in ``encoding`` as SMPP carries it in short_message / message_payload."""
    return _ENCODERS[encoding](text)


_ENCODERS = {
    Encoding.GSM7: encode_gsm7,
    Encoding.LATIN1: encode_latin1,
    Encoding.UCS2: encode_ucs2,
}

# data_coding -> Python codec for the single-byte and UCS-2 alphabets of
# SMPP 3.4 section 5.2.19.  GSM7 goes through decode_gsm7.
_CODECS = {
    0x01: "ascii",
    0x03: "latin-1",
    0x06: "iso-8859-5",
    0x07: "iso-8859-8",
    0x08: "utf-16-be",
}


def decode_text(data: bytes, data_coding: int) -> str | bytes:
    """Text for a ``data_coding``; the octets unchanged for binary or unknown codings.

    0xF0-0xFF is the GSM 03.38 "data coding/message class" group: bit 2 clear
    means the default alphabet, set means 8-bit data.
    """
    if data_coding == 0x00 or (data_coding & 0xF4) == 0xF0:
        return decode_gsm7(data)
    codec = _CODECS.get(data_coding)
    if codec is None:
        return data
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise TextError(f"undecodable {codec} text: {exc.reason}") from None
