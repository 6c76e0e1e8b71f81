"""ng benchmark: warpd's bencode and NgClient against bencode.py and a blocking client.

Run: ``.venv/bin/python -m bench.ng_roundtrip [--seconds 1.0] [--concurrency 50]``

(a) bencode encode+decode of an offer request and of a delete reply with call
    stats (the shapes warpd sends and reads per call), ours vs bencode.py.
(b) ng round trips against a real rtpengine (userspace, loopback, started
    here): ping, and offer+answer+delete call set-ups sequentially and with N
    calls in flight, ours (asyncio NgClient on uvloop) vs a blocking socket
    client with bencode.py, the kind that gave the reference figure of ~1,200
    sequential call set-ups/s (rtpengine-ng.md section 3).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bencodepy
import uvloop

from media.client import NgClient
from protocols.ng import bencode
from protocols.ng.bencode import Encodable
from protocols.ng.messages import Answer, Delete, Ice, Offer, Ping

HOST = "127.0.0.1"
NG_PORT, CLI_PORT, PORT_MIN, PORT_MAX = 22236, 22246, 40500, 40999

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
OFFER_BODY: dict[bytes, Encodable] = {
    b"command": b"offer",
    b"call-id": b"3848276298220188511@pbx.customer.example",
    b"from-tag": b"9fxced76sl",
    b"via-branch": b"z9hG4bK74bf9",
    b"sdp": SDP,
    b"ICE": b"remove",
    b"flags": [b"trust-address"],
    b"replace": [b"origin", b"session-connection"],
    b"codec": {b"strip": [b"G729"]},
}
STREAM: dict[bytes, Encodable] = {
    b"local port": 30000,
    b"SSRC": 4369,
    b"flags": [b"RTP", b"filled"],
    b"endpoint": {b"family": b"IPv4", b"address": b"192.0.2.1", b"port": 4000},
    b"stats": {b"packets": 1500, b"bytes": 258000, b"errors": 0},
}
MEDIA: dict[bytes, Encodable] = {
    b"index": 1,
    b"type": b"audio",
    b"protocol": b"RTP/AVP",
    b"streams": [STREAM, STREAM],
}
# Keys in rtpengine's own (unsorted) order, as the daemon sends them.
DELETE_REPLY: dict[bytes, Encodable] = {
    b"created": 1795291897,
    b"last signal": 1795291897,
    b"SSRC": {},
    b"tags": {
        b"ft": {b"tag": b"ft", b"medias": [MEDIA]},
        b"tt": {b"tag": b"tt", b"medias": [MEDIA]},
    },
    b"totals": {
        b"RTP": {b"packets": 3000, b"bytes": 516000, b"errors": 0},
        b"RTCP": {b"packets": 30, b"bytes": 2400, b"errors": 0},
    },
    b"result": b"ok",
}
DELETE_REPLY_BYTES = (
    b"d"
    + b"".join(bencodepy.encode(k) + bencodepy.encode(v) for k, v in DELETE_REPLY.items())
    + b"e"
)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            work()
        count += 100
    return count / (time.perf_counter() - started)


def codec_rows(seconds: float) -> list[tuple[str, str, float, float]]:
    offer_bytes = bencode.encode(OFFER_BODY)
    assert bencode.decode(DELETE_REPLY_BYTES) == bencodepy.decode(DELETE_REPLY_BYTES)
    rows = []
    cases = (
        ("offer request", OFFER_BODY, offer_bytes),
        ("delete reply", DELETE_REPLY, DELETE_REPLY_BYTES),
    )
    for work, payload, raw in cases:

        def ours(p: Encodable = payload, r: bytes = raw) -> object:
            return bencode.encode(p), bencode.decode(r)

        def peer(p: Encodable = payload, r: bytes = raw) -> object:
            return bencodepy.encode(p), bencodepy.decode(r)

        rows.append(
            (
                f"bencode encode+decode, {work}",
                "encode+decode/s",
                rate(ours, seconds),
                rate(peer, seconds),
            )
        )
    return rows


def start_rtpengine(rundir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("rtpengine")
    if binary is None:
        raise SystemExit("rtpengine not found: apt-get install rtpengine-daemon")
    process = subprocess.Popen(
        [binary, "--config-file=none", "--table=-1", f"--interface=lo/{HOST}",
         f"--listen-ng={HOST}:{NG_PORT}", f"--listen-cli={HOST}:{CLI_PORT}",
         f"--port-min={PORT_MIN}", f"--port-max={PORT_MAX}", "--foreground",
         "--log-stderr", "--log-level=3", f"--pidfile={rundir / 'rtpengine.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.05)
        probe.connect((HOST, NG_PORT))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                probe.send(b"p d7:command4:pinge")
                probe.recv(100)
                return process
            except TimeoutError:
                continue
            except ConnectionRefusedError:  # not bound yet: refused at once
                time.sleep(0.02)
    process.kill()
    raise SystemExit("rtpengine did not answer ping")


class BlockingClient:
    """The peer: one blocking socket, bencode.py, no retransmission."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.sock.connect((HOST, NG_PORT))
        self.seq = 0

    def request(self, body: dict[bytes, object]) -> dict[bytes, object]:
        self.seq += 1
        cookie = b"blk_%d" % self.seq
        self.sock.send(cookie + b" " + bencodepy.encode(body))
        while True:
            reply_cookie, reply = self.sock.recv(65535).split(b" ", 1)
            if reply_cookie == cookie:
                decoded: dict[bytes, object] = bencodepy.decode(reply)
                return decoded

    def call(self, n: int) -> None:
        call_id = b"blk-%d" % n
        base = {b"call-id": call_id, b"from-tag": b"ft", b"sdp": SDP, b"ICE": b"remove"}
        self.request({**base, b"command": b"offer"})
        self.request({**base, b"command": b"answer", b"to-tag": b"tt"})
        self.request({b"command": b"delete", b"call-id": call_id, b"delete delay": 0})


async def our_call(client: NgClient, call_id: str) -> None:
    await client.request(Offer(call_id=call_id, from_tag="ft", sdp=SDP, ice=Ice.REMOVE))
    await client.request(
        Answer(call_id=call_id, from_tag="ft", to_tag="tt", sdp=SDP, ice=Ice.REMOVE)
    )
    await client.request(Delete(call_id=call_id, delete_delay=0))


async def async_rate(work: Callable[[int], Awaitable[None]], seconds: float, workers: int) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal count
        n = index
        while time.perf_counter() < deadline:
            await work(n)
            n += workers
            count += 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for index in range(workers):
            group.create_task(worker(index))
    return count / (time.perf_counter() - started)


async def ng_rows(seconds: float, concurrency: int) -> list[tuple[str, str, float, float]]:
    peer = BlockingClient()
    peer_ping = rate(lambda: peer.request({b"command": b"ping"}), seconds)
    serial = iter(range(10**9))
    peer_calls = rate(lambda: peer.call(next(serial)), seconds)
    async with NgClient(HOST, NG_PORT, instance_prefix="bench") as client:

        async def ping(_: int) -> None:
            await client.request(Ping())

        async def call(n: int) -> None:
            await our_call(client, f"ours-{concurrency}-{n}")

        ours_ping = await async_rate(ping, seconds, 1)
        ours_calls = await async_rate(call, seconds, 1)
        ours_ping_n = await async_rate(ping, seconds, concurrency)
        ours_calls_n = await async_rate(call, seconds, concurrency)
    return [
        ("ng ping, sequential", "round trips/s", ours_ping, peer_ping),
        ("ng offer+answer+delete, sequential", "call set-ups/s", ours_calls, peer_calls),
        (f"ng ping, {concurrency} in flight", "round trips/s", ours_ping_n, peer_ping),
        (
            f"ng offer+answer+delete, {concurrency} calls in flight",
            "call set-ups/s",
            ours_calls_n,
            peer_calls,
        ),
    ]


def print_table(rows: list[tuple[str, str, float, float]]) -> None:
    print("| work | unit | warpd | peer | warpd/peer |")
    print("|---|---|---:|---:|---:|")
    for work, unit, ours, peer in rows:
        print(f"| {work} | {unit} | {ours:,.0f} | {peer:,.0f} | {ours / peer:.2f}x |")
    print()
    print("peer: bencode.py for (a); a blocking socket client with bencode.py for (b)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    rows = codec_rows(args.seconds)
    with tempfile.TemporaryDirectory() as rundir:
        process = start_rtpengine(Path(rundir))
        try:
            rows += uvloop.run(ng_rows(args.seconds, args.concurrency))
        finally:
            process.kill()
            process.wait()
    print_table(rows)


if __name__ == "__main__":
    main()
