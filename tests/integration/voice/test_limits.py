"""Admission limits and bad input, against the running voice service."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg

from tests.integration.voice.conftest import (
    BALANCE,
    CONNECT_FEE,
    HOST,
    PER_MIN,
    SippFactory,
    cdrs,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 7078 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(port: int, n: int, target: tuple[str, int], number: str = "441234567890") -> bytes:
    head = (
        f"INVITE sip:{number}@{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-raw-{n}\r\n"
        f"From: <sip:100@{HOST}>;tag=raw{n}\r\nTo: <sip:{number}@{HOST}>\r\n"
        f"Call-ID: raw-{n}@{HOST}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{HOST}:{port}>\r\n"
        f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    )
    return (head + SDP).encode()


def final_response(sock: socket.socket, call_id: str, limit: float = 5.0) -> str:
    """The first final response for ``call_id`` (provisionals skipped)."""
    sock.settimeout(limit)
    while True:
        data = sock.recv(65535).decode()
        status = int(data.split(" ", 2)[1])
        if call_id in data and status >= 200:
            return data


async def test_channel_limit_refuses_with_503_and_a_cdr(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1, max_channels=2)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=5, rate=100, hold_ms=1500)
        assert await uac.wait() != 0  # three calls refused
        await voice.settled()
    rows = await cdrs(voice_pool)
    answered = [r for r in rows if r["disposition"] == "ANSWERED"]
    refused = [r for r in rows if r["sip_code"] == 503]
    assert (len(answered), len(refused), len(rows)) == (2, 3, 5)
    assert all(r["attempts"] == 0 and r["disposition"] == "CONGESTION" for r in refused)


async def test_cps_limit_answers_503_with_retry_after(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1, max_cps=1.0)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            sock.sendto(invite(port, 1, voice.local_addr), voice.local_addr)
            sock.sendto(invite(port, 2, voice.local_addr), voice.local_addr)
            second = await asyncio.to_thread(final_response, sock, "raw-2@")
        assert second.startswith("SIP/2.0 503 ")
        assert "\r\nRetry-After: 1\r\n" in second


async def _reserve(conn: asyncpg.Connection, account_id: int, amount: int) -> None:
    """An SMS accepted under charge-on-delivery and not yet final (migration 0013)."""
    await conn.execute("UPDATE accounts SET charge_mode = 'on_delivery' WHERE id = $1", account_id)
    await conn.execute(
        "INSERT INTO sms_reservations (message_id, account_id, amount_micros)"
        " VALUES (gen_random_uuid(), $1, $2)",
        account_id, amount,
    )  # fmt: skip


async def test_sms_reservations_leave_too_little_for_a_call_402(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    # The cheapest answered call costs the connect fee and one second: 11,000 micros.
    minimum = CONNECT_FEE + PER_MIN // 60
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await _reserve(conn, prov.account_id, BALANCE - minimum + 1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            sock.sendto(invite(port, 1, voice.local_addr), voice.local_addr)
            refused = await asyncio.to_thread(final_response, sock, "raw-1@")
        assert refused.startswith("SIP/2.0 402 ")
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["sip_code"], row["attempts"], row["price_micros"]) == (402, 0, 0)


async def test_a_call_goes_through_when_what_is_left_covers_its_minimum(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    minimum = CONNECT_FEE + PER_MIN // 60
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await _reserve(conn, prov.account_id, BALANCE - minimum)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.local_addr, calls=1, hold_ms=200)
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["price_micros"]) == ("ANSWERED", minimum)


async def test_unknown_source_is_403_and_bad_numbers_484(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        await provision(conn, gateways=1)
        await conn.execute("UPDATE sip_trunks SET allowed_ips = '{127.0.0.2/32}'")
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            sock.sendto(invite(port, 1, voice.local_addr), voice.local_addr)
            refused = await asyncio.to_thread(final_response, sock, "raw-1@")
        assert refused.startswith("SIP/2.0 403 ")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            port = sock.getsockname()[1]
            sock.sendto(invite(port, 2, voice.local_addr, "12"), voice.local_addr)
            incomplete = await asyncio.to_thread(final_response, sock, "raw-2@")
        assert incomplete.startswith("SIP/2.0 484 ")


async def test_malformed_messages_are_answered_and_calls_go_on(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            bad_cseq = invite(port, 3, voice.local_addr).replace(b"CSeq: 1 INVITE", b"CSeq: x")
            for garbage in (b"\x00\xff" * 50, b"INVITE\r\n\r\n", bad_cseq):
                sock.sendto(garbage, voice.local_addr)
            options = (
                f"OPTIONS sip:{HOST} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-o\r\n"
                f"From: <sip:p@{HOST}>;tag=o\r\nTo: <sip:{HOST}>\r\nCall-ID: opt@{HOST}\r\n"
                "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendto(options.encode(), voice.local_addr)
            replies = await asyncio.to_thread(_replies, sock, 2)
        assert any(r.startswith("SIP/2.0 400 ") and "raw-3@" in r for r in replies)
        assert any(r.startswith("SIP/2.0 200 ") and "opt@" in r for r in replies)
        uac = await sipp.uac(voice.local_addr, calls=2, rate=10)
        assert await uac.wait() == 0, uac.errors()


def _replies(sock: socket.socket, count: int) -> list[str]:
    sock.settimeout(3.0)
    return [sock.recv(65535).decode(errors="replace") for _ in range(count)]


async def test_uas_checks_answer_501_and_420_before_anything_else(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            subscribe = invite(port, 5, voice.local_addr).replace(b"INVITE", b"SUBSCRIBE")
            sock.sendto(subscribe, voice.local_addr)
            needs_100rel = invite(port, 6, voice.local_addr).replace(
                b"Max-Forwards: 70", b"Max-Forwards: 70\r\nRequire: 100rel"
            )
            sock.sendto(needs_100rel, voice.local_addr)
            replies = await asyncio.to_thread(_replies, sock, 2)
    by_call = {("raw-5@" in r): r for r in replies}
    assert by_call[True].startswith("SIP/2.0 501 ")
    assert (
        "\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE\r\n" in by_call[True]
    )
    assert by_call[False].startswith("SIP/2.0 420 ")
    assert "\r\nUnsupported: 100rel\r\n" in by_call[False]


def _options(port: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:{HOST} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-f{n}\r\n"
        f"From: <sip:p@{HOST}>;tag=f{n}\r\nTo: <sip:{HOST}>\r\nCall-ID: flood-{n}@{HOST}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _count_replies(sock: socket.socket, quiet: float = 0.5) -> int:
    sock.settimeout(quiet)
    count = 0
    try:
        while True:
            sock.recv(65535)
            count += 1
    except TimeoutError:
        return count


async def test_a_flood_from_one_address_is_dropped_and_others_are_served(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, source_rate=20.0) as voice:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            flood.bind((HOST, 0))
            port = flood.getsockname()[1]
            for n in range(300):
                flood.sendto(_options(port, n), voice.local_addr)
            answered = await asyncio.to_thread(_count_replies, flood)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.3", 0))
            port = other.getsockname()[1]
            other.sendto(_options(port, 1000), voice.local_addr)
            other_answered = await asyncio.to_thread(_count_replies, other)
        assert voice.transport is not None
        dropped = voice.transport.dropped
    assert 40 <= answered <= 60  # the burst of 40, plus what refilled meanwhile
    assert dropped == 300 - answered
    assert other_answered == 1
