"""API keys: ``wk_<8 hex>_<43 base64url>``, a visible prefix and a 256-bit secret.

Only the SHA-256 of the whole key is stored (``api_keys.key_hash``): the secret
is 256 random bits, so a slow hash would add nothing against guessing, and a
fast one keeps authentication off the hot path's CPU budget. The prefix is the
row's lookup key and what lists and logs show. Admin tokens use the same
shape with ``wa_``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_KEY = re.compile(r"^(w[ka]_[0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    key: str  # shown once, at creation
    key_hash: bytes


def generate(kind: str = "wk") -> NewKey:
    prefix = f"{kind}_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix, key, digest(key))


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def prefix_of(key: str, kind: str = "wk") -> str | None:
    """The lookup prefix of a well-formed key of ``kind``, else None (nothing to look up)."""
    match = _KEY.match(key)
    return match[1] if match and match[1].startswith(kind + "_") else None


def matches(key: str, key_hash: bytes) -> bool:
    """Constant-time: the comparison does not reveal how much of the hash matched."""
    return hmac.compare_digest(digest(key), key_hash)
