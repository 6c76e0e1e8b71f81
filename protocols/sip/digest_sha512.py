"""SHA-512/256 (FIPS 180-4 sections 5.3.6 and 6.4) for RFC 8760's SHA-512-256 digest.

``hashlib`` exposes it only when the linked OpenSSL provides "sha512_256"
(OpenSSL 1.1.1+, but some distribution and FIPS builds leave it out), so this
module uses hashlib when it can and a pure-Python SHA-512 with the SHA-512/256
initial value otherwise. Digest auth hashes a few hundred bytes per request, so
the slow path is still cheap enough to serve a trunk.

The constants are computed as the standard defines them (fractional parts of
roots of the first primes, section 4.2.3 and 5.3.5; the SHA-512/t IV
generation function of section 5.3.6) instead of being pasted as tables.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable

_MASK = (1 << 64) - 1


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return found


def _icbrt(n: int) -> int:
    """floor(cbrt(n)) for a positive integer, by Newton's method on integers."""
    x = 1 << ((n.bit_length() + 2) // 3)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


_PRIMES = _primes(80)
# Section 4.2.3: first 64 bits of the fractional parts of the cube roots.
_K = [_icbrt(p << 192) & _MASK for p in _PRIMES]
# Section 5.3.5: first 64 bits of the fractional parts of the square roots.
_SHA512_IV = [math.isqrt(p << 128) & _MASK for p in _PRIMES[:8]]


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (64 - n))) & _MASK


def _compress(state: list[int], block: bytes) -> list[int]:
    w = list(struct.unpack(">16Q", block))
    for t in range(16, 80):
        s0 = _rotr(w[t - 15], 1) ^ _rotr(w[t - 15], 8) ^ (w[t - 15] >> 7)
        s1 = _rotr(w[t - 2], 19) ^ _rotr(w[t - 2], 61) ^ (w[t - 2] >> 6)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _MASK)
    a, b, c, d, e, f, g, h = state
    for t in range(80):
        t1 = h + (_rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)) + ((e & f) ^ (~e & g)) + _K[t] + w[t]
        t2 = (_rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _MASK, c, b, a, (t1 + t2) & _MASK
    return [(x + y) & _MASK for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True)]


def sha512_with_iv(iv: list[int], data: bytes) -> bytes:
    """SHA-512 (section 6.4) from a given initial hash value, all 64 bytes."""
    # Section 5.1.2 padding: a 1 bit, zeros, then the bit length in 128 bits.
    padded = (
        data + b"\x80" + b"\x00" * ((111 - len(data)) % 128) + (8 * len(data)).to_bytes(16, "big")
    )
    state = list(iv)
    for offset in range(0, len(padded), 128):
        state = _compress(state, padded[offset : offset + 128])
    return struct.pack(">8Q", *state)


def _sha512_t_iv(name: bytes) -> list[int]:
    # Section 5.3.6: hash "SHA-512/t" from the SHA-512 IV xored with a5a5...
    iv = sha512_with_iv([h ^ 0xA5A5A5A5A5A5A5A5 for h in _SHA512_IV], name)
    return list(struct.unpack(">8Q", iv))


_SHA512_256_IV = _sha512_t_iv(b"SHA-512/256")


def sha512_256_pure(data: bytes) -> str:
    """SHA-512/256 of ``data`` as lower-case hex, without OpenSSL."""
    return sha512_with_iv(_SHA512_256_IV, data)[:32].hex()


def _openssl_sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


def pick_implementation() -> Callable[[bytes], str]:
    """hashlib's SHA-512/256 when this OpenSSL build has it, else the pure one."""
    try:
        hashlib.new("sha512_256", b"")
    except ValueError:
        return sha512_256_pure
    return _openssl_sha512_256


sha512_256_hex: Callable[[bytes], str] = pick_implementation()
