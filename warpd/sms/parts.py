"""How one accepted message becomes submit_sm PDUs upstream, and what it costs.

A part the customer segmented (UDHI set, or SAR TLVs) travels as it came. A
longer body (message_payload over SMPP, a long text over HTTP) is split as
the connector's ``split_mode`` says: UDH with 8- or 16-bit references, SAR
TLVs, or one message_payload the carrier splits. The customer pays per air
part, what the handset receives, whichever way the parts travel.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.segment import ConcatMode, Part, split_encoded
from protocols.smpp.text import Encoding
from protocols.smpp.tlv import Tlv, decode_tlvs
from warpd.sms.model import Outbound

_UDHI = 0x40
# data_coding -> the alphabet whose capacity applies; other codings count octets.
_ENCODINGS = {0: Encoding.GSM7, 8: Encoding.UCS2}
_MODES = {mode.value: mode for mode in ConcatMode}
# 140 octets fit one message in every alphabet (GSM7 carried unpacked fits 160).
_ONE_PART_OCTETS = 140


@dataclass(frozen=True, slots=True)
class Plan:
    #: submit_sm PDUs upstream, each settled by its own receipt.
    pdus: int
    #: Air parts: what is billed.
    billed: int


_SINGLE = Plan(1, 1)


def _split(body: bytes, data_coding: int, mode: ConcatMode, ref: int) -> tuple[Part, ...]:
    return split_encoded(body, _ENCODINGS.get(data_coding, Encoding.LATIN1), ref=ref, mode=mode)


def plan(body: bytes, data_coding: int, esm_class: int, split_mode: str) -> Plan:
    """Raises MessageTooLong (an SmppError) past 255 parts or 64 KiB of payload."""
    if esm_class & _UDHI or len(body) <= _ONE_PART_OCTETS:
        return _SINGLE
    billed = len(_split(body, data_coding, ConcatMode.UDH8, 0))
    if billed == 1:
        return Plan(1, 1)
    mode = _MODES[split_mode]
    pdus = billed if mode is ConcatMode.UDH8 else len(_split(body, data_coding, mode, 0))
    return Plan(pdus, billed)


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
    if esm_class & _UDHI:
        return [UpstreamPart(1, body, esm_class, relayed)]
    parts = _split(body, outbound.data_coding, _MODES[outbound.split_mode], ref)
    return [
        UpstreamPart(
            number,
            part.short_message,
            esm_class | _UDHI if part.esm_class_udhi else esm_class,
            (*relayed, *part.tlvs()),
        )
        for number, part in enumerate(parts, start=1)
    ]
