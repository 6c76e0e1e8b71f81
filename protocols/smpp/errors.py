"""SMPP errors: every refusal carries the command_status the peer should get.

SMPP 3.4 section 5.1.3 (command_status) and section 2.8 (error handling): a
PDU that cannot be decoded is answered with its own response carrying the error
status, or with generic_nack when the command itself is unknown or the stream
framing is broken.
"""

from __future__ import annotations

from protocols.errors import ProtocolError


class SmppError(ProtocolError):
    """A PDU (or a value meant for one) that SMPP refuses.

    ``command_status`` is the status to answer with. ``sequence_number`` and
    ``command_id`` are filled in whenever the header was readable, so that the
    session can answer the offending request (its ``_resp``, or generic_nack
    echoing the sequence number).
    """

    #: True when the byte stream can no longer be framed (bad command_length):
    #: the session answers generic_nack and closes the connection.
    stream_unusable: bool = False
    #: The command_status field of the PDU that failed to decode (0 if unread):
    #: a malformed response's own error status, kept for the request it settles.
    received_status: int = 0

    def __init__(
        self,
        command_status: int,
        message: str,
        *,
        sequence_number: int | None = None,
        command_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.sequence_number = sequence_number
        self.command_id = command_id

    def with_header(
        self, command_id: int, sequence_number: int, received_status: int = 0
    ) -> SmppError:
        """Record the header of the PDU being decoded (kept if already set)."""
        if self.command_id is None:
            self.command_id = command_id
        if self.sequence_number is None:
            self.sequence_number = sequence_number
        self.received_status = received_status
        return self


class SmppFramingError(SmppError):
    """command_length is impossible (ESME_RINVCMDLEN): the stream is unusable.

    SMPP gives no way to resynchronise a TCP stream once a length is wrong, so
    the only safe answer is generic_nack and close (smpp.md section 1).
    """

    stream_unusable = True


class SmppUnknownCommand(SmppError):
    """command_id is not an SMPP 3.4 command (ESME_RINVCMDID).

    The session answers generic_nack with the same sequence_number and keeps
    the bind: an unknown command does not corrupt the stream.
    """
