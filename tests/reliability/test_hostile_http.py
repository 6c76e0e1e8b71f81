"""Hostile HTTP clients (issue 12): slowloris headers, idle and half-open connections,
oversized bodies, guessed API keys and admin tokens. warpd keeps answering everyone else.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd

from .clients import HTTP_HEADER_TIMEOUT, Http, closed_after, http_of, trickle
from .tally import TALLY, Hostile

BODY_TIMEOUT = 1.5


async def health(http: Http) -> int:
    timeout = aiohttp.ClientTimeout(total=3)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://{http.host}:{http.port}/health") as r,
    ):
        return r.status


async def raw(http: Http, data: bytes) -> tuple[bytes, float, float | None]:
    """Send ``data``; what came back, the seconds to it, and then until the server closed
    (None: still open)."""
    reader, writer = await asyncio.open_connection(http.host, http.port)
    writer.write(data)
    await writer.drain()
    started = time.monotonic()
    head = b""
    try:
        async with asyncio.timeout(5):
            head = await reader.read(4096)
    except TimeoutError:
        pass
    answered = time.monotonic() - started
    took = await closed_after(reader, 3.0)
    writer.close()
    return head, answered, (None if took is None else time.monotonic() - started)


async def test_slowloris_headers_are_cut_off(hardened: Running) -> None:
    """Regression: aiohttp has no timeout for a request's headers, so a client sending one
    header byte every 0.3 s held its connection until keepalive_timeout (75 s) had passed;
    warpd/api/slowloris.py aborts a connection whose first head is not complete in time."""
    http = http_of(hardened)
    header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    limit = HTTP_HEADER_TIMEOUT + 3.0

    async def one() -> tuple[float | None, int]:
        reader, writer = await asyncio.open_connection(http.host, http.port)
        sending = asyncio.create_task(trickle(writer, header, 0.3, time.monotonic() + limit))
        took = await closed_after(reader, limit)
        sent = await sending
        writer.close()
        return took, sent

    results = await asyncio.gather(*(one() for _ in range(50)))
    held = [sent for took, sent in results if took is None]
    slowest = max((took for took, _ in results if took is not None), default=0.0)
    TALLY.hostile.append(
        Hostile("HTTP slowloris headers, 50 connections (1 byte / 0.3 s)",
                f"all closed after <= {slowest:.1f} s (header_timeout {HTTP_HEADER_TIMEOUT:g} s)"
                if not held else f"{len(held)} still open after {limit:.0f} s", not held)
    )  # fmt: skip
    assert await health(http) == 200
    assert not held, f"{len(held)} of 50 held open {limit} s"
    assert HTTP_HEADER_TIMEOUT - 0.1 <= slowest < HTTP_HEADER_TIMEOUT + 1.0


async def test_an_idle_connection_is_closed(hardened: Running) -> None:
    http = http_of(hardened)
    reader, writer = await asyncio.open_connection(http.host, http.port)
    took = await closed_after(reader, HTTP_HEADER_TIMEOUT + 3.0)
    writer.close()
    TALLY.hostile.append(
        Hostile("HTTP connect, send nothing",
                f"closed after {took:.1f} s (header_timeout)" if took is not None
                else "still open", took is not None)
    )  # fmt: skip
    assert took is not None
    assert await health(http) == 200


async def test_a_slow_but_complete_head_and_a_later_keepalive_request_are_served(
    hardened: Running,
) -> None:
    """The guard must not cut honest clients: a head arriving a byte at a time within the
    deadline (its blank line split across reads), then a second request on the same
    connection after the deadline (aiohttp's keep-alive timer governs that one)."""
    http = http_of(hardened)
    reader, writer = await asyncio.open_connection(http.host, http.port)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = await trickle(writer, request, 0.01, time.monotonic() + HTTP_HEADER_TIMEOUT)
    assert sent == len(request)
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert first.startswith(b"HTTP/1.1 200 "), first
    await reader.readexactly(int(first.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
    await asyncio.sleep(HTTP_HEADER_TIMEOUT + 0.5)
    writer.write(request)
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.close()
    assert second.startswith(b"HTTP/1.1 200 "), second


async def test_an_oversized_body_is_refused_before_it_is_read(warpd: Running) -> None:
    http = http_of(warpd)
    head, took, closed = await raw(
        http,
        b"POST /v1/sms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + http.api_key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{",
    )  # fmt: skip
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    after = "closed" if closed is not None else "left open 3 s"
    TALLY.hostile.append(
        Hostile("HTTP Content-Length 100 MiB, body withheld",
                f"{status!r} after {took:.2f} s, then {after}", b" 413 " in head[:16])
    )  # fmt: skip
    # Regression: aiohttp's client_max_size is checked only as a handler reads the body,
    # so the declared length went unchecked and the request waited for 100 MiB.
    assert b" 413 " in head[:16], head[:200]
    assert took < 2.0
    assert await health(http) == 200


async def test_an_oversized_chunked_body_is_cut_off(warpd: Running) -> None:
    http = http_of(warpd)
    reader, writer = await asyncio.open_connection(http.host, http.port)
    writer.write(
        b"POST /v1/sms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + http.api_key.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )  # fmt: skip
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    head = b""
    try:
        async with asyncio.timeout(10):
            while sent < 8 * 1024 * 1024 and not reader.at_eof():
                writer.write(chunk)
                await writer.drain()
                sent += 65536
                if sent > 2 * 1024 * 1024:
                    head = await asyncio.wait_for(reader.read(4096), 2)
                    break
    except (ConnectionError, TimeoutError):
        pass
    writer.close()
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    TALLY.hostile.append(
        Hostile("HTTP chunked body past max_body_bytes",
                f"{status!r} after {sent // 1024} KiB", b" 413 " in head[:16])
    )  # fmt: skip
    assert b" 413 " in head[:16], (sent, head[:200])
    assert await health(http) == 200


async def test_guessed_api_keys_and_admin_tokens_get_401_without_detail(warpd: Running) -> None:
    http = http_of(warpd)
    base = f"http://{http.host}:{http.port}"
    prefix = http.api_key.split("_")[1]
    admin_prefix = http.admin_token.split("_")[1]
    guesses = {
        "unknown key": "wk_00000000_" + "A" * 43,
        "known prefix, wrong secret": f"wk_{prefix}_" + "A" * 43,
        "malformed": "not-a-key",
        "admin token as API key": http.admin_token,
    }
    admin_guesses = {
        "unknown token": "wa_00000000_" + "A" * 43,
        "known prefix, wrong secret": f"wa_{admin_prefix}_" + "A" * 43,
        "API key as admin token": http.api_key,
    }
    answers: dict[str, tuple[int, bytes]] = {}
    async with aiohttp.ClientSession() as session:
        for name, token in guesses.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{base}/v1/balance", headers=headers) as r:
                answers[f"key: {name}"] = (r.status, await r.read())
        for name, token in admin_guesses.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{base}/v1/admin/accounts", headers=headers) as r:
                answers[f"admin: {name}"] = (r.status, await r.read())
        started = time.monotonic()
        tries = 0
        while time.monotonic() - started < 1.0:  # guessing rate: is anything slowing it?
            tries += 1
            headers = {"Authorization": f"Bearer wk_{prefix}_{tries:043d}"}
            async with session.get(f"{base}/v1/balance", headers=headers) as r:
                assert r.status == 401
        headers = {"Authorization": f"Bearer {http.api_key}"}
        async with session.get(f"{base}/v1/balance", headers=headers) as r:
            right_after = r.status
    key_bodies = {b for n, (_, b) in answers.items() if n.startswith("key:")}
    admin_bodies = {b for n, (_, b) in answers.items() if n.startswith("admin:")}
    TALLY.hostile.append(
        Hostile("HTTP guessed API keys and admin tokens",
                f"401 with one body per realm ({len(key_bodies)} + {len(admin_bodies)}); "
                f"{tries} guesses/s at one prefix, the real key answers {right_after} right "
                "after (no lockout)")
    )  # fmt: skip
    assert {s for s, _ in answers.values()} == {401}, answers
    assert len(key_bodies) == 1, key_bodies  # nothing tells which part was wrong
    assert len(admin_bodies) == 1, admin_bodies
    for body in key_bodies | admin_bodies:
        assert prefix.encode() not in body
        assert admin_prefix.encode() not in body


async def test_a_trickled_body_gets_408_and_the_connection_closed(
    database_dsn: str, tmp_path: Path
) -> None:
    """Regression: the head fast, the body a byte every 0.3 s: aiohttp waited as long as its
    keep-alive timeout let it; [http] body_timeout answers 408 and closes."""
    running = await start_warpd(database_dsn, tmp_path / "state", 0,
                                http=f"body_timeout = {BODY_TIMEOUT}\n")  # fmt: skip
    try:
        http = http_of(running)
        body = b'{"to": "+447700900123", "from": "Bank", "text": "' + b"x" * 100 + b'"}'
        reader, writer = await asyncio.open_connection(http.host, http.port)
        writer.write(
            b"POST /v1/sms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + http.api_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n"
        )  # fmt: skip
        started = time.monotonic()
        sending = asyncio.create_task(trickle(writer, body, 0.3, started + BODY_TIMEOUT + 3))
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_TIMEOUT + 3)
        answered = time.monotonic() - started
        took = await closed_after(reader, 3.0)
        sending.cancel()
        writer.close()
        TALLY.hostile.append(
            Hostile(f"HTTP body trickled (1 byte / 0.3 s, body_timeout {BODY_TIMEOUT:g} s)",
                    f"{answer.split(b' ', 2)[1].decode()} after {answered:.1f} s, then "
                    f"{'closed' if took is not None else 'left open'}",
                    b" 408 " in answer[:16] and took is not None)
        )  # fmt: skip
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert BODY_TIMEOUT - 0.1 <= answered < BODY_TIMEOUT + 1.0
        assert took is not None, "left open after the 408"
        assert await health(http) == 200
        assert await running.value("SELECT count(*) FROM messages") == 0
    finally:
        await stop_warpd(running)
