"""Splitting and billing a body already in its data_coding (segment.split, segment.billed_parts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import decode, encode
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.reassembly import Reassembler, concat_of
from protocols.smpp.segment import (
    ConcatMode,
    MessageTooLong,
    Part,
    Sar,
    billed_parts,
    concat_udh,
    split,
    split_encoded,
)
from protocols.smpp.text import Encoding, encode_gsm7, encode_ucs2
from protocols.smpp.tlv import Tag, Tlv

SAR_TLVS = (
    Tlv.u16(Tag.SAR_MSG_REF_NUM, 7),
    Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, 2),
    Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, 1),
)


def test_split_gsm7_body_with_udh8() -> None:
    body = encode_gsm7("x" * 200)
    first, second = split(body, 0, "udh8", 9)
    assert first == Part(concat_udh(9, 2, 1) + body[:153], 0, esm_class_udhi=True)
    assert second == Part(concat_udh(9, 2, 2) + body[153:], 0, esm_class_udhi=True)
    assert first.esm_class == 0x40
    assert first.tlvs() == ()


@pytest.mark.parametrize(
    ("data_coding", "octets", "mode", "sizes"),
    [
        (0xF1, 200, ConcatMode.UDH8, [153, 47]),  # GSM class 1: septets
        (0x04, 300, ConcatMode.UDH16, [133, 133, 34]),  # 8-bit data: octets
        (0xF6, 141, "udh8", [134, 7]),  # 8-bit data, class 2
        (0x03, 140, "udh8", [140]),  # Latin-1 that fits one message
        (0x08, 142, "sar", [134, 8]),  # 71 UCS-2 units
    ],
)
def test_split_keeps_the_data_coding(
    data_coding: int, octets: int, mode: ConcatMode | str, sizes: list[int]
) -> None:
    body = bytes(i % 0x60 + 0x20 for i in range(octets))
    parts = split(body, data_coding, mode, 3)
    assert {p.data_coding for p in parts} == {data_coding}
    udh = 0 if len(parts) == 1 or mode == "sar" else 7 if mode is ConcatMode.UDH16 else 6
    assert [len(p.short_message) - udh for p in parts] == sizes
    if mode == "sar" and len(parts) > 1:
        assert [p.sar for p in parts] == [Sar(3, 2, 1), Sar(3, 2, 2)]
        assert all(p.esm_class == 0 for p in parts)


def test_split_payload_mode_and_bad_mode() -> None:
    body = encode_ucs2("ж" * 100)
    (only,) = split(body, 8, "payload", 0)
    assert only == Part(b"", 8, message_payload=body)
    assert only.tlvs() == (Tlv(Tag.MESSAGE_PAYLOAD, body),)
    with pytest.raises(ValueError, match="udh7"):
        split(body, 8, "udh7", 0)
    with pytest.raises(MessageTooLong):
        split(b"x" * 0x10000, 4, ConcatMode.PAYLOAD, 0)


def test_split_never_cuts_a_surrogate_pair() -> None:
    body = encode_ucs2("a" * 66 + "😀" + "b" * 10)
    first, second = split(body, 8, ConcatMode.UDH8, 1)
    assert first.short_message[6:] == encode_ucs2("a" * 66)
    assert second.short_message[6:] == encode_ucs2("😀" + "b" * 10)


@given(st.text(alphabet="abc€{}@", min_size=0, max_size=600), st.sampled_from(list(ConcatMode)))
def test_split_agrees_with_split_encoded_and_billing(text: str, mode: ConcatMode) -> None:
    body = encode_gsm7(text)
    try:
        parts = split(body, 0, mode.value, 200)
    except MessageTooLong:
        return
    assert parts == split_encoded(body, Encoding.GSM7, ref=200, mode=mode)
    udh_parts = split(body, 0, ConcatMode.UDH16 if mode is ConcatMode.UDH16 else "udh8", 200)
    assert billed_parts(body, 0, 0, mode=mode) == len(udh_parts)
    # What the parts carry reassembles to the body, through the codec.
    if len(parts) > 1:
        reassembler = Reassembler()
        whole = None
        for part in parts:
            pdu = decode(
                encode(
                    SubmitSm(
                        esm_class=part.esm_class, short_message=part.short_message, tlvs=part.tlvs()
                    )
                )
            )
            assert isinstance(pdu, SubmitSm)
            concat, chunk = concat_of(pdu.esm_class, pdu.short_message, pdu.tlvs)
            assert concat is not None
            whole = reassembler.add("a", "b", concat, chunk, now=0)
        assert whole is not None
        assert whole.body == body


@pytest.mark.parametrize(
    ("body", "data_coding", "esm_class", "tlvs", "mode", "parts"),
    [
        (b"x" * 160, 0, 0, (), "udh8", 1),
        (b"x" * 161, 0, 0, (), "udh8", 2),
        (b"x" * 306, 0, 0, (), "udh8", 2),
        (b"x" * 307, 0, 0, (), "udh8", 3),
        (b"x" * 306, 0, 0, (), "udh16", 3),  # 152 per part
        (b"x" * 306, 0, 0, (), "payload", 2),  # the carrier splits with 8-bit UDH
        (b"x" * 306, 0, 0, (), ConcatMode.SAR, 2),
        (b"x" * 140, 4, 0, (), "udh8", 1),
        (b"x" * 141, 4, 0, (), "udh8", 2),
        (encode_ucs2("ж" * 70), 8, 0, (), "udh8", 1),
        (encode_ucs2("ж" * 71), 8, 0, (), "udh8", 2),
        (concat_udh(1, 3, 1) + b"x" * 153, 0, 0x40, (), "udh8", 1),  # the customer's part
        (concat_udh(1, 3, 1) + b"x" * 153, 0, 0x43, (), "udh16", 1),
        (b"x" * 200, 0, 0, SAR_TLVS, "udh8", 1),  # a SAR part travels as it came
        (b"x" * 200, 0, 0, (Tlv.u8(Tag.SOURCE_PORT, 1),), "udh8", 2),
    ],
)
def test_billed_parts(
    body: bytes,
    data_coding: int,
    esm_class: int,
    tlvs: tuple[Tlv, ...],
    mode: ConcatMode | str,
    parts: int,
) -> None:
    assert billed_parts(body, data_coding, esm_class, tlvs=tlvs, mode=mode) == parts


def test_billed_parts_refuses_more_than_255() -> None:
    assert billed_parts(b"x" * 153 * 255, 0, 0) == 255
    with pytest.raises(MessageTooLong):
        billed_parts(b"x" * (153 * 255 + 1), 0, 0)
