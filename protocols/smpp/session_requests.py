"""The requests a session sent and awaits responses to (SMPP 3.4 sections 2.6, 5.1.4, 7.2).

Requests are numbered 1 .. 0x7FFFFFFF, wrapping (section 5.1.4), skipping a
number still in flight; the traffic among them (``WINDOWED``) counts against
the window; each waits ``response_timeout`` for its response (the section 7.2
response_timer). A response settles the request whose sequence_number it
echoes when its command_id is that request's response or generic_nack.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.constants import RESPONSE_BIT, CommandId
from protocols.smpp.pdu import RESPONSE_CLASSES, Pdu
from protocols.smpp.session_state import WINDOWED

MAX_SEQUENCE_NUMBER = 0x7FFFFFFF
_GENERIC_NACK = CommandId.GENERIC_NACK


@dataclass(slots=True)
class Outstanding:
    request: Pdu
    deadline: float
    internal: bool  # an enquire_link the session sent on its own


class Requests:
    """Outstanding requests in deadline order (one response_timeout for all)."""

    __slots__ = ("_entries", "_next", "response_timeout", "window", "windowed")

    def __init__(self, window: int, response_timeout: float, first_sequence_number: int) -> None:
        if not 1 <= first_sequence_number <= MAX_SEQUENCE_NUMBER:
            raise ValueError("sequence numbers run 1..0x7FFFFFFF")
        self.window = window
        self.response_timeout = response_timeout
        self.windowed = 0  # outstanding requests that count against the window
        self._next = first_sequence_number
        # Insertion order is deadline order, so the first entry expires first.
        self._entries: dict[int, Outstanding] = {}

    def number(self) -> int:
        """The sequence_number for the next request."""
        seq = self._next
        entries = self._entries
        while seq in entries:  # only after a full wrap with old requests in flight
            seq = seq % MAX_SEQUENCE_NUMBER + 1
        return seq

    def add(self, request: Pdu, now: float, *, internal: bool) -> None:
        """Record ``request`` (numbered by ``number``) as written at ``now``."""
        seq = request.sequence_number
        self._next = seq % MAX_SEQUENCE_NUMBER + 1
        cid = request.command_id
        if cid in RESPONSE_CLASSES:
            self._entries[seq] = Outstanding(request, now + self.response_timeout, internal)
            if cid in WINDOWED:
                self.windowed += 1

    def answered(self, sequence_number: int, response_command_id: int) -> Outstanding | None:
        """The request that a response with this header settles, or None (a stray)."""
        entry = self._entries.get(sequence_number)
        if entry is None or response_command_id not in (
            entry.request.command_id | RESPONSE_BIT,
            _GENERIC_NACK,
        ):
            return None
        return entry

    def remove(self, entry: Outstanding) -> bool:
        """Forget ``entry``; True when its slot was the first free one of a full window."""
        del self._entries[entry.request.sequence_number]
        if entry.request.command_id not in WINDOWED:
            return False
        windowed = self.windowed
        self.windowed = windowed - 1
        return windowed == self.window

    def expired(self, now: float) -> Outstanding | None:
        """The oldest request whose response_timer has run out at ``now``, or None."""
        entry = next(iter(self._entries.values()), None)
        if entry is None or entry.deadline > now:
            return None
        return entry

    @property
    def deadline(self) -> float | None:
        """When the oldest request times out."""
        entry = next(iter(self._entries.values()), None)
        return None if entry is None else entry.deadline

    def clear(self) -> tuple[Pdu, ...]:
        """Forget everything; the windowed requests that never got a response."""
        unacknowledged = tuple(
            e.request for e in self._entries.values() if e.request.command_id in WINDOWED
        )
        self._entries.clear()
        self.windowed = 0
        return unacknowledged
