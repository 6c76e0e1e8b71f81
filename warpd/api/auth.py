"""Who is calling: API keys for customers, one admin token for operators.

API keys are looked up by their visible prefix and cached for
``[api] key_cache_seconds`` so the send path does not ask PostgreSQL on every
request. A header whose key passed the hash comparison is remembered as it
came for as long as its key's entry is fresh, so a client that repeats it
costs one dict look-up, not a parse, a SHA-256 and a comparison each time
(keyed by Python's randomised string hash, the look-up's timing says nothing
of the secret; the secret is in memory with every request anyway). Each key
has its own token bucket (``api_keys.rate_per_s``/``burst`` or the config's
defaults). Client addresses are the TCP peer's: warpd does not trust
X-Forwarded-For, so put no proxy in front of a key with an allow-list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from warpd.api.errors import ApiError
from warpd.api.ratelimit import Bucket, retry_after_header, take
from warpd.auth import apikeys
from warpd.config.schema import AdminConfig, ApiConfig
from warpd.errors import ConfigError
from warpd.store import Database

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCOPES = ("sms:send", "sms:read", "account:read", "webhooks", "otp")
# Unknown prefixes are cached too, so a flood of made-up keys costs one query
# per prefix per TTL; past this many entries the cache starts over.
_CACHE_MAX = 100_000
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    account_id: int
    prefix: str
    key_hash: bytes
    scopes: frozenset[str]
    networks: tuple[Network, ...]
    rate_per_s: float | None
    burst: int | None
    expires_at: dt.datetime | None
    revoked: bool


def bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def allowed(remote: str | None, networks: Iterable[Network]) -> bool:
    """True for an empty allow-list; else the peer must be inside one network."""
    nets = tuple(networks)
    if not nets:
        return True
    if remote is None:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in net for net in nets)


class KeyStore:
    def __init__(
        self,
        database: Database,
        config: ApiConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self.config = config
        self._clock = clock
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        #: Authorization header -> (its key, when that key was loaded): verified headers.
        self._verified: dict[str, tuple[ApiKey, float]] = {}
        self._buckets: dict[int, Bucket] = {}
        #: Live warpd instances behind the same HTTP proxy: each takes its share of
        #: a key's limit, so the limit holds in total (README "Running several instances").
        self.instances: Callable[[], int] = lambda: 1
        # One query per prefix at a time: a busy key's cache expiry is one
        # round trip, not one per request that arrived meanwhile.
        self._loading: dict[str, asyncio.Task[ApiKey | None]] = {}

    def forget(self, prefix: str) -> None:
        """Drop a cached key at once (revocation on this instance)."""
        self._cache.pop(prefix, None)
        for header in [h for h, (key, _) in self._verified.items() if key.prefix == prefix]:
            del self._verified[header]

    async def authenticate(self, header: str | None, remote: str | None, scope: str) -> ApiKey:
        verified = self._verified.get(header) if header is not None else None
        if verified is not None and self._clock() - verified[1] < self.config.key_cache_seconds:
            key = verified[0]
        else:
            key = await self._verify(header)
        # The clock is read only for a key that can expire (most cannot).
        if key.expires_at is not None and key.expires_at <= dt.datetime.now(dt.UTC):
            raise ApiError(401, "unauthorized", "unknown, revoked or expired API key")
        if not allowed(remote, key.networks):
            raise ApiError(403, "ip_not_allowed", f"this key is not allowed from {remote}")
        if scope not in key.scopes:
            raise ApiError(403, "missing_scope", f"this key lacks the {scope!r} scope")
        return key

    async def _verify(self, header: str | None) -> ApiKey:
        """The key ``header`` names, its hash compared; remembered until its entry expires."""
        token = bearer(header)
        if header is None or token is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <API key>")
        prefix = apikeys.prefix_of(token)
        key = await self._lookup(prefix) if prefix is not None else None
        if key is None or not apikeys.matches(token, key.key_hash) or key.revoked:
            raise ApiError(401, "unauthorized", "unknown, revoked or expired API key")
        entry = self._cache.get(key.prefix)
        if entry is not None and entry[0] is key:  # not forgotten while it loaded
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[header] = (key, entry[1])
        return key

    def charge(self, key: ApiKey, cost: int = 1) -> None:
        """Take ``cost`` tokens from the key's bucket, or raise 429 with Retry-After."""
        now = self._clock()
        share = max(1, self.instances())
        rate = (key.rate_per_s or self.config.default_rate_per_s) / share
        burst = max(1, math.ceil((key.burst or self.config.default_burst) / share))
        bucket = self._buckets.get(key.id)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = Bucket.full(rate, burst, now)
        bucket, wait = take(bucket, now, cost)
        self._buckets[key.id] = bucket
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"over this key's limit of {rate:g}/s (burst {burst})",
                headers={"Retry-After": retry_after_header(wait)},
            )

    async def _lookup(self, prefix: str) -> ApiKey | None:
        cached = self._cache.get(prefix)
        if cached is not None and self._clock() - cached[1] < self.config.key_cache_seconds:
            return cached[0]
        task = self._loading.get(prefix)
        if task is None:
            task = asyncio.ensure_future(self._load(prefix))
            self._loading[prefix] = task
            task.add_done_callback(lambda _: self._loading.pop(prefix, None))
        # Shielded: one caller giving up does not cancel the others' answer.
        return await asyncio.shield(task)

    async def _load(self, prefix: str) -> ApiKey | None:
        now = self._clock()
        async with self._database.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, account_id, prefix, key_hash, scopes, allowed_ips, rate_per_s,"
                " burst, expires_at, revoked_at IS NOT NULL AS revoked"
                " FROM api_keys WHERE prefix = $1",
                prefix,
            )
            if row is not None:
                # Once per cache refresh, not per request: "used within the TTL".
                await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", row[0])
        key = None
        if row is not None:
            key = ApiKey(
                id=row["id"],
                account_id=row["account_id"],
                prefix=row["prefix"],
                key_hash=bytes(row["key_hash"]),
                scopes=frozenset(row["scopes"]),
                networks=tuple(row["allowed_ips"]),
                rate_per_s=float(row["rate_per_s"]) if row["rate_per_s"] is not None else None,
                burst=row["burst"],
                expires_at=row["expires_at"],
                revoked=row["revoked"],
            )
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[prefix] = (key, now)
        return key


class AdminGate:
    """The admin token (compared by its SHA-256, constant-time) and address allow-list."""

    def __init__(self, config: AdminConfig) -> None:
        # Tokens the daemon itself made (the demo's), kept across reloads.
        self._extra: set[bytes] = set()
        self.configure(config)

    def also_accept(self, digest: bytes) -> None:
        """Accept a token by its SHA-256 besides the configured one."""
        self._extra.add(digest)

    def configure(self, config: AdminConfig) -> None:
        if config.token_hash and not _SHA256_HEX.match(config.token_hash):
            raise ConfigError("[admin]", "admin.token_hash", "must be 64 hex digits (SHA-256)")
        self._hash = bytes.fromhex(config.token_hash) if config.token_hash else None
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in config.allowed_ips)

    def check(self, header: str | None, remote: str | None) -> str:
        """The actor name for the audit log, or raise 401/403."""
        if not allowed(remote, self._networks):
            raise ApiError(403, "ip_not_allowed", f"the admin API does not answer {remote}")
        accepted = self._extra | ({self._hash} if self._hash is not None else set())
        if not accepted:
            raise ApiError(403, "admin_disabled", "the admin API is off: set [admin] token_hash")
        token = bearer(header)
        # aiohttp decodes header bytes that are not UTF-8 as surrogates: hash the bytes sent.
        raw = token.encode("utf-8", "surrogateescape") if token is not None else None
        digest = hashlib.sha256(raw).digest() if raw is not None else b""
        # Compare with every accepted hash, so timing says nothing of which matched.
        if not sum(hmac.compare_digest(digest, h) for h in accepted):
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <admin token>")
        return f"admin@{remote}"
