"""The ng protocol's error (STYLE.md section 4; rtpengine-ng.md section 1).

An ``NgError`` carries the ``error-reason`` string: the one rtpengine sent in a
``result: error`` reply, or the one this side would send for bytes it cannot
parse (rtpengine answers garbage with "Invalid NG data format").
"""

from __future__ import annotations

from protocols.errors import ProtocolError

# Replies after which a controller tries the next rtpengine instead of failing
# the call: Kamailio's rtpengine module special-cases exactly these
# (``result: load limit`` and two error reasons), see rtpengine-ng.md section 3.
LOAD_LIMIT = "load limit"
OVERLOAD_REASONS = frozenset({LOAD_LIMIT, "Parallel session limit reached", "Ran out of ports"})

INVALID_FORMAT = "Invalid NG data format"


class NgError(ProtocolError):
    """A malformed ng message, or an rtpengine reply with ``result: error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def is_overload(self) -> bool:
        """True when the instance is full and another one may take the call."""
        return self.reason in OVERLOAD_REASONS
