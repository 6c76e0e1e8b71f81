"""scrypt password hashes: the stored format, verification, and refusal of junk."""

from __future__ import annotations

import base64
import hashlib

import pytest

from warpd.auth.passwords import hash_password, verify_password

SALT = "AAAAAAAAAAAAAAAAAAAAAA=="
DIGEST = "A" * 43 + "="
# Cheap parameters keep the suite fast; the defaults are checked once below.
FAST = {"n": 1 << 4, "r": 1, "p": 1}


def test_default_hash_has_the_schema_format_and_verifies() -> None:
    stored = hash_password("s3cr3t!")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert verify_password("s3cr3t!", stored)
    assert not verify_password("s3cr3t?", stored)


def test_hash_matches_an_independent_scrypt_computation() -> None:
    stored = hash_password("pässwd", **FAST)
    _, n, r, p, salt_b64, digest_b64 = stored.split("$")
    salt = base64.b64decode(salt_b64)
    expected = hashlib.scrypt("pässwd".encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=32)
    assert base64.b64decode(digest_b64) == expected


def test_salts_differ_so_equal_passwords_hash_differently() -> None:
    assert hash_password("same", **FAST) != hash_password("same", **FAST)


def test_empty_password_is_a_password() -> None:
    stored = hash_password("", **FAST)
    assert verify_password("", stored)
    assert not verify_password(" ", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$16$1$1$AAAA$AAAA",
        "scrypt$16$1$1$AAAA",
        f"scrypt$x$1$1${SALT}${DIGEST}",
        f"scrypt$15$1$1${SALT}${DIGEST}",
        f"scrypt$1$1$1${SALT}${DIGEST}",
        f"scrypt${1 << 30}$8$1${SALT}${DIGEST}",
        f"scrypt$16$0$1${SALT}${DIGEST}",
        f"scrypt$16$1$1$!!!!${DIGEST}",
        f"scrypt$16$1$1$${DIGEST}",
        "scrypt$16$1$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    ],
)
def test_malformed_stored_hashes_never_verify_and_never_raise(stored: str) -> None:
    assert verify_password("anything", stored) is False


def test_a_tampered_digest_does_not_verify() -> None:
    stored = hash_password("pw", **FAST)
    head, digest = stored.rsplit("$", 1)
    raw = bytearray(base64.b64decode(digest))
    raw[0] ^= 1
    assert not verify_password("pw", head + "$" + base64.b64encode(bytes(raw)).decode())
