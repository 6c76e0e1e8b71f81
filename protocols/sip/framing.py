"""SIP over a byte stream (RFC 3261 sections 7.5 and 18.3; RFC 5626 section 4.4.1).

Messages on TCP/TLS are delimited by the empty line after the headers and by
Content-Length, which a stream message must carry (400 without it).
``SipStreamFramer`` takes bytes in any split and hands out whole messages;
each byte is searched once (the scan resumes where it stopped) and the buffer
never holds more than ``max_size`` bytes of one message.

CRLFs between messages are ignored (7.5); a double CRLF is the RFC 5626
keep-alive ping, answered with a single CRLF (the pong), which the framer
reports too so a client can see its pings answered.
"""

from __future__ import annotations

from enum import Enum

from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest, SipResponse
from protocols.sip.parser import MAX_MESSAGE_SIZE, Head, parse_head


class KeepAlive(Enum):
    """RFC 5626 section 4.4.1 keep-alives seen between messages."""

    PING = b"\r\n\r\n"
    PONG = b"\r\n"


class SipStreamFramer:
    """Bytes in, ``SipRequest``/``SipResponse``/``KeepAlive`` out.

    After a ``SipError`` the stream cannot be resynchronized: the framer keeps
    raising it and the connection should answer (400/413: ``Endpoint.refuse``
    answers from the header section the error carries) and close.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._max_size = max_size
        self._buf = bytearray()
        self._pos = 0  # start of the message being framed
        self._scan = 0  # where the search for the empty line resumes
        self._head: Head | None = None
        self._body_start = 0
        self._error: SipError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes) -> None:
        if self._pos and self._pos * 2 >= len(self._buf):
            # Compact once at least half the buffer is consumed: amortized linear.
            del self._buf[: self._pos]
            self._scan -= self._pos
            self._body_start -= self._pos
            self._pos = 0
        self._buf += data

    def next_message(self) -> SipRequest | SipResponse | KeepAlive | None:
        """The next complete message or keep-alive, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except SipError as exc:
            self._error = exc
            raise

    def _next(self) -> SipRequest | SipResponse | KeepAlive | None:
        if self._head is None:
            prefix = bytes(self._buf[self._pos : self._pos + 4])
            if prefix[:1] == b"\r":
                return self._keepalive(prefix)
            if not self._find_head():
                return None
        head = self._head
        assert head is not None
        assert head.content_length is not None, "_find_head refuses a head without one"
        stop = self._body_start + head.content_length
        if stop > len(self._buf):
            return None
        raw = bytes(self._buf[self._pos : stop])
        body = raw[self._body_start - self._pos :]
        self._pos = self._scan = stop
        self._head = None
        return head.message(body, raw)

    def _keepalive(self, prefix: bytes) -> KeepAlive | None:
        if prefix == KeepAlive.PING.value:
            self._pos = self._scan = self._pos + 4
            return KeepAlive.PING
        if prefix[:2] == b"\r\n" and len(prefix) > 2 and prefix[2:3] != b"\r":
            self._pos = self._scan = self._pos + 2
            return KeepAlive.PONG
        if KeepAlive.PING.value.startswith(prefix):
            return None  # a keep-alive still arriving
        raise SipError("stray CR between messages")

    def _find_head(self) -> bool:
        buf = self._buf
        end = buf.find(b"\r\n\r\n", max(self._scan, self._pos))
        if end < 0:
            if len(buf) - self._pos > self._max_size:
                raise SipError("header section too large", 413)
            self._scan = max(self._pos, len(buf) - 3)
            return False
        if end - self._pos > self._max_size:
            raise SipError("header section too large", 413)
        head = parse_head(bytes(buf[self._pos : end + 2]))
        if head.content_length is None:
            # 18.3: "the Content-Length header field MUST be used with stream
            # oriented transports"; without it the message has no end.
            raise SipError("no Content-Length on a stream", message=head.partial())
        if (end + 4 - self._pos) + head.content_length > self._max_size:
            raise SipError(
                f"message larger than {self._max_size} bytes", 413, message=head.partial()
            )
        self._head = head
        self._body_start = end + 4
        return True
