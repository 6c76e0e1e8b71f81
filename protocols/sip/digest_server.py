"""SIP digest authentication, server side (RFC 3261 section 22.4, RFC 7616 section 3.3-3.5).

``DigestServer`` challenges a PBX with one challenge per algorithm in
preference order (RFC 8760 section 2.4) and verifies its answer. Nonces are
self-validating (an HMAC over the issue time with a secret shared by every
warpd instance) and expire; an otherwise right answer on an expired nonce is
answered ``stale=true``. ``nc`` replays are refused through a bounded store of
the highest count seen per nonce.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from protocols.sip.digest import (
    PREFERENCE,
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    compute_ha1,
    compute_response,
)


class Verdict(Enum):
    """What ``DigestServer.verify`` concluded; anything but OK means challenge again."""

    OK = "ok"
    STALE = "stale"  # right answer on an expired nonce: re-challenge with stale=true
    WRONG_RESPONSE = "wrong-response"  # wrong password (or username, or tampering)
    INVALID_NONCE = "invalid-nonce"  # not issued by us (or the secret changed)
    REPLAY = "replay"  # nc not above the highest seen for this nonce
    REALM_MISMATCH = "realm-mismatch"
    ALGORITHM_NOT_OFFERED = "algorithm-not-offered"
    QOP_MISMATCH = "qop-mismatch"  # qop absent when we asked for auth, or the reverse


@dataclass(frozen=True, slots=True)
class DigestPolicy:
    """How a server challenges. ``qop_auth=False`` is RFC 2069 mode for old PBXs."""

    realm: str
    algorithms: tuple[DigestAlgorithm, ...] = PREFERENCE
    nonce_lifetime: float = 300.0
    qop_auth: bool = True
    max_tracked_nonces: int = 10_000


# Nonce layout: 8-byte issue time, 12 random bytes, 16-byte HMAC-SHA-256 tag.
_TS_LEN, _RAND_LEN, _TAG_LEN = 8, 12, 16
_NONCE_LEN = _TS_LEN + _RAND_LEN + _TAG_LEN
# Instances' wall clocks differ a little; a nonce from a peer slightly ahead is fresh.
_CLOCK_SKEW = 5.0


class NonceCounts:
    """Highest ``nc`` seen per nonce, bounded (RFC 7616 section 3.4: replay protection).

    When full it forgets the oldest entries and remembers the newest issue time
    it forgot (the watermark): a nonce not in the store but issued at or before
    the watermark may have been used already, so it is answered as stale (the
    client retries with a fresh nonce) instead of trusted.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._highest: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._watermark = -1

    def check(self, nonce: str, issued: int, nc: int) -> Verdict:
        seen = self._highest.get(nonce)
        if seen is None:
            if issued <= self._watermark:
                return Verdict.STALE
        elif nc <= seen[0]:
            return Verdict.REPLAY
        self._highest[nonce] = (nc, issued)
        self._highest.move_to_end(nonce)
        while len(self._highest) > self._capacity:
            _, (_, forgotten_issued) = self._highest.popitem(last=False)
            self._watermark = max(self._watermark, forgotten_issued)
        return Verdict.OK

    def __len__(self) -> int:
        return len(self._highest)


class DigestServer:
    """Challenges and verifies (RFC 3261 section 22.4 as UAS/registrar/proxy)."""

    def __init__(
        self, policy: DigestPolicy, secret: bytes, random_bytes: Callable[[int], bytes]
    ) -> None:
        self.policy = policy
        self._secret = secret
        self._random_bytes = random_bytes
        self._counts = NonceCounts(policy.max_tracked_nonces)
        self._realm_bytes = policy.realm.encode()
        # The opaque is constant per realm and secret: the client echoes it and
        # a foreign one shows the answer was not meant for this server.
        tag = hmac.digest(secret, b"opaque\x00" + self._realm_bytes, "sha256")
        self.opaque = base64.urlsafe_b64encode(tag[:12]).decode()

    def _tag(self, head: bytes) -> bytes:
        mac = hmac.digest(self._secret, self._realm_bytes + b"\x00" + head, "sha256")
        return mac[:_TAG_LEN]

    def make_nonce(self, now: float) -> str:
        head = int(now).to_bytes(_TS_LEN, "big") + self._random_bytes(_RAND_LEN)[:_RAND_LEN]
        return base64.urlsafe_b64encode(head + self._tag(head)).decode()

    def nonce_issued(self, nonce: str) -> int | None:
        """The issue time of a nonce this server's secret made, else None."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error):
            return None
        if len(raw) != _NONCE_LEN:
            return None
        head, tag = raw[: _TS_LEN + _RAND_LEN], raw[_TS_LEN + _RAND_LEN :]
        if not hmac.compare_digest(tag, self._tag(head)):
            return None
        return int.from_bytes(head[:_TS_LEN], "big")

    def challenges(self, now: float, *, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per offered algorithm, strongest first, sharing one nonce."""
        nonce = self.make_nonce(now)
        qop = ("auth",) if self.policy.qop_auth else ()
        return [
            DigestChallenge(self.policy.realm, nonce, algorithm, qop, self.opaque, stale)
            for algorithm in self.policy.algorithms
        ]

    def verify(
        self,
        credentials: DigestCredentials,
        method: str,
        now: float,
        *,
        password: str | None = None,
        ha1: str | None = None,
    ) -> Verdict:
        """Check an answer; the caller looked the user up and passes its password or
        the H(A1) for ``credentials.algorithm``.

        Every check that needs no secret runs first, the response is compared in
        constant time, and only a right response can come back STALE or REPLAY
        (RFC 7616 section 3.3: stale means "the nonce was invalid but the
        digest was valid").
        """
        if ha1 is None:
            if password is None:
                raise ValueError("verify needs the password or the H(A1)")
            ha1 = compute_ha1(
                credentials.algorithm, credentials.username, self.policy.realm, password
            )
        early = self._precheck(credentials)
        if early is not None:
            return early
        issued = self.nonce_issued(credentials.nonce)
        if issued is None:
            return Verdict.INVALID_NONCE
        expected = compute_response(
            credentials.algorithm,
            ha1,
            credentials.nonce,
            method,
            credentials.uri,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
        )
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return Verdict.WRONG_RESPONSE
        if not -_CLOCK_SKEW <= now - issued <= self.policy.nonce_lifetime:
            return Verdict.STALE
        if credentials.nc is None:
            return Verdict.OK
        return self._counts.check(credentials.nonce, issued, credentials.nc)

    def _precheck(self, credentials: DigestCredentials) -> Verdict | None:
        if credentials.realm != self.policy.realm:
            return Verdict.REALM_MISMATCH
        if credentials.algorithm not in self.policy.algorithms:
            return Verdict.ALGORITHM_NOT_OFFERED
        wanted = "auth" if self.policy.qop_auth else None
        if credentials.qop != wanted:
            return Verdict.QOP_MISMATCH
        if credentials.opaque is not None and credentials.opaque != self.opaque:
            return Verdict.INVALID_NONCE
        return None
