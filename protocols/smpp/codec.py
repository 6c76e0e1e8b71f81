"""SMPP 3.4 PDU encoding and decoding: section 3.2 (header), section 4 (bodies), 3.1 (types).

``decode(frame)`` takes one whole PDU (header included, as cut by
``framing.PduReader``) and returns its record or raises ``SmppError`` with the
status to answer with; given any bytes it does nothing else. ``encode(pdu)``
enforces the same limits, so we never send what we would refuse.

Each PDU class has a precompiled body layout: a tuple of (kind, max_length,
command_status) steps derived once from the record's fields, walked by one
loop; C-octet string maxima (NUL included) are those of section 4's tables.
"""

from __future__ import annotations

import struct
from typing import Any

from protocols.record import fields, new_record
from protocols.smpp.codec_sm import TIME_FORMAT, decode_short_message, encode_short_message
from protocols.smpp.constants import RESPONSE_BIT, CommandStatus, DestFlag
from protocols.smpp.errors import SmppError, SmppFramingError, SmppUnknownCommand
from protocols.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    DataSm,
    DeliverSm,
    DistributionList,
    Pdu,
    ShortMessagePdu,
    SmeAddress,
    SubmitSm,
    UnsuccessSme,
)
from protocols.smpp.tlv import Tag, decode_tlvs, encode_tlvs, has_tag

HEADER = struct.Struct(">IIII")
HEADER_SIZE = 16
_U32 = struct.Struct(">I")

# Step kinds of a body layout.
_CSTR = 0  # C-octet string with a maximum length (NUL included)
_TIME = 1  # C-octet string, empty or a section 7.1.1 time
_U8 = 2
_SM = 3  # sm_length then short_message
_DESTS = 4  # number_of_dests then dest_address list (submit_multi)
_UNSUCCESS = 5  # no_unsuccess then unsuccess_sme list (submit_multi_resp)

_S = CommandStatus
#: name -> (kind, max length incl. NUL, status when the field is bad), section 4.
_FIELD_STEPS: dict[str, tuple[int, int, int]] = {
    "system_id": (_CSTR, 16, _S.ESME_RINVSYSID),
    "password": (_CSTR, 9, _S.ESME_RINVPASWD),
    "system_type": (_CSTR, 13, _S.ESME_RINVSYSTYP),
    "address_range": (_CSTR, 41, _S.ESME_RBINDFAIL),
    "service_type": (_CSTR, 6, _S.ESME_RINVSERTYP),
    "source_addr": (_CSTR, 21, _S.ESME_RINVSRCADR),
    "destination_addr": (_CSTR, 21, _S.ESME_RINVDSTADR),
    "esme_addr": (_CSTR, 65, _S.ESME_RINVDSTADR),
    "schedule_delivery_time": (_TIME, 17, _S.ESME_RINVSCHED),
    "validity_period": (_TIME, 17, _S.ESME_RINVEXPIRY),
    "final_date": (_TIME, 17, _S.ESME_RQUERYFAIL),
    "message_id": (_CSTR, 65, _S.ESME_RINVMSGID),
    # Length-prefixed fields check their own limits and statuses in their branches.
    "short_message": (_SM, 0, 0),
    "dest_address": (_DESTS, 0, 0),
    "unsuccess_sme": (_UNSUCCESS, 0, 0),
}
#: data_sm and alert_notification addresses are Var. max 65 (sections 4.7.1, 4.12.1).
_WIDE_ADDRESSES: dict[type[Pdu], tuple[str, ...]] = {
    DataSm: ("source_addr", "destination_addr"),
    AlertNotification: ("source_addr",),
}
#: A PDU record stores sequence_number, command_status, tlvs, then its body (pdu.py).
_BODY_START = 3
#: Every other field is an Integer(1); a body ending inside one is ESME_RINVCMDLEN.
_INT_STEP = (_U8, 0, 0)


_DL_STEP = (_CSTR, 21, _S.ESME_RINVDLNAME)
_DEST_STEP = _FIELD_STEPS["destination_addr"]


class _Layout:
    """The precompiled body layout of one PDU class."""

    __slots__ = ("body_end", "cls", "defaults", "is_response", "steps")

    def __init__(self, cls: type[Pdu]) -> None:
        names = [f.name for f in fields(cls)[_BODY_START:]]
        wide = _WIDE_ADDRESSES.get(cls, ())
        steps = []
        for name in names:
            step = _FIELD_STEPS.get(name, _INT_STEP)
            if name in wide:
                step = (_CSTR, 65, step[2])
            steps.append(step)
        self.cls = cls
        self.steps: tuple[tuple[int, int, int], ...] = tuple(steps)
        self.is_response = bool(cls.command_id & RESPONSE_BIT)
        # A subclass may add fields of its own after the body; they stay off the wire.
        self.body_end = _BODY_START + len(steps)
        self.defaults = cls()[_BODY_START : self.body_end]


_LAYOUTS: dict[int, _Layout] = {cid: _Layout(cls) for cid, cls in PDU_CLASSES.items()}
#: PDUs with a hand-unrolled fast path (codec_sm.py); the layout path stays the reference.
_SHORT_MESSAGE_CLASSES: dict[int, type[ShortMessagePdu]] = {
    SubmitSm.command_id: SubmitSm,
    DeliverSm.command_id: DeliverSm,
}


def _cstring(data: bytes, pos: int, step: tuple[int, int, int]) -> tuple[str, int]:
    kind, max_length, status = step
    end = data.find(b"\x00", pos, pos + max_length)
    if end < 0:
        raise SmppError(status, f"C-octet string at {pos} unterminated within {max_length}")
    value = data[pos:end].decode("latin-1")
    if kind == _TIME and value and not TIME_FORMAT.fullmatch(value):
        raise SmppError(status, f"malformed time {value!r}")
    return value, end + 1


def _decode_dests(data: bytes, pos: int) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
    count = data[pos]
    pos += 1
    if not 1 <= count <= 254:
        raise SmppError(_S.ESME_RINVNUMDESTS, f"number_of_dests {count}")
    dests: list[SmeAddress | DistributionList] = []
    for _ in range(count):
        flag = data[pos]
        if flag == DestFlag.SME_ADDRESS:
            ton, npi = data[pos + 1], data[pos + 2]
            address, pos = _cstring(data, pos + 3, _DEST_STEP)
            dests.append(SmeAddress(ton, npi, address))
        elif flag == DestFlag.DISTRIBUTION_LIST:
            name, pos = _cstring(data, pos + 1, _DL_STEP)
            dests.append(DistributionList(name))
        else:
            raise SmppError(_S.ESME_RINVDESTFLAG, f"dest_flag {flag}")
    return tuple(dests), pos


def _decode_unsuccess(data: bytes, pos: int) -> tuple[tuple[UnsuccessSme, ...], int]:
    count = data[pos]
    pos += 1
    entries: list[UnsuccessSme] = []
    for _ in range(count):
        ton, npi = data[pos], data[pos + 1]
        address, pos = _cstring(data, pos + 2, _DEST_STEP)
        (error_status_code,) = _U32.unpack_from(data, pos)
        pos += 4
        entries.append(UnsuccessSme(ton, npi, address, error_status_code))
    return tuple(entries), pos


def _decode_body(layout: _Layout, data: bytes, status: int, seq: int) -> Pdu:
    pos = HEADER_SIZE
    end = len(data)
    if pos == end and layout.is_response:
        # Section 4.4.2 and others: "the body is not returned" on error; some
        # peers also omit deliver_sm_resp's NULL message_id on success.
        return layout.cls(sequence_number=seq, command_status=status)
    values: list[Any] = []
    append = values.append
    short_message = b""
    for step in layout.steps:
        kind = step[0]
        if kind == _U8:
            append(data[pos])
            pos += 1
        elif kind == _CSTR:  # inlined _cstring: the hot path of every PDU
            stop = data.find(b"\x00", pos, pos + step[1])
            if stop < 0:
                raise SmppError(step[2], f"C-octet string at {pos} unterminated within {step[1]}")
            append(data[pos:stop].decode("latin-1"))
            pos = stop + 1
        elif kind == _TIME:
            value, pos = _cstring(data, pos, step)
            append(value)
        elif kind == _SM:
            length = data[pos]
            pos += 1
            if length > 254 or pos + length > end:
                raise SmppError(_S.ESME_RINVMSGLEN, f"sm_length {length} beyond the body")
            short_message = data[pos : pos + length]
            append(short_message)
            pos += length
        elif kind == _DESTS:
            dests, pos = _decode_dests(data, pos)
            append(dests)
        else:
            unsuccess, pos = _decode_unsuccess(data, pos)
            append(unsuccess)
    tlvs = decode_tlvs(data, pos)
    if short_message and tlvs and has_tag(tlvs, Tag.MESSAGE_PAYLOAD):
        raise SmppError(_S.ESME_RINVMSGLEN, "both short_message and message_payload")
    return new_record(layout.cls, (seq, status, tlvs, *values))


def _read_header(frame: bytes) -> tuple[_Layout, int, int]:
    """The layout, command_status and sequence_number of ``frame``, or the framing error."""
    size = len(frame)
    if size < HEADER_SIZE:
        raise SmppFramingError(_S.ESME_RINVCMDLEN, f"{size} octets is shorter than a header")
    command_length, command_id, command_status, sequence_number = HEADER.unpack_from(frame)
    if command_length != size:
        raise SmppFramingError(
            _S.ESME_RINVCMDLEN,
            f"command_length {command_length} but the frame has {size} octets",
            command_id=command_id,
            sequence_number=sequence_number,
        )
    layout = _LAYOUTS.get(command_id)
    if layout is None:
        raise SmppUnknownCommand(
            _S.ESME_RINVCMDID,
            f"unknown command_id 0x{command_id:08x}",
            command_id=command_id,
            sequence_number=sequence_number,
        )
    return layout, command_status, sequence_number


def _decode_with_layout(layout: _Layout, frame: bytes, status: int, seq: int) -> Pdu:
    """The reference decoder: every PDU, with the precise error on bad input."""
    try:
        return _decode_body(layout, frame, status, seq)
    except SmppError as error:
        raise error.with_header(layout.cls.command_id, seq, status) from None
    except (IndexError, struct.error):
        raise SmppError(
            _S.ESME_RINVCMDLEN,
            f"{layout.cls.__name__} body ends inside its mandatory fields",
            command_id=layout.cls.command_id,
            sequence_number=seq,
        ).with_header(layout.cls.command_id, seq, status) from None


def decode(frame: bytes) -> Pdu:
    """The PDU in ``frame`` (one whole PDU, header included), or SmppError."""
    size = len(frame)
    if size >= HEADER_SIZE:
        # submit_sm/deliver_sm (nearly all traffic) go straight to their unrolled
        # decoder; anything it declines, and every other PDU, takes the checked path.
        command_length, command_id, status, seq = HEADER.unpack_from(frame)
        short_message_cls = _SHORT_MESSAGE_CLASSES.get(command_id)
        if short_message_cls is not None and command_length == size:
            pdu = decode_short_message(short_message_cls, frame, status, seq)
            if pdu is not None:
                return pdu
    layout, status, seq = _read_header(frame)
    return _decode_with_layout(layout, frame, status, seq)


def _encode_text(buf: bytearray, value: str, step: tuple[int, int, int]) -> None:
    kind, max_length, status = step
    if not isinstance(value, str):
        raise SmppError(status, f"{value!r} is not text")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise SmppError(status, f"{value!r} is not latin-1 text") from None
    if len(raw) >= max_length or 0 in raw:  # an int: a C-level byte scan
        raise SmppError(status, f"{value!r} does not fit a C-octet string of {max_length}")
    if kind == _TIME and raw and not TIME_FORMAT.fullmatch(value):
        raise SmppError(status, f"malformed time {value!r}")
    buf += raw
    buf.append(0)


def _encode_dests(buf: bytearray, dests: tuple[SmeAddress | DistributionList, ...]) -> None:
    if not 1 <= len(dests) <= 254:
        raise SmppError(_S.ESME_RINVNUMDESTS, f"{len(dests)} destinations")
    buf.append(len(dests))
    for dest in dests:
        if isinstance(dest, SmeAddress):
            buf += bytes((DestFlag.SME_ADDRESS, dest.dest_addr_ton, dest.dest_addr_npi))
            _encode_text(buf, dest.destination_addr, _DEST_STEP)
        else:
            buf.append(DestFlag.DISTRIBUTION_LIST)
            _encode_text(buf, dest.dl_name, _DL_STEP)


def _encode_unsuccess(buf: bytearray, entries: tuple[UnsuccessSme, ...]) -> None:
    if len(entries) > 255:
        raise SmppError(_S.ESME_RINVNUMDESTS, f"{len(entries)} unsuccess_sme entries")
    buf.append(len(entries))
    for entry in entries:
        buf += bytes((entry.dest_addr_ton, entry.dest_addr_npi))
        _encode_text(buf, entry.destination_addr, _DEST_STEP)
        buf += _U32.pack(entry.error_status_code)


def _encode_body(buf: bytearray, layout: _Layout, pdu: Pdu) -> None:
    short_message = b""
    for step, value in zip(layout.steps, pdu[_BODY_START : layout.body_end], strict=True):
        kind = step[0]
        if kind == _U8:
            buf.append(value)
        elif kind <= _TIME:
            _encode_text(buf, value, step)
        elif kind == _SM:
            if len(value) > 254:
                raise SmppError(_S.ESME_RINVMSGLEN, f"short_message of {len(value)} octets")
            short_message = value
            buf.append(len(value))
            buf += value
        elif kind == _DESTS:
            _encode_dests(buf, value)
        else:
            _encode_unsuccess(buf, value)
    tlvs = pdu.tlvs
    if tlvs:
        if short_message and has_tag(tlvs, Tag.MESSAGE_PAYLOAD):
            raise SmppError(_S.ESME_RINVMSGLEN, "both short_message and message_payload")
        buf += encode_tlvs(tlvs)


def encode(pdu: Pdu) -> bytes:
    """The wire form of ``pdu``; SmppError if a field breaks a section 4 limit."""
    if isinstance(pdu, ShortMessagePdu):
        fast = encode_short_message(pdu)
        if fast is not None:
            return fast
    return _encode_with_layout(pdu)


def _encode_with_layout(pdu: Pdu) -> bytes:
    """The reference encoder: every PDU, with the precise error on a bad field."""
    layout = _LAYOUTS[pdu.command_id]
    buf = bytearray(HEADER_SIZE)
    status = pdu.command_status
    # A failed response goes out header-only unless it carries something
    # (section 4.4.2: "not returned if the command_status field contains a non-zero value").
    if not (
        status
        and layout.is_response
        and not pdu.tlvs
        and pdu[_BODY_START : layout.body_end] == layout.defaults
    ):
        try:
            _encode_body(buf, layout, pdu)
        except (ValueError, TypeError, struct.error) as exc:
            raise SmppError(
                _S.ESME_RSYSERR,
                f"{type(pdu).__name__} has a field out of range: {exc}",
                command_id=pdu.command_id,
                sequence_number=pdu.sequence_number,
            ) from None
    try:
        HEADER.pack_into(buf, 0, len(buf), pdu.command_id, status, pdu.sequence_number)
    except struct.error:
        raise SmppError(
            _S.ESME_RSYSERR, f"header of {pdu!r} out of range", command_id=pdu.command_id
        ) from None
    return bytes(buf)
