"""Hypothesis: round trips for every PDU and TLV, and garbage raising only SmppError.

The strategies build records within the SMPP 3.4 section 4 limits, written out
here independently of the codec's own tables.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.record import fields
from protocols.smpp import codec
from protocols.smpp.codec_sm import decode_short_message, encode_short_message
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    DataSm,
    DistributionList,
    Pdu,
    ShortMessagePdu,
    SmeAddress,
    UnsuccessSme,
)
from protocols.smpp.tlv import TLV_SPECS, Tag, Tlv, decode_tlvs, encode_tlvs
from tests.protocols.smpp.test_vectors import WIRE

# Section 4 maxima, NUL included.
MAXIMA = {
    "system_id": 16,
    "password": 9,
    "system_type": 13,
    "address_range": 41,
    "service_type": 6,
    "source_addr": 21,
    "destination_addr": 21,
    "esme_addr": 65,
    "message_id": 65,
    "dl_name": 21,
}
WIDE = {(DataSm, "source_addr"), (DataSm, "destination_addr"), (AlertNotification, "source_addr")}
TIMES = {"schedule_delivery_time", "validity_period", "final_date"}

u8 = st.integers(0, 255)
u32 = st.integers(0, 0xFFFFFFFF)
time_strings = st.one_of(st.just(""), st.from_regex(r"\A[0-9]{15}[-+R]\Z"))


def c_strings(max_octets: int) -> st.SearchStrategy[str]:
    # Octets (any but NUL) read as latin-1, as the codec carries them; binary
    # draws much faster than text.
    return st.binary(max_size=max_octets - 1).map(
        lambda raw: raw.replace(b"\x00", b"0").decode("latin-1")
    )


@functools.cache
def tlvs(with_payload: bool = False) -> st.SearchStrategy[tuple[Tlv, ...]]:
    unknown = st.builds(
        Tlv, st.integers(0, 0xFFFF).filter(lambda tag: tag not in TLV_SPECS), st.binary(max_size=40)
    )
    known = st.one_of(
        [
            st.builds(
                Tlv,
                st.just(tag),
                st.binary(min_size=spec.min_length, max_size=min(spec.max_length, 40)),
            )
            for tag, spec in TLV_SPECS.items()
            if with_payload or tag != Tag.MESSAGE_PAYLOAD
        ]
    )
    return st.lists(st.one_of(unknown, known), max_size=4).map(tuple)


def field_strategy(cls: type[Pdu], name: str) -> st.SearchStrategy[Any]:
    if name in TIMES:
        return time_strings
    if name == "short_message":
        return st.binary(max_size=254)
    if name == "dest_address":
        sme = st.builds(SmeAddress, u8, u8, c_strings(21))
        dl = st.builds(DistributionList, c_strings(21))
        return st.lists(st.one_of(sme, dl), min_size=1, max_size=5).map(tuple)
    if name == "unsuccess_sme":
        entry = st.builds(UnsuccessSme, u8, u8, c_strings(21), u32)
        return st.lists(entry, max_size=5).map(tuple)
    if name in MAXIMA:
        return c_strings(65 if (cls, name) in WIDE else MAXIMA[name])
    return u8


@functools.cache
def pdus_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    body = {
        f.name: field_strategy(cls, f.name)
        for f in fields(cls)
        if f.name not in {"sequence_number", "command_status", "tlvs"}
    }
    return st.builds(cls, sequence_number=u32, command_status=u32, tlvs=tlvs(), **body)


any_pdu = st.sampled_from(sorted(PDU_CLASSES.values(), key=lambda c: c.__name__)).flatmap(pdus_of)
CLASSES = sorted(PDU_CLASSES.values(), key=lambda cls: cls.__name__)


# 27 classes: each gets a quarter of the profile's examples (the "deep" profile
# still scales them up), which keeps the suite inside its time budget.
PER_CLASS = settings(max_examples=max(20, settings.default.max_examples // 4))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@PER_CLASS
@given(data=st.data())
def test_round_trip(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdus_of(cls))
    assert codec.decode(codec.encode(pdu)) == pdu


@given(pdus_of(PDU_CLASSES[4]) | pdus_of(PDU_CLASSES[5]))
def test_fast_path_agrees_with_the_reference(pdu: Pdu) -> None:
    assert isinstance(pdu, ShortMessagePdu)
    wire = codec._encode_with_layout(pdu)
    assert encode_short_message(pdu) == wire
    layout, status, seq = codec._read_header(wire)
    assert decode_short_message(type(pdu), wire, status, seq) == pdu
    assert codec._decode_with_layout(layout, wire, status, seq) == pdu


@given(tlvs(with_payload=True))
def test_tlv_round_trip(values: tuple[Tlv, ...]) -> None:
    assert decode_tlvs(encode_tlvs(values), 0) == values


def _decodes_or_refuses(frame: bytes) -> None:
    try:
        pdu = codec.decode(frame)
    except SmppError as error:
        # Anything but SmppError fails the test; its status must be a real SMPP code.
        CommandStatus(error.command_status)
        return
    # Whatever we accept we can send back, and it reads the same.
    assert codec.decode(codec.encode(pdu)) == pdu
    if isinstance(pdu, ShortMessagePdu):  # the unrolled path agrees with the reference
        assert _reference(frame) == pdu


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_smpp_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@given(st.sampled_from(sorted(PDU_CLASSES)), u32, u32, st.binary(max_size=200))
def test_random_bodies_behind_a_valid_header(
    command_id: int, status: int, seq: int, body: bytes
) -> None:
    _decodes_or_refuses(struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body)


def _mutations(names: list[str] = sorted(WIRE)) -> st.SearchStrategy[bytes]:  # noqa: B008
    def mutate(frame: bytes, data: st.DataObject) -> bytes:
        raw = bytearray(frame)
        for _ in range(data.draw(st.integers(1, 4))):
            where = data.draw(st.integers(16, max(16, len(raw))))
            action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
            if action == "flip" and where < len(raw):
                raw[where] = data.draw(u8)
            elif action == "insert":
                raw[where:where] = data.draw(st.binary(min_size=1, max_size=3))
            elif where < len(raw):
                del raw[where]
        if data.draw(st.booleans()):  # usually keep the frame well cut
            struct.pack_into(">I", raw, 0, len(raw))
        return bytes(raw)

    return st.tuples(st.sampled_from(names), st.data()).map(
        lambda pair: mutate(WIRE[pair[0]].data, pair[1])
    )


@given(_mutations())
def test_mutated_vectors_raise_only_smpp_error(frame: bytes) -> None:
    _decodes_or_refuses(frame)


SHORT_MESSAGE_VECTORS = [
    "deliver_sm_receipt",
    "submit_sm",
    "submit_sm_absolute_schedule",
    "submit_sm_gsm_at_sar",
    "submit_sm_vendor_tlv",
]


@given(_mutations(SHORT_MESSAGE_VECTORS))
def test_mutated_short_messages_decode_as_the_reference_does(frame: bytes) -> None:
    _decodes_or_refuses(frame)


@given(st.lists(any_pdu, min_size=1, max_size=5), st.data())
def test_any_split_gives_the_same_pdus(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(codec.encode(pdu) for pdu in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = PduReader()
    decoded = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed(stream[start:stop])
        while (pdu := reader.next_pdu()) is not None:
            decoded.append(pdu)
    assert decoded == pdus
    assert reader.buffered == 0


def _reference(frame: bytes) -> Pdu | SmppError:
    layout, status, seq = codec._read_header(frame)
    try:
        return codec._decode_with_layout(layout, frame, status, seq)
    except SmppError as error:
        return error


@given(
    st.sampled_from([PDU_CLASSES[4], PDU_CLASSES[5]]),
    st.lists(
        st.one_of(
            st.binary(max_size=24),
            st.sampled_from([b"\x00", b"261121201000004+\x00", b"000001000000000R\x00"]),
        ),
        max_size=12,
    ),
)
def test_fast_path_never_accepts_what_the_reference_refuses(
    cls: type[ShortMessagePdu], pieces: list[bytes]
) -> None:
    # Bodies stitched from NULs, valid times and random octets reach deep into
    # the unrolled decoder; whatever it accepts the reference must accept alike.
    frame = codec.HEADER.pack(16 + sum(map(len, pieces)), cls.command_id, 0, 1) + b"".join(pieces)
    fast = decode_short_message(cls, frame, 0, 1)
    if fast is not None:
        assert _reference(frame) == fast
