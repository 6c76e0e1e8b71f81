"""Digest auth (protocols.sip.digest) against RFC vectors, and server <-> client."""

from __future__ import annotations

import contextlib
import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip import digest_sha512
from protocols.sip.digest import (
    PREFERENCE,
    DigestAlgorithm,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    compute_ha1,
    compute_response,
)
from protocols.sip.digest_server import DigestPolicy, DigestServer, NonceCounts, Verdict
from protocols.sip.errors import SipError

SECRET = b"k" * 32
NOW = 1_800_000_000.0


def counter_bytes() -> object:
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


def cnonces() -> object:
    counter = itertools.count(1)
    return lambda: f"cn{next(counter)}"


def make_server(**policy: object) -> DigestServer:
    return DigestServer(DigestPolicy("warpd.test", **policy), SECRET, counter_bytes())  # type: ignore[arg-type]


def make_client(password: str = "s3cret") -> DigestClient:
    return DigestClient("alice", password, cnonces())  # type: ignore[arg-type]


# RFC 7616 section 3.9.1 (MD5 and SHA-256) and RFC 2617 section 3.5 (MD5).
VECTORS = [
    (
        DigestAlgorithm.MD5,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "8ca523f5e9506fed4657c9700eebdbec",
    ),
    (
        DigestAlgorithm.SHA_256,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    ),
    (
        DigestAlgorithm.MD5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "0a4f113b",
        "6629fae49393a05397450978507c4ef1",
    ),
]


@pytest.mark.parametrize(("alg", "user", "realm", "pw", "nonce", "cnonce", "expected"), VECTORS)
def test_rfc_vectors(
    alg: DigestAlgorithm, user: str, realm: str, pw: str, nonce: str, cnonce: str, expected: str
) -> None:
    ha1 = compute_ha1(alg, user, realm, pw)
    got = compute_response(
        alg, ha1, nonce, "GET", "/dir/index.html", qop="auth", nc=1, cnonce=cnonce
    )
    assert got == expected


def test_rfc7616_authorization_header_parses_and_verifies_value() -> None:
    header = (
        'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
        'algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
        'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    creds = DigestCredentials.parse(header)
    assert creds.algorithm is DigestAlgorithm.SHA_256
    assert creds.nc == 1
    assert creds.qop == "auth"
    assert DigestCredentials.parse(str(creds)) == creds


def test_rfc2069_no_qop_response() -> None:
    # RFC 2069 mode: response = H(HA1:nonce:HA2), no nc/cnonce.
    ha1 = compute_ha1(DigestAlgorithm.MD5, "u", "r", "p")
    ha2 = hashlib.md5(b"INVITE:sip:x@y").hexdigest()
    want = hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
    assert compute_response(DigestAlgorithm.MD5, ha1, "n", "INVITE", "sip:x@y") == want


def test_challenge_roundtrip_and_defaults() -> None:
    ch = DigestChallenge("r", "n", DigestAlgorithm.SHA_512_256, ("auth",), "o", stale=True)
    text = str(ch)
    assert text.startswith('Digest realm="r", nonce="n", opaque="o", algorithm=SHA-512-256')
    assert "stale=true" in text
    assert DigestChallenge.parse(text) == ch
    bare = DigestChallenge.parse('Digest realm="r", nonce="n"')
    assert bare.algorithm is DigestAlgorithm.MD5
    assert bare.qop == ()
    assert not bare.stale
    assert bare.opaque is None
    assert DigestChallenge.parse(bare.to_auth()) == bare


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="r"',
        "Digest abcdef==",
        'Digest nonce="n"',
        'Digest realm="r", nonce="n", algorithm=AKAv1-MD5',
        'Digest realm="r", nonce="n", algorithm=MD5-sess',
        'Digest realm="r", nonce="n" garbage',
    ],
)
def test_bad_challenges_raise_sip_error(value: str) -> None:
    with pytest.raises(SipError):
        DigestChallenge.parse(value)


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="a", realm="r", nonce="n", uri="u"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, cnonce="c"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, '
        'cnonce="c", nc=1',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, '
        'cnonce="c", nc=0000000g',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=00000001',
    ],
)
def test_bad_credentials_raise_sip_error(value: str) -> None:
    with pytest.raises(SipError):
        DigestCredentials.parse(value)


def test_quoted_username_escapes_roundtrip() -> None:
    creds = DigestCredentials('we"ird\\user', "r", "n", "sip:a@b", "00")
    assert DigestCredentials.parse(str(creds)) == creds


@pytest.mark.parametrize("alg", list(DigestAlgorithm))
def test_server_client_roundtrip_each_algorithm(alg: DigestAlgorithm) -> None:
    server = make_server(algorithms=(alg,))
    client = make_client()
    challenges = server.challenges(NOW)
    creds = client.answer([str(c) for c in challenges], "INVITE", "sip:bob@warpd.test")
    assert creds is not None
    assert creds.algorithm is alg
    parsed = DigestCredentials.parse(str(creds))
    assert server.verify(parsed, "INVITE", NOW + 1, password="s3cret") is Verdict.OK
    ha1 = compute_ha1(alg, "alice", "warpd.test", "s3cret")
    # The same nc again is a replay, even with the right H(A1).
    assert server.verify(parsed, "INVITE", NOW + 1, ha1=ha1) is Verdict.REPLAY


def test_multi_challenge_order_and_client_picks_strongest() -> None:
    server = make_server()
    challenges = server.challenges(NOW)
    assert [c.algorithm for c in challenges] == list(PREFERENCE)
    assert len({c.nonce for c in challenges}) == 1
    # Client order preference wins regardless of header order.
    client = make_client()
    picked = client.choose(list(reversed(challenges)))
    assert picked is not None
    assert picked.algorithm is DigestAlgorithm.SHA_512_256
    md5_only = DigestClient("alice", "pw", cnonces(), (DigestAlgorithm.MD5,))  # type: ignore[arg-type]
    picked = md5_only.choose(challenges)
    assert picked is not None
    assert picked.algorithm is DigestAlgorithm.MD5


def test_client_skips_unusable_challenges() -> None:
    client = make_client()
    values = [
        'Digest realm="r", nonce="n", algorithm=AKAv1-MD5',
        'Digest realm="r", nonce="n", qop="auth-int"',
        "Bearer xyz",
    ]
    assert client.answer(values, "INVITE", "sip:a@b") is None
    legacy = client.answer(['Digest realm="r", nonce="n"'], "INVITE", "sip:a@b")
    assert legacy is not None
    assert legacy.qop is None
    assert legacy.nc is None
    assert "nc=" not in str(legacy)


def test_client_counts_nc_per_nonce() -> None:
    client = make_client()
    ch = DigestChallenge("r", "n1", DigestAlgorithm.SHA_256)
    first = client.answer([ch], "REGISTER", "sip:r")
    second = client.answer([ch], "REGISTER", "sip:r")
    other = client.answer([DigestChallenge("r", "n2")], "REGISTER", "sip:r")
    assert first is not None
    assert second is not None
    assert other is not None
    assert (first.nc, second.nc, other.nc) == (1, 2, 1)
    assert first.cnonce != second.cnonce
    assert "nc=00000002" in str(second)
    for i in range(100):
        client.answer([DigestChallenge("r", f"x{i}")], "REGISTER", "sip:r")
    again = client.answer([ch], "REGISTER", "sip:r")
    assert again is not None
    assert again.nc == 1  # forgotten: a bounded store


def test_wrong_password_and_tampering() -> None:
    server = make_server()
    creds = make_client("wrong").answer(server.challenges(NOW), "INVITE", "sip:b@w")
    assert creds is not None
    assert server.verify(creds, "INVITE", NOW, password="s3cret") is Verdict.WRONG_RESPONSE
    good = make_client().answer(server.challenges(NOW), "INVITE", "sip:b@w")
    assert good is not None
    # Method is part of A2: the answer for INVITE does not authorise BYE.
    assert server.verify(good, "BYE", NOW, password="s3cret") is Verdict.WRONG_RESPONSE
    assert server.verify(good, "INVITE", NOW, password="s3cret") is Verdict.OK


def test_stale_nonce_only_for_a_right_answer() -> None:
    server = make_server(nonce_lifetime=60.0)
    creds = make_client().answer(server.challenges(NOW), "INVITE", "sip:b@w")
    assert creds is not None
    assert server.verify(creds, "INVITE", NOW + 61, password="s3cret") is Verdict.STALE
    assert server.verify(creds, "INVITE", NOW + 61, password="nope") is Verdict.WRONG_RESPONSE
    # A nonce from the future beyond the tolerated clock skew is stale too.
    assert server.verify(creds, "INVITE", NOW - 6, password="s3cret") is Verdict.STALE
    assert server.verify(creds, "INVITE", NOW - 4, password="s3cret") is Verdict.OK
    stale = server.challenges(NOW + 61, stale=True)
    assert all(c.stale for c in stale)
    assert DigestChallenge.parse(str(stale[0])).stale


def test_nonce_from_another_instance_with_same_secret_verifies() -> None:
    a, b = make_server(), make_server()
    creds = make_client().answer(a.challenges(NOW), "INVITE", "sip:b@w")
    assert creds is not None
    assert b.verify(creds, "INVITE", NOW, password="s3cret") is Verdict.OK
    other = DigestServer(DigestPolicy("warpd.test"), b"other", counter_bytes())  # type: ignore[arg-type]
    assert other.verify(creds, "INVITE", NOW, password="s3cret") is Verdict.INVALID_NONCE


@pytest.mark.parametrize("nonce", ["", "!!!", "é", "AAAA", "A" * 48])
def test_forged_nonces_are_invalid(nonce: str) -> None:
    server = make_server()
    assert server.nonce_issued(nonce) is None
    ha1 = compute_ha1(DigestAlgorithm.MD5, "alice", "warpd.test", "s3cret")
    resp = compute_response(
        DigestAlgorithm.MD5, ha1, nonce, "INVITE", "sip:b", qop="auth", nc=1, cnonce="c"
    )
    creds = DigestCredentials(
        "alice", "warpd.test", nonce, "sip:b", resp, qop="auth", nc=1, cnonce="c"
    )
    assert server.verify(creds, "INVITE", NOW, ha1=ha1) is Verdict.INVALID_NONCE


def test_prechecks() -> None:
    server = make_server(algorithms=(DigestAlgorithm.SHA_256,))
    creds = make_client().answer(server.challenges(NOW), "INVITE", "sip:b@w")
    assert creds is not None
    checks = [
        (DigestCredentials(**{**_fields(creds), "realm": "evil"}), Verdict.REALM_MISMATCH),
        (
            DigestCredentials(**{**_fields(creds), "algorithm": DigestAlgorithm.MD5}),
            Verdict.ALGORITHM_NOT_OFFERED,
        ),
        (DigestCredentials(**{**_fields(creds), "qop": None}), Verdict.QOP_MISMATCH),
        (DigestCredentials(**{**_fields(creds), "opaque": "other"}), Verdict.INVALID_NONCE),
    ]
    for bad, verdict in checks:
        assert server.verify(bad, "INVITE", NOW, password="s3cret") is verdict
    without_opaque = DigestCredentials(**{**_fields(creds), "opaque": None})
    assert server.verify(without_opaque, "INVITE", NOW, password="s3cret") is Verdict.OK
    with pytest.raises(ValueError, match="password"):
        server.verify(creds, "INVITE", NOW)


def _fields(creds: DigestCredentials) -> dict[str, object]:
    return {name: getattr(creds, name) for name in DigestCredentials.__dataclass_fields__}


def test_legacy_no_qop_policy() -> None:
    server = make_server(qop_auth=False, algorithms=(DigestAlgorithm.MD5,))
    challenges = server.challenges(NOW)
    assert "qop" not in str(challenges[0])
    creds = make_client().answer(challenges, "REGISTER", "sip:warpd.test")
    assert creds is not None
    assert creds.qop is None
    parsed = DigestCredentials.parse(str(creds))
    assert server.verify(parsed, "REGISTER", NOW, password="s3cret") is Verdict.OK
    # No nc: replays within the nonce lifetime are indistinguishable (RFC 2069).
    assert server.verify(parsed, "REGISTER", NOW, password="s3cret") is Verdict.OK
    qop_server = make_server(algorithms=(DigestAlgorithm.MD5,))
    qop_creds = make_client().answer(qop_server.challenges(NOW), "REGISTER", "sip:w")
    assert qop_creds is not None
    assert server.verify(qop_creds, "REGISTER", NOW, password="s3cret") is Verdict.QOP_MISMATCH


def test_nc_sequence_lower_and_repeated_refused() -> None:
    server = make_server()
    client = make_client()
    ch = server.challenges(NOW)
    first = client.answer(ch, "INVITE", "sip:b")
    second = client.answer(ch, "INVITE", "sip:b")
    assert first is not None
    assert second is not None
    assert server.verify(second, "INVITE", NOW, password="s3cret") is Verdict.OK
    assert server.verify(first, "INVITE", NOW, password="s3cret") is Verdict.REPLAY


def test_nonce_counts_bounded_with_watermark() -> None:
    counts = NonceCounts(2)
    assert counts.check("a", 10, 1) is Verdict.OK
    assert counts.check("b", 20, 1) is Verdict.OK
    assert counts.check("c", 30, 1) is Verdict.OK
    assert len(counts) == 2
    # "a" was forgotten: its reuse is stale, never trusted as fresh.
    assert counts.check("a", 10, 2) is Verdict.STALE
    # A nonce issued after the watermark is still fresh on first sight.
    assert counts.check("d", 31, 1) is Verdict.OK
    assert counts.check("c", 30, 1) is Verdict.REPLAY
    assert counts.check("c", 30, 2) is Verdict.OK


def test_pure_sha512_256_matches_fips_and_openssl() -> None:
    # FIPS 180-4 example (NIST CSRC "SHA512_256.pdf"): "abc".
    assert digest_sha512.sha512_256_pure(b"abc") == (
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    )
    assert digest_sha512.sha512_with_iv(digest_sha512._SHA512_IV, b"abc") == (
        hashlib.sha512(b"abc").digest()
    )


@given(st.binary(max_size=300))
def test_pure_sha512_256_equals_hashlib(data: bytes) -> None:
    try:
        want = hashlib.new("sha512_256", data).hexdigest()
    except ValueError:  # pragma: no cover - OpenSSL without SHA-512/256
        want = digest_sha512.sha512_256_pure(data)
    assert digest_sha512.sha512_256_pure(data) == want
    assert digest_sha512.sha512_256_hex(data) == want


def test_pick_falls_back_without_openssl_support(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str, data: bytes = b"") -> object:
        raise ValueError(f"unsupported hash type {name}")

    monkeypatch.setattr(digest_sha512.hashlib, "new", missing)
    assert digest_sha512.pick_implementation() is digest_sha512.sha512_256_pure


@given(st.text(max_size=200))
def test_parsers_raise_only_sip_error(text: str) -> None:
    for parse in (DigestChallenge.parse, DigestCredentials.parse):
        with contextlib.suppress(SipError):
            parse(text)
