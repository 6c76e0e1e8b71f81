"""SIP timer values and per-object deadlines (RFC 3261 section 17 and Table 4, RFC 6026).

``TimerConfig`` holds T1, T2, T4 and what derives from them; every duration a
transaction or dialog arms comes from here, so a test (or an operator on a
lossy link) changes T1 once. ``Timers`` is the handful of named deadlines one
transaction or dialog has running: it answers the earliest one and hands back
the due ones in deadline order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TimerName(Enum):
    """RFC 3261 Table 4 letters, RFC 6026's L and M, and the few warpd adds."""

    A = "A"  # INVITE request retransmit (UDP)
    B = "B"  # INVITE transaction timeout
    C = "C"  # INVITE still unanswered after provisional responses (16.6 item 11)
    D = "D"  # wait for response retransmits after a non-2xx final
    E = "E"  # non-INVITE request retransmit (UDP)
    F = "F"  # non-INVITE transaction timeout
    G = "G"  # INVITE final response retransmit (UDP)
    H = "H"  # wait for ACK receipt
    I = "I"  # noqa: E741 - the spec's name; wait for ACK retransmits
    J = "J"  # wait for non-INVITE request retransmits
    K = "K"  # wait for non-INVITE response retransmits
    L = "L"  # RFC 6026: wait for INVITE retransmits after a 2xx (Accepted)
    M = "M"  # RFC 6026: wait for 2xx retransmits (Accepted)
    TRYING = "Trying"  # 17.2.1: send 100 Trying if the TU has not answered in 200 ms
    RETRANSMIT_2XX = "2xx"  # 13.3.1.4: UAS core retransmits its 2xx until ACK
    GIVE_UP_2XX = "2xx-give-up"  # 13.3.1.4: no ACK after 64*T1

    # Identity hashes: Enum's __hash__ is a Python call, and timers key dicts
    # touched on every message (transaction.py's Role says why).
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2, T4 (RFC 3261 section 17.1.1.1 defaults) and the derived durations."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    # 17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it
    # knows that the TU will generate a provisional or final response within 200 ms".
    trying_delay: float = 0.2
    # 17.1.1.2: Timer D "at least 32 seconds for unreliable transports".
    timer_d: float = 32.0
    # 16.6 item 11: "Timer C MUST be set ... greater than 3 minutes".
    timer_c: float = 180.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 <= 0 or self.trying_delay < 0 or self.timer_d < 0 or self.timer_c <= 0:
            raise ValueError("timer durations must be positive")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L, M and the 2xx give-up of 13.3.1.4."""
        return 64 * self.t1

    def wait_d(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_d

    def wait_t4(self, reliable: bool) -> float:
        """Timers I and K: T4 over UDP, zero over a reliable transport."""
        return 0.0 if reliable else self.t4

    def wait_j(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timeout

    def next_interval(self, interval: float, *, cap: bool = True) -> float:
        """The doubled retransmit interval: min(2x, T2) for E, G and 2xx, uncapped for A."""
        doubled = 2 * interval
        return min(doubled, self.t2) if cap else doubled


class Timers:
    """Named deadlines of one transaction or dialog (absolute, monotonic seconds)."""

    __slots__ = ("_deadlines",)

    def __init__(self) -> None:
        self._deadlines: dict[TimerName, float] = {}

    def start(self, name: TimerName, at: float) -> None:
        self._deadlines[name] = at

    def stop(self, *names: TimerName) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def clear(self) -> None:
        self._deadlines.clear()

    def running(self, name: TimerName) -> bool:
        return name in self._deadlines

    def earliest(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def pop_due(self, now: float) -> TimerName | None:
        """The earliest timer due at ``now`` (removed), or None.

        One at a time, because firing one timer may stop or restart others
        (Timer B firing ends the transaction and with it Timer A).
        """
        if not self._deadlines:
            return None
        name = min(self._deadlines, key=self._deadlines.__getitem__)
        if self._deadlines[name] > now:
            return None
        del self._deadlines[name]
        return name
