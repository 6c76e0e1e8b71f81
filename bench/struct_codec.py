"""The yardstick of issue 3: a minimal struct-based submit_sm/deliver_sm codec.

The issue's 10x target comes from "a 40-line struct-based codec reached ~205k/s
here, aiosmpplib ~20k/s". This is such a codec, timed beside ours and
aiosmpplib's in the same run, so the report shows what that yardstick does
on today's machine. It is what a codec without validation costs: plain
dicts, no limits, no error mapping, no TLV checks; never use it for traffic.
"""

from __future__ import annotations

import struct
from typing import Any

_HEADER = struct.Struct(">IIII")
_TL = struct.Struct(">HH")


def encode(command_id: int, pdu: dict[str, Any]) -> bytes:
    body = b"".join(
        (
            pdu["service_type"].encode(),
            b"\x00",
            bytes((pdu["source_addr_ton"], pdu["source_addr_npi"])),
            pdu["source_addr"].encode(),
            b"\x00",
            bytes((pdu["dest_addr_ton"], pdu["dest_addr_npi"])),
            pdu["destination_addr"].encode(),
            b"\x00",
            bytes((pdu["esm_class"], pdu["protocol_id"], pdu["priority_flag"])),
            b"\x00\x00",  # schedule_delivery_time, validity_period
            bytes((pdu["registered_delivery"], 0, pdu["data_coding"], 0)),
            bytes((len(pdu["short_message"]),)),
            pdu["short_message"],
            *(_TL.pack(tag, len(value)) + value for tag, value in pdu["tlvs"]),
        )
    )
    return _HEADER.pack(16 + len(body), command_id, 0, pdu["sequence_number"]) + body


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


def decode(data: bytes) -> dict[str, Any]:
    _, _, _, sequence_number = _HEADER.unpack_from(data)
    service_type, pos = _cstring(data, 16)
    source_addr_ton, source_addr_npi = data[pos : pos + 2]
    source_addr, pos = _cstring(data, pos + 2)
    dest_addr_ton, dest_addr_npi = data[pos : pos + 2]
    destination_addr, pos = _cstring(data, pos + 2)
    esm_class, protocol_id, priority_flag = data[pos : pos + 3]
    registered_delivery, _, data_coding, _, length = data[pos + 5 : pos + 10]
    pos += 10  # past the two empty times and the five octets above
    short_message = data[pos : pos + length]
    pos += length
    tlvs = []
    while pos < len(data):
        tag, size = _TL.unpack_from(data, pos)
        tlvs.append((tag, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return {
        "sequence_number": sequence_number,
        "service_type": service_type,
        "source_addr_ton": source_addr_ton,
        "source_addr_npi": source_addr_npi,
        "source_addr": source_addr,
        "dest_addr_ton": dest_addr_ton,
        "dest_addr_npi": dest_addr_npi,
        "destination_addr": destination_addr,
        "esm_class": esm_class,
        "protocol_id": protocol_id,
        "priority_flag": priority_flag,
        "registered_delivery": registered_delivery,
        "data_coding": data_coding,
        "short_message": short_message,
        "tlvs": tlvs,
    }
