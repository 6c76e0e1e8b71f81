"""Password hashing for SMPP users: scrypt (RFC 7914) in one self-describing string.

The stored form is ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (the v1 schema's
``smpp_users.password_hash``), so the cost can rise later without a migration:
each hash carries the parameters it was made with. SMPP passwords are at most
8 octets (SMPP 3.4 section 4.1.1), which is exactly why a slow, memory-hard hash
matters: the space is small enough to search if the table leaks.

One verification costs ~40 ms of CPU at the defaults; a bind does it once, and a
server that fears bind floods should run it in a thread (``asyncio.to_thread``)
behind its own rate limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# n = 2**14, r = 8, p = 1: the RFC 7914 interactive-login figures (16 MiB each).
N, R, P = 1 << 14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
# Refuse stored parameters that would make one verification eat the machine.
MAX_N, MAX_R, MAX_P = 1 << 20, 32, 16
_MAXMEM = 256 * 1024 * 1024


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A fresh salted scrypt hash of ``password`` (UTF-8) in the stored format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p, dklen=HASH_BYTES)
    return "$".join((SCHEME, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed ``stored``.

    The comparison is constant-time in the digest (``hmac.compare_digest``).
    """
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    try:
        digest = _scrypt(password, salt, n, r, p, dklen=len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, *, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=_MAXMEM,
    )


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    fields = stored.split("$")
    if len(fields) != 6 or fields[0] != SCHEME:
        return None
    try:
        n, r, p = int(fields[1]), int(fields[2]), int(fields[3])
        salt = base64.b64decode(fields[4], validate=True)
        expected = base64.b64decode(fields[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    # n must be a power of two above 1 (RFC 7914 section 2).
    if not (1 < n <= MAX_N and n & (n - 1) == 0 and 0 < r <= MAX_R and 0 < p <= MAX_P):
        return None
    if not salt or not 16 <= len(expected) <= 64:
        return None
    return n, r, p, salt, expected


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
