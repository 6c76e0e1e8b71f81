"""PduReader: whole PDUs out of any TCP split, bounded and linear (smpp.md section 1)."""

from __future__ import annotations

import struct

import pytest

from protocols.smpp import codec
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.errors import SmppError, SmppFramingError
from protocols.smpp.framing import DEFAULT_MAX_PDU_SIZE, PduReader
from protocols.smpp.pdu import EnquireLink, GenericNack, SubmitSm, error_response

LINK = codec.encode(EnquireLink(sequence_number=1))


def test_nothing_until_a_whole_pdu() -> None:
    reader = PduReader()
    assert reader.next_frame() is None
    reader.feed(LINK[:15])
    assert reader.next_frame() is None
    reader.feed(LINK[15:])
    assert reader.next_frame() == LINK
    assert reader.next_frame() is None


def test_many_pdus_in_one_read_and_iteration() -> None:
    pdus = [EnquireLink(sequence_number=n) for n in range(1, 101)]
    reader = PduReader()
    reader.feed(b"".join(codec.encode(p) for p in pdus))
    assert [codec.decode(f) for f in reader] == pdus
    assert reader.buffered == 0
    assert list(reader) == []


@pytest.mark.parametrize("length", [0, 1, 15, DEFAULT_MAX_PDU_SIZE + 1, 0xFFFFFFFF])
def test_impossible_command_length_poisons_the_stream(length: int) -> None:
    reader = PduReader()
    reader.feed(struct.pack(">IIII", length, CommandId.SUBMIT_SM, 0, 42))
    with pytest.raises(SmppFramingError) as info:
        reader.next_frame()
    error = info.value
    assert error.stream_unusable
    assert (error.command_status, error.sequence_number) == (CommandStatus.ESME_RINVCMDLEN, 42)
    assert error_response(error) == GenericNack(
        sequence_number=42, command_status=CommandStatus.ESME_RINVCMDLEN
    )
    reader.feed(LINK)  # nothing after a broken length can be trusted
    with pytest.raises(SmppFramingError):
        reader.next_frame()


def test_configurable_maximum() -> None:
    big = codec.encode(SubmitSm(short_message=b"x" * 200))
    reader = PduReader(max_pdu_size=len(big))
    reader.feed(big)
    assert reader.next_frame() == big
    small = PduReader(max_pdu_size=len(big) - 1)
    small.feed(big[:16])  # refused from the header alone, before the body arrives
    with pytest.raises(SmppFramingError):
        small.next_frame()
    with pytest.raises(ValueError, match="smaller than a PDU header"):
        PduReader(max_pdu_size=15)


def test_a_bad_pdu_is_consumed_and_the_next_one_read() -> None:
    bad = struct.pack(">IIII", 20, 0x0000BEEF, 0, 7) + b"junk"
    reader = PduReader()
    reader.feed(bad + LINK)
    with pytest.raises(SmppError) as info:
        reader.next_pdu()
    assert info.value.command_status == CommandStatus.ESME_RINVCMDID
    assert reader.next_pdu() == EnquireLink(sequence_number=1)


def test_byte_at_a_time() -> None:
    stream = LINK * 300
    reader = PduReader()
    frames = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        frames.extend(reader)
    assert frames == [LINK] * 300
    assert reader.buffered == 0


def test_a_large_read_is_consumed_in_linear_time() -> None:
    # Consuming by offset and dropping the prefix only once it is half the
    # buffer moves each octet O(1) times: the buffer is rewritten about
    # log2(n) times. Cutting the prefix per frame (quadratic) would
    # rewrite it once per PDU.
    reader = PduReader()
    reader.feed(LINK * 20000 + LINK[:5])
    sizes = set()
    for _ in range(20000):
        assert reader.next_frame() == LINK
        sizes.add(len(reader._buffer))
    assert reader.buffered == 5
    assert len(sizes) < 40
