"""TLVs (SMPP 3.4 section 5.3): typed constructors and getters, raw carriage of unknown tags."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.errors import SmppError
from protocols.smpp.tlv import (
    TLV_SPECS,
    NetworkErrorCode,
    Tag,
    Tlv,
    TlvKind,
    decode_tlvs,
    encode_tlvs,
    find_tlv,
    has_tag,
    tlv_bytes,
    tlv_int,
    tlv_network_error_code,
    tlv_str,
)

RECEIPT = (
    Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "0a1b2c"),
    Tlv.u8(Tag.MESSAGE_STATE, MessageState.UNDELIVERABLE),
    Tlv.network_error_code(3, 0x0101),
    Tlv(0x1401, b"\x00vendor"),
)


def test_typed_constructors_produce_the_wire_values() -> None:
    assert Tlv.u8(Tag.MESSAGE_STATE, 2).value == b"\x02"
    assert Tlv.u16(Tag.SAR_MSG_REF_NUM, 0x1234).value == b"\x12\x34"
    assert Tlv.u32(Tag.QOS_TIME_TO_LIVE, 0x01020304).value == b"\x01\x02\x03\x04"
    assert Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "abc").value == b"abc\x00"
    assert Tlv.network_error_code(3, 0x0101).value == b"\x03\x01\x01"
    assert Tlv.c_octet_string(0x1400, "x" * 300).value == b"x" * 300 + b"\x00"


def test_typed_getters() -> None:
    assert tlv_str(RECEIPT, Tag.RECEIPTED_MESSAGE_ID) == "0a1b2c"
    assert tlv_int(RECEIPT, Tag.MESSAGE_STATE) == MessageState.UNDELIVERABLE
    assert tlv_network_error_code(RECEIPT, Tag.NETWORK_ERROR_CODE) == NetworkErrorCode(3, 0x0101)
    assert tlv_bytes(RECEIPT, 0x1401) == b"\x00vendor"
    assert find_tlv(RECEIPT, Tag.MESSAGE_STATE) is RECEIPT[1]
    assert has_tag(RECEIPT, Tag.NETWORK_ERROR_CODE)
    assert not has_tag(RECEIPT, Tag.MESSAGE_PAYLOAD)
    for getter in (tlv_str, tlv_int, tlv_bytes, tlv_network_error_code):
        assert getter(RECEIPT, Tag.MESSAGE_PAYLOAD) is None


def test_c_octet_string_without_its_nul_is_read_leniently() -> None:
    # Some SMSCs send receipted_message_id without the terminating NUL.
    assert Tlv(Tag.RECEIPTED_MESSAGE_ID, b"abc").as_str() == "abc"


def test_network_error_code_of_the_wrong_length() -> None:
    with pytest.raises(SmppError) as info:
        Tlv(Tag.NETWORK_ERROR_CODE, b"\x03").as_network_error_code()
    assert info.value.command_status == CommandStatus.ESME_RINVPARLEN


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: Tlv.u8(Tag.MESSAGE_STATE, 256), CommandStatus.ESME_RINVOPTPARAMVAL),
        (lambda: Tlv.u8(Tag.MESSAGE_STATE, -1), CommandStatus.ESME_RINVOPTPARAMVAL),
        (lambda: Tlv.u16(Tag.SAR_MSG_REF_NUM, 0x10000), CommandStatus.ESME_RINVOPTPARAMVAL),
        (lambda: Tlv.u32(Tag.QOS_TIME_TO_LIVE, 1 << 32), CommandStatus.ESME_RINVOPTPARAMVAL),
        (lambda: Tlv.network_error_code(256, 0), CommandStatus.ESME_RINVOPTPARAMVAL),
        (lambda: Tlv.network_error_code(3, 0x10000), CommandStatus.ESME_RINVOPTPARAMVAL),
        (
            lambda: Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "€"),
            CommandStatus.ESME_RINVOPTPARAMVAL,
        ),
        (
            lambda: Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "a\0b"),
            CommandStatus.ESME_RINVOPTPARAMVAL,
        ),
        (
            lambda: Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "x" * 65),
            CommandStatus.ESME_RINVPARLEN,
        ),
    ],
)
def test_constructor_refusals(make: Callable[[], Tlv], status: int) -> None:
    with pytest.raises(SmppError) as info:
        make()
    assert info.value.command_status == status


def test_unknown_and_vendor_tags_round_trip_byte_for_byte_in_order() -> None:
    raw = bytes.fromhex("1400 0002 beef 0005 0001 07 fffe 0000 2000 0003 000102".replace(" ", ""))
    tlvs = decode_tlvs(raw, 0)
    assert [t.tag for t in tlvs] == [0x1400, Tag.DEST_ADDR_SUBUNIT, 0xFFFE, 0x2000]
    assert encode_tlvs(tlvs) == raw


def test_decode_from_an_offset_and_nothing_left() -> None:
    assert decode_tlvs(b"body", 4) == ()
    assert decode_tlvs(b"xx\x04\x27\x00\x01\x02", 2) == (Tlv(Tag.MESSAGE_STATE, b"\x02"),)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("0427", CommandStatus.ESME_RINVOPTPARSTREAM),
        ("042700", CommandStatus.ESME_RINVOPTPARSTREAM),
        ("0427000202", CommandStatus.ESME_RINVOPTPARSTREAM),
        ("04270002 0202", CommandStatus.ESME_RINVPARLEN),
        ("04230002 0300", CommandStatus.ESME_RINVPARLEN),
        ("001e0000", CommandStatus.ESME_RINVPARLEN),
        ("001e0042" + "31" * 66, CommandStatus.ESME_RINVPARLEN),
        ("130c0001 00", CommandStatus.ESME_RINVPARLEN),
        ("03810003 000000", CommandStatus.ESME_RINVPARLEN),
    ],
)
def test_decode_refusals(raw: str, status: int) -> None:
    with pytest.raises(SmppError) as info:
        decode_tlvs(bytes.fromhex(raw.replace(" ", "")), 0)
    assert info.value.command_status == status


def test_every_tag_has_a_spec_with_a_sane_range() -> None:
    assert set(TLV_SPECS) == set(Tag)
    for tag, spec in TLV_SPECS.items():
        assert 0 <= spec.min_length <= spec.max_length <= 0xFFFF, tag
        if spec.kind is TlvKind.U8:
            assert spec.min_length == spec.max_length == 1
    assert TLV_SPECS[Tag.NETWORK_ERROR_CODE].max_length == 3
    assert Tag.CONGESTION_STATE == 0x0428


def test_alert_on_message_delivery_has_no_value() -> None:
    assert decode_tlvs(bytes.fromhex("130c0000"), 0) == (Tlv(Tag.ALERT_ON_MESSAGE_DELIVERY, b""),)
