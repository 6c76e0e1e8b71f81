"""One timer for many deadlines: a heap of callbacks behind a single ``loop.call_at``.

The simulator answers thousands of submit_sm per second after a delay; a task
or a TimerHandle per message would cost more than the message. Here every due
callback runs in one wake-up, and ``after`` runs once per wake-up too, which
is where the glue flushes each connection it wrote to (one write per batch).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable


class Timers:
    __slots__ = ("_after", "_handle", "_heap", "_loop", "_order", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, after: Callable[[], None]) -> None:
        self._loop = loop
        self._after = after
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties run in the order they were scheduled
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf  # when the handle fires; inf when there is none

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._order), callback))
        if when < self._when:
            self._arm(when)

    def clear(self) -> None:
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = math.inf

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        # While firing, call_at only pushes (nothing compares below -inf); the
        # timer is armed once, after, for whatever is then first.
        self._when = -math.inf
        heap = self._heap
        now = self._loop.time()
        # call_at may fire up to a millisecond early (uvloop's timer resolution);
        # running those callbacks now saves a wake-up that would do nothing.
        limit = now + 0.001
        try:
            while heap and heap[0][0] <= limit:
                heapq.heappop(heap)[2]()
            self._after()
        finally:
            self._when = math.inf
            if heap:
                self._arm(heap[0][0])
