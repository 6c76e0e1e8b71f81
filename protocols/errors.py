"""The root of warpd's error hierarchy (STYLE.md section 4).

It lives in ``protocols`` because imports only point down: every layer can
reach it, and a codec's ``ProtocolError`` is a ``WarpdError`` everywhere.
"""


class WarpdError(Exception):
    """Anything warpd raises on purpose."""


class ProtocolError(WarpdError):
    """Input that a codec or state machine refuses.

    Each protocol subclasses this with the answer the peer should get
    (an SMPP command_status, a SIP status code, an ng error reason).
    """
