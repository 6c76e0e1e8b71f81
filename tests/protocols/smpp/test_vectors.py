"""One vector table drives both the encoder and the decoder (the h11 pattern).

The wire side of each vector is hand-encoded hex in tests/vectors/smpp/pdus.txt
(from the SMPP 3.4 field tables, each with its origin); the record side is
written here. Each vector is decoded whole, through the framer byte by byte
and with trailing data, and (when canonical) encoded back to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from protocols.smpp import codec
from protocols.smpp.constants import CommandStatus, DataCoding, MessageState, Npi, Ton
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnsuccessSme,
)
from protocols.smpp.tlv import Tag, Tlv

VECTOR_FILE = Path(__file__).resolve().parents[2] / "vectors" / "smpp" / "pdus.txt"


@dataclass(frozen=True)
class WireVector:
    name: str
    origin: str
    canonical: bool
    data: bytes


def load_wire_vectors(path: Path = VECTOR_FILE) -> dict[str, WireVector]:
    vectors: dict[str, WireVector] = {}
    for block in path.read_text().split("\n== ")[1:]:
        name, *lines = block.splitlines()
        origin, canonical, hex_parts = "", True, []
        for line in lines:
            if line.startswith("origin:"):
                origin = line.removeprefix("origin:").strip()
            elif line.startswith("canonical:"):
                canonical = line.split(":", 1)[1].strip() != "no"
            else:
                hex_parts.append(line.split("#", 1)[0])
        vectors[name.strip()] = WireVector(
            name.strip(), origin, canonical, bytes.fromhex("".join(hex_parts))
        )
    return vectors


WIRE = load_wire_vectors()

_ACME = {"source_addr_ton": Ton.ALPHANUMERIC, "source_addr_npi": Npi.UNKNOWN, "source_addr": "Acme"}
_HANDSET = {"dest_addr_ton": Ton.INTERNATIONAL, "dest_addr_npi": Npi.ISDN}

EXPECTED: dict[str, Pdu] = {
    "bind_transmitter": BindTransmitter(
        sequence_number=1, system_id="smppclient1", password="password"
    ),
    "bind_receiver": BindReceiver(
        sequence_number=2,
        system_id="account1",
        password="secret1",
        system_type="VMS",
        addr_ton=1,
        addr_npi=1,
        address_range="^4477",
    ),
    "bind_transceiver": BindTransceiver(
        sequence_number=0x7FFFFFFF, system_id="trx1", password="px"
    ),
    "bind_transmitter_resp": BindTransmitterResp(
        sequence_number=1, system_id="SMSC", tlvs=(Tlv(Tag.SC_INTERFACE_VERSION, b"\x34"),)
    ),
    "bind_receiver_resp_error": BindReceiverResp(
        sequence_number=2, command_status=CommandStatus.ESME_RINVPASWD
    ),
    "bind_transceiver_resp": BindTransceiverResp(sequence_number=3, system_id="SMSC"),
    "outbind": Outbind(sequence_number=5, system_id="SMSC", password="pwd"),
    "unbind": Unbind(sequence_number=4),
    "unbind_resp": UnbindResp(sequence_number=4),
    "generic_nack": GenericNack(sequence_number=7, command_status=CommandStatus.ESME_RINVCMDID),
    "enquire_link": EnquireLink(sequence_number=16),
    "enquire_link_resp": EnquireLinkResp(sequence_number=16),
    "submit_sm": SubmitSm(
        sequence_number=1,
        **_ACME,
        **_HANDSET,
        destination_addr="447700900123",
        registered_delivery=1,
        short_message=b"Your code is 123456",
    ),
    "submit_sm_gsm_at_sar": SubmitSm(
        sequence_number=2,
        service_type="CMT",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900001",
        **_HANDSET,
        destination_addr="447700900002",
        priority_flag=1,
        validity_period="000001000000000R",
        registered_delivery=1,
        short_message=b"H\x00i\x00",
        tlvs=(
            Tlv.u16(Tag.SAR_MSG_REF_NUM, 0x1234),
            Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, 2),
            Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, 1),
        ),
    ),
    "submit_sm_vendor_tlv": SubmitSm(
        sequence_number=3,
        source_addr="1",
        destination_addr="2",
        tlvs=(Tlv(0x1400, b"\xab\xcd\xef"), Tlv(Tag.MESSAGE_PAYLOAD, b"Hi!")),
    ),
    "submit_sm_absolute_schedule": SubmitSm(
        sequence_number=4,
        source_addr="1",
        destination_addr="2",
        schedule_delivery_time="261121201000004+",
        data_coding=DataCoding.UCS2,
        short_message="€".encode("utf-16-be"),
    ),
    "submit_sm_resp": SubmitSmResp(sequence_number=1, message_id="abc123"),
    "submit_sm_resp_throttled": SubmitSmResp(
        sequence_number=1, command_status=CommandStatus.ESME_RTHROTTLED
    ),
    "submit_sm_resp_error_with_body": SubmitSmResp(
        sequence_number=1, command_status=CommandStatus.ESME_RMSGQFUL
    ),
    "submit_sm_resp_congestion": SubmitSmResp(
        sequence_number=2,
        message_id="msg-2",
        tlvs=(Tlv.u8(Tag.CONGESTION_STATE, 80), Tlv.u8(Tag.MESSAGE_STATE, MessageState.ACCEPTED)),
    ),
    "deliver_sm_receipt": DeliverSm(
        sequence_number=9,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
        dest_addr_ton=5,
        destination_addr="Acme",
        esm_class=0x04,
        short_message=b"id:1234567890 stat:DELIVRD err:000",
        tlvs=(
            Tlv.c_octet_string(Tag.RECEIPTED_MESSAGE_ID, "1234567890"),
            Tlv.u8(Tag.MESSAGE_STATE, MessageState.DELIVERED),
            Tlv.network_error_code(3, 0),
        ),
    ),
    "deliver_sm_resp": DeliverSmResp(sequence_number=9),
    "deliver_sm_resp_no_body": DeliverSmResp(sequence_number=9),
    "data_sm": DataSm(
        sequence_number=10,
        service_type="WAP",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="1234567890123456789012345678901234",
        **_HANDSET,
        destination_addr="447700900123",
        registered_delivery=1,
        data_coding=4,
        tlvs=(
            Tlv.u16(Tag.SOURCE_PORT, 2948),
            Tlv.u16(Tag.DESTINATION_PORT, 9200),
            Tlv(Tag.MESSAGE_PAYLOAD, b"\x01\x02\x03\x04"),
        ),
    ),
    "data_sm_resp": DataSmResp(
        sequence_number=10,
        command_status=CommandStatus.ESME_RDELIVERYFAILURE,
        message_id="msg1",
        tlvs=(Tlv.u8(Tag.DELIVERY_FAILURE_REASON, 1),),
    ),
    "query_sm": QuerySm(
        sequence_number=11,
        message_id="abc123",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
    ),
    "query_sm_resp": QuerySmResp(
        sequence_number=11,
        message_id="abc123",
        final_date="261121201055000+",
        message_state=MessageState.DELIVERED,
    ),
    "cancel_sm": CancelSm(
        sequence_number=12,
        message_id="abc123",
        **_ACME,
        **_HANDSET,
        destination_addr="447700900123",
    ),
    "cancel_sm_resp": CancelSmResp(sequence_number=12),
    "replace_sm": ReplaceSm(
        sequence_number=13,
        message_id="abc123",
        **_ACME,
        registered_delivery=1,
        short_message=b"New",
    ),
    "replace_sm_resp": ReplaceSmResp(sequence_number=13),
    "submit_multi": SubmitMulti(
        sequence_number=14,
        **_ACME,
        dest_address=(SmeAddress(1, 1, "447700900123"), DistributionList("staff")),
        short_message=b"Hi",
    ),
    "submit_multi_resp": SubmitMultiResp(
        sequence_number=14,
        message_id="abc123",
        unsuccess_sme=(UnsuccessSme(1, 1, "447700900123", CommandStatus.ESME_RINVDSTADR),),
    ),
    "alert_notification": AlertNotification(
        sequence_number=15,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
        esme_addr_ton=5,
        esme_addr="Acme",
        tlvs=(Tlv.u8(Tag.MS_AVAILABILITY_STATUS, 0),),
    ),
}

NAMES = sorted(WIRE)


def test_every_wire_vector_has_a_record_and_an_origin() -> None:
    assert set(WIRE) == set(EXPECTED)
    assert all(vector.origin for vector in WIRE.values())


def test_every_pdu_class_has_a_vector() -> None:
    from protocols.smpp.pdu import PDU_CLASSES

    assert {type(pdu) for pdu in EXPECTED.values()} == set(PDU_CLASSES.values())


@pytest.mark.parametrize("name", NAMES)
def test_decode_whole(name: str) -> None:
    assert codec.decode(WIRE[name].data) == EXPECTED[name]


@pytest.mark.parametrize("name", [n for n in NAMES if WIRE[n].canonical])
def test_encode(name: str) -> None:
    assert codec.encode(EXPECTED[name]).hex() == WIRE[name].data.hex()


@pytest.mark.parametrize("name", NAMES)
def test_framer_byte_by_byte(name: str) -> None:
    reader = PduReader()
    decoded = []
    for octet in WIRE[name].data:
        reader.feed(bytes((octet,)))
        pdu = reader.next_pdu()
        if pdu is not None:
            decoded.append(pdu)
    assert decoded == [EXPECTED[name]]
    assert reader.buffered == 0


@pytest.mark.parametrize("name", NAMES)
def test_framer_with_trailing_data(name: str) -> None:
    reader = PduReader()
    following = WIRE["enquire_link"].data
    reader.feed(WIRE[name].data + following[:7])
    assert reader.next_pdu() == EXPECTED[name]
    assert reader.next_pdu() is None
    assert reader.buffered == 7
    reader.feed(following[7:])
    assert reader.next_pdu() == EXPECTED["enquire_link"]


def test_all_vectors_in_one_read() -> None:
    reader = PduReader()
    reader.feed(b"".join(WIRE[name].data for name in NAMES))
    assert [codec.decode(frame) for frame in reader] == [EXPECTED[name] for name in NAMES]
