"""Digest brute force against a running voice service: lockouts per address and per username.

The guesser is a raw UDP client on loopback that computes RFC 2617/7616 MD5
answers with hashlib (not warpd's digest code). An authenticated INVITE to an
unrouted number gets 404 from admission, so "let in" and "locked out" are
told apart by the final status alone, without setting up calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import HOST, provision, running_voice
from tests.integration.voice.test_auth import digest_trunk
from tests.media.conftest import RtpEngineDaemon
from warpd.voice.service import VoiceService

from .tally import TALLY, Hostile

USER, PASSWORD = "pbx1", "s3cret"
UNROUTED = "331234567890"  # no voice route: an authenticated INVITE ends 404
LIMIT = 5
GUARD = {"digest_algorithms": ("MD5", "SHA-256"), "digest_max_failures": LIMIT}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Pbx:
    """One source address sending INVITEs, answering warpd's 407 with a given password."""

    def __init__(self, address: str, target: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(3.0)
        self.address, self.port = address, self.sock.getsockname()[1]
        self.target = target
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def _invite(self, call: str, cseq: int, extra: str = "") -> bytes:
        self.n += 1
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        sdp += "m=audio 7078 RTP/AVP 0\r\n"
        uri = f"sip:{UNROUTED}@{self.target[0]}:{self.target[1]}"
        head = (
            f"INVITE {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.address}:{self.port};branch=z9hG4bK-g{self.port}-{self.n}\r\n"
            f"From: <sip:100@{self.address}>;tag={call}\r\nTo: <sip:{UNROUTED}@{HOST}>\r\n"
            f"Call-ID: {call}@{self.address}\r\nCSeq: {cseq} INVITE\r\n"
            f"Contact: <sip:100@{self.address}:{self.port}>\r\nMax-Forwards: 70\r\n{extra}"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        )
        return (head + sdp).encode()

    def _final(self, call: str) -> str:
        while True:
            data = self.sock.recv(65535).decode(errors="replace")
            if f"Call-ID: {call}@" in data and int(data.split(" ", 2)[1]) >= 200:
                self._ack(data)
                return data

    def _ack(self, response: str) -> None:
        """ACK a non-2xx final answer (RFC 3261 17.1.1.3), so it is not retransmitted."""
        keep = ("Via", "From", "To", "Call-ID")
        lines = [ln for ln in response.split("\r\n") if ln.split(":", 1)[0] in keep]
        cseq = re.search(r"\r\nCSeq: (\d+) INVITE", response)
        assert cseq is not None
        head = f"ACK sip:{UNROUTED}@{self.target[0]}:{self.target[1]} SIP/2.0\r\n"
        head += "\r\n".join(lines) + f"\r\nCSeq: {cseq.group(1)} ACK\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(head.encode(), self.target)

    def attempt(self, username: str, password: str) -> int:
        """One INVITE: the challenge, then an answer with ``password``; the final status."""
        call = f"g{self.port}-{self.n}"
        self.sock.sendto(self._invite(call, 1), self.target)
        first = self._final(call)
        status = int(first.split(" ", 2)[1])
        if status != 407:
            return status  # refused without a challenge
        challenge = re.search(r"Proxy-Authenticate: Digest ([^\r]*algorithm=MD5[^\r]*)", first)
        assert challenge is not None, first
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.group(1)))
        uri = f"sip:{UNROUTED}@{self.target[0]}:{self.target[1]}"
        ha1 = _md5(f"{username}:{params['realm']}:{password}")
        ha2 = _md5(f"INVITE:{uri}")
        cnonce, nc = "0a4f113b", "00000001"
        response = _md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        header = (
            f'Proxy-Authorization: Digest username="{username}", realm="{params["realm"]}", '
            f'nonce="{params["nonce"]}", uri="{uri}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc={nc}, cnonce="{cnonce}", opaque="{params.get("opaque", "")}"\r\n'
        )
        self.sock.sendto(self._invite(call, 2, header), self.target)
        return int(self._final(call).split(" ", 2)[1])


async def _digest_trunk(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await provision(conn, gateways=1)
        await digest_trunk(conn, USER, PASSWORD)


async def _attempt(voice: VoiceService, address: str, username: str, password: str) -> int:
    pbx = Pbx(address, voice.local_addr)
    try:
        return await asyncio.to_thread(pbx.attempt, username, password)
    finally:
        pbx.close()


def _sample(voice: VoiceService, name: str, **labels: str) -> float:
    value = voice.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_guessing_from_one_address_locks_that_address_out_and_spares_the_pbx(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    await _digest_trunk(voice_pool)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **GUARD) as voice:
        assert await _attempt(voice, HOST, USER, PASSWORD) == 404  # the PBX, before the attack
        guesses = [await _attempt(voice, "127.0.0.5", USER, f"guess{n}") for n in range(LIMIT)]
        assert guesses == [403] * LIMIT
        # Locked: no challenge any more, and the right password is refused from there too.
        locked = await _attempt(voice, "127.0.0.5", USER, PASSWORD)
        other_user = await _attempt(voice, "127.0.0.5", "someone", "x")
        # The username is locked too (LIMIT wrong answers for it) but not for its PBX.
        pbx = await _attempt(voice, HOST, USER, PASSWORD)
        stranger = await _attempt(voice, "127.0.0.6", USER, PASSWORD)
        lockouts = {
            scope: _sample(voice, "warpd_voice_digest_lockouts_total", scope=scope)
            for scope in ("source", "user")
        }
        failures = _sample(voice, "warpd_voice_digest_failures_total")
        refused = _sample(voice, "warpd_voice_digest_locked_refusals_total")
    TALLY.hostile.append(
        Hostile(f"SIP digest: {LIMIT} wrong passwords from one address",
                f"address locked (403, no challenge: {locked}); the PBX's own address "
                f"still let in ({pbx})", locked == 403 and pbx == 404)
    )  # fmt: skip
    assert (locked, other_user, pbx, stranger) == (403, 403, 404, 403)
    assert lockouts == {"source": 1.0, "user": 1.0}
    assert (failures, refused) == (LIMIT, 3.0)


async def test_guessing_spread_over_addresses_locks_the_username_until_the_lockout_ends(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    await _digest_trunk(voice_pool)
    settings = {**GUARD, "digest_lockout": 1.0}
    let_in = (403, 404, 404)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **settings) as voice:
        assert await _attempt(voice, HOST, USER, PASSWORD) == 404
        # One guess each from LIMIT addresses: no address reaches the limit, the username does.
        spread = [
            await _attempt(voice, f"127.0.1.{n}", USER, f"guess{n}") for n in range(1, LIMIT + 1)
        ]
        assert spread == [403] * LIMIT
        assert _sample(voice, "warpd_voice_digest_lockouts_total", scope="source") == 0.0
        assert _sample(voice, "warpd_voice_digest_lockouts_total", scope="user") == 1.0
        new_address = await _attempt(voice, "127.0.2.1", USER, PASSWORD)
        pbx = await _attempt(voice, HOST, USER, PASSWORD)
        await asyncio.sleep(1.2)  # digest_lockout
        after = await _attempt(voice, "127.0.2.1", USER, PASSWORD)
    TALLY.hostile.append(
        Hostile(f"SIP digest: {LIMIT} wrong passwords for one username from {LIMIT} addresses",
                f"username locked for new addresses ({new_address}), its PBX let in ({pbx}), "
                f"unlocked after the lockout ({after})", (new_address, pbx, after) == let_in)
    )  # fmt: skip
    assert (new_address, pbx, after) == let_in


async def test_without_the_lockout_wrong_answers_are_only_refused(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    await _digest_trunk(voice_pool)
    settings = {**GUARD, "digest_max_failures": 0}
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **settings) as voice:
        guesses = [await _attempt(voice, "127.0.0.5", USER, f"guess{n}") for n in range(LIMIT + 2)]
        right = await _attempt(voice, "127.0.0.5", USER, PASSWORD)
    assert (guesses, right) == ([403] * (LIMIT + 2), 404)
