"""Loopback helpers for the media tests: UDP endpoints that play the two call
parties, a fault-injecting ng proxy, SDP and RTP builders."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Callable
from typing import cast

HOST = "127.0.0.1"


def sdp(port: int, session_id: int = 1) -> bytes:
    """An RFC 4566 audio offer/answer for a party listening on ``HOST:port``."""
    return (
        f"v=0\r\no=- {session_id} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()


def media_port(body: bytes) -> int:
    """The audio port of an SDP rewritten by rtpengine."""
    found = re.search(rb"m=audio (\d+) ", body)
    assert found is not None, body
    return int(found.group(1))


def rtp(seq: int, ssrc: int, payload: bytes = b"\xff" * 160) -> bytes:
    """An RFC 3550 RTP packet: V=2, PT 0 (PCMU), 20 ms of 8 kHz per packet."""
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


class UdpEndpoint(asyncio.DatagramProtocol):
    """A loopback UDP socket with a queue of what it received."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def recv(self, timeout: float = 1.0) -> tuple[bytes, tuple[str, int]]:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_endpoint(port: int = 0) -> UdpEndpoint:
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_datagram_endpoint(UdpEndpoint, local_addr=(HOST, port))
    return endpoint


class NgProxy(asyncio.DatagramProtocol):
    """Sits between an ng client and rtpengine and records both directions;
    ``drop_reply(n)`` says whether the n-th reply (from 0) is dropped;
    ``refuse_json`` makes it an rtpengine too old for JSON: a JSON body goes on
    mangled, so the real rtpengine answers it ``Invalid NG data format``."""

    def __init__(
        self, upstream: tuple[str, int], drop_reply: Callable[[int], bool], refuse_json: bool
    ) -> None:
        self.upstream = upstream
        self.drop_reply = drop_reply
        self.refuse_json = refuse_json
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None
        self.replied = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.upstream:
            index = len(self.replies)
            self.replies.append(data)
            self.replied.set()
            if self.client is not None and not self.drop_reply(index):
                self.transport.sendto(data, self.client)
        else:
            self.client = addr
            self.requests.append(data)
            cookie, _, body = data.partition(b" ")
            if self.refuse_json and body.startswith(b"{"):
                data = cookie + b" not-bencode"
            self.transport.sendto(data, self.upstream)

    def inject(self, data: bytes) -> None:
        """Send ``data`` to the client as if rtpengine had sent it."""
        assert self.transport is not None
        assert self.client is not None
        self.transport.sendto(data, self.client)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_proxy(
    port: int,
    upstream: tuple[str, int],
    drop_reply: Callable[[int], bool],
    *,
    refuse_json: bool = False,
) -> NgProxy:
    loop = asyncio.get_running_loop()
    _, proxy = await loop.create_datagram_endpoint(
        lambda: NgProxy(upstream, drop_reply, refuse_json), local_addr=(HOST, port)
    )
    return proxy
