"""The PDUs the simulated carrier sends: delivery receipts for submits, and MO messages.

Receipts follow SMPP 3.4 Appendix B and section 5.3.2 (receipted_message_id,
message_state), addresses swapped, esm_class 0x04; the 20 characters of text
are the submit's own, its UDH stripped.
"""

from __future__ import annotations

from datetime import datetime

from protocols.smpp.constants import MessageState
from protocols.smpp.dlr import format_receipt, receipt_tlvs
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.segment import ConcatMode, split_text
from protocols.smpp.text import Encoding, decode_text
from protocols.smpp.tlv import Tag, tlv_bytes

ESM_CLASS_RECEIPT = 0x04
_UDHI = 0x40
_MESSAGE_TYPE = 0x3C
_ENCODINGS = {encoding.value: encoding for encoding in Encoding}


def body_of(pdu: SubmitSm | DataSm) -> bytes:
    """A submit_sm's short_message, or its message_payload (data_sm, or a long submit_sm)."""
    if isinstance(pdu, SubmitSm) and pdu.short_message:
        return pdu.short_message
    return tlv_bytes(pdu.tlvs, Tag.MESSAGE_PAYLOAD) or b""


def text_of(body: bytes, esm_class: int, data_coding: int) -> str:
    """The readable text of a body (UDH stripped); "" for binary or undecodable octets."""
    if esm_class & _UDHI and body:
        body = body[1 + body[0] :]
    try:
        text = decode_text(body, data_coding)
    except SmppError:
        return ""
    return text if isinstance(text, str) else ""


def wants_receipt(registered_delivery: int, delivered: bool) -> bool:
    """SMPP 3.4 section 5.2.17 bits 1-0: 1 always, 2 on failure, 3 (SMPP 5.0) on success."""
    request = registered_delivery & 0x03
    return request == 1 or (request == 2 and not delivered) or (request == 3 and delivered)


def is_receipt(esm_class: int) -> bool:
    return esm_class & _MESSAGE_TYPE == ESM_CLASS_RECEIPT


def make_receipt(
    submit: SubmitSm | DataSm,
    *,
    message_id: str,
    stat: str,
    state: MessageState,
    submit_date: datetime,
    done_date: datetime,
) -> DeliverSm:
    """The receipt deliver_sm for ``submit`` (a submit_sm or data_sm)."""
    text = text_of(body_of(submit), submit.esm_class, submit.data_coding)
    delivered = state is MessageState.DELIVERED
    short_message = format_receipt(
        message_id,
        state,
        submit_date=submit_date,
        done_date=done_date,
        text=text,
        err=0 if delivered else 1,
    )
    return DeliverSm(
        source_addr_ton=submit.dest_addr_ton,
        source_addr_npi=submit.dest_addr_npi,
        source_addr=submit.destination_addr,
        dest_addr_ton=submit.source_addr_ton,
        dest_addr_npi=submit.source_addr_npi,
        destination_addr=submit.source_addr,
        esm_class=ESM_CLASS_RECEIPT,
        short_message=short_message.encode("latin-1", "replace"),
        tlvs=receipt_tlvs(message_id, state).tlvs(),
    )


def address_ton(address: str) -> int:
    """TON for an address (section 5.2.5): international for E.164, unknown for a
    short code, alphanumeric for a sender name."""
    if address.isdigit():
        return 1 if len(address) > 6 else 0
    return 5


def mo_parts(
    source: str, destination: str, text: str, data_coding: int, ref: int
) -> tuple[DeliverSm, ...]:
    """An MO text as deliver_sm, split with an 8-bit concatenation UDH when it is long.

    ``data_coding`` 0 is GSM 03.38, 3 Latin-1, 8 UCS-2; ``ref`` the concatenation reference.
    """
    encoding = _ENCODINGS.get(data_coding)
    if encoding is None:
        raise ValueError(f"MO data_coding must be one of {sorted(_ENCODINGS)}, not {data_coding}")
    parts = split_text(text, ref=ref & 0xFF, mode=ConcatMode.UDH8, encoding=encoding)
    return tuple(
        DeliverSm(
            source_addr_ton=address_ton(source),
            source_addr_npi=1,
            source_addr=source,
            dest_addr_ton=address_ton(destination),
            dest_addr_npi=1,
            destination_addr=destination,
            esm_class=_UDHI if part.esm_class_udhi else 0,
            data_coding=part.data_coding,
            short_message=part.short_message,
        )
        for part in parts
    )
