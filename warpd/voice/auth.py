"""Digest authentication of trunks (RFC 3261 22.4, RFC 7616, RFC 8760), and of warpd
toward carriers that challenge it.

A request from an address no IP trunk covers must carry digest credentials for
a ``digest`` or ``register`` trunk: without them it is challenged (407 with
Proxy-Authenticate for INVITE, 401 with WWW-Authenticate for REGISTER), one
challenge per configured algorithm, strongest first. The trunk's stored H(A1)
for the algorithm the PBX chose is checked; a right answer on an expired nonce
is re-challenged with ``stale=true``, a wrong one refused 403 (challenging a
wrong password again only invites guessing). Nonces are wall-clock stamped and
HMAC-signed with ``secret`` (one per process unless configured). With a
``DigestGuard``, wrong answers are counted per source address and username and
a locked-out request gets 403 without a challenge (``warpd.voice.guard``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import structlog

from protocols.sip.digest import DigestAlgorithm, DigestClient, DigestCredentials
from protocols.sip.digest_server import DigestPolicy, DigestServer, Verdict
from protocols.sip.errors import SipError
from protocols.sip.message import SipRequest, SipResponse
from warpd.voice.guard import DigestGuard
from warpd.voice.metrics import VoiceMetrics
from warpd.voice.trunks import Directory, Gateway, Trunk

log = structlog.get_logger(__name__)

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    headers: Headers = ()
    reason: str | None = None


LOCKED_OUT = Refusal(403, reason="Locked Out")


def _ha1(trunk: Trunk, algorithm: DigestAlgorithm) -> str | None:
    if algorithm is DigestAlgorithm.MD5:
        return trunk.ha1_md5
    if algorithm is DigestAlgorithm.SHA_256:
        return trunk.ha1_sha256
    return trunk.ha1_sha512_256


class TrunkAuth:
    def __init__(
        self,
        realm: str,
        algorithms: tuple[DigestAlgorithm, ...],
        secret: bytes | None = None,
        *,
        guard: DigestGuard | None = None,
        metrics: VoiceMetrics | None = None,
    ) -> None:
        policy = DigestPolicy(realm, algorithms)
        self.server = DigestServer(policy, secret or os.urandom(32), os.urandom)
        self.guard = guard
        self.metrics = metrics

    def _challenge(self, method: str, now: float, *, stale: bool = False) -> Refusal:
        name = "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
        status = 401 if method == "REGISTER" else 407
        challenges = self.server.challenges(now, stale=stale)
        return Refusal(status, tuple((name, str(c)) for c in challenges))

    def authenticate(
        self,
        request: SipRequest,
        directory: Directory,
        now: float,
        *,
        source: str = "",
        clock: float = 0.0,
    ) -> Trunk | Refusal:
        """The trunk whose credentials ``request`` carries, or how to answer it.
        ``now`` is wall-clock (nonces), ``clock`` monotonic (the guard); ``source``
        the request's address."""
        guard = self.guard
        if guard is not None and guard.source_locked(source, clock):
            return self._locked_out()
        method = request.method
        values = request.authorization if method == "REGISTER" else request.proxy_authorization
        realm = self.server.policy.realm
        for value in values:
            try:
                credentials = DigestCredentials.parse(value)
            except SipError:
                return Refusal(400, reason="Bad Authorization")
            if credentials.realm != realm:
                continue  # credentials for another hop (RFC 3261 22.3)
            username = credentials.username
            if guard is not None and guard.user_locked(username, source, clock):
                return self._locked_out()
            trunk = directory.trunk_for_user(username)
            ha1 = None if trunk is None else _ha1(trunk, credentials.algorithm)
            if trunk is None or ha1 is None:
                self._failed(source, None, username, clock)
                return Refusal(403, reason="Unknown User")
            verdict = self.server.verify(credentials, method, now, ha1=ha1)
            if verdict is Verdict.OK:
                if guard is not None:
                    guard.succeeded(source, username, clock)
                return trunk
            if verdict is Verdict.STALE:
                return self._challenge(method, now, stale=True)
            if verdict is Verdict.WRONG_RESPONSE:
                self._failed(source, username, username, clock)
                return Refusal(403, reason="Wrong Credentials")
            return self._challenge(method, now)
        return self._challenge(method, now)

    def _locked_out(self) -> Refusal:
        if self.metrics is not None:
            self.metrics.digest_locked.inc()
        return LOCKED_OUT

    def _failed(self, source: str, known: str | None, username: str, clock: float) -> None:
        """A wrong answer: ``known`` is the username when a trunk has it."""
        if self.metrics is not None:
            self.metrics.digest_failures.inc()
        if self.guard is None:
            return
        for scope in self.guard.failed(source, known, clock):
            if self.metrics is not None:
                self.metrics.digest_lockouts.labels(scope.value).inc()
            log.warning("sip_digest_lockout", scope=scope.value, source=source, username=username)


def answer_challenge(
    gateway: Gateway, request: SipRequest, response: SipResponse, cnonce: str
) -> tuple[str, str] | None:
    """The Authorization/Proxy-Authorization header for a carrier's 401/407, or None
    when the gateway has no credentials or offers nothing answerable."""
    if gateway.username is None or gateway.password is None:
        return None
    client = DigestClient(gateway.username, gateway.password, lambda: cnonce)
    if response.status == 401:
        challenges, name = response.www_authenticate, "Authorization"
    else:
        challenges, name = response.proxy_authenticate, "Proxy-Authorization"
    credentials = client.answer(challenges, request.method, request.uri_text)
    return None if credentials is None else (name, str(credentials))
