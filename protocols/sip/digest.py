"""SIP digest authentication: RFC 3261 section 22.4, RFC 7616 section 3, RFC 8760.

This module holds the algorithms, the challenge and credentials records and
the client; ``digest_server`` holds the server. Both ends of it:

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

import hashlib
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
