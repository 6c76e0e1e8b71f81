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

from protocols.record import new_record
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import ShortMessagePdu
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, encode_tlvs, has_tag

_HEADER = struct.Struct(">IIII")
#: The mandatory body from offset 16 up to sm_length, in one match: each
#: C-octet string within its section 4.4.1 maximum (NUL included), the
#: Integer(1) fields in fixed-width groups (unpacking a bytes object yields its
#: octets as ints). The two times are checked apart: nearly always empty, and
#: their format in the pattern would cost every PDU.
_MANDATORY = re.compile(
    rb"([^\x00]{0,5})\x00(..)([^\x00]{0,20})\x00(..)([^\x00]{0,20})\x00(...)"
    rb"([^\x00]{0,16})\x00([^\x00]{0,16})\x00(.....)",
    re.DOTALL,
)
#: Section 7.1.1: YYMMDDhhmmsstnnp, p '+'/'-' (absolute) or 'R' (relative); as
#: text for codec.py, as octets here.
TIME_FORMAT = re.compile(r"[0-9]{15}[-+R]")
_TIME_OCTETS = re.compile(TIME_FORMAT.pattern.encode())
# service_type NUL ton npi source_addr NUL ton npi destination_addr NUL esm_class
# protocol_id priority_flag schedule NUL validity NUL registered_delivery
# replace_if_present_flag data_coding sm_default_msg_id sm_length short_message
_BODY = b"%b\x00%c%c%b\x00%c%c%b\x00%c%c%c%b\x00%b\x00%c%c%c%c%c%b"
# Python 3.11 reads an enum member through EnumType.__getattr__'s slow path
# (~0.1 us); the hot path compares against the plain int.
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
    if (
        sm_length > 254
        or sm_end > size
        or (schedule and not _TIME_OCTETS.fullmatch(schedule))
        or (validity and not _TIME_OCTETS.fullmatch(validity))
    ):
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
    # Validated above, so no argument binding; storage order (pdu.py): header, then body.
    return new_record(
        cls,
        (
            seq,
            status,
            tlvs,
            service_type.decode("latin-1") if service_type else "",
            source_addr_ton,
            source_addr_npi,
            source_addr.decode("latin-1"),
            dest_addr_ton,
            dest_addr_npi,
            destination_addr.decode("latin-1"),
            esm_class,
            protocol_id,
            priority_flag,
            schedule.decode("latin-1") if schedule else "",
            validity.decode("latin-1") if validity else "",
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            short_message,
        ),
    )


def encode_short_message(pdu: ShortMessagePdu) -> bytes | None:
    """The wire form of a well-formed submit_sm/deliver_sm, or None (see the module doc)."""
    try:
        # One unpacking reads every field (0.2 us less than 20 attribute reads);
        # the format below then lists them again in wire order. A subclass
        # with more fields fails here and takes the generic path.
        (
            sequence_number,
            command_status,
            tlvs,
            service_type,
            source_addr_ton,
            source_addr_npi,
            source_addr,
            dest_addr_ton,
            dest_addr_npi,
            destination_addr,
            esm_class,
            protocol_id,
            priority_flag,
            schedule,
            validity,
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            short_message,
        ) = pdu
        # One encode for the five C-octet strings (join refuses anything but
        # str and takes a str subclass's text, not its __str__); split() hands
        # them back, and a sixth part means one of them held a NUL.
        texts = (
            "\x00".join((service_type, source_addr, destination_addr, schedule, validity))
            .encode("latin-1")
            .split(b"\x00")
        )
        if len(texts) != 5:
            return None
        service_octets, source_octets, destination_octets, schedule_octets, validity_octets = texts
        if (
            len(service_octets) > 5
            or len(source_octets) > 20
            or len(destination_octets) > 20
            or len(short_message) > 254
            or (schedule_octets and not _TIME_OCTETS.fullmatch(schedule_octets))
            or (validity_octets and not _TIME_OCTETS.fullmatch(validity_octets))
        ):
            return None
        # %c takes an int 0..255 (or one octet of bytes); %b only bytes-like values.
        body = _BODY % (
            service_octets,
            source_addr_ton,
            source_addr_npi,
            source_octets,
            dest_addr_ton,
            dest_addr_npi,
            destination_octets,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_octets,
            validity_octets,
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            len(short_message),
            short_message,
        )
        if tlvs:
            if short_message and has_tag(tlvs, _MESSAGE_PAYLOAD):
                return None
            body += encode_tlvs(tlvs)
        return _HEADER.pack(16 + len(body), pdu.command_id, command_status, sequence_number) + body
    except (AttributeError, OverflowError, TypeError, ValueError, struct.error, SmppError):
        return None
