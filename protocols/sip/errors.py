"""SIP errors (RFC 3261 section 21): what a peer gets when we refuse its input.

A SIP codec given any bytes either returns values or raises ``SipError``; the
status code it carries is the response a UAS or proxy answers a bad request
with (RFC 3261 section 8.2: 400 in general, 505 for a version it does not
speak, 416 for a Request-URI scheme it does not know, 413 for a message larger
than it accepts).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from protocols.errors import ProtocolError
from protocols.sip.status import reason_phrase

if TYPE_CHECKING:
    from protocols.sip.message import SipRequest, SipResponse

# What a Reason-Phrase may hold (RFC 3261 section 25.1: reserved / unreserved /
# UTF8-NONASCII / SP / HTAB); the detail quotes peer input, so the rest goes.
_NOT_IN_PHRASE = re.compile(r"[^A-Za-z0-9\-_.!~*'();/?:@&=+$, \u00a0-\ud7ff\ue000-\U0010ffff]")
_MAX_DETAIL = 100


def describe(status_code: int, detail: str) -> str:
    """``Bad Request (duplicate To header)``: the status's phrase and what was wrong."""
    text = " ".join(_NOT_IN_PHRASE.sub("", detail[: 2 * _MAX_DETAIL]).split())[:_MAX_DETAIL]
    phrase = reason_phrase(status_code)
    return f"{phrase} ({text})" if text else phrase


class SipError(ProtocolError):
    """Input refused; ``status_code`` and ``reason`` are the answer to send.

    ``str(error)`` is the detail for logs; ``reason`` is the phrase for the
    status line: the status's own phrase followed by the detail, cleaned of
    what a Reason-Phrase may not hold, so the peer learns what was wrong.
    ``message`` is what the parser had read when it refused the input (the
    header section, without the body), or None: enough for the endpoint to
    answer without parsing the same bytes again.
    """

    status_code: int = 400

    def __init__(
        self,
        detail: str,
        status_code: int = 400,
        reason: str | None = None,
        *,
        message: SipRequest | SipResponse | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self._reason = reason
        self.message = message

    @property
    def reason(self) -> str:
        # Built on demand: most errors (fuzzing, garbage) are never answered.
        if self._reason is None:
            self._reason = describe(self.status_code, str(self))
        return self._reason


class SdpError(SipError):
    """Malformed SDP (RFC 4566); answered with 400, or 488 when the offer is unusable."""
