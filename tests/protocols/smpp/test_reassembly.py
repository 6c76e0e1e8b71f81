"""MO reassembly (protocols/smpp/reassembly.py): order, duplicates, timeouts, bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.reassembly import (
    Concat,
    Incomplete,
    Reassembled,
    Reassembler,
    concat_from_udh,
    concat_of,
    split_udh,
)
from protocols.smpp.segment import Sar
from protocols.smpp.tlv import Tag, Tlv


def test_udh_parsing() -> None:
    udh, body = split_udh(bytes.fromhex("0500030a0302") + b"hi")
    assert udh == bytes.fromhex("0500030a0302")
    assert body == b"hi"
    assert concat_from_udh(udh) == Concat(0x0A, 3, 2)
    assert concat_from_udh(bytes.fromhex("06080412340302")) == Concat(0x1234, 3, 2)


def test_udh_with_other_ies_first() -> None:
    # A port-addressing IE (0x05, 4 octets) before the concat IE.
    udh = bytes.fromhex("0b05040b8423f00003a50201")
    assert concat_from_udh(udh) == Concat(0xA5, 2, 1)


@pytest.mark.parametrize(
    "udh",
    [
        "0500030a0000",  # total 0
        "0500030a0200",  # seq 0
        "0500030a0203",  # seq > total
        "0400020a02",  # wrong IE length for 0x00
        "050003",  # truncated IE
        "03000501",  # IE length past the end
        "0205",  # IEI without a length
        "",
    ],
)
def test_bad_or_missing_concat_ie(udh: str) -> None:
    assert concat_from_udh(bytes.fromhex(udh)) is None


def test_split_udh_edge_cases() -> None:
    assert split_udh(b"") == (b"", b"")
    assert split_udh(b"\x09abc") == (b"", b"\x09abc")  # UDHL past the end


def test_concat_of_udh_sar_and_plain() -> None:
    udh = bytes.fromhex("0500030a0302")
    assert concat_of(0x40, udh + b"hi", ()) == (Concat(0x0A, 3, 2), b"hi")
    assert concat_of(0x43, b"\x09abc", ()) == (None, b"\x09abc")  # UDHL past the end
    sar = (
        Tlv.u16(Tag.SAR_MSG_REF_NUM, 0x1234),
        Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, 2),
        Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, 1),
    )
    assert concat_of(0, b"body", sar) == (Concat(0x1234, 2, 1), b"body")
    assert concat_of(0, b"body", sar[:2]) == (None, b"body")
    assert concat_of(0, b"body", ()) == (None, b"body")
    bad = (*sar[:2], Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, 3))
    assert concat_of(0, b"body", bad) == (None, b"body")


def test_from_sar() -> None:
    assert Concat.from_sar(Sar(7, 2, 1)) == Concat(7, 2, 1)
    assert Concat.from_sar(Sar(7, 2, 3)) is None


def test_out_of_order_and_duplicates() -> None:
    r = Reassembler(timeout=30)
    assert r.add("a", "b", Concat(1, 3, 3), b"C", now=0) is None
    assert r.add("a", "b", Concat(1, 3, 1), b"A", now=1) is None
    assert r.add("a", "b", Concat(1, 3, 1), b"X", now=2) is None  # duplicate ignored
    assert len(r) == 1
    done = r.add("a", "b", Concat(1, 3, 2), b"B", now=3, data_coding=8)
    assert done == Reassembled("a", "b", 1, 0, b"ABC")
    assert len(r) == 0
    assert r.get_timer() is None


def test_groups_are_keyed_by_source_destination_reference() -> None:
    r = Reassembler(timeout=30)
    assert r.add("a", "b", Concat(1, 2, 1), b"1", now=0) is None
    assert r.add("a", "c", Concat(1, 2, 1), b"2", now=0) is None
    assert r.add("x", "b", Concat(1, 2, 1), b"3", now=0) is None
    assert r.add("a", "b", Concat(2, 2, 1), b"4", now=0) is None
    assert len(r) == 4
    assert r.add("a", "c", Concat(1, 2, 2), b"!", now=0) == Reassembled("a", "c", 1, 0, b"2!")


def test_single_part_concat_completes_at_once() -> None:
    assert Reassembler().add("a", "b", Concat(5, 1, 1), b"x", now=0) == Reassembled(
        "a", "b", 5, 0, b"x"
    )


def test_timeout_returns_incomplete_groups() -> None:
    r = Reassembler(timeout=10)
    r.add("a", "b", Concat(1, 3, 2), b"B", now=0)
    r.add("a", "b", Concat(2, 2, 1), b"X", now=5)
    assert r.get_timer() == 10
    assert r.expire(9.9) == []
    assert r.expire(10) == [Incomplete("a", "b", 1, 3, 0, ((2, b"B"),))]
    assert r.get_timer() == 15
    assert r.expire(100) == [Incomplete("a", "b", 2, 2, 0, ((1, b"X"),))]
    assert r.get_timer() is None
    # A late part after expiry starts a new group instead of completing the old one.
    assert r.add("a", "b", Concat(1, 3, 1), b"A", now=101) is None


def test_bounded_memory_evicts_oldest() -> None:
    r = Reassembler(timeout=10, max_groups=2)
    r.add("a", "b", Concat(1, 2, 1), b"1", now=0)
    r.add("a", "b", Concat(2, 2, 1), b"2", now=1)
    r.add("a", "b", Concat(3, 2, 1), b"3", now=2)
    assert len(r) == 2
    assert r.get_timer() == float("-inf")
    assert r.expire(3) == [Incomplete("a", "b", 1, 2, 0, ((1, b"1"),))]
    assert r.get_timer() == 11


def test_reference_reused_with_other_total_replaces_group() -> None:
    r = Reassembler(timeout=10)
    r.add("a", "b", Concat(1, 3, 1), b"old", now=0)
    assert r.add("a", "b", Concat(1, 2, 1), b"new1", now=1) is None
    assert r.add("a", "b", Concat(1, 2, 2), b"new2", now=1) == Reassembled(
        "a", "b", 1, 0, b"new1new2"
    )
    assert r.expire(1) == [Incomplete("a", "b", 1, 3, 0, ((1, b"old"),))]


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Reassembler(timeout=0)
    with pytest.raises(ValueError, match="max_groups"):
        Reassembler(max_groups=0)


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=20), st.randoms())
def test_any_order_with_duplicates_completes_once(bodies: list[bytes], rnd: random.Random) -> None:
    total = len(bodies)
    arrivals = list(range(1, total + 1)) + [rnd.randint(1, total) for _ in range(total)]
    rnd.shuffle(arrivals)
    r = Reassembler(timeout=5)
    results = []
    seen: set[int] = set()
    for seq in arrivals:
        out = r.add("s", "d", Concat(9, total, seq), bodies[seq - 1], now=0)
        seen.add(seq)
        if out is not None:
            results.append(out)
            assert seen == set(range(1, total + 1))
            seen = set()
    assert results[0].body == b"".join(bodies)
