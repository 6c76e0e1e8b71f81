"""SIP errors (RFC 3261 section 21): what a peer gets when we refuse its input.

A SIP codec given any bytes either returns values or raises ``SipError``; the
status code it carries is the response a UAS or proxy answers a bad request
with (RFC 3261 section 8.2: 400 in general, 505 for a version it does not
speak, 416 for a Request-URI scheme it does not know, 413 for a message larger
than it accepts).
"""

from __future__ import annotations

from protocols.errors import ProtocolError
from protocols.sip.status import reason_phrase


class SipError(ProtocolError):
    """Input refused; ``status_code`` and ``reason`` are the answer to send.

    ``str(error)`` is the detail for logs; ``reason`` is the phrase for the
    status line (the detail may name what was wrong, the phrase stays generic).
    """

    status_code: int = 400

    def __init__(self, detail: str, status_code: int = 400, reason: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.reason = reason if reason is not None else reason_phrase(status_code)


class SdpError(SipError):
    """Malformed SDP (RFC 4566); answered with 400, or 488 when the offer is unusable."""
