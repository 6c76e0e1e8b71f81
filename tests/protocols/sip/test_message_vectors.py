"""Vector table (tests/vectors/sip/): RFC 3261 section 24, RFC 3665 flows, RFC 4475 torture tests.

Each vector is fed as one datagram, through the stream framer whole, byte by
byte and followed by trailing data; valid ones also round-trip through
serialize(). Invalid ones must raise SipError with the RFC's status, from
parsing or from reading the typed headers, and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocols.sip.errors import SipError
from protocols.sip.framing import KeepAlive, SipStreamFramer
from protocols.sip.message import SipMessage, SipRequest
from protocols.sip.parser import parse_message

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "sip"
_HEX = re.compile(rb"<hex>([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Vector:
    name: str
    source: str
    expect: int | None  # None: valid; else the status code of the SipError
    data: bytes
    answer: int | None = None  # what the endpoint sends back; None: nothing
    uas: int | None = None  # check_request's refusal; None: accepted or not said
    uas_said: bool = False


def load(path: Path) -> Vector:
    meta: dict[str, str] = {}
    lines = path.read_bytes().split(b"\n")
    while lines[0].startswith(b"# "):
        key, _, value = lines.pop(0)[2:].decode().partition(": ")
        meta[key] = value
    data = _HEX.sub(lambda m: bytes([int(m[1], 16)]), b"\r\n".join(lines))
    expect = None if meta["expect"] == "valid" else int(meta["expect"].split()[1])
    answer = None if meta["answer"] == "none" else int(meta["answer"])
    uas = meta.get("uas")
    uas_status = None if uas in (None, "accept") else int(uas)
    return Vector(path.stem, meta["source"], expect, data, answer, uas_status, uas is not None)


VECTORS = [load(p) for p in sorted(VECTOR_DIR.glob("*.sip"))]
VALID = [v for v in VECTORS if v.expect is None]
INVALID = [v for v in VECTORS if v.expect is not None]


def read_everything(msg: SipMessage) -> None:
    """Touch every typed accessor, as a proxy validating a request would."""
    _ = (msg.via, msg.top_via, msg.from_, msg.to, msg.call_id, msg.cseq, msg.contact)
    _ = (msg.route, msg.record_route, msg.max_forwards, msg.expires, msg.content_type)
    _ = (msg.reason, msg.authorization, msg.www_authenticate, msg.content_length)
    _ = [c.expires for c in msg.contact]
    if isinstance(msg, SipRequest):
        _ = msg.uri


def frame(chunks: list[bytes]) -> list[SipMessage | KeepAlive]:
    framer = SipStreamFramer()
    out: list[SipMessage | KeepAlive] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while (item := framer.next_message()) is not None:
            out.append(item)
    return out


def test_vectors_were_found() -> None:
    assert len(VALID) >= 20
    assert len(INVALID) >= 15
    assert all(v.source.startswith("RFC ") for v in VECTORS)


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.name)
def test_valid_vector_parses_and_round_trips(vector: Vector) -> None:
    msg = parse_message(vector.data)
    read_everything(msg)
    wire = msg.serialize()
    assert parse_message(wire) == msg
    rebuilt = msg.with_header("X-Rebuilt", "1").without_header("X-Rebuilt")
    assert rebuilt == msg
    again = parse_message(rebuilt.serialize())
    assert again == msg
    read_everything(again)


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.name)
def test_valid_vector_through_the_stream_framer(vector: Vector) -> None:
    whole = parse_message(vector.data)
    data = whole.serialize()  # a stream needs Content-Length: the serialized form has it
    assert frame([data]) == [whole]
    assert frame([data[i : i + 1] for i in range(len(data))]) == [whole]
    trailing = frame([data + b"\r\n\r\n" + data + b"OPTIONS sip:x"])
    assert trailing == [whole, KeepAlive.PING, whole]


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v.name)
def test_invalid_vector_raises_its_status(vector: Vector) -> None:
    with pytest.raises(SipError) as info:
        read_everything(parse_message(vector.data))
    assert info.value.status_code == vector.expect


def test_wsinv_is_read_as_rfc4475_describes() -> None:
    (vector,) = [v for v in VECTORS if v.name.endswith("wsinv")]
    msg = parse_message(vector.data)
    assert isinstance(msg, SipRequest)
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.header("Subject") == ""
    assert msg.header("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.header("unknownheaderwithunusualvalue") == ";;,,;;,;"
    (contact,) = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.q == "0.33"
    assert msg.route[0].uri.lr  # type: ignore[union-attr]
    assert len(msg.body) == 150


def test_dblreq_trailing_datagram_octets_are_ignored() -> None:
    """RFC 4475 3.1.1.8 (dblreq): bytes after Content-Length in a datagram are dropped."""
    (vector,) = [v for v in VECTORS if v.name.endswith("noreason")]
    msg = parse_message(vector.data + b"INVITE sip:joe@example.com SIP/2.0\r\n")
    assert msg == parse_message(vector.data)
    assert msg.serialize() == vector.data
