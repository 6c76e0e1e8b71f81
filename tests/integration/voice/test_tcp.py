"""SIP over TCP and TLS through warpd (RFC 3261 18.3): SIPp peers, a real rtpengine.

Calls from a PBX on TCP to a gateway on UDP, on TCP to a gateway on TCP, and over TLS;
then the failure paths of a stream: an oversized message, garbage, a peer that closes in
the middle of a message, a bad TLS client, the per-address connection cap."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from protocols.sip.framing import SipStreamFramer
from protocols.sip.message import SipResponse
from protocols.sip.transaction import StreamAddr, Transport
from tests.integration.voice.conftest import (
    HOST,
    SippFactory,
    cdrs,
    free_tcp_port,
    free_udp_port,
    provision,
    running_voice,
)
from tests.media.conftest import RtpEngineDaemon
from tests.media.helpers import sdp
from tests.warpd.sms.test_tls import certificate
from warpd.config.schema import Config, SipConfig


async def test_a_pbx_on_tcp_calls_a_gateway_on_udp(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0])
        uac = await sipp.uac(voice.stream_addr(Transport.TCP), calls=3, rate=10, hold_ms=500,
                             extra=["-t", "t1"])  # fmt: skip
        assert await uac.wait() == 0, uac.errors()
        await voice.settled()
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["sip_code"]) for r in rows] == [("ANSWERED", 200)] * 3


async def test_tcp_on_both_legs_media_through_rtpengine(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
        await conn.execute("UPDATE carrier_gateways SET transport = 'tcp'")
    async with running_voice(voice_pool, voice_rtpengine, tmp_path) as voice:
        await sipp.uas(prov.gateway_ports[0], extra=["-t", "t1"])
        uac = await sipp.uac(voice.stream_addr(Transport.TCP), calls=3, rate=10,
                             scenario="uac_pcap", extra=["-t", "t1"])  # fmt: skip
        code = await uac.wait()
        await voice.settled()
        ends = [(r["disposition"], r["hangup_by"], r["q850_cause"]) for r in await cdrs(voice_pool)]
        assert code == 0, (uac.errors(), ends)
        assert voice.streams is not None
        # SIPp's one connection (closed as it exited) and the one warpd opened to the gateway,
        # each reused by every call.
        assert voice.streams.accepted == 1
        gateway = StreamAddr(HOST, prov.gateway_ports[0], Transport.TCP)
        assert gateway in voice.streams.connections
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["hangup_by"]) for r in rows] == [("ANSWERED", "caller")] * 3
    for row in rows:  # g711a.pcap's ~250 packets reached the carrier and its echo came back
        assert row["rtp_packets_a"] > 200
        assert row["rtp_packets_b"] > 200


async def test_calls_over_tls_and_sighup_reloads_the_certificate(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    cert, key = certificate(tmp_path, "sip-one")
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    tls = {"tls_listen": f"{HOST}:0", "tls_cert": str(cert), "tls_key": str(key)}
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **tls) as voice:
        await sipp.uas(prov.gateway_ports[0])
        # Debian's SIPp is built without OpenSSL (-t l1 refuses): it speaks TCP to socat,
        # which speaks TLS to warpd, checking warpd's certificate.
        async with tls_front(voice.stream_addr(Transport.TLS), cert) as front:
            uac = await sipp.uac(front, calls=3, rate=10, hold_ms=500, extra=["-t", "t1"])
            assert await uac.wait() == 0, uac.errors()
        await voice.settled()
        assert await served(voice.stream_addr(Transport.TLS), cert)
        new_cert, new_key = certificate(tmp_path, "sip-two")
        config = Config(sip=SipConfig(tls_cert=str(new_cert), tls_key=str(new_key)))
        await voice.apply_config(config)
        assert await served(voice.stream_addr(Transport.TLS), new_cert)
        broken = tmp_path / "broken.crt"
        broken.write_text("not a certificate")
        await voice.apply_config(Config(sip=SipConfig(tls_cert=str(broken), tls_key=str(key))))
        assert await served(voice.stream_addr(Transport.TLS), new_cert)  # the old pair kept
    rows = await cdrs(voice_pool)
    assert [(r["disposition"], r["sip_code"]) for r in rows] == [("ANSWERED", 200)] * 3


@contextlib.asynccontextmanager
async def tls_front(target: tuple[str, int], ca: Path) -> AsyncIterator[tuple[str, int]]:
    """A TCP listener that relays each connection to ``target`` over TLS (socat)."""
    port = free_tcp_port()
    socat = await asyncio.create_subprocess_exec(
        "socat", f"TCP-LISTEN:{port},bind={HOST},reuseaddr,fork",
        f"OPENSSL:{target[0]}:{target[1]},cafile={ca}",
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            await asyncio.sleep(0.05)
        yield (HOST, port)
    finally:
        if socat.returncode is None:
            socat.kill()
        await socat.wait()


async def served(addr: tuple[str, int], cert: Path) -> bool:
    """Whether the listener at ``addr`` presents the certificate in ``cert``."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    async with asyncio.timeout(5):
        _, writer = await asyncio.open_connection(*addr, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return bool(der == ssl.PEM_cert_to_DER_cert(cert.read_text()))  # noqa: ASYNC240 (tiny)


async def test_a_tcp_gateway_that_refuses_the_connection_fails_over_at_once(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path
) -> None:
    """Nothing listens at the first gateway's TCP port: the refused connection times its
    INVITE out there and then (RFC 3261 8.1.3.1), not after gateway_timeout (10 s here)."""
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=2)
        await conn.execute(
            "UPDATE carrier_gateways SET transport = 'tcp', port = $1 WHERE id = $2",
            free_tcp_port(), prov.gateway_ids[0],
        )  # fmt: skip
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, gateway_timeout=10.0) as voice:
        await sipp.uas(prov.gateway_ports[1])
        started = time.monotonic()
        uac = await sipp.uac(voice.local_addr, calls=1, hold_ms=200)
        assert await uac.wait() == 0, uac.errors()
        took = time.monotonic() - started
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["attempt_codes"], row["gateway_id"]) == ([408, 200], prov.gateway_ids[1])
    assert took < 5.0, took


def pbx_request(method: str, transport: str, local: tuple[str, int], cseq: int,
                to_tag: str = "", body: bytes = b"") -> bytes:  # fmt: skip
    headers = (
        f"{method} sip:441234567890@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bKpbx{method}{cseq}\r\n"
        f"From: <sip:442071234567@{HOST}>;tag=pbx\r\nTo: <sip:441234567890@{HOST}>{to_tag}\r\n"
        f"Call-ID: raw-{transport}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:pbx@{local[0]}:{local[1]};transport={transport.lower()}>\r\n"
    )
    kind = "Content-Type: application/sdp\r\n" if body else ""
    return f"{headers}{kind}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_response(reader: asyncio.StreamReader) -> SipResponse:
    framer = SipStreamFramer()
    async with asyncio.timeout(10):
        while True:
            framer.receive_data(await reader.read(1))
            message = framer.next_message()
            if isinstance(message, SipResponse):
                return message


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
async def test_a_pbx_on_its_own_stream_gets_a_contact_of_that_transport(
    voice_pool: asyncpg.Pool, voice_rtpengine: RtpEngineDaemon, sipp: SippFactory, tmp_path: Path,
    transport: str,
) -> None:  # fmt: skip
    """A call over one TCP or TLS connection (Python's own client, not SIPp): every response
    comes back on it, warpd's Contact names the transport (the PBX's ACK and BYE then come
    by it too: 12.1.1), and the BYE ends the call."""
    cert, key = certificate(tmp_path, "sip-raw")
    async with voice_pool.acquire() as conn:
        prov = await provision(conn, gateways=1)
    tls = {"tls_listen": f"{HOST}:0", "tls_cert": str(cert), "tls_key": str(key)}
    async with running_voice(voice_pool, voice_rtpengine, tmp_path, **tls) as voice:
        await sipp.uas(prov.gateway_ports[0])
        context = None
        if transport == "TLS":
            context = ssl.create_default_context(cafile=str(cert))
            context.check_hostname = False
        addr = voice.stream_addr(Transport(transport))
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(*addr, ssl=context)
        local = writer.get_extra_info("sockname")[:2]
        writer.write(pbx_request("INVITE", transport, local, 1, body=sdp(free_udp_port())))
        response = await read_response(reader)
        while response.status < 200:
            response = await read_response(reader)
        assert response.status == 200
        (contact,) = response.contact
        assert contact.uri.param("transport") == transport.lower()  # type: ignore[union-attr]
        assert contact.uri.port == addr[1]  # type: ignore[union-attr]
        to_tag = f";tag={response.to.tag}"
        writer.write(pbx_request("ACK", transport, local, 1, to_tag))
        writer.write(pbx_request("BYE", transport, local, 2, to_tag))
        assert (await read_response(reader)).status == 200
        writer.close()
        await voice.settled()
    [row] = await cdrs(voice_pool)
    assert (row["disposition"], row["hangup_by"]) == ("ANSWERED", "caller")
