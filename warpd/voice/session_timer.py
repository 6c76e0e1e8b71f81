"""RFC 4028 session timers on both legs, pure: negotiate the interval, say when it lapses.

A leg (the PBX, or the carrier of an inbound call). A PBX that sends
``Session-Expires`` (with ``Supported: timer``) wants the session to die
unless refreshed. warpd accepts the interval if it is at least
``min_se`` (else 422 with Min-SE, section 8.1), makes the PBX the refresher
(warpd does not send refreshes itself) and ends the call when no re-INVITE or
UPDATE arrived within the interval (section 10: the side that does not refresh
sends BYE when the session expires). A PBX that did not ask gets no timer.

B leg (the side warpd calls). warpd asks for ``Session-Expires`` (with
``Supported: timer``) in its INVITE and lets the callee choose the refresher
(7.1); the 2xx decides (7.2): ``refresher=uas`` makes the callee refresh,
anything else makes warpd the refresher, sending a refresh at half the
interval (10), and no ``Session-Expires`` in the 2xx means no timer. A 422
carries the callee's Min-SE, which the INVITE is retried with once (6).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sip.errors import SipError
from protocols.sip.headers import parse_uint
from protocols.sip.message import SipRequest, SipResponse

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
    interval = _seconds(value, "Session-Expires")
    if interval is None:
        return 400
    if interval < min_se:
        return 422
    supported = ",".join(request.header_values("Supported")).replace(" ", "").lower()
    if "timer" not in supported.split(","):
        return None  # 7.1: without Supported: timer the UAC cannot be made the refresher
    return SessionTimer(interval)


@dataclass(frozen=True, slots=True)
class CarrierTimer:
    """The B leg's timer as the callee's 2xx set it."""

    interval: int
    we_refresh: bool

    def refresh_due(self, refreshed_at: float) -> float:
        return refreshed_at + self.interval / 2  # section 10: half the interval

    def expires(self, refreshed_at: float) -> float:
        return refreshed_at + self.interval

    def headers(self) -> tuple[tuple[str, str], ...]:
        """What warpd's refresh carries (section 7.4: the refresher stays the same)."""
        return (("Supported", "timer"), ("Session-Expires", f"{self.interval};refresher=uac"))


def carrier_request(interval: int) -> tuple[tuple[str, str], ...]:
    """The headers of an INVITE asking the callee for a session timer (7.1)."""
    return (("Supported", "timer"), ("Session-Expires", str(interval)))


def carrier_timer(response: SipResponse) -> CarrierTimer | None:
    """The timer a 2xx to warpd's INVITE (or refresh) sets up; None: no timer (7.2)."""
    value = response.header("Session-Expires")
    if value is None:
        return None
    seconds = _seconds(value, "Session-Expires")
    if not seconds:
        return None  # a malformed timer is no timer: the call is not failed for it
    params = value.partition(";")[2].replace(" ", "").lower().split(";")
    return CarrierTimer(seconds, "refresher=uas" not in params)


def min_se(response: SipResponse, asked: int) -> int | None:
    """The larger interval a 422 asks for (its Min-SE), or None when there is none."""
    value = response.header("Min-SE")
    if value is None:
        return None
    seconds = _seconds(value, "Min-SE")
    return seconds if seconds is not None and seconds > asked else None


def _seconds(value: str, name: str) -> int | None:
    """The delta-seconds of a Session-Expires or Min-SE value (its parameters left)."""
    try:
        return parse_uint(value.split(";", 1)[0].strip(), name)
    except SipError:
        return None
