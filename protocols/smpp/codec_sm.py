"""The hot path of the codec: submit_sm and deliver_sm bodies (SMPP 3.4 sections 4.4.1, 4.6.1).

These two PDUs are nearly all of the traffic (an MT and its receipt), so
their body is decoded with one precompiled regex and encoded with one bytes
format here instead of walking codec.py's generic layout. Each function
handles only the well-formed case and returns None on anything unusual;
codec.py then runs the generic path on the same PDU, which either succeeds
or raises the precise SmppError. The two paths must agree, which the tests
check on every vector and on Hypothesis-generated PDUs.
"""

from __future__ import annotations

import re
import struct

from protocols.record import make
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import ShortMessagePdu
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, encode_tlvs, has_tag

_HEADER = struct.Struct(">IIII")
_TIME = re.compile(rb"[0-9]{15}[-+R]")
_TIME_OR_EMPTY = rb"((?:[0-9]{15}[-+R])?)\x00"
#: The mandatory body from offset 16 up to sm_length, in one match: each
#: C-octet string within its section 4.4.1 maximum (NUL included), each time
#: empty or section 7.1.1's 16 characters, the Integer(1) fields in fixed-width
#: groups (unpacking a bytes object yields its octets as ints).
_MANDATORY = re.compile(
    rb"([^\x00]{0,5})\x00(..)([^\x00]{0,20})\x00(..)([^\x00]{0,20})\x00(...)"
    + _TIME_OR_EMPTY
    + _TIME_OR_EMPTY
    + rb"(.....)",
    re.DOTALL,
)
# service_type NUL ton npi source_addr NUL ton npi destination_addr NUL esm_class
# protocol_id priority_flag schedule NUL validity NUL registered_delivery
# replace_if_present_flag data_coding sm_default_msg_id sm_length short_message
_BODY = b"%b\x00%c%c%b\x00%c%c%b\x00%c%c%c%b\x00%b\x00%c%c%c%c%c%b"
_NUL = b"\x00"
# Python 3.11 reads an enum member through a descriptor (~0.2 us); the hot path
# compares against the plain int.
_MESSAGE_PAYLOAD = int(Tag.MESSAGE_PAYLOAD)


def decode_short_message(
    cls: type[ShortMessagePdu], data: bytes, status: int, seq: int
) -> ShortMessagePdu | None:
    """A well-formed submit_sm/deliver_sm, or None to let the generic path decide."""
    match = _MANDATORY.match(data, 16)
    if match is None:
        return None
    service_type, source, source_addr, dest, destination_addr, middle, schedule, validity, tail = (
        match.groups()
    )
    registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length = tail
    sm_start = match.end()
    sm_end = sm_start + sm_length
    size = len(data)
    if sm_length > 254 or sm_end > size:
        return None
    short_message = data[sm_start:sm_end]
    tlvs: tuple[Tlv, ...] = ()
    if sm_end < size:
        try:
            tlvs = decode_tlvs(data, sm_end)
        except SmppError:
            return None
        if short_message and has_tag(tlvs, _MESSAGE_PAYLOAD):
            return None
    source_addr_ton, source_addr_npi = source
    dest_addr_ton, dest_addr_npi = dest
    esm_class, protocol_id, priority_flag = middle
    # Every field is validated above, so the record is built without argument binding.
    return make(
        cls,
        {
            "sequence_number": seq,
            "command_status": status,
            "tlvs": tlvs,
            "service_type": service_type.decode("latin-1") if service_type else "",
            "source_addr_ton": source_addr_ton,
            "source_addr_npi": source_addr_npi,
            "source_addr": source_addr.decode("latin-1"),
            "dest_addr_ton": dest_addr_ton,
            "dest_addr_npi": dest_addr_npi,
            "destination_addr": destination_addr.decode("latin-1"),
            "esm_class": esm_class,
            "protocol_id": protocol_id,
            "priority_flag": priority_flag,
            "schedule_delivery_time": schedule.decode("latin-1") if schedule else "",
            "validity_period": validity.decode("latin-1") if validity else "",
            "registered_delivery": registered_delivery,
            "replace_if_present_flag": replace_if_present_flag,
            "data_coding": data_coding,
            "sm_default_msg_id": sm_default_msg_id,
            "short_message": short_message,
        },
    )


def encode_short_message(pdu: ShortMessagePdu) -> bytes | None:
    """The wire form of a well-formed submit_sm/deliver_sm, or None (see the module doc)."""
    try:
        # One encode for the five C-octet strings; split() hands them back, and
        # a sixth part means one of them held a NUL.
        texts = (
            "\x00".join(
                (
                    pdu.service_type,
                    pdu.source_addr,
                    pdu.destination_addr,
                    pdu.schedule_delivery_time,
                    pdu.validity_period,
                )
            )
            .encode("latin-1")
            .split(_NUL)
        )
    except (UnicodeEncodeError, TypeError):
        return None
    if len(texts) != 5:
        return None
    service_type, source_addr, destination_addr, schedule, validity = texts
    short_message = pdu.short_message
    if (
        len(service_type) > 5
        or len(source_addr) > 20
        or len(destination_addr) > 20
        or len(short_message) > 254
        or (schedule and not _TIME.fullmatch(schedule))
        or (validity and not _TIME.fullmatch(validity))
    ):
        return None
    try:
        body = _BODY % (
            service_type,
            pdu.source_addr_ton,
            pdu.source_addr_npi,
            source_addr,
            pdu.dest_addr_ton,
            pdu.dest_addr_npi,
            destination_addr,
            pdu.esm_class,
            pdu.protocol_id,
            pdu.priority_flag,
            schedule,
            validity,
            pdu.registered_delivery,
            pdu.replace_if_present_flag,
            pdu.data_coding,
            pdu.sm_default_msg_id,
            len(short_message),
            short_message,
        )
        tlvs = pdu.tlvs
        if tlvs:
            if short_message and has_tag(tlvs, _MESSAGE_PAYLOAD):
                return None
            body += encode_tlvs(tlvs)
        return (
            _HEADER.pack(16 + len(body), pdu.command_id, pdu.command_status, pdu.sequence_number)
            + body
        )
    except (OverflowError, TypeError, ValueError, struct.error, SmppError):
        return None
