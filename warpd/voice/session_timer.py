"""RFC 4028 session timers on the A leg, pure: negotiate the interval, say when it lapses.

A PBX that sends ``Session-Expires`` (with ``Supported: timer``) wants the
session to die unless refreshed. warpd accepts the interval if it is at least
``min_se`` (else 422 with Min-SE, section 8.1), makes the PBX the refresher
(warpd does not send refreshes itself) and ends the call when no re-INVITE or
UPDATE arrived within the interval (section 10: the side that does not refresh
sends BYE when the session expires). A PBX that did not ask gets no timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sip.errors import SipError
from protocols.sip.headers import parse_uint
from protocols.sip.message import SipRequest

REFRESH_METHODS = frozenset(("INVITE", "UPDATE"))


@dataclass(frozen=True, slots=True)
class SessionTimer:
    interval: int

    def header(self) -> tuple[str, str]:
        return ("Session-Expires", f"{self.interval};refresher=uac")

    def expires(self, refreshed_at: float) -> float:
        return refreshed_at + self.interval


def negotiate(request: SipRequest, min_se: int) -> SessionTimer | int | None:
    """The timer for a new INVITE: a SessionTimer, None (none asked), or 422."""
    value = request.header("Session-Expires")
    if value is None:
        return None
    try:
        interval = parse_uint(value.split(";", 1)[0].strip(), "Session-Expires")
    except SipError:
        return 400
    if interval < min_se:
        return 422
    supported = ",".join(request.header_values("Supported")).replace(" ", "").lower()
    if "timer" not in supported.split(","):
        return None  # 7.1: without Supported: timer the UAC cannot be made the refresher
    return SessionTimer(interval)
