"""SIP digest authentication: RFC 3261 section 22.4, RFC 7616 section 3, RFC 8760.

Both ends of it:

* ``DigestServer`` challenges a PBX (401 WWW-Authenticate for REGISTER, 407
  Proxy-Authenticate for INVITE) with one challenge per algorithm in preference
  order (SHA-512-256, SHA-256, MD5; RFC 8760 section 2.4 lets a server offer
  several) and verifies its answer. Nonces are self-validating: an HMAC over a
  timestamp with a shared secret, so any warpd instance verifies any other's
  nonce without shared state, and they expire (an otherwise right answer on an
  expired nonce asks for ``stale=true``). ``nc`` replays are refused through a
  bounded per-nonce store of the highest count seen.
* ``DigestClient`` answers a carrier's 401/407 with per-carrier credentials,
  picking the strongest algorithm it offers and counting ``nc``.

The ``-sess`` variants and ``qop=auth-int`` are not offered or answered: no
SIP peer warpd meets needs them, and a challenge offering only them is skipped.
Wall-clock seconds come in as ``now`` (nonces must mean the same on every
instance, which monotonic time would not); randomness from injected callables.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from protocols.sip.digest_sha512 import sha512_256_hex
from protocols.sip.errors import SipError
from protocols.sip.grammar import quote
from protocols.sip.headers import AuthValue, parse_auth


class DigestAlgorithm(Enum):
    """The algorithm parameter values of RFC 7616 section 3.3 / RFC 8760 section 2.2."""

    SHA_512_256 = "SHA-512-256"
    SHA_256 = "SHA-256"
    MD5 = "MD5"


# Strongest first: the order of a multi-challenge and of a client's choice.
PREFERENCE: tuple[DigestAlgorithm, ...] = (
    DigestAlgorithm.SHA_512_256,
    DigestAlgorithm.SHA_256,
    DigestAlgorithm.MD5,
)

_BY_NAME: dict[str, DigestAlgorithm] = {a.value.lower(): a for a in DigestAlgorithm}


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HASH: dict[DigestAlgorithm, Callable[[bytes], str]] = {
    DigestAlgorithm.MD5: _md5_hex,
    DigestAlgorithm.SHA_256: _sha256_hex,
    DigestAlgorithm.SHA_512_256: sha512_256_hex,
}


def compute_ha1(algorithm: DigestAlgorithm, username: str, realm: str, password: str) -> str:
    """H(A1) = H(username ":" realm ":" passwd) (RFC 7616 section 3.4.2).

    Store this per algorithm instead of the password.
    """
    return _HASH[algorithm](f"{username}:{realm}:{password}".encode())


def compute_response(
    algorithm: DigestAlgorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: int | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest of RFC 7616 section 3.4.1, or RFC 2069's when ``qop`` is None."""
    digest = _HASH[algorithm]
    ha2 = digest(f"{method}:{uri}".encode())
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}".encode())
    return digest(f"{ha1}:{nonce}:{nc or 0:08x}:{cnonce or ''}:{qop}:{ha2}".encode())


def _algorithm(params: dict[str, str]) -> DigestAlgorithm:
    # RFC 7616 section 3.3: "If this is not present, it is assumed to be MD5".
    name = params.get("algorithm", "MD5")
    algorithm = _BY_NAME.get(name.lower())
    if algorithm is None:
        raise SipError(f"unsupported digest algorithm {name!r}")
    return algorithm


def _digest_params(auth: AuthValue) -> dict[str, str]:
    if auth.scheme.lower() != "digest" or auth.token68 is not None:
        raise SipError(f"not a Digest auth value: {auth.scheme!r}")
    return auth.param_dict


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise SipError(f"digest {name} missing")
    return value


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One WWW-Authenticate / Proxy-Authenticate value (RFC 7616 section 3.3)."""

    realm: str
    nonce: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    def to_auth(self) -> AuthValue:
        params = [("realm", quote(self.realm)), ("nonce", quote(self.nonce))]
        if self.opaque is not None:
            params.append(("opaque", quote(self.opaque)))
        params.append(("algorithm", self.algorithm.value))
        if self.qop:
            params.append(("qop", quote(",".join(self.qop))))
        if self.stale:
            params.append(("stale", "true"))
        return AuthValue("Digest", tuple(params))

    def __str__(self) -> str:
        return str(self.to_auth())

    @classmethod
    def parse(cls, value: str | AuthValue) -> DigestChallenge:
        """Raises ``SipError`` for another scheme, bad syntax or an unknown algorithm."""
        params = _digest_params(parse_auth(value) if isinstance(value, str) else value)
        qop = tuple(q.strip(" \t") for q in params.get("qop", "").split(",") if q.strip(" \t"))
        return cls(
            realm=_required(params, "realm"),
            nonce=_required(params, "nonce"),
            algorithm=_algorithm(params),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """One Authorization / Proxy-Authorization value (RFC 7616 section 3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: str | None = None
    nc: int | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def to_auth(self) -> AuthValue:
        params = [
            ("username", quote(self.username)),
            ("realm", quote(self.realm)),
            ("nonce", quote(self.nonce)),
            ("uri", quote(self.uri)),
            ("response", quote(self.response)),
            ("algorithm", self.algorithm.value),
        ]
        if self.cnonce is not None:
            params.append(("cnonce", quote(self.cnonce)))
        if self.opaque is not None:
            params.append(("opaque", quote(self.opaque)))
        if self.qop is not None:
            # RFC 3261 section 25.1 and RFC 7616 section 3.4: qop and nc are unquoted.
            params.extend((("qop", self.qop), ("nc", f"{self.nc or 0:08x}")))
        return AuthValue("Digest", tuple(params))

    def __str__(self) -> str:
        return str(self.to_auth())

    @classmethod
    def parse(cls, value: str | AuthValue) -> DigestCredentials:
        """Raises ``SipError`` (answered 400) for anything malformed."""
        params = _digest_params(parse_auth(value) if isinstance(value, str) else value)
        qop = params.get("qop")
        nc: int | None = None
        if qop is not None:
            nc_text = _required(params, "nc")
            if len(nc_text) != 8:
                raise SipError(f"digest nc {nc_text!r} is not 8 hex digits")
            try:
                nc = int(nc_text, 16)
            except ValueError:
                raise SipError(f"digest nc {nc_text!r} is not 8 hex digits") from None
            _required(params, "cnonce")
        return cls(
            username=_required(params, "username"),
            realm=_required(params, "realm"),
            nonce=_required(params, "nonce"),
            uri=_required(params, "uri"),
            response=_required(params, "response"),
            algorithm=_algorithm(params),
            qop=qop,
            nc=nc,
            cnonce=params.get("cnonce"),
            opaque=params.get("opaque"),
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


class DigestClient:
    """Answers challenges with one set of credentials (RFC 3261 section 22.2 as UAC).

    ``cnonce_source`` returns a fresh client nonce per answer. ``nc`` counts the
    answers given per nonce (a server re-challenging with the same nonce gets
    the next count); the store is bounded because a carrier mints a nonce per
    challenge.
    """

    _MAX_NONCES = 64

    def __init__(
        self,
        username: str,
        password: str,
        cnonce_source: Callable[[], str],
        algorithms: Sequence[DigestAlgorithm] = PREFERENCE,
    ) -> None:
        self.username = username
        self._password = password
        self._cnonce_source = cnonce_source
        self._algorithms = tuple(algorithms)
        self._nc: OrderedDict[str, int] = OrderedDict()

    def choose(
        self, challenges: Iterable[str | AuthValue | DigestChallenge]
    ) -> DigestChallenge | None:
        """The strongest challenge this client can answer; unknown ones are skipped."""
        usable: list[DigestChallenge] = []
        for item in challenges:
            try:
                challenge = (
                    item if isinstance(item, DigestChallenge) else DigestChallenge.parse(item)
                )
            except SipError:
                continue
            if challenge.algorithm in self._algorithms and (
                not challenge.qop or "auth" in challenge.qop
            ):
                usable.append(challenge)
        if not usable:
            return None
        return min(usable, key=lambda c: self._algorithms.index(c.algorithm))

    def answer(
        self,
        challenges: Iterable[str | AuthValue | DigestChallenge],
        method: str,
        uri: str,
    ) -> DigestCredentials | None:
        """Credentials for a request to ``uri``, or None when nothing offered is usable."""
        challenge = self.choose(challenges)
        if challenge is None:
            return None
        qop: str | None = None
        nc: int | None = None
        cnonce: str | None = None
        if challenge.qop:
            qop, cnonce = "auth", self._cnonce_source()
            nc = self._next_nc(challenge.nonce)
        ha1 = compute_ha1(challenge.algorithm, self.username, challenge.realm, self._password)
        response = compute_response(
            challenge.algorithm, ha1, challenge.nonce, method, uri, qop=qop, nc=nc, cnonce=cnonce
        )
        return DigestCredentials(
            self.username,
            challenge.realm,
            challenge.nonce,
            uri,
            response,
            challenge.algorithm,
            qop,
            nc,
            cnonce,
            challenge.opaque,
        )

    def _next_nc(self, nonce: str) -> int:
        nc = self._nc.pop(nonce, 0) + 1
        self._nc[nonce] = nc
        while len(self._nc) > self._MAX_NONCES:
            self._nc.popitem(last=False)
        return nc
