"""Cutting a TCP byte stream into SMPP PDUs by command_length (SMPP 3.4 section 3.2).

A PDU may arrive split over many reads, or many PDUs in one read; the reader
keeps one bytearray and a read offset, so the cost stays linear in the bytes
fed (a consumed prefix is dropped only once it is at least half the buffer).
A command_length under 16 or over ``max_pdu_size`` makes the stream
unusable: SMPP has no resynchronisation marker, so the reader raises
``SmppFramingError`` (ESME_RINVCMDLEN) now and on every later call.
"""

from __future__ import annotations

from collections.abc import Iterator

from protocols.smpp.codec import HEADER, HEADER_SIZE, decode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppFramingError
from protocols.smpp.pdu import Pdu

DEFAULT_MAX_PDU_SIZE = 65536


class PduReader:
    """Feed it bytes as they arrive; take whole frames (or decoded PDUs) out."""

    __slots__ = ("_buffer", "_error", "_offset", "max_pdu_size")

    def __init__(self, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        if max_pdu_size < HEADER_SIZE:
            raise ValueError(f"max_pdu_size {max_pdu_size} is smaller than a PDU header")
        self.max_pdu_size = max_pdu_size
        self._buffer = bytearray()
        self._offset = 0
        self._error: SmppFramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a frame."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next whole PDU (header included), or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        offset = self._offset
        available = len(buffer) - offset
        if available < HEADER_SIZE:
            return None
        command_length, command_id, _status, sequence_number = HEADER.unpack_from(buffer, offset)
        if not HEADER_SIZE <= command_length <= self.max_pdu_size:
            self._error = SmppFramingError(
                CommandStatus.ESME_RINVCMDLEN,
                f"command_length {command_length} outside {HEADER_SIZE}..{self.max_pdu_size}",
                command_id=command_id,
                sequence_number=sequence_number,
            )
            raise self._error
        if available < command_length:
            return None
        end = offset + command_length
        frame = bytes(buffer[offset:end])
        if end == len(buffer):
            buffer.clear()
            end = 0
        elif end > len(buffer) >> 1:
            del buffer[:end]
            end = 0
        self._offset = end
        return frame

    def next_pdu(self) -> Pdu | None:
        """The next decoded PDU, or None until more bytes arrive; SmppError if it is bad.

        A PDU that fails to decode is consumed first, so the caller can answer
        it and carry on with the next one (unless the error is a framing one).
        """
        frame = self.next_frame()
        return None if frame is None else decode(frame)

    def __iter__(self) -> Iterator[bytes]:
        """Every whole frame available now."""
        while (frame := self.next_frame()) is not None:
            yield frame
