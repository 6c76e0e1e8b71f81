"""SMPP 3.4 PDUs as frozen records, one class per command, fields named as in section 4.

Every PDU has ``sequence_number``, ``command_status`` (0 in requests) and
``tlvs`` (optional parameters in arrival order, section 5.3), all keyword-only;
the mandatory body fields follow the order of the section 4 tables and all have
defaults. ``command_id`` is a class attribute. Text fields (C-octet strings) are
``str`` holding latin-1 decoded octets, so any octets round-trip; short_message
is ``bytes`` because GSM 03.38 '@' is 0x00 (it is never a C string).

The records are ``protocols.record.Record`` tuples, declared like frozen
dataclasses: construction and field reads are the codec's main cost
(protocols/record.py). Each PDU's fields are stored header first
(sequence_number, command_status, tlvs) then the body in section 4 order,
which the codec relies on.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from protocols.record import Record
from protocols.smpp.constants import (
    INTERFACE_VERSION_34,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
)
from protocols.smpp.errors import SmppError
from protocols.smpp.tlv import Tag, Tlv, find_tlv


class Pdu(Record):
    """Fields every PDU has (section 3.2: the header, and section 3.3: TLVs)."""

    command_id: ClassVar[CommandId]
    sequence_number: int = field(default=0, kw_only=True)
    command_status: int = field(default=0, kw_only=True)
    tlvs: tuple[Tlv, ...] = field(default=(), kw_only=True)

    def get_tlv(self, tag: int) -> Tlv | None:
        return find_tlv(self.tlvs, tag)


# -- session management (sections 4.1, 4.2, 4.3, 4.11) ---------------------


class _Bind(Pdu):
    """bind_transmitter / bind_receiver / bind_transceiver body (section 4.1.1)."""

    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


class _BindResp(Pdu):
    """bind_*_resp body (section 4.1.2); sc_interface_version travels as a TLV."""

    system_id: str = ""


class BindTransmitter(_Bind):
    command_id = CommandId.BIND_TRANSMITTER


class BindTransmitterResp(_BindResp):
    command_id = CommandId.BIND_TRANSMITTER_RESP


class BindReceiver(_Bind):
    command_id = CommandId.BIND_RECEIVER


class BindReceiverResp(_BindResp):
    command_id = CommandId.BIND_RECEIVER_RESP


class BindTransceiver(_Bind):
    command_id = CommandId.BIND_TRANSCEIVER


class BindTransceiverResp(_BindResp):
    command_id = CommandId.BIND_TRANSCEIVER_RESP


BindRequest = BindTransmitter | BindReceiver | BindTransceiver
BindResponse = BindTransmitterResp | BindReceiverResp | BindTransceiverResp


class Outbind(Pdu):
    """Section 4.1.7: the SMSC asks the ESME to bind_receiver."""

    command_id = CommandId.OUTBIND
    system_id: str = ""
    password: str = ""


class Unbind(Pdu):
    command_id = CommandId.UNBIND


class UnbindResp(Pdu):
    command_id = CommandId.UNBIND_RESP


class GenericNack(Pdu):
    """Section 4.3: the answer to a PDU whose header or command_id is unusable."""

    command_id = CommandId.GENERIC_NACK


class EnquireLink(Pdu):
    command_id = CommandId.ENQUIRE_LINK


class EnquireLinkResp(Pdu):
    command_id = CommandId.ENQUIRE_LINK_RESP


# -- message submission and delivery (sections 4.4, 4.5, 4.6, 4.7) --------


class ShortMessagePdu(Pdu):
    """submit_sm (4.4.1) and deliver_sm (4.6.1) share this body; sm_length is implied."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class SubmitSm(ShortMessagePdu):
    command_id = CommandId.SUBMIT_SM


class DeliverSm(ShortMessagePdu):
    command_id = CommandId.DELIVER_SM


class SubmitSmResp(Pdu):
    """Section 4.4.2: with a non-zero status the body may be absent (message_id "")."""

    command_id = CommandId.SUBMIT_SM_RESP
    message_id: str = ""


class DeliverSmResp(Pdu):
    """Section 4.6.2: message_id is unused and set to NULL."""

    command_id = CommandId.DELIVER_SM_RESP
    message_id: str = ""


class SmeAddress(Record):
    """A submit_multi dest_address with dest_flag 1 (section 4.5.1.1)."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


class DistributionList(Record):
    """A submit_multi dest_address with dest_flag 2 (section 4.5.1.2)."""

    dl_name: str = ""


class UnsuccessSme(Record):
    """One entry of submit_multi_resp unsuccess_sme (section 4.5.2.1)."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


class SubmitMulti(Pdu):
    """Section 4.5.1; number_of_dests is len(dest_address), sm_length len(short_message)."""

    command_id = CommandId.SUBMIT_MULTI
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_address: tuple[SmeAddress | DistributionList, ...] = ()
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class SubmitMultiResp(Pdu):
    """Section 4.5.2; no_unsuccess is len(unsuccess_sme)."""

    command_id = CommandId.SUBMIT_MULTI_RESP
    message_id: str = ""
    unsuccess_sme: tuple[UnsuccessSme, ...] = ()


class DataSm(Pdu):
    """Section 4.7.1: the payload travels in the message_payload TLV."""

    command_id = CommandId.DATA_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


class DataSmResp(Pdu):
    command_id = CommandId.DATA_SM_RESP
    message_id: str = ""


# -- ancillary operations (sections 4.8, 4.9, 4.10, 4.12) ------------------


class QuerySm(Pdu):
    command_id = CommandId.QUERY_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


class QuerySmResp(Pdu):
    command_id = CommandId.QUERY_SM_RESP
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


class CancelSm(Pdu):
    command_id = CommandId.CANCEL_SM
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


class CancelSmResp(Pdu):
    command_id = CommandId.CANCEL_SM_RESP


class ReplaceSm(Pdu):
    command_id = CommandId.REPLACE_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class ReplaceSmResp(Pdu):
    command_id = CommandId.REPLACE_SM_RESP


class AlertNotification(Pdu):
    """Section 4.12: no response; ms_availability_status travels as a TLV."""

    command_id = CommandId.ALERT_NOTIFICATION
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        GenericNack,
        EnquireLink,
        EnquireLinkResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        SubmitMulti,
        SubmitMultiResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
        AlertNotification,
    )
}

#: The response class of each request that has one (outbind and alert_notification have none).
RESPONSE_CLASSES: dict[int, type[Pdu]] = {
    cid: PDU_CLASSES[cid | RESPONSE_BIT]
    for cid in PDU_CLASSES
    if not cid & RESPONSE_BIT and cid | RESPONSE_BIT in PDU_CLASSES
}

_BIND_RESPONSE_CLASSES: dict[
    int, type[BindTransmitterResp] | type[BindReceiverResp] | type[BindTransceiverResp]
] = {
    CommandId.BIND_TRANSMITTER: BindTransmitterResp,
    CommandId.BIND_RECEIVER: BindReceiverResp,
    CommandId.BIND_TRANSCEIVER: BindTransceiverResp,
}
_SC_INTERFACE_VERSION = (Tlv.u8(Tag.SC_INTERFACE_VERSION, INTERFACE_VERSION_34),)
_BIND_RESPONSES = frozenset(
    {
        CommandId.BIND_TRANSMITTER_RESP,
        CommandId.BIND_RECEIVER_RESP,
        CommandId.BIND_TRANSCEIVER_RESP,
    }
)


def is_response(pdu: Pdu) -> bool:
    return bool(pdu.command_id & RESPONSE_BIT)


def make_response(request: Pdu, command_status: int = 0, **fields: Any) -> Pdu:
    """The response to ``request`` echoing its sequence_number (section 2.4).

    A bind's response follows ``bind_response``'s rule for sc_interface_version
    unless ``tlvs`` is given.
    """
    cls = RESPONSE_CLASSES.get(request.command_id)
    if cls is None:
        raise SmppError(
            CommandStatus.ESME_RINVCMDID,
            f"{type(request).__name__} has no response",
            command_id=request.command_id,
            sequence_number=request.sequence_number,
        )
    if cls.command_id in _BIND_RESPONSES and "tlvs" not in fields and isinstance(request, _Bind):
        fields["tlvs"] = _bind_response_tlvs(request, command_status)
    return cls(sequence_number=request.sequence_number, command_status=command_status, **fields)


def bind_response(request: BindRequest, command_status: int, system_id: str) -> BindResponse:
    """The bind_*_resp for ``request``, carrying our ``system_id``.

    Section 5.3.2.25: the SMSC announces the version it supports in
    sc_interface_version, but only to a peer that speaks 3.4 or later and only
    on success; an ESME that binds with interface_version 0x33 expects a 3.3
    bind_resp, which has no TLVs.
    """
    return _BIND_RESPONSE_CLASSES[request.command_id](
        sequence_number=request.sequence_number,
        command_status=command_status,
        tlvs=_bind_response_tlvs(request, command_status),
        system_id=system_id,
    )


def _bind_response_tlvs(request: _Bind, command_status: int) -> tuple[Tlv, ...]:
    if command_status == 0 and request.interface_version >= INTERFACE_VERSION_34:
        return _SC_INTERFACE_VERSION
    return ()


def generic_nack(sequence_number: int, command_status: int) -> GenericNack:
    return GenericNack(sequence_number=sequence_number, command_status=command_status)


def error_response(error: SmppError) -> Pdu | None:
    """What to send for a PDU that failed to decode, or None when nothing may be sent.

    A known request gets its own response with the error status (section 2.8);
    an unknown command or a broken frame gets generic_nack echoing whatever
    sequence number was readable (0 if none). A response is never answered, so
    two peers cannot nack each other forever: that includes a command_id with
    the response bit set that SMPP 3.4 does not define (section 5.1.2.1).
    """
    command_id = error.command_id
    sequence_number = error.sequence_number or 0
    if error.stream_unusable:
        return generic_nack(sequence_number, error.command_status)
    if command_id not in PDU_CLASSES:
        if command_id is not None and command_id & RESPONSE_BIT:
            return None
        return generic_nack(sequence_number, error.command_status)
    cls = RESPONSE_CLASSES.get(command_id)
    if cls is None:  # a response, or outbind / alert_notification
        return None
    return cls(sequence_number=sequence_number, command_status=error.command_status)
