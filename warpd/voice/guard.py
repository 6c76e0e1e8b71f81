"""Digest brute-force lockout: wrong answers counted per source address and per username.

The policy, as an operator running PBXs behind trunks expects it:

* ``limit`` wrong digest responses (or unknown usernames) from one source
  address within ``window`` seconds lock that address out: its requests are
  refused 403 without a new challenge, a right answer included, so guessing
  stops paying. The lockout lasts ``base`` seconds, doubling with each repeat
  up to an hour (``warpd.auth.lockout``, as for SMPP binds).
* ``limit`` wrong responses for one username, from any addresses, lock the
  username out in the same way (a guesser spread over many addresses), except
  for the addresses that answered right for it within the last day: the PBX
  that owns the trunk keeps calling while someone else guesses its password.
  A PBX that moves to a new address during an attack waits for the lockout.

Pure policy over an explicit monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from warpd.auth.lockout import Lockout

TRUSTED_FOR = 86_400.0  # seconds a right answer keeps its address exempt
TRUSTED_PER_USER = 4  # addresses remembered per username (a PBX and its fail-over)


class Scope(Enum):
    SOURCE = "source"
    USER = "user"


@dataclass(slots=True)
class DigestGuard:
    limit: int
    window: float = 300.0
    base: float = 60.0
    sources: Lockout = field(init=False)
    users: Lockout = field(init=False)
    _trusted: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sources = Lockout(self.limit, self.window, self.base)
        self.users = Lockout(self.limit, self.window, self.base)

    def source_locked(self, source: str, now: float) -> bool:
        return self.sources.locked(source, now)

    def user_locked(self, username: str, source: str, now: float) -> bool:
        if not self.users.locked(username, now):
            return False
        trusted = self._trusted.get(username, {}).get(source)
        return trusted is None or trusted <= now - TRUSTED_FOR

    def failed(self, source: str, username: str | None, now: float) -> list[Scope]:
        """Count a wrong answer (``username`` None: unknown); the scopes it locked out."""
        locked = [Scope.SOURCE] if self.sources.failed(source, now) else []
        if username is not None and self.users.failed(username, now):
            locked.append(Scope.USER)
        return locked

    def succeeded(self, source: str, username: str, now: float) -> None:
        self.sources.succeeded(source)
        trusted = self._trusted.setdefault(username, {})
        trusted.pop(source, None)
        trusted[source] = now
        while len(trusted) > TRUSTED_PER_USER:
            del trusted[next(iter(trusted))]  # the oldest: dicts keep insertion order

    def forget_idle(self, now: float) -> None:
        self.sources.forget_idle(now)
        self.users.forget_idle(now)
