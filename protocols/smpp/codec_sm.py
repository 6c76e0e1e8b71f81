"""The hot path of the codec: submit_sm and deliver_sm bodies (SMPP 3.4 sections 4.4.1, 4.6.1).

These two PDUs are nearly all of the traffic (an MT and its receipt), so
their body is unrolled by hand here instead of walking codec.py's generic
layout. Each function handles only the well-formed case and returns None on
anything unusual; codec.py then runs the generic path on the same PDU, which
either succeeds or raises the precise SmppError. The two paths must agree,
which the tests check on every vector and on Hypothesis-generated PDUs.
"""

from __future__ import annotations

import re
import struct

from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import ShortMessagePdu
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, encode_tlvs, has_tag

_HEADER = struct.Struct(">IIII")
_TIME = re.compile(rb"[0-9]{15}[-+R]")
# service_type NUL ton npi source_addr NUL ton npi destination_addr NUL esm_class
# protocol_id priority_flag schedule NUL validity NUL registered_delivery
# replace_if_present_flag data_coding sm_default_msg_id sm_length short_message
_BODY = b"%b\x00%c%c%b\x00%c%c%b\x00%c%c%c%b\x00%b\x00%c%c%c%c%c%b"
_NUL = b"\x00"


def decode_short_message(
    cls: type[ShortMessagePdu], data: bytes, status: int, seq: int
) -> ShortMessagePdu | None:
    """A well-formed submit_sm/deliver_sm, or None to let the generic path decide."""
    find = data.find
    # Each C-octet string is searched within its maximum (NUL included).
    st_end = find(_NUL, 16, 22)
    src_end = find(_NUL, st_end + 3, st_end + 24)
    dst_end = find(_NUL, src_end + 3, src_end + 24)
    sch_end = find(_NUL, dst_end + 4, dst_end + 21)
    val_end = find(_NUL, sch_end + 1, sch_end + 18)
    if st_end < 0 or src_end < 0 or dst_end < 0 or sch_end < 0 or val_end < 0:
        return None
    if (sch_end > dst_end + 4 and not _TIME.fullmatch(data, dst_end + 4, sch_end)) or (
        val_end > sch_end + 1 and not _TIME.fullmatch(data, sch_end + 1, val_end)
    ):
        return None
    sm_start = val_end + 6
    if sm_start > len(data):
        return None
    sm_length = data[val_end + 5]
    sm_end = sm_start + sm_length
    if sm_length > 254 or sm_end > len(data):
        return None
    short_message = data[sm_start:sm_end]
    tlvs: tuple[Tlv, ...] = ()
    if sm_end < len(data):
        try:
            tlvs = decode_tlvs(data, sm_end)
        except SmppError:
            return None
        if short_message and has_tag(tlvs, Tag.MESSAGE_PAYLOAD):
            return None
    return cls(
        data[16:st_end].decode("latin-1"),
        data[st_end + 1],
        data[st_end + 2],
        data[st_end + 3 : src_end].decode("latin-1"),
        data[src_end + 1],
        data[src_end + 2],
        data[src_end + 3 : dst_end].decode("latin-1"),
        data[dst_end + 1],
        data[dst_end + 2],
        data[dst_end + 3],
        data[dst_end + 4 : sch_end].decode("latin-1"),
        data[sch_end + 1 : val_end].decode("latin-1"),
        data[val_end + 1],
        data[val_end + 2],
        data[val_end + 3],
        data[val_end + 4],
        short_message,
        sequence_number=seq,
        command_status=status,
        tlvs=tlvs,
    )


def encode_short_message(pdu: ShortMessagePdu) -> bytes | None:
    """The wire form of a well-formed submit_sm/deliver_sm, or None (see the module doc)."""
    try:
        service_type = pdu.service_type.encode("latin-1")
        source_addr = pdu.source_addr.encode("latin-1")
        destination_addr = pdu.destination_addr.encode("latin-1")
        schedule = pdu.schedule_delivery_time.encode("latin-1")
        validity = pdu.validity_period.encode("latin-1")
    except (UnicodeEncodeError, AttributeError):
        return None
    short_message = pdu.short_message
    if (
        len(service_type) > 5
        or len(source_addr) > 20
        or len(destination_addr) > 20
        or len(short_message) > 254
        or _NUL in b"".join((service_type, source_addr, destination_addr, schedule, validity))
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
            if short_message and has_tag(tlvs, Tag.MESSAGE_PAYLOAD):
                return None
            body += encode_tlvs(tlvs)
        return (
            _HEADER.pack(16 + len(body), pdu.command_id, pdu.command_status, pdu.sequence_number)
            + body
        )
    except (OverflowError, TypeError, ValueError, struct.error, SmppError):
        return None
