"""The failure paths of SIP over TCP and TLS (RFC 3261 18.3): every bound closes only its own
connection, with an answer first where one can be given, and warpd goes on serving."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from protocols.sip.transaction import Transport
from tests.integration.voice.conftest import HOST, running_voice
from tests.media.conftest import RtpEngineDaemon
from tests.warpd.sms.test_tls import certificate
from warpd.voice.service import VoiceService

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def options(call_id: str = "o1", body: bytes = b"", length: str | None = None) -> bytes:
    length = str(len(body)) if length is None else length
    declared = f"Content-Length: {length}\r\n" if length else ""
    return (
        f"OPTIONS sip:warpd@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {HOST}:5999;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:probe@{HOST}>;tag=p\r\nTo: <sip:warpd@{HOST}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{declared}\r\n"
    ).encode() + body


async def connect(addr: tuple[str, int], context: ssl.SSLContext | None = None) -> Stream:
    async with asyncio.timeout(5):
        return await asyncio.open_connection(*addr, ssl=context)


async def answer(stream: Stream) -> bytes:
    """The status line of the next response (b"" when the connection closes instead)."""
    async with asyncio.timeout(5):
        head = await stream[0].readuntil(b"\r\n\r\n") if not stream[0].at_eof() else b""
    return head.split(b"\r\n", 1)[0]


async def closed(stream: Stream, within: float = 5.0) -> bool:
    """Whether warpd closes the connection within ``within`` seconds (reading what is left)."""
    try:
        async with asyncio.timeout(within):
            while await stream[0].read(65536):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError):
        pass
    return True


async def still_serves(addr: tuple[str, int], context: ssl.SSLContext | None = None) -> None:
    stream = await connect(addr, context)
    stream[1].write(options("alive"))
    assert await answer(stream) == b"SIP/2.0 200 OK"
    stream[1].close()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return certificate(tmp_path, "sip-faults")


@pytest_asyncio.fixture
async def voice(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path,
    pair: tuple[Path, Path],
) -> AsyncIterator[VoiceService]:  # fmt: skip
    async with running_voice(
        voice_pool, voice_rtpengine, tmp_path, tls_listen=f"{HOST}:0", tls_cert=str(pair[0]),
        tls_key=str(pair[1]), max_connections_per_ip=4, header_timeout=1.0, idle_timeout=3.0,
    ) as service:  # fmt: skip
        yield service


def client_tls(pair: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pair[0]))
    context.check_hostname = False
    return context


async def test_a_ping_is_ponged_and_messages_share_a_connection(voice: VoiceService) -> None:
    stream = await connect(voice.stream_addr(Transport.TCP))
    stream[1].write(b"\r\n\r\n")
    async with asyncio.timeout(5):
        assert await stream[0].readexactly(2) == b"\r\n"  # RFC 5626 4.4.1 pong
    stream[1].write(options("one") + options("two")[:30])
    assert await answer(stream) == b"SIP/2.0 200 OK"
    stream[1].write(options("two")[30:])
    assert await answer(stream) == b"SIP/2.0 200 OK"
    stream[1].close()


async def test_an_oversized_message_is_413_and_closes_only_its_connection(
    voice: VoiceService,
) -> None:
    addr = voice.stream_addr(Transport.TCP)
    bystander = await connect(addr)
    big = await connect(addr)
    big[1].write(options("big", length="1000000"))  # the body is never sent
    assert (await answer(big)).startswith(b"SIP/2.0 413")
    assert await closed(big)
    huge_head = await connect(addr)
    huge_head[1].write(b"OPTIONS sip:x SIP/2.0\r\nX-Pad: " + b"a" * 70_000)
    assert await closed(huge_head)  # no answer: nothing of the head can be read
    bystander[1].write(options("by"))
    assert await answer(bystander) == b"SIP/2.0 200 OK"
    bystander[1].close()


async def test_no_content_length_is_400_and_garbage_is_closed(voice: VoiceService) -> None:
    addr = voice.stream_addr(Transport.TCP)
    bare = await connect(addr)
    bare[1].write(options("bare", length=""))
    assert (await answer(bare)).startswith(b"SIP/2.0 400")
    assert await closed(bare)
    garbage = await connect(addr)
    garbage[1].write(b"\x00\xffGET / HTTP/1.1\r\n\r\n\x16\x03\x01")
    assert await closed(garbage)
    await still_serves(addr)


async def test_a_peer_closing_mid_message_frees_its_connection(voice: VoiceService) -> None:
    addr = voice.stream_addr(Transport.TCP)
    assert voice.streams is not None
    half = await connect(addr)
    half[1].write(options("half", body=b"x" * 100)[:-40])
    await half[1].drain()
    half[1].close()
    for _ in range(100):
        if not voice.streams.connections:
            break
        await asyncio.sleep(0.05)
    assert not voice.streams.connections
    await still_serves(addr)


async def test_bad_tls_clients_are_closed_and_good_ones_served(
    voice: VoiceService, pair: tuple[Path, Path]
) -> None:
    addr = voice.stream_addr(Transport.TLS)
    plain = await connect(addr)  # SIP in clear on the TLS port
    plain[1].write(options("clear"))
    assert await closed(plain)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):  # warpd takes TLS 1.2 or later
        await connect(addr, old)
    silent = await connect(addr)  # never says ClientHello: the handshake deadline
    assert await closed(silent, within=4.0)
    await still_serves(addr, client_tls(pair))


async def test_connections_over_the_cap_from_one_address_are_refused(voice: VoiceService) -> None:
    addr = voice.stream_addr(Transport.TCP)
    assert voice.streams is not None
    held = [await connect(addr) for _ in range(4)]
    extra = await connect(addr)
    assert await closed(extra, within=2.0)
    assert voice.streams.refused == 1
    for n, stream in enumerate(held):
        stream[1].write(options(f"held{n}"))
        assert await answer(stream) == b"SIP/2.0 200 OK"
    held[0][1].close()
    await closed(held[0])
    for _ in range(100):  # a freed slot is taken again
        if len(voice.streams.connections) == 3:
            break
        await asyncio.sleep(0.05)
    await still_serves(addr)
    for stream in held[1:]:
        stream[1].close()


async def test_the_stream_listeners_serve_ipv6(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path,
    pair: tuple[Path, Path],
) -> None:  # fmt: skip
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, tcp_listen="[::1]:0",
                             tls_listen="[::1]:0", tls_cert=str(pair[0]),
                             tls_key=str(pair[1])) as six:  # fmt: skip
        assert six.stream_addr(Transport.TCP)[0] == "::1"
        await still_serves(six.stream_addr(Transport.TCP))
        await still_serves(six.stream_addr(Transport.TLS), client_tls(pair))


async def test_the_per_source_request_rate_applies_to_streams(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, tmp_path: Path
) -> None:
    """50 OPTIONS in one write on one connection, at source_rate 5 (burst 10): the burst is
    answered, the rest dropped as a UDP flood would be, and the connection stays up."""
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, source_rate=5.0) as voice:
        assert voice.transport is not None
        stream = await connect(voice.stream_addr(Transport.TCP))
        stream[1].write(b"".join(options(f"burst{n}") for n in range(50)))
        answered = [await answer(stream) for _ in range(10)]
        assert answered == [b"SIP/2.0 200 OK"] * 10
        for _ in range(100):
            if voice.transport.dropped >= 38:
                break
            await asyncio.sleep(0.02)
        assert voice.transport.dropped >= 38  # a token or two may come back meanwhile
        await asyncio.sleep(0.5)  # two tokens back
        stream[1].write(options("later"))
        assert await answer(stream) == b"SIP/2.0 200 OK"
        stream[1].close()
