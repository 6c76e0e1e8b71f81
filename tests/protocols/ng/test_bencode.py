"""Bencode vectors (BEP 3, and datagrams captured from rtpengine 10.5 in
rtpengine-ng.md section 1) and properties with bencode.py as the oracle."""

from __future__ import annotations

import contextlib
import enum

import bencodepy  # bencode.py: an independent codec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.ng.bencode import MAX_DEPTH, Value, decode, encode
from protocols.ng.errors import NgError

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"

# (encoding, value): decode(encoding) == value and encode(value) == encoding.
CANONICAL: list[tuple[bytes, Value]] = [
    (b"i0e", 0),
    (b"i42e", 42),
    (b"i-42e", -42),
    (b"i9223372036854775807e", 2**63 - 1),
    (b"0:", b""),
    (b"4:spam", b"spam"),
    (b"le", []),
    (b"de", {}),
    (b"l4:spami42ee", [b"spam", 42]),
    (b"d3:cow3:moo4:spam4:eggse", {b"cow": b"moo", b"spam": b"eggs"}),
    (b"d4:spaml1:a1:bee", {b"spam": [b"a", b"b"]}),
    # captured from rtpengine
    (b"d7:command4:pinge", {b"command": b"ping"}),
    (b"d6:result4:ponge", {b"result": b"pong"}),
    (
        b"d12:error-reason22:Invalid NG data format6:result5:errore",
        {b"error-reason": b"Invalid NG data format", b"result": b"error"},
    ),
    (
        b"d3:ICE6:remove7:call-id10:demo2-93615:codecd5:stripl4:PCMAee7:command5:offer"
        b"5:flagsl13:trust-addresse8:from-tag1:A7:replacel6:origin18:session-connectione"
        b"3:sdp%d:%se" % (len(SDP), SDP),
        {
            b"ICE": b"remove",
            b"call-id": b"demo2-9361",
            b"codec": {b"strip": [b"PCMA"]},
            b"command": b"offer",
            b"flags": [b"trust-address"],
            b"from-tag": b"A",
            b"replace": [b"origin", b"session-connection"],
            b"sdp": SDP,
        },
    ),
]

# rtpengine's replies come with unsorted keys: accepted, re-encoded sorted.
UNSORTED: list[tuple[bytes, bytes]] = [
    (b"d3:sdp3:v=06:result2:oke", b"d6:result2:ok3:sdp3:v=0e"),
    (
        b"d6:result5:error12:error-reason15:Unknown call-ide",
        b"d12:error-reason15:Unknown call-id6:result5:errore",
    ),
    (b"d1:bi1e1:ai2ee", b"d1:ai2e1:bi1ee"),
]

MALFORMED: list[bytes] = [
    b"",
    b"i03e",  # leading zero
    b"i-0e",  # negative zero
    b"i-03e",
    b"ie",
    b"i-e",
    b"i+1e",
    b"i 1e",
    b"i1",  # truncated
    b"i1.5e",
    b"i" + b"9" * 30 + b"e",  # over-long integer
    b"03:abc",  # leading zero in a length
    b"-1:a",
    b"+1:a",
    b" 1:a",
    b"1_0:abcdefghij",
    b"4:abc",  # truncated string
    b"5",
    b"99999999999:",  # length with too many digits
    b"1234567890" * 3,
    b"l",
    b"l4:spam",
    b"d",
    b"d1:a",
    b"d1:ae",  # key without value
    b"di1ei2ee",  # integer key
    b"dle1:ae",  # list key
    b"d1:ai1e1:ai2ee",  # duplicate key
    b"i1ei2e",  # trailing data
    b"4:spamx",
    b"de ",
    b"x",
    b"e",
    b"\xff",
    b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1),  # too deep
]


@pytest.mark.parametrize(("encoding", "value"), CANONICAL)
def test_canonical_vectors(encoding: bytes, value: Value) -> None:
    assert decode(encoding) == value
    assert encode(value) == encoding
    assert bencodepy.decode(encoding) == value


@pytest.mark.parametrize(("unsorted", "sorted_"), UNSORTED)
def test_unsorted_keys_are_accepted_and_written_sorted(unsorted: bytes, sorted_: bytes) -> None:
    assert encode(decode(unsorted)) == sorted_


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_input_raises_ng_error(data: bytes) -> None:
    with pytest.raises(NgError):
        decode(data)


@pytest.mark.parametrize(("encoding", "value"), CANONICAL)
def test_every_proper_prefix_is_truncated(encoding: bytes, value: Value) -> None:
    for end in range(len(encoding)):
        with pytest.raises(NgError):
            decode(encoding[:end])


def test_depth_limit_is_exact() -> None:
    deepest = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    value = decode(deepest)
    assert encode(value) == deepest
    with pytest.raises(NgError, match="deeper"):
        encode([value])


def test_buffers_decode_like_bytes() -> None:
    assert decode(bytearray(b"4:spam")) == b"spam"
    assert decode(memoryview(b"i7e")) == 7
    with pytest.raises(NgError):
        decode("4:spam")  # type: ignore[arg-type]


class Direction(enum.StrEnum):
    UP = "up"


class Level(enum.IntEnum):
    HIGH = 3


def test_encode_accepts_str_tuples_enums_and_str_keys() -> None:
    assert encode({"é": ("a", Direction.UP, Level.HIGH)}) == b"d2:\xc3\xa9l1:a2:upi3eee"
    assert encode({b"b": 1, "a": 2}) == b"d1:ai2e1:bi1ee"
    assert encode(bytearray(b"ab")) == b"2:ab"


@pytest.mark.parametrize(
    "value",
    [True, 1.5, None, {1: b"a"}, {"a": 1, b"a": 2}, "\ud800", object()],
    ids=["bool", "float", "None", "int key", "duplicate key", "lone surrogate", "object"],
)
def test_encode_refuses_values_without_bencoding(value: object) -> None:
    with pytest.raises(NgError):
        encode(value)  # type: ignore[arg-type]


# Integers within the decoder's 20-digit limit; bencode.py has no such limit.
integers = st.integers(min_value=-(10**19) + 1, max_value=10**20 - 1)
values = st.recursive(
    integers | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


@given(values)
def test_round_trip_with_bencode_py_as_oracle(value: Value) -> None:
    ours = encode(value)
    assert ours == bencodepy.encode(value)
    assert bencodepy.decode(ours) == value
    assert decode(bencodepy.encode(value)) == value


flat_values = integers | st.binary(max_size=10) | st.lists(integers, max_size=3)


@given(st.dictionaries(st.binary(max_size=8), flat_values, min_size=2, max_size=6), st.randoms())
def test_any_key_order_decodes_to_the_same_dict(value: dict[bytes, Value], rnd: object) -> None:
    items = list(value.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    body = b"".join(bencodepy.encode(k) + bencodepy.encode(v) for k, v in items)
    assert decode(b"d" + body + b"e") == value


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_ng_error(data: bytes) -> None:
    with contextlib.suppress(NgError):
        decode(data)


@given(values, st.data())
def test_mutated_encodings_raise_only_ng_error(value: Value, data: st.DataObject) -> None:
    encoding = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(encoding) - 1))
        encoding[index] = data.draw(st.sampled_from(b"ile:d-0123456789x"))
    with contextlib.suppress(NgError):
        decode(bytes(encoding))


def test_nesting_bombs_are_refused_quickly() -> None:
    for opener in (b"l", b"d1:a"):
        with pytest.raises(NgError, match="deeper"):
            decode(opener * 100_000)
