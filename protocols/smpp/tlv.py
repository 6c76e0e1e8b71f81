"""SMPP optional parameters (TLVs), SMPP 3.4 section 5.3 (plus SMPP 5.0 congestion_state).

A TLV is kept on the PDU as raw ``Tlv(tag, value)`` in arrival order, so that
unknown and vendor tags are carried and re-encoded byte for byte (section
5.3: "an ESME/SMSC should ignore ... optional parameters it does not
support"). Known tags have a typed value table used for length checks on decode
and by the typed getters and constructors.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum

from protocols.record import Record, new_record
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError

_TL = struct.Struct(">HH")
_unpack_tl = _TL.unpack_from
_pack_tl = _TL.pack
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_NETERR = struct.Struct(">BH")


class Tag(IntEnum):
    """Optional parameter tags, SMPP 3.4 section 5.3.2 (CONGESTION_STATE: SMPP 5.0)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    CONGESTION_STATE = 0x0428
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class TlvKind(Enum):
    """How a known tag's value is typed (SMPP 3.4 section 3.1 data types)."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    C_OCTET_STRING = "c-octet string"
    OCTETS = "octet string"
    NETWORK_ERROR_CODE = "network_error_code"
    EMPTY = "no value"


@dataclass(frozen=True, slots=True)
class TlvSpec:
    kind: TlvKind
    min_length: int
    max_length: int


_U8_SPEC = TlvSpec(TlvKind.U8, 1, 1)
_U16_SPEC = TlvSpec(TlvKind.U16, 2, 2)

#: Section 5.3.2 value types and lengths (C-octet string lengths include the NUL).
TLV_SPECS: dict[int, TlvSpec] = {
    Tag.DEST_ADDR_SUBUNIT: _U8_SPEC,
    Tag.DEST_NETWORK_TYPE: _U8_SPEC,
    Tag.DEST_BEARER_TYPE: _U8_SPEC,
    Tag.DEST_TELEMATICS_ID: _U16_SPEC,
    Tag.SOURCE_ADDR_SUBUNIT: _U8_SPEC,
    Tag.SOURCE_NETWORK_TYPE: _U8_SPEC,
    Tag.SOURCE_BEARER_TYPE: _U8_SPEC,
    # 3.4 is inconsistent on source_telematics_id (1 or 2 octets); 2 matches
    # dest_telematics_id and what deployed SMSCs send.
    Tag.SOURCE_TELEMATICS_ID: _U16_SPEC,
    Tag.QOS_TIME_TO_LIVE: TlvSpec(TlvKind.U32, 4, 4),
    Tag.PAYLOAD_TYPE: _U8_SPEC,
    Tag.ADDITIONAL_STATUS_INFO_TEXT: TlvSpec(TlvKind.C_OCTET_STRING, 1, 256),
    Tag.RECEIPTED_MESSAGE_ID: TlvSpec(TlvKind.C_OCTET_STRING, 1, 65),
    Tag.MS_MSG_WAIT_FACILITIES: _U8_SPEC,
    Tag.PRIVACY_INDICATOR: _U8_SPEC,
    Tag.SOURCE_SUBADDRESS: TlvSpec(TlvKind.OCTETS, 2, 23),
    Tag.DEST_SUBADDRESS: TlvSpec(TlvKind.OCTETS, 2, 23),
    Tag.USER_MESSAGE_REFERENCE: _U16_SPEC,
    Tag.USER_RESPONSE_CODE: _U8_SPEC,
    Tag.SOURCE_PORT: _U16_SPEC,
    Tag.DESTINATION_PORT: _U16_SPEC,
    Tag.SAR_MSG_REF_NUM: _U16_SPEC,
    Tag.LANGUAGE_INDICATOR: _U8_SPEC,
    Tag.SAR_TOTAL_SEGMENTS: _U8_SPEC,
    Tag.SAR_SEGMENT_SEQNUM: _U8_SPEC,
    Tag.SC_INTERFACE_VERSION: _U8_SPEC,
    Tag.CALLBACK_NUM_PRES_IND: _U8_SPEC,
    Tag.CALLBACK_NUM_ATAG: TlvSpec(TlvKind.OCTETS, 0, 65),
    Tag.NUMBER_OF_MESSAGES: _U8_SPEC,
    Tag.CALLBACK_NUM: TlvSpec(TlvKind.OCTETS, 4, 19),
    Tag.DPF_RESULT: _U8_SPEC,
    Tag.SET_DPF: _U8_SPEC,
    Tag.MS_AVAILABILITY_STATUS: _U8_SPEC,
    Tag.NETWORK_ERROR_CODE: TlvSpec(TlvKind.NETWORK_ERROR_CODE, 3, 3),
    Tag.MESSAGE_PAYLOAD: TlvSpec(TlvKind.OCTETS, 0, 0xFFFF),
    Tag.DELIVERY_FAILURE_REASON: _U8_SPEC,
    Tag.MORE_MESSAGES_TO_SEND: _U8_SPEC,
    Tag.MESSAGE_STATE: _U8_SPEC,
    Tag.CONGESTION_STATE: _U8_SPEC,
    Tag.USSD_SERVICE_OP: _U8_SPEC,
    Tag.DISPLAY_TIME: _U8_SPEC,
    Tag.SMS_SIGNAL: _U16_SPEC,
    Tag.MS_VALIDITY: _U8_SPEC,
    Tag.ALERT_ON_MESSAGE_DELIVERY: TlvSpec(TlvKind.EMPTY, 0, 0),
    Tag.ITS_REPLY_TYPE: _U8_SPEC,
    Tag.ITS_SESSION_INFO: TlvSpec(TlvKind.OCTETS, 2, 2),
}


#: The same table as ranges of allowed value lengths, for the decode loop (one C-level
#: test). Keyed by plain ints: looking up an int among IntEnum keys compares slowly.
_LENGTHS: dict[int, range] = {
    int(tag): range(spec.min_length, spec.max_length + 1) for tag, spec in TLV_SPECS.items()
}
#: Each one-octet value, so u8 TLVs share immutable bytes instead of building them.
_OCTETS = tuple(bytes((value,)) for value in range(256))


@dataclass(frozen=True, slots=True)
class NetworkErrorCode:
    """network_error_code value (section 5.3.2.31): network_type then error_code."""

    network_type: int
    error_code: int


def _invalid_value(tag: int, why: str) -> SmppError:
    return SmppError(CommandStatus.ESME_RINVOPTPARAMVAL, f"TLV 0x{tag:04x}: {why}")


class Tlv(Record):
    """One optional parameter exactly as on the wire: tag and raw value octets.

    The constructors check their values and build with ``new_record``.
    """

    tag: int
    value: bytes

    @classmethod
    def u8(cls, tag: int, value: int) -> Tlv:
        if not 0 <= value <= 0xFF:
            raise _invalid_value(tag, f"{value} does not fit one octet")
        return new_record(cls, (tag, _OCTETS[value]))

    @classmethod
    def u16(cls, tag: int, value: int) -> Tlv:
        if not 0 <= value <= 0xFFFF:
            raise _invalid_value(tag, f"{value} does not fit two octets")
        return new_record(cls, (tag, _U16.pack(value)))

    @classmethod
    def u32(cls, tag: int, value: int) -> Tlv:
        if not 0 <= value <= 0xFFFFFFFF:
            raise _invalid_value(tag, f"{value} does not fit four octets")
        return new_record(cls, (tag, _U32.pack(value)))

    @classmethod
    def c_octet_string(cls, tag: int, value: str) -> Tlv:
        """A C-octet string value: latin-1 text plus its terminating NUL."""
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise _invalid_value(tag, "not latin-1 text") from None
        if 0 in raw:  # an int: a C-level byte scan (b"\x00" in costs 4x)
            raise _invalid_value(tag, "NUL inside a C-octet string")
        raw += b"\x00"
        allowed = _LENGTHS.get(tag)
        if allowed is not None and len(raw) not in allowed:
            raise SmppError(
                CommandStatus.ESME_RINVPARLEN,
                f"TLV 0x{tag:04x}: {len(raw)} octets > {allowed.stop - 1}",
            )
        return new_record(cls, (tag, raw))

    @classmethod
    def network_error_code(cls, network_type: int, error_code: int) -> Tlv:
        if not (0 <= network_type <= 0xFF and 0 <= error_code <= 0xFFFF):
            raise _invalid_value(Tag.NETWORK_ERROR_CODE, "out of range")
        return new_record(cls, (Tag.NETWORK_ERROR_CODE, _NETERR.pack(network_type, error_code)))

    def as_int(self) -> int:
        """The value as a big-endian unsigned integer (u8, u16, u32 tags)."""
        return int.from_bytes(self.value, "big")

    def as_str(self) -> str:
        """The value as a C-octet string; a missing NUL is tolerated (seen in the field)."""
        raw = self.value
        if raw.endswith(b"\x00"):
            raw = raw[:-1]
        return raw.decode("latin-1")

    def as_network_error_code(self) -> NetworkErrorCode:
        if len(self.value) != 3:
            raise SmppError(CommandStatus.ESME_RINVPARLEN, "network_error_code is 3 octets")
        network_type, error_code = _NETERR.unpack(self.value)
        return NetworkErrorCode(network_type, error_code)


def find_tlv(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first TLV with ``tag`` (section 5.3: a tag should appear at most once)."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


def has_tag(tlvs: Iterable[Tlv], tag: int) -> bool:
    return find_tlv(tlvs, tag) is not None


def tlv_int(tlvs: Iterable[Tlv], tag: int) -> int | None:
    tlv = find_tlv(tlvs, tag)
    return None if tlv is None else tlv.as_int()


def tlv_str(tlvs: Iterable[Tlv], tag: int) -> str | None:
    tlv = find_tlv(tlvs, tag)
    return None if tlv is None else tlv.as_str()


def tlv_bytes(tlvs: Iterable[Tlv], tag: int) -> bytes | None:
    tlv = find_tlv(tlvs, tag)
    return None if tlv is None else tlv.value


def tlv_network_error_code(tlvs: Iterable[Tlv], tag: int) -> NetworkErrorCode | None:
    tlv = find_tlv(tlvs, tag)
    return None if tlv is None else tlv.as_network_error_code()


def decode_tlvs(data: bytes, pos: int) -> tuple[Tlv, ...]:
    """Every TLV from ``pos`` to the end of ``data``; known tags are length-checked."""
    end = len(data)
    if pos == end:
        return ()
    tlvs: list[Tlv] = []
    try:
        while pos < end:
            tag, length = _unpack_tl(data, pos)  # struct.error: under 4 octets left
            start = pos + 4
            pos = start + length
            if pos > end:
                raise SmppError(
                    CommandStatus.ESME_RINVOPTPARSTREAM, f"TLV 0x{tag:04x} runs past the PDU"
                )
            allowed = _LENGTHS.get(tag)
            if allowed is not None and length not in allowed:
                raise SmppError(
                    CommandStatus.ESME_RINVPARLEN, f"TLV 0x{tag:04x} has length {length}"
                )
            # Both values are checked: build the record without argument binding.
            tlvs.append(new_record(Tlv, (tag, data[start:pos])))
    except struct.error:
        raise SmppError(CommandStatus.ESME_RINVOPTPARSTREAM, "truncated TLV header") from None
    return tuple(tlvs)


def encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    """The wire form of ``tlvs``, in order; a value longer than 65535 octets is refused."""
    wire = b""
    try:
        for tag, value in tlvs:
            wire += _pack_tl(tag, len(value)) + value
    except struct.error:
        _check_ranges(tlvs)
        raise  # a tag that is no integer at all
    return wire


def _check_ranges(tlvs: tuple[Tlv, ...]) -> None:
    """Raise the SmppError for the first TLV whose length or tag does not fit two octets."""
    for tag, value in tlvs:
        if len(value) > 0xFFFF:
            raise SmppError(
                CommandStatus.ESME_RINVPARLEN, f"TLV 0x{tag:04x} longer than 65535 octets"
            )
        if not 0 <= tag <= 0xFFFF:
            raise _invalid_value(tag, "tag does not fit two octets")
