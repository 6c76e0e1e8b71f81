"""Bencode, as rtpengine's ng protocol uses it (BEP 3 "The BitTorrent Protocol
Specification", section "bencoding"; rtpengine-ng.md section 1).

Why our own codec: rtpengine sends dictionaries with keys in whatever order it
built them, and strict BitTorrent decoders (fastbencode) reject unsorted keys.
So the decoder accepts any key order, while the encoder always writes sorted
keys (BEP 3 requires it; rtpengine does not care).

Everything else is strict, because these bytes come off the network: leading
zeros and "-0" in integers, leading zeros in lengths, truncated data, trailing
bytes, non-string keys, duplicate keys, nesting deeper than ``MAX_DEPTH`` and
over-long numbers all raise ``NgError``, and nothing else is ever raised for any
input. Decoding costs time linear in the input: every byte is looked at a
bounded number of times and numbers are capped in length, so ``int()`` never
sees thousands of digits.

Strings decode to ``bytes``; the ng layer (messages.py) turns known keys into
``str``. Encoding accepts ``str`` (written as UTF-8) as well as ``bytes``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

from protocols.ng.errors import NgError

Value: TypeAlias = int | bytes | list["Value"] | dict[bytes, "Value"]
"""What ``decode`` returns."""

Encodable: TypeAlias = (
    int
    | bytes
    | str
    | Sequence["Encodable"]
    | Mapping[str, "Encodable"]
    | Mapping[bytes, "Encodable"]
    | Mapping[str | bytes, "Encodable"]
)
"""What ``encode`` accepts: ``Value`` plus ``str``, tuples and any mapping."""

MAX_DEPTH = 32
"""Lists and dictionaries nested deeper than this are refused (rtpengine's
deepest reply, a query's tags/medias/streams/endpoint, is 6 levels)."""

# A length never exceeds a UDP datagram (65,535), so 9 digits is generous; an
# integer of 20 digits holds any int64 that rtpengine can put in a counter.
_MAX_LENGTH_DIGITS = 9
_MAX_INT_DIGITS = 20

# ng key names repeat in every request: their UTF-8 form is cached, with a
# bound so that arbitrary caller-supplied keys cannot grow it without limit.
_STR_KEYS: dict[str, bytes] = {}
_STR_KEYS_MAX = 512

_INTEGER = re.compile(rb"-?[1-9][0-9]*|0").fullmatch

_DIGIT_0 = 0x30
_DIGIT_9 = 0x39
_INT_START = ord("i")
_LIST_START = ord("l")
_DICT_START = ord("d")
_END = ord("e")
_COLON = ord(":")


def decode(data: bytes | bytearray | memoryview) -> Value:
    """Decode one complete bencoded value; trailing bytes are an error."""
    if type(data) is not bytes:
        # bytearray/memoryview from a socket buffer, or a caller's mistake.
        if not isinstance(data, bytes | bytearray | memoryview):
            raise NgError(f"cannot decode {type(data).__name__}, bytes expected")
        data = bytes(data)
    value, end = _decode_value(data, 0, 0)
    if end != len(data):
        raise NgError(f"trailing data at offset {end}")
    return value


def _decode_value(data: bytes, pos: int, depth: int) -> tuple[Value, int]:
    if pos >= len(data):
        raise NgError("truncated bencode data")
    kind = data[pos]
    if _DIGIT_0 <= kind <= _DIGIT_9:
        return _decode_bytes(data, pos)
    if kind == _INT_START:
        return _decode_int(data, pos)
    if depth >= MAX_DEPTH:
        raise NgError(f"bencode nested deeper than {MAX_DEPTH}")
    if kind == _LIST_START:
        return _decode_list(data, pos + 1, depth + 1)
    if kind == _DICT_START:
        return _decode_dict(data, pos + 1, depth + 1)
    raise NgError(f"unexpected byte 0x{kind:02x} at offset {pos}")


def _decode_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    # Bounded search: a valid length has at most _MAX_LENGTH_DIGITS digits.
    colon = data.find(b":", pos, pos + _MAX_LENGTH_DIGITS + 1)
    digits = data[pos:colon]
    # bytes.isdigit() is ASCII-only, unlike int(), which would also take
    # b" 1", b"+1" and b"1_0".
    if colon < 0 or not digits.isdigit() or (digits[0] == _DIGIT_0 and colon - pos > 1):
        raise _bad_length(data, pos, colon)
    start = colon + 1
    end = start + int(digits)
    if end > len(data):
        raise NgError(f"string of {int(digits)} bytes truncated at offset {pos}")
    return data[start:end], end


def _bad_length(data: bytes, pos: int, colon: int) -> NgError:
    if colon >= 0:
        return NgError(f"invalid string length {data[pos:colon]!r} at offset {pos}")
    if len(data) - pos <= _MAX_LENGTH_DIGITS:
        return NgError("truncated string length")
    return NgError(f"string length too long at offset {pos}")


def _decode_int(data: bytes, pos: int) -> tuple[int, int]:
    end = data.find(b"e", pos + 1, pos + _MAX_INT_DIGITS + 3)
    if end < 0:
        if len(data) - pos <= _MAX_INT_DIGITS + 2:
            raise NgError("truncated integer")
        raise NgError(f"integer too long at offset {pos}")
    digits = data[pos + 1 : end]
    if _INTEGER(digits) is None:
        raise NgError(f"invalid integer {digits!r} at offset {pos}")
    return int(digits), end + 1


def _decode_list(data: bytes, pos: int, depth: int) -> tuple[list[Value], int]:
    items: list[Value] = []
    item: Value
    size = len(data)
    while pos < size:
        kind = data[pos]
        if kind == _END:
            return items, pos + 1
        if _DIGIT_0 <= kind <= _DIGIT_9:
            item, pos = _decode_bytes(data, pos)
        else:
            item, pos = _decode_value(data, pos, depth)
        items.append(item)
    raise NgError("truncated list")


def _decode_dict(data: bytes, pos: int, depth: int) -> tuple[dict[bytes, Value], int]:
    result: dict[bytes, Value] = {}
    size = len(data)
    while pos < size:
        kind = data[pos]
        if kind == _END:
            return result, pos + 1
        if not _DIGIT_0 <= kind <= _DIGIT_9:
            raise NgError(f"dictionary key is not a string at offset {pos}")
        # ng keys are short: a one-digit length is read here, not by a call per key
        # (a delete reply's stats hold ~100 keys, decoded for every call).
        end = pos + 2 + kind - _DIGIT_0
        if end <= size and data[pos + 1] == _COLON:
            key, pos = data[pos + 2 : end], end
        else:
            key, pos = _decode_bytes(data, pos)
        if key in result:
            raise NgError(f"duplicate dictionary key {key!r}")
        kind = data[pos] if pos < size else _END
        if kind == _DICT_START and depth < MAX_DEPTH:
            result[key], pos = _decode_dict(data, pos + 1, depth + 1)
        elif _DIGIT_0 <= kind <= _DIGIT_9:
            result[key], pos = _decode_bytes(data, pos)
        else:
            result[key], pos = _decode_value(data, pos, depth)
    raise NgError("truncated dictionary")


def encode(value: Encodable) -> bytes:
    """Encode a value; dictionary keys are written sorted, ``str`` as UTF-8.

    ``bool``, ``float``, ``None`` and other types raise ``NgError``, as do
    dictionaries whose keys collide once encoded and nesting deeper than
    ``MAX_DEPTH``.
    """
    out: list[bytes] = []
    _encode(value, out.append, 0)
    return b"".join(out)


def _encode(value: Encodable, append: Callable[[bytes], None], depth: int) -> None:
    # Exact type checks first: they are the common case and the fastest test.
    if type(value) is bytes:
        append(b"%d:%s" % (len(value), value))
    elif type(value) is str:
        raw = _utf8(value)
        append(b"%d:%s" % (len(raw), raw))
    elif type(value) is int:
        append(b"i%de" % value)
    elif type(value) is dict:
        _encode_dict(value, append, depth + 1)
    elif type(value) is list or type(value) is tuple:
        _encode_list(value, append, depth + 1)
    else:
        _encode_subclass(value, append, depth)


def _encode_list(value: Sequence[Encodable], append: Callable[[bytes], None], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NgError(f"cannot encode values nested deeper than {MAX_DEPTH}")
    append(b"l")
    for item in value:
        _encode(item, append, depth)
    append(b"e")


def _encode_subclass(value: object, append: Callable[[bytes], None], depth: int) -> None:
    # Enum members (StrEnum, IntEnum) and other subclasses take the slow path;
    # bool is an int subclass but "True" is no ng value, so it is refused.
    if isinstance(value, bool):
        raise NgError("cannot encode bool: ng flags are strings")
    if isinstance(value, int):
        append(b"i%de" % int(value))
    elif isinstance(value, str):
        raw = _utf8(value)
        append(b"%d:%s" % (len(raw), raw))
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        append(b"%d:%s" % (len(raw), raw))
    elif isinstance(value, Mapping):
        _encode_dict(value, append, depth + 1)
    elif isinstance(value, Sequence):
        _encode_list(value, append, depth + 1)
    else:
        raise NgError(f"cannot encode {type(value).__name__}")


def _encode_dict(
    value: Mapping[str, Encodable] | Mapping[bytes, Encodable] | Mapping[str | bytes, Encodable],
    append: Callable[[bytes], None],
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        raise NgError(f"cannot encode values nested deeper than {MAX_DEPTH}")
    pairs: list[tuple[bytes, Encodable]] = []
    for key, item in value.items():
        if type(key) is bytes:
            pairs.append((key, item))
        elif isinstance(key, str):
            raw = _STR_KEYS.get(key)
            if raw is None:
                raw = _utf8(key)
                if len(_STR_KEYS) < _STR_KEYS_MAX:
                    _STR_KEYS[key] = raw
            pairs.append((raw, item))
        else:
            raise NgError(f"dictionary key must be str or bytes, not {type(key).__name__}")
    pairs.sort(key=_first)
    append(b"d")
    previous = None
    for raw, item in pairs:
        # Sorted, so a str key and a bytes key that collide are neighbours.
        if raw == previous:
            raise NgError(f"duplicate dictionary key {raw!r}")
        previous = raw
        append(b"%d:%s" % (len(raw), raw))
        _encode(item, append, depth)
    append(b"e")


def _first(pair: tuple[bytes, Encodable]) -> bytes:
    return pair[0]


def _utf8(text: str) -> bytes:
    # surrogateescape lets a str that the ng layer decoded from non-UTF-8
    # bytes (a Call-ID is any token) go back out as the same bytes.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise NgError(f"string is not encodable as UTF-8: {exc.reason}") from None
