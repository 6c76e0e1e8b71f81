"""The receipt deliver_sm for a submit (protocols/smpp/dlr.py make_receipt, make_receipt_for)."""

from __future__ import annotations

from datetime import datetime

import pytest
import smpplib.smpp

from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import MessageState
from protocols.smpp.dlr import make_receipt, make_receipt_for, message_text, parse_receipt
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.segment import concat_udh
from protocols.smpp.text import encode_gsm7, encode_ucs2
from protocols.smpp.tlv import Tag, Tlv, tlv_int, tlv_str

SUBMITTED = datetime(2026, 12, 1, 21, 5, 33)
DONE = datetime(2026, 12, 1, 21, 6, 1)
SUBMIT = SubmitSm(
    sequence_number=7,
    source_addr_ton=5,
    source_addr_npi=0,
    source_addr="Acme",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="447700900123",
    registered_delivery=1,
    short_message=b"Your verification code is 493817",
)
DATES = {"submit_date": SUBMITTED, "done_date": DONE}


def test_receipt_for_a_submit() -> None:
    receipt = make_receipt_for(SUBMIT, message_id="W-42", stat="DELIVRD", err=0, **DATES)
    assert receipt == DeliverSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
        dest_addr_ton=5,
        dest_addr_npi=0,
        destination_addr="Acme",
        esm_class=0x04,
        data_coding=0,
        short_message=(
            b"id:W-42 sub:001 dlvrd:001 submit date:2612012105 done date:2612012106"
            b" stat:DELIVRD err:000 text:Your verification co"
        ),
        tlvs=(
            Tlv(Tag.RECEIPTED_MESSAGE_ID, b"W-42\x00"),
            Tlv(Tag.MESSAGE_STATE, b"\x02"),
        ),
    )
    assert decode(encode(receipt)) == receipt
    parsed = parse_receipt(receipt.short_message)
    assert (parsed.message_id, parsed.state, parsed.text) == (
        "W-42",
        MessageState.DELIVERED,
        "Your verification co",  # the first 20 characters
    )


def test_an_independent_client_reads_the_receipt() -> None:
    receipt = make_receipt_for(SUBMIT, message_id="W-42", stat="UNDELIV", err=11, **DATES)
    client = type("Client", (), {"sequence": 0, "next_sequence": lambda self: 0})()
    pdu = smpplib.smpp.parse_pdu(encode(receipt), client=client)
    assert pdu.command == "deliver_sm"
    assert pdu.esm_class == 0x04
    assert pdu.receipted_message_id == b"W-42"
    assert pdu.message_state == MessageState.UNDELIVERABLE
    assert b"stat:UNDELIV err:011" in pdu.short_message
    assert b"dlvrd:000" in pdu.short_message


def test_plain_fields_give_the_same_receipt() -> None:
    from_fields = make_receipt(
        source_addr="Acme",
        source_addr_ton=5,
        destination_addr="447700900123",
        dest_addr_ton=1,
        dest_addr_npi=1,
        text="Your verification code is 493817",
        message_id="W-42",
        stat=MessageState.DELIVERED,
        err=0,
        **DATES,
    )
    assert from_fields == make_receipt_for(
        SUBMIT, message_id="W-42", stat="delivrd", err=0, **DATES
    )


def test_sub_dlvrd_and_network_error_code() -> None:
    receipt = make_receipt_for(
        SUBMIT,
        message_id="9",
        stat="DELIVERED",  # a carrier spelling
        err=0,
        sub=3,
        dlvrd=2,
        network_error_code=b"\x03\x00\x22",
        **DATES,
    )
    assert b"id:9 sub:003 dlvrd:002 " in receipt.short_message
    assert b"stat:DELIVRD" in receipt.short_message
    assert receipt.get_tlv(Tag.NETWORK_ERROR_CODE) == Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x22")
    assert tlv_str(receipt.tlvs, Tag.RECEIPTED_MESSAGE_ID) == "9"
    assert tlv_int(receipt.tlvs, Tag.MESSAGE_STATE) == MessageState.DELIVERED
    assert decode(encode(receipt)) == receipt


def test_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="stat"):
        make_receipt_for(SUBMIT, message_id="1", stat="LOST", err=0, **DATES)
    with pytest.raises(ValueError, match="3 octets"):
        make_receipt_for(
            SUBMIT, message_id="1", stat="DELIVRD", err=0, network_error_code=b"\x03", **DATES
        )
    with pytest.raises(ValueError, match="three decimal digits"):
        make_receipt_for(SUBMIT, message_id="1", stat="DELIVRD", err=1000, **DATES)


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (SubmitSm(short_message=encode_gsm7("@home: £5 {ok}")), "@home: £5 {ok}"),
        (
            SubmitSm(esm_class=0x40, short_message=concat_udh(9, 2, 1) + encode_gsm7("part one")),
            "part one",
        ),
        (SubmitSm(data_coding=8, short_message=encode_ucs2("Привет")), "Привет"),
        (SubmitSm(data_coding=3, short_message="café".encode("latin-1")), "café"),
        (SubmitSm(tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"long body"),)), "long body"),
        (DataSm(tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"data sm"),)), "data sm"),
        (SubmitSm(short_message=b"a_b"), "a§b"),  # data_coding 0 is GSM 03.38, not ASCII
        (DataSm(), ""),
        (SubmitSm(data_coding=4, short_message=b"\x00\x01binary"), ""),  # 8-bit data
        (SubmitSm(data_coding=8, short_message=b"\x00"), ""),  # odd UCS-2: undecodable
    ],
)
def test_message_text(message: SubmitSm | DataSm, text: str) -> None:
    assert message_text(message) == text


def test_receipt_text_is_printable_ascii() -> None:
    submit = SubmitSm(
        destination_addr="4479",
        data_coding=8,
        short_message=encode_ucs2("Привет, café\nok 12345678901234"),
    )
    receipt = make_receipt_for(submit, message_id="1", stat="DELIVRD", err=0, **DATES)
    assert receipt.short_message.endswith(b"text:??????, caf??ok 1234")
    assert receipt.data_coding == 0


def test_receipt_for_a_data_sm() -> None:
    data_sm = DataSm(
        source_addr="1234",
        destination_addr="447700900123",
        tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, encode_gsm7("hello from data_sm")),),
    )
    receipt = make_receipt_for(data_sm, message_id="d1", stat="EXPIRED", err=0, **DATES)
    assert (receipt.source_addr, receipt.destination_addr) == ("447700900123", "1234")
    assert receipt.short_message.endswith(b"stat:EXPIRED err:000 text:hello from data_sm")
