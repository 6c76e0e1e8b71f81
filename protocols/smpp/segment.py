"""Splitting a text into SMS parts: concatenation UDH, SAR TLVs or message_payload.

* 3GPP TS 23.040 section 9.2.3.24.1 (IEI 0x00, 8-bit reference: ``05 00 03
  ref total seq``) and section 9.2.3.24.8 (IEI 0x08, 16-bit reference:
  ``06 08 04 refHi refLo total seq``), flagged with esm_class UDHI 0x40
  (SMPP 3.4 section 5.2.12).
* SMPP 3.4 sections 5.3.2.22-24: sar_msg_ref_num, sar_total_segments and
  sar_segment_seqnum carry the same facts as TLVs, with no UDH in the body.
* SMPP 3.4 section 5.3.2.32: message_payload carries the whole text and the
  SMSC splits it.

The air interface gives 140 octets per part: 160 GSM7 septets, 140 octets or
70 UCS-2 units; a UDH costs its length (6 or 7 octets), which leaves 153/134/67
(8-bit reference) or 152/133/66 (16-bit).  SAR parts are sized like 8-bit UDH
parts because the SMSC adds that UDH on the air.  A part never ends between
ESC and its extension septet, nor between the halves of a surrogate pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.flags import ESM_CLASS_UDHI
from protocols.smpp.text import (
    DATA_CODING,
    ESC,
    Encoding,
    encode_auto,
    encode_text,
)
from protocols.smpp.tlv import Tag, Tlv, has_tag

MAX_PARTS = 255
MAX_SHORT_MESSAGE = 254
MAX_MESSAGE_PAYLOAD = 0xFFFF


class ConcatMode(Enum):
    """How a long text is sent."""

    UDH8 = "udh8"
    UDH16 = "udh16"
    SAR = "sar"
    PAYLOAD = "payload"


@dataclass(frozen=True, slots=True)
class Sar:
    """The three SAR TLV values of one part (SMPP 3.4 section 5.3.2.22-24)."""

    msg_ref_num: int
    total_segments: int
    segment_seqnum: int


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth of text.

    ``short_message`` includes the UDH when ``esm_class_udhi`` is set; with
    ``message_payload`` set, short_message is empty (SMPP 3.4 section 5.3.2.32:
    sm_length must then be 0).
    """

    short_message: bytes
    data_coding: int
    esm_class_udhi: bool = False
    sar: Sar | None = None
    message_payload: bytes | None = None

    @property
    def esm_class(self) -> int:
        """The esm_class bits this part needs (UDHI or 0), to OR into the message's own."""
        return ESM_CLASS_UDHI if self.esm_class_udhi else 0

    def tlvs(self) -> tuple[Tlv, ...]:
        """The submit_sm TLVs this part needs: the three SAR values, or message_payload."""
        if self.message_payload is not None:
            return (Tlv(Tag.MESSAGE_PAYLOAD, self.message_payload),)
        sar = self.sar
        if sar is None:
            return ()
        return (
            Tlv.u16(Tag.SAR_MSG_REF_NUM, sar.msg_ref_num),
            Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, sar.total_segments),
            Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, sar.segment_seqnum),
        )


@dataclass(frozen=True, slots=True)
class PartCount:
    """What sending a text costs: the alphabet, ``data_coding``, air parts and units."""

    encoding: Encoding
    data_coding: int
    parts: int
    units: int


# Enum class attributes cost a metaclass lookup on Python 3.11; the hot paths
# compare against these module globals instead.
_GSM7, _LATIN1, _UCS2 = Encoding.GSM7, Encoding.LATIN1, Encoding.UCS2
_UDH8, _UDH16, _SAR, _PAYLOAD = (
    ConcatMode.UDH8,
    ConcatMode.UDH16,
    ConcatMode.SAR,
    ConcatMode.PAYLOAD,
)

# (single-message capacity, per-part capacity with an 8-bit UDH, with a 16-bit
# UDH), in the encoding's unit: septets, octets or UTF-16 units.
_CAPACITY = {
    Encoding.GSM7: (160, 153, 152),
    Encoding.LATIN1: (140, 134, 133),
    Encoding.UCS2: (70, 67, 66),
}
# Octets per unit in the SMPP body (GSM7 is unpacked: one septet per octet).
_OCTET = tuple(bytes((i,)) for i in range(256))
_UNIT_OCTETS = {Encoding.GSM7: 1, Encoding.LATIN1: 1, Encoding.UCS2: 2}


class MessageTooLong(SmppError):
    """More than 255 parts, or a message_payload over 64 KiB (ESME_RINVMSGLEN)."""

    def __init__(self, message: str) -> None:
        super().__init__(CommandStatus.ESME_RINVMSGLEN, message)


def _part_octets(encoding: Encoding, mode: ConcatMode) -> int:
    per_part = _CAPACITY[encoding][2 if mode is _UDH16 else 1]
    return per_part * _UNIT_OCTETS[encoding]


def _cuts(body: bytes, encoding: Encoding, part_octets: int) -> list[int]:
    """End offsets of each part in ``body``; a cut never splits an ESC or surrogate pair."""
    cuts: list[int] = []
    start, end = 0, len(body)
    while start < end:
        cut = min(start + part_octets, end)
        if cut < end:
            if encoding is _GSM7 and body[cut - 1] == ESC:
                # Our encoder emits ESC only as the first octet of a pair.
                cut -= 1
            elif encoding is _UCS2 and 0xD8 <= body[cut - 2] <= 0xDB:
                # A high surrogate: keep it with its low half in the next part.
                cut -= 2
        cuts.append(cut)
        start = cut
    return cuts


def _encode(text: str, encoding: Encoding | None, allow_latin1: bool) -> tuple[Encoding, bytes]:
    if encoding is None:
        return encode_auto(text, allow_latin1=allow_latin1)
    return encoding, encode_text(text, encoding)


def count_parts(
    text: str,
    *,
    udh16: bool = False,
    allow_latin1: bool = False,
    encoding: Encoding | None = None,
) -> PartCount:
    """Air parts and units for ``text`` (for pricing before sending).

    The count is what the handset receives, which is also what a carrier bills
    when it splits a message_payload or adds the UDH for SAR parts.  Units are
    septets (GSM7), octets (Latin-1) or UTF-16 units (UCS-2).
    """
    encoding, body = _encode(text, encoding, allow_latin1)
    units = len(body) // _UNIT_OCTETS[encoding]
    if units <= _CAPACITY[encoding][0]:
        parts = 1
    else:
        mode = _UDH16 if udh16 else _UDH8
        parts = len(_cuts(body, encoding, _part_octets(encoding, mode)))
    if parts > MAX_PARTS:
        raise MessageTooLong(f"{parts} parts; at most {MAX_PARTS}")
    return PartCount(encoding, DATA_CODING[encoding], parts, units)


def split_text(
    text: str,
    *,
    ref: int,
    mode: ConcatMode = ConcatMode.UDH8,
    allow_latin1: bool = False,
    encoding: Encoding | None = None,
) -> tuple[Part, ...]:
    """The submit_sm bodies for ``text``.

    ``ref`` is the concatenation reference, from the caller's per-(source,
    destination) counter: 0..255 for UDH8, 0..65535 for UDH16 and SAR.  A text
    that fits one message is one plain part whatever the mode.
    """
    encoding, body = _encode(text, encoding, allow_latin1)
    return split_encoded(body, encoding, ref=ref, mode=mode)


def split_encoded(
    body: bytes, encoding: Encoding, *, ref: int, mode: ConcatMode = ConcatMode.UDH8
) -> tuple[Part, ...]:
    """``split_text`` for a body already encoded in ``encoding``."""
    return _split(body, encoding, DATA_CODING[encoding], ref, mode)


def split(body: bytes, data_coding: int, mode: ConcatMode | str, ref: int) -> tuple[Part, ...]:
    """The submit_sm bodies for a body already in ``data_coding`` (a customer's message_payload).

    ``mode`` is a ConcatMode or its value ('udh8', 'udh16', 'sar', 'payload').
    Each part keeps ``data_coding``; OR ``part.esm_class`` into the message's
    esm_class and add ``part.tlvs()`` to its TLVs. Capacity follows the
    alphabet (``_alphabet``); a body that fits one message is one plain part.
    """
    return _split(body, _alphabet(data_coding), data_coding, ref, ConcatMode(mode))


def billed_parts(
    body: bytes,
    data_coding: int,
    esm_class: int,
    *,
    tlvs: tuple[Tlv, ...] = (),
    mode: ConcatMode | str = ConcatMode.UDH8,
) -> int:
    """The air parts a customer's submit is billed for: what the handset receives.

    A part the customer segmented (UDHI in ``esm_class``, or SAR ``tlvs``) is
    one. Otherwise the parts ``split`` makes of ``body`` (short_message or
    message_payload): with 16-bit references for 'udh16', else 8-bit, because
    the SMSC adds that UDH on the air for SAR parts and a split message_payload.
    """
    if esm_class & ESM_CLASS_UDHI or (tlvs and has_tag(tlvs, Tag.SAR_MSG_REF_NUM)):
        return 1
    encoding = _alphabet(data_coding)
    if len(body) <= _CAPACITY[encoding][0] * _UNIT_OCTETS[encoding]:
        return 1
    udh_mode = _UDH16 if ConcatMode(mode) is _UDH16 else _UDH8
    parts = len(_cuts(body, encoding, _part_octets(encoding, udh_mode)))
    if parts > MAX_PARTS:
        raise MessageTooLong(f"{parts} parts; at most {MAX_PARTS}")
    return parts


def _alphabet(data_coding: int) -> Encoding:
    """Whose capacity and cut rules apply to a data_coding's octets.

    GSM 03.38 septets for 0 and the 0xF0 message-class codings with the
    default alphabet (bit 2 clear, as decode_text reads them), UCS-2 units for
    8, octets (140 per message) for every other coding.
    """
    if data_coding == 0 or data_coding & 0xF4 == 0xF0:
        return _GSM7
    if data_coding == 8:
        return _UCS2
    return _LATIN1


def _split(
    body: bytes, encoding: Encoding, dc: int, ref: int, mode: ConcatMode
) -> tuple[Part, ...]:
    if len(body) <= _CAPACITY[encoding][0] * _UNIT_OCTETS[encoding]:
        return (Part(body, dc),)
    if mode is _PAYLOAD:
        if len(body) > MAX_MESSAGE_PAYLOAD:
            raise MessageTooLong(f"{len(body)} octets; message_payload holds {MAX_MESSAGE_PAYLOAD}")
        return (Part(b"", dc, message_payload=body),)
    limit = 0xFF if mode is _UDH8 else 0xFFFF
    if not 0 <= ref <= limit:
        raise ValueError(f"reference {ref} out of range 0..{limit} for {mode.name}")
    cuts = _cuts(body, encoding, _part_octets(encoding, mode))
    total = len(cuts)
    if total > MAX_PARTS:
        raise MessageTooLong(f"{total} parts; at most {MAX_PARTS}")
    starts = [0, *cuts[:-1]]
    if mode is _SAR:
        return tuple(
            Part(body[start:cut], dc, False, Sar(ref, total, seq))
            for seq, (start, cut) in enumerate(zip(starts, cuts, strict=True), start=1)
        )
    # Every UDH is the same but for its last octet (the part's seqnum).
    head = concat_udh(ref, total, 0, mode)[:-1]
    return tuple(
        Part(head + _OCTET[seq] + body[start:cut], dc, True)
        for seq, (start, cut) in enumerate(zip(starts, cuts, strict=True), start=1)
    )


def concat_udh(ref: int, total: int, seq: int, mode: ConcatMode = ConcatMode.UDH8) -> bytes:
    """The UDH (with its UDHL octet) of one concatenated part."""
    if mode is _UDH16:
        return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))
    return bytes((5, 0x00, 3, ref, total, seq))
