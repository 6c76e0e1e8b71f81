"""Why an rtpengine instance could not serve a request (rtpengine-ng.md section 3).

These are transport failures: the instance did not answer in time or the socket
refused to send. A reply that the daemon did send but that says ``error`` is a
``protocols.ng.errors.NgError`` instead.
"""

from __future__ import annotations

from protocols.errors import WarpdError


class RtpEngineUnavailable(WarpdError):
    """The instance could not be reached; the pool disables it for a while."""


class NgTimeout(RtpEngineUnavailable):
    """No reply after every retransmission of the same cookie."""


class NgSendError(RtpEngineUnavailable):
    """The socket reported an error (ICMP port unreachable, closed client)."""


class NoRtpEngine(RtpEngineUnavailable):
    """No instance of the pool could take the call."""
