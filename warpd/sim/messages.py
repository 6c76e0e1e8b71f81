"""Message bodies and addresses for the simulators: MO deliver_sm, TONs, submit bodies.

(Receipts come whole from protocols.smpp.dlr.make_receipt_for.)
"""

from __future__ import annotations

from protocols.smpp.flags import ESM_CLASS_UDHI
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.segment import ConcatMode, split_text
from protocols.smpp.text import Encoding
from protocols.smpp.tlv import Tag, tlv_bytes

_ENCODINGS = {encoding.value: encoding for encoding in Encoding}


def body_of(pdu: SubmitSm | DataSm) -> bytes:
    """A submit_sm's short_message, or its message_payload (data_sm, or a long submit_sm)."""
    if isinstance(pdu, SubmitSm) and pdu.short_message:
        return pdu.short_message
    return tlv_bytes(pdu.tlvs, Tag.MESSAGE_PAYLOAD) or b""


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
            esm_class=ESM_CLASS_UDHI if part.esm_class_udhi else 0,
            data_coding=part.data_coding,
            short_message=part.short_message,
        )
        for part in parts
    )
