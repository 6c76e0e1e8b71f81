"""Failures counted per key (an address, a system_id, a username); escalating lockouts.

A guessed password costs the guesser more than one slow answer: ``limit``
failures within ``window`` seconds lock the key out for ``base`` seconds,
doubling with each lockout up to ``ceiling``. While locked, a bind (or a SIP
request) is refused without its password being checked, so guesses in
parallel stop counting. SMPP binds and SIP digest share it. Pure policy over
an explicit clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0


@dataclass(slots=True)
class Lockout:
    limit: int
    window: float = 300.0
    base: float = 60.0
    ceiling: float = 3600.0
    _records: dict[str, _Record] = field(default_factory=dict)

    def locked(self, key: str, now: float) -> bool:
        record = self._records.get(key)
        return record is not None and now < record.locked_until

    def failed(self, key: str, now: float) -> bool:
        """Count a failure; True when it locks ``key`` out."""
        record = self._records.setdefault(key, _Record())
        failures = record.failures
        failures.append(now)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.limit:
            return False
        failures.clear()
        record.locked_until = now + min(self.base * 2**record.lockouts, self.ceiling)
        record.lockouts += 1
        return True

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def forget_idle(self, now: float) -> None:
        """Drop keys with nothing recent, so a scan of addresses cannot grow memory for ever."""
        for key in [
            k for k, r in self._records.items()
            if now >= r.locked_until and (not r.failures or r.failures[-1] <= now - self.window)
        ]:  # fmt: skip
            del self._records[key]
