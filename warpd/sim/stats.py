"""Counters, percentiles and the JSON-lines logs the reliability suite reconciles.

``EventLog`` writes one orjson line per event into a large buffer and flushes
it every ``flush_interval`` seconds and on close, so a run that is killed
loses at most that much of the simulator's (or load generator's) record.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson


@dataclass(slots=True)
class SmscStats:
    """What the simulator did since it started; ``snapshot()`` is what GET /stats returns."""

    connections: int = 0
    binds: int = 0
    binds_refused: int = 0
    submits_by_status: Counter[str] = field(default_factory=Counter)
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_refused: int = 0  # deliver_sm (receipts, and MO) refused for good: not retried
    receipts_resent: int = 0  # after a close or a response timeout
    receipts_for_unknown: int = 0
    mo_sent: int = 0
    mo_acked: int = 0
    garbage_sent: int = 0
    drops: int = 0
    unbinds: int = 0  # sessions that ended with the unbind handshake (not a dropped link)
    stray_responses: int = 0
    rejected_pdus: int = 0  # PDUs the session refused itself (generic_nack and the like)
    # Binds open now, and the most open at once, per system_id: a carrier counts its
    # limit (Sinch: two per account) over every connection, whoever opens them.
    bound_now: Counter[str] = field(default_factory=Counter)
    max_concurrent_binds: Counter[str] = field(default_factory=Counter)

    @property
    def submits(self) -> int:
        return sum(self.submits_by_status.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "binds": self.binds,
            "binds_refused": self.binds_refused,
            "submits": self.submits,
            "submits_by_status": dict(self.submits_by_status),
            "receipts_sent": self.receipts_sent,
            "receipts_acked": self.receipts_acked,
            "receipts_refused": self.receipts_refused,
            "receipts_resent": self.receipts_resent,
            "receipts_for_unknown": self.receipts_for_unknown,
            "mo_sent": self.mo_sent,
            "mo_acked": self.mo_acked,
            "garbage_sent": self.garbage_sent,
            "drops": self.drops,
            "unbinds": self.unbinds,
            "stray_responses": self.stray_responses,
            "rejected_pdus": self.rejected_pdus,
            "bound_now": dict(self.bound_now),
            "max_concurrent_binds": dict(self.max_concurrent_binds),
        }


class EventLog:
    """Append-only JSON lines; ``write`` adds the wall-clock time as ``t``."""

    __slots__ = ("_file", "_flush_interval", "_last_flush")

    def __init__(self, path: Path, flush_interval: float = 1.0) -> None:
        self._file: IO[bytes] = path.open("ab", buffering=1 << 20)
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        record["t"] = time.time()
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        now = time.monotonic()
        if now - self._last_flush >= self._flush_interval:
            self._last_flush = now
            self._file.flush()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
