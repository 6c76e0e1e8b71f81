"""Delivery receipts (protocols/smpp/dlr.py): strict formatting, lenient parsing."""

from __future__ import annotations

import contextlib
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.dlr import (
    _APPENDIX_B,
    STAT_BY_STATE,
    Receipt,
    ReceiptError,
    ReceiptTlvs,
    _parse_lenient,
    format_receipt,
    message_id_keys,
    parse_receipt,
    receipt_tlvs,
)
from protocols.smpp.errors import SmppError
from protocols.smpp.tlv import Tag, Tlv

SUBMIT = datetime(2024, 3, 5, 14, 7, 33)
DONE = datetime(2024, 3, 5, 14, 8, 1)


def test_format_is_appendix_b_in_fixed_order() -> None:
    text = format_receipt(
        "a1b2c3",
        MessageState.DELIVERED,
        submit_date=SUBMIT,
        done_date=DONE,
        text="Your code is 123456, valid for 5 minutes",
    )
    assert text == (
        "id:a1b2c3 sub:001 dlvrd:001 submit date:2403051407 done date:2403051408"
        " stat:DELIVRD err:000 text:Your code is 123456,"
    )


def test_format_pads_every_date_field_to_two_digits() -> None:
    early = datetime(2009, 1, 2, 3, 4, 5)
    text = format_receipt("1", MessageState.EXPIRED, submit_date=early, done_date=early)
    assert "submit date:0901020304 done date:0901020304 " in text


@pytest.mark.parametrize(("state", "stat"), list(STAT_BY_STATE.items()))
def test_format_then_parse_every_state(state: MessageState, stat: str) -> None:
    text = format_receipt("42", state, submit_date=SUBMIT, done_date=DONE, err=12, text="hi")
    receipt = parse_receipt(text)
    assert receipt.stat == stat
    assert receipt.state is state
    assert receipt.err == "012"
    assert receipt.dlvrd == (1 if state is MessageState.DELIVERED else 0)
    assert receipt.submit_date == datetime(2024, 3, 5, 14, 7)
    assert receipt.text == "hi"


def test_format_validates_numbers() -> None:
    with pytest.raises(ValueError, match="three decimal digits"):
        format_receipt("1", MessageState.DELIVERED, submit_date=SUBMIT, done_date=DONE, err=1000)
    with pytest.raises(ValueError, match="three decimal digits"):
        format_receipt("1", MessageState.DELIVERED, submit_date=SUBMIT, done_date=DONE, sub=-1)
    text = format_receipt(
        "1", MessageState.DELIVERED, submit_date=SUBMIT, done_date=DONE, sub=3, dlvrd=2
    )
    assert "sub:003 dlvrd:002" in text


def test_receipt_tlvs() -> None:
    assert receipt_tlvs("abc", MessageState.DELIVERED) == ReceiptTlvs(
        "abc", MessageState.DELIVERED, None
    )
    tlvs = receipt_tlvs("abc", MessageState.UNDELIVERABLE, network_error=(3, 0x0101))
    assert tlvs.network_error_code == b"\x03\x01\x01"
    assert tlvs.tlvs() == (
        Tlv(Tag.RECEIPTED_MESSAGE_ID, b"abc\x00"),
        Tlv(Tag.MESSAGE_STATE, b"\x05"),
        Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x01\x01"),
    )
    assert len(receipt_tlvs("abc", MessageState.DELIVERED).tlvs()) == 2


# Receipt texts in the shapes carriers send them (ids and dates anonymised).
CARRIER_RECEIPTS = [
    (
        "appendix B, lower case",
        "id:1234567890 sub:001 dlvrd:001 submit date:2403051407 done date:2403051408 "
        "stat:DELIVRD err:000 text:Hello",
        Receipt(
            "1234567890",
            MessageState.DELIVERED,
            "DELIVRD",
            1,
            1,
            datetime(2024, 3, 5, 14, 7),
            datetime(2024, 3, 5, 14, 8),
            "000",
            "Hello",
        ),
    ),
    (
        "capitalised Text and seconds in the dates",
        "id:0A1B2C3D sub:001 dlvrd:000 submit date:240305140733 done date:240305140801 "
        "stat:UNDELIV err:034 Text:Your code",
        Receipt(
            "0A1B2C3D",
            MessageState.UNDELIVERABLE,
            "UNDELIV",
            1,
            0,
            datetime(2024, 3, 5, 14, 7, 33),
            datetime(2024, 3, 5, 14, 8, 1),
            "034",
            "Your code",
        ),
    ),
    (
        "no text field",
        "id:77 sub:001 dlvrd:001 submit date:2403051407 done date:2403051408 stat:DELIVRD err:0",
        Receipt(
            "77",
            MessageState.DELIVERED,
            "DELIVRD",
            1,
            1,
            datetime(2024, 3, 5, 14, 7),
            datetime(2024, 3, 5, 14, 8),
            "0",
            None,
        ),
    ),
    (
        "upper-case keys, vendor extras (MCC/MNC), underscores",
        "ID:abc-123 SUB:001 DLVRD:001 SUBMIT_DATE:2403051407 DONE_DATE:2403051408 "
        "STAT:delivrd ERR:000 MCC:234 MNC:15 TEXT:x:y z",
        Receipt(
            "abc-123",
            MessageState.DELIVERED,
            "DELIVRD",
            1,
            1,
            datetime(2024, 3, 5, 14, 7),
            datetime(2024, 3, 5, 14, 8),
            "000",
            "x:y z",
            (("MCC", "234"), ("MNC", "15")),
        ),
    ),
    (
        "only id and stat, long spelling",
        "id: 5 stat:DELIVERED",
        Receipt("5", MessageState.DELIVERED, "DELIVERED"),
    ),
    (
        "enroute intermediate, bad dates kept as None",
        "id:6 sub:1 dlvrd:0 submit date:9913011200 done date:24030 stat:ENROUTE err:000 text:",
        Receipt("6", MessageState.ENROUTE, "ENROUTE", 1, 0, None, None, "000", ""),
    ),
    (
        "unknown stat, no sub",
        "id:7 stat:WEIRD err:x",
        Receipt("7", MessageState.UNKNOWN, "WEIRD", err="x"),
    ),
    (
        "missing stat",
        "id:8 sub:abc dlvrd:1234567890",
        Receipt("8", MessageState.UNKNOWN, None),
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(t, e) for _, t, e in CARRIER_RECEIPTS],
    ids=[n for n, _, _ in CARRIER_RECEIPTS],
)
def test_carrier_receipts(text: str, expected: Receipt) -> None:
    assert parse_receipt(text) == expected
    assert parse_receipt(text.encode("latin-1")) == expected


def test_final_states() -> None:
    assert parse_receipt("id:1 stat:DELIVRD").final
    assert parse_receipt("id:1 stat:REJECTD").final
    assert not parse_receipt("id:1 stat:ENROUTE").final
    assert not parse_receipt("id:1 stat:ACCEPTD").final


@pytest.mark.parametrize("text", ["", "hello", "stat:DELIVRD", "id: stat:DELIVRD", "text:id:5"])
def test_not_a_receipt(text: str) -> None:
    with pytest.raises(ReceiptError) as info:
        parse_receipt(text)
    assert isinstance(info.value, SmppError)
    assert info.value.command_status == CommandStatus.ESME_RX_P_APPN


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_garbage_never_crashes(data: str | bytes) -> None:
    try:
        receipt = parse_receipt(data)
    except ReceiptError:
        return
    assert receipt.message_id


receipt_like = st.lists(
    st.sampled_from(
        ["id:", "ID:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:"]
    )
    | st.text(alphabet="0123456789abcdefDELIVR :_", max_size=14),
    max_size=20,
).map("".join)


@given(receipt_like)
def test_receipt_shaped_garbage_never_crashes(data: str) -> None:
    with contextlib.suppress(ReceiptError):
        parse_receipt(data)


@given(
    st.text(alphabet="0123456789abcdefABCDEF-", min_size=1, max_size=20),
    st.sampled_from(list(MessageState)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(0, 999),
    st.text(max_size=30),
    st.booleans(),
)
def test_strict_and_lenient_paths_agree(
    message_id: str, state: MessageState, when: datetime, err: int, text: str, seconds: bool
) -> None:
    receipt = format_receipt(
        message_id, state, submit_date=when, done_date=when, err=err, text=text
    )
    if seconds:
        receipt = receipt.replace(when.strftime("%y%m%d%H%M"), when.strftime("%y%m%d%H%M%S"))
    assert _APPENDIX_B.fullmatch(receipt) is not None
    parsed = parse_receipt(receipt)
    assert parsed == _parse_lenient(receipt)
    assert parsed.message_id == message_id
    assert parsed.state is state
    assert parsed.text == text[:20]


def test_message_id_keys_match_hex_and_decimal() -> None:
    # Carrier answers submit_sm_resp in hex and writes the receipt id in decimal.
    assert set(message_id_keys("3039")) & set(message_id_keys("12345"))
    assert set(message_id_keys("003039")) & set(message_id_keys("0000012345"))
    assert set(message_id_keys("0A1B")) & set(message_id_keys("a1b"))
    assert message_id_keys("0A1B")[0] == "0A1B"  # literal first
    assert message_id_keys(" 12 ") == ("12", "#12", "#18")
    assert message_id_keys("ff") == ("ff", "#255")
    assert message_id_keys("abc-123") == ("abc-123",)
    assert message_id_keys("") == ("",)
    assert message_id_keys("1" * 65) == ("1" * 65,)
    # decimal and hex readings of "10" differ; "1" reads the same both ways.
    assert message_id_keys("1") == ("1", "#1")
