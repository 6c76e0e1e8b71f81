"""Segmentation into concatenated parts (protocols/smpp/segment.py).

Properties: split then reassemble gives the text back in every encoding and
mode; no part ends inside an ESC pair or a surrogate pair; ``count_parts``
agrees with the split.  smpplib's ``make_parts`` is an independent
implementation to compare against where both should agree.
"""

from __future__ import annotations

import pytest
import smpplib.consts
import smpplib.gsm
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.flags import ESM_CLASS_UDHI
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.reassembly import Reassembler, concat_of, split_udh
from protocols.smpp.segment import (
    ConcatMode,
    MessageTooLong,
    Part,
    Sar,
    concat_udh,
    count_parts,
    split_encoded,
    split_text,
)
from protocols.smpp.text import (
    GSM7_BASIC_CHARS,
    GSM7_EXTENSION_CHARS,
    Encoding,
    decode_text,
    encode_text,
)
from protocols.smpp.tlv import Tag, Tlv, tlv_bytes

GSM_ALPHABET = "".join(sorted(GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS))


def long_text(alphabet: str | None = None) -> st.SearchStrategy[str]:
    """Texts long enough to need several parts: a random run repeated."""
    chunk = st.text(alphabet=alphabet, min_size=1, max_size=40) if alphabet else st.text(min_size=1)
    return st.builds(lambda c, n, tail: c * n + tail, chunk, st.integers(1, 80), chunk)


texts = st.one_of(
    st.text(alphabet=GSM_ALPHABET, max_size=400),
    long_text(GSM_ALPHABET),
    long_text("a€{"),
    long_text("aô\xff"),
    long_text("aж😀"),
    long_text(),
)
modes = st.sampled_from([ConcatMode.UDH8, ConcatMode.UDH16, ConcatMode.SAR])


def reassemble(parts: tuple[Part, ...], mode: ConcatMode) -> bytes:
    """Send each part as a submit_sm through the codec, then reassemble what arrives."""
    pdus = []
    for part in parts:
        submit = SubmitSm(
            esm_class=ESM_CLASS_UDHI if part.esm_class_udhi else 0,
            data_coding=part.data_coding,
            short_message=part.short_message,
            tlvs=part.tlvs(),
        )
        decoded = decode(encode(submit))
        assert isinstance(decoded, SubmitSm)
        pdus.append(decoded)
    if len(parts) == 1:
        (only,) = pdus
        payload = tlv_bytes(only.tlvs, Tag.MESSAGE_PAYLOAD)
        assert concat_of(only.esm_class, only.short_message, only.tlvs) == (
            None,
            only.short_message,
        )
        return payload if payload is not None else only.short_message
    reassembler = Reassembler(timeout=10)
    result = None
    for pdu in reversed(pdus):  # out of order on purpose
        assert bool(pdu.esm_class & ESM_CLASS_UDHI) is (mode is not ConcatMode.SAR)
        concat, body = concat_of(pdu.esm_class, pdu.short_message, pdu.tlvs)
        assert concat is not None
        result = reassembler.add("src", "dst", concat, body, now=0.0)
    assert result is not None
    return result.body


@given(texts, modes, st.booleans(), st.integers(0, 255))
def test_split_then_reassemble(text: str, mode: ConcatMode, latin1: bool, ref: int) -> None:
    try:
        parts = split_text(text, ref=ref, mode=mode, allow_latin1=latin1)
    except MessageTooLong:
        assert count_parts(text, allow_latin1=latin1, udh16=mode is ConcatMode.UDH16).parts > 255
        return
    count = count_parts(text, allow_latin1=latin1, udh16=mode is ConcatMode.UDH16)
    assert count.parts == len(parts)
    assert {p.data_coding for p in parts} == {count.data_coding}
    body = reassemble(parts, mode)
    assert decode_text(body, count.data_coding) == text
    for part in parts:
        limit = 160 if count.encoding is Encoding.GSM7 else 140
        assert len(part.short_message) <= limit
        if len(parts) > 1:
            chunk = (
                part.short_message if mode is ConcatMode.SAR else split_udh(part.short_message)[1]
            )
            # Each part decodes on its own: no ESC pair or surrogate pair was cut.
            assert isinstance(decode_text(chunk, count.data_coding), str)
            if count.encoding is Encoding.GSM7:
                assert not chunk.endswith(b"\x1b")


@given(texts)
def test_payload_mode_is_one_part(text: str) -> None:
    parts = split_text(text, ref=0, mode=ConcatMode.PAYLOAD)
    assert len(parts) == 1
    assert reassemble(parts, ConcatMode.PAYLOAD) == encode_text(text, count_parts(text).encoding)


def test_payload_mode_long_text() -> None:
    (part,) = split_text("ж" * 100, ref=0, mode=ConcatMode.PAYLOAD)
    assert part == Part(b"", 8, message_payload="ж".encode("utf-16-be") * 100)
    assert count_parts("ж" * 100).parts == 2


def test_capacity_boundaries() -> None:
    assert count_parts("a" * 160).parts == 1
    assert count_parts("a" * 161).parts == 2
    assert count_parts("a" * 306).parts == 2
    assert count_parts("a" * 307).parts == 3
    assert count_parts("a" * 304, udh16=True).parts == 2
    assert count_parts("a" * 305, udh16=True).parts == 3
    assert count_parts("ж" * 70).parts == 1
    assert count_parts("ж" * 71).parts == 2
    assert count_parts("ж" * 134).parts == 2
    assert count_parts("ж" * 135).parts == 3
    assert count_parts("ô" * 140, allow_latin1=True).parts == 1
    assert count_parts("ô" * 141, allow_latin1=True).parts == 2
    assert count_parts("ô" * 268, allow_latin1=True).parts == 2
    assert count_parts("ô" * 267, allow_latin1=True, udh16=True).parts == 3


def test_extension_chars_cost_two_and_are_never_split() -> None:
    # 152 plain septets then '€' (2 septets): 154 > 153, so '€' moves to part 2.
    text = "a" * 152 + "€" + "b" * 10
    count = count_parts(text)
    assert (count.units, count.parts) == (164, 2)
    parts = split_text(text, ref=9)
    assert parts[0].short_message == bytes.fromhex("050003090201") + b"a" * 152
    assert parts[1].short_message == bytes.fromhex("050003090202") + b"\x1b\x65" + b"b" * 10
    assert count_parts("€" * 80).parts == 1  # exactly 160 septets


def test_surrogate_pair_never_split() -> None:
    text = "a" * 66 + "😀" + "b" * 5
    parts = split_text(text, ref=1)
    assert len(parts) == 2 == count_parts(text).parts
    assert split_udh(parts[0].short_message)[1] == "a".encode("utf-16-be") * 66
    assert split_udh(parts[1].short_message)[1] == "😀bbbbb".encode("utf-16-be")


def test_udh16_and_sar_layout() -> None:
    parts = split_text("x" * 200, ref=0x1234, mode=ConcatMode.UDH16)
    assert parts[0].short_message[:7] == bytes.fromhex("0608041234") + b"\x02\x01"
    assert len(parts[0].short_message) == 7 + 152
    assert concat_udh(0x1234, 2, 2, ConcatMode.UDH16) == bytes.fromhex("06080412340202")
    sar = split_text("x" * 200, ref=0x1234, mode=ConcatMode.SAR)
    assert [p.sar for p in sar] == [Sar(0x1234, 2, 1), Sar(0x1234, 2, 2)]
    assert sar[0].short_message == b"x" * 153
    assert not sar[0].esm_class_udhi
    assert sar[1].tlvs() == (
        Tlv(Tag.SAR_MSG_REF_NUM, b"\x12\x34"),
        Tlv(Tag.SAR_TOTAL_SEGMENTS, b"\x02"),
        Tlv(Tag.SAR_SEGMENT_SEQNUM, b"\x02"),
    )
    assert parts[0].tlvs() == ()


def test_single_part_has_no_udh_in_any_mode() -> None:
    for mode in ConcatMode:
        assert split_text("hi", ref=3, mode=mode) == (Part(b"hi", 0),)


def test_too_many_parts() -> None:
    with pytest.raises(MessageTooLong) as info:
        split_text("a" * (153 * 255 + 1), ref=1)
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN
    with pytest.raises(MessageTooLong):
        count_parts("a" * (153 * 255 + 1))
    assert len(split_text("a" * (153 * 255), ref=1)) == 255
    with pytest.raises(MessageTooLong):
        split_text("a" * 70000, ref=0, mode=ConcatMode.PAYLOAD)


def test_reference_range_checked() -> None:
    with pytest.raises(ValueError, match="reference"):
        split_text("a" * 200, ref=256)
    with pytest.raises(ValueError, match="reference"):
        split_text("a" * 200, ref=-1, mode=ConcatMode.SAR)
    assert len(split_text("a" * 200, ref=65535, mode=ConcatMode.UDH16)) == 2


def test_split_encoded_and_explicit_encoding() -> None:
    parts = split_encoded(b"\x00" * 300, Encoding.LATIN1, ref=5)
    assert [len(p.short_message) for p in parts] == [140, 140, 6 + 32]
    assert split_text("abc", ref=0, encoding=Encoding.UCS2)[0].short_message == b"\x00a\x00b\x00c"
    assert count_parts("abc", encoding=Encoding.UCS2).units == 3


# -- cross-check against smpplib (an independent implementation) -------------

# smpplib's table puts '`' where GSM 03.38 has '§' and lacks form feed, and its
# splitter ignores ESC pairs: compare on text where neither matters.
PLAIN_GSM = "".join(sorted(GSM7_BASIC_CHARS - {"§"}))


@given(st.text(alphabet=PLAIN_GSM, min_size=1, max_size=1000))
def test_matches_smpplib_gsm7(text: str) -> None:
    theirs, encoding, esm_class = smpplib.gsm.make_parts(text)
    ours = split_text(text, ref=0)
    assert encoding == smpplib.consts.SMPP_ENCODING_DEFAULT == ours[0].data_coding
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        if len(ours) == 1:
            assert mine.short_message == other
            assert esm_class == 0
        else:
            # Same UDH layout except smpplib's random reference octet.
            assert mine.short_message[:3] == other[:3] == b"\x05\x00\x03"
            assert mine.short_message[4:] == other[4:]
            assert esm_class == 0x40


@given(st.text(alphabet="абв😀xyz", min_size=1, max_size=400))
def test_matches_smpplib_ucs2(text: str) -> None:
    text = "ж" + text
    theirs, encoding, _ = smpplib.gsm.make_parts(text)
    ours = split_text(text, ref=0)
    assert encoding == 8 == ours[0].data_coding
    joined = b"".join(split_udh(p)[1] if len(theirs) > 1 else p for p in theirs)
    assert joined == b"".join(
        split_udh(p.short_message)[1] if len(ours) > 1 else p.short_message for p in ours
    )
    if "😀" not in text:
        # Without surrogate pairs both cut at 67 units.
        assert len(ours) == len(theirs)
