"""How one accepted message becomes submit_sm PDUs upstream, and what it costs.

A part the customer segmented (UDHI set, or SAR TLVs) travels as it came. A
longer body (message_payload over SMPP, a long text over HTTP) is split as
the connector's ``split_mode`` says: UDH with 8- or 16-bit references, SAR
TLVs, or one message_payload the carrier splits. The customer pays per air
part, what the handset receives, whichever way the parts travel.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.flags import ESM_CLASS_UDHI
from protocols.smpp.segment import billed_parts, split
from protocols.smpp.tlv import Tag, Tlv, decode_tlvs, has_tag
from warpd.sms.model import Outbound

# 140 octets fit one message in every alphabet (GSM7 carried unpacked fits 160).
_ONE_PART_OCTETS = 140


@dataclass(frozen=True, slots=True)
class Plan:
    #: submit_sm PDUs upstream, each settled by its own receipt.
    pdus: int
    #: Air parts: what is billed.
    billed: int


_SINGLE = Plan(1, 1)


def _segmented(esm_class: int, relayed: tuple[Tlv, ...]) -> bool:
    return bool(esm_class & ESM_CLASS_UDHI) or has_tag(relayed, Tag.SAR_MSG_REF_NUM)


def plan(body: bytes, data_coding: int, esm_class: int, tlvs: bytes, split_mode: str) -> Plan:
    """Raises MessageTooLong (an SmppError) past 255 parts or 64 KiB of payload."""
    if len(body) <= _ONE_PART_OCTETS and not esm_class & ESM_CLASS_UDHI:
        return _SINGLE
    relayed = decode_tlvs(tlvs, 0) if tlvs else ()
    billed = billed_parts(body, data_coding, esm_class, tlvs=relayed, mode=split_mode)
    if billed == 1 or _segmented(esm_class, relayed):
        return Plan(1, billed)
    return Plan(len(split(body, data_coding, split_mode, 0)), billed)


@dataclass(frozen=True, slots=True)
class UpstreamPart:
    part_no: int
    short_message: bytes
    esm_class: int
    tlvs: tuple[Tlv, ...]


def upstream_parts(outbound: Outbound, ref: int) -> list[UpstreamPart]:
    """Every PDU's body, numbered from 1; ``ref`` is the concatenation reference."""
    body, esm_class = outbound.body, outbound.esm_class
    relayed = decode_tlvs(outbound.tlvs, 0) if outbound.tlvs else ()
    if _segmented(esm_class, relayed):
        return [UpstreamPart(1, body, esm_class, relayed)]
    return [
        UpstreamPart(
            number, part.short_message, esm_class | part.esm_class, (*relayed, *part.tlvs())
        )
        for number, part in enumerate(
            split(body, outbound.data_coding, outbound.split_mode, ref), 1
        )
    ]
