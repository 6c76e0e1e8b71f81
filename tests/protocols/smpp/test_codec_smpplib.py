"""Vectors from an independent implementation: smpplib 2.2.4 encodes, we decode, and back.

smpplib (LGPL, test-only) builds PDUs from its own field tables; agreeing with
it in both directions checks our tables against someone else's reading of
SMPP 3.4 section 4.
"""

from __future__ import annotations

from typing import Any

import pytest
import smpplib.command
import smpplib.smpp
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp import codec
from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.pdu import (
    BindTransceiver,
    BindTransmitterResp,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)
from protocols.smpp.tlv import Tag, Tlv, tlv_int, tlv_str


class _Client:
    """smpplib asks its client for a sequence number even when parsing (then overwrites it)."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def smpplib_pdu(name: str, sequence: int, **fields: Any) -> Any:
    pdu = smpplib.smpp.make_pdu(name, client=_Client(), sequence=sequence, **fields)
    pdu.sequence = sequence  # smpplib's _set_vars skips attributes that already exist
    return pdu


# (smpplib command, sequence, smpplib fields, the record we expect)
CASES: list[tuple[str, int, dict[str, Any], Pdu]] = [
    (
        "bind_transceiver",
        1,
        {"system_id": "acme", "password": "secret", "system_type": "", "interface_version": 0x34},
        BindTransceiver(sequence_number=1, system_id="acme", password="secret"),
    ),
    (
        "submit_sm",
        2,
        {
            "source_addr_ton": 5,
            "source_addr": "Acme",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "447700900123",
            "registered_delivery": 1,
            "short_message": b"Your code is 123456",
            "user_message_reference": 42,
        },
        SubmitSm(
            sequence_number=2,
            source_addr_ton=5,
            source_addr="Acme",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900123",
            registered_delivery=1,
            short_message=b"Your code is 123456",
            tlvs=(Tlv.u16(Tag.USER_MESSAGE_REFERENCE, 42),),
        ),
    ),
    (
        "deliver_sm",
        3,
        {
            "source_addr": "447700900123",
            "destination_addr": "Acme",
            "esm_class": 4,
            "short_message": b"id:77 stat:DELIVRD",
            "receipted_message_id": "77",
            "message_state": 2,
        },
        DeliverSm(
            sequence_number=3,
            source_addr="447700900123",
            destination_addr="Acme",
            esm_class=4,
            short_message=b"id:77 stat:DELIVRD",
            # smpplib's deliver_sm writes message_state first; the order is kept.
            tlvs=(
                Tlv.u8(Tag.MESSAGE_STATE, MessageState.DELIVERED),
                Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "77"),
            ),
        ),
    ),
    (
        "data_sm",
        4,
        {"source_addr": "1", "destination_addr": "2", "message_payload": b"payload"},
        DataSm(
            sequence_number=4,
            source_addr="1",
            destination_addr="2",
            tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"payload"),),
        ),
    ),
    (
        "query_sm",
        5,
        {"message_id": "abc", "source_addr": "Acme"},
        QuerySm(sequence_number=5, message_id="abc", source_addr="Acme"),
    ),
    ("submit_sm_resp", 2, {"message_id": "m-1"}, SubmitSmResp(sequence_number=2, message_id="m-1")),
    ("deliver_sm_resp", 3, {}, DeliverSmResp(sequence_number=3)),
    ("enquire_link", 6, {}, EnquireLink(sequence_number=6)),
    ("enquire_link_resp", 6, {}, EnquireLinkResp(sequence_number=6)),
    ("unbind", 7, {}, Unbind(sequence_number=7)),
]


@pytest.mark.parametrize(
    ("name", "sequence", "fields", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_smpplib_encodes_we_decode(
    name: str, sequence: int, fields: dict[str, Any], expected: Pdu
) -> None:
    wire = smpplib_pdu(name, sequence, **fields).generate()
    assert codec.decode(wire) == expected


@pytest.mark.parametrize(
    ("name", "sequence", "fields", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_we_encode_smpplib_decodes(
    name: str, sequence: int, fields: dict[str, Any], expected: Pdu
) -> None:
    parsed = smpplib.smpp.parse_pdu(codec.encode(expected), client=_Client())
    assert parsed.command == name
    assert parsed.sequence == sequence
    for key, value in fields.items():
        got = getattr(parsed, key)
        # smpplib hands C-octet strings back as bytes.
        assert got == (value.encode() if isinstance(value, str) else value), key


def test_smpplib_reads_our_error_responses() -> None:
    nack = smpplib.smpp.parse_pdu(
        codec.encode(GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDID)),
        client=_Client(),
    )
    assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 3, 9)
    resp = smpplib.smpp.parse_pdu(
        codec.encode(SubmitSmResp(sequence_number=4, command_status=CommandStatus.ESME_RTHROTTLED)),
        client=_Client(),
    )
    assert (resp.command, resp.status, resp.sequence) == ("submit_sm_resp", 0x58, 4)


def test_smpplib_bind_resp_sc_interface_version() -> None:
    wire = smpplib_pdu("bind_transmitter_resp", 1, system_id="SMSC", sc_interface_version=0x34)
    pdu = codec.decode(wire.generate())
    assert isinstance(pdu, BindTransmitterResp)
    assert tlv_int(pdu.tlvs, Tag.SC_INTERFACE_VERSION) == 0x34


def test_smpplib_query_sm_resp() -> None:
    wire = smpplib_pdu(
        "query_sm_resp", 5, message_id="abc", final_date="", message_state=2, error_code=0
    ).generate()
    assert codec.decode(wire) == QuerySmResp(sequence_number=5, message_id="abc", message_state=2)


addresses = st.text("0123456789", min_size=1, max_size=20)


@given(
    source=addresses,
    destination=addresses,
    ton=st.integers(0, 6),
    registered_delivery=st.integers(0, 31),
    data_coding=st.sampled_from([0, 3, 8]),
    text=st.binary(max_size=160),
    receipt_id=st.none() | st.text("0123456789abcdef", min_size=1, max_size=64),
)
def test_deliver_sm_against_smpplib(
    source: str,
    destination: str,
    ton: int,
    registered_delivery: int,
    data_coding: int,
    text: bytes,
    receipt_id: str | None,
) -> None:
    ours = DeliverSm(
        sequence_number=77,
        source_addr_ton=ton,
        source_addr=source,
        destination_addr=destination,
        registered_delivery=registered_delivery,
        data_coding=data_coding,
        short_message=text,
        tlvs=()
        if receipt_id is None
        else (Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, receipt_id),),
    )
    fields: dict[str, Any] = {
        "source_addr_ton": ton,
        "source_addr": source,
        "destination_addr": destination,
        "registered_delivery": registered_delivery,
        "data_coding": data_coding,
        "short_message": text,
    }
    if receipt_id is not None:
        fields["receipted_message_id"] = receipt_id
    theirs = smpplib_pdu("deliver_sm", 77, **fields).generate()
    assert codec.encode(ours) == theirs
    decoded = codec.decode(theirs)
    assert decoded == ours
    assert tlv_str(decoded.tlvs, Tag.RECEIPTED_MESSAGE_ID) == receipt_id
