"""A socket-level fuzzer against a running warpd (issue 12): seeded random and mutated bytes to
its SMPP listener (before and after a bind) and its HTTP listener (raw requests and JSON bodies
to the send handlers), each for a bounded time. A crash is the daemon's task ending, an
exception reaching the event loop, or an HTTP 500; afterwards warpd must still take a normal
bind, a normal submit and a normal HTTP request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from protocols.smpp.codec import encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    QuerySm,
    ReplaceSm,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)  # fmt: skip
from protocols.smpp.tlv import Tag, Tlv
from tests.warpd.sms.conftest import Running
from tests.warpd.sms.helpers import bind, submit

from .clients import Http, http_of
from .mutate import mutate
from .tally import TALLY, Fuzz, scaled

SEED = int(os.environ.get("WARPD_FUZZ_SEED", "12"))
WORKERS = 4


@dataclass
class Target:
    name: str
    inputs: int = 0
    crashes: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def watched(warpd: Running) -> AsyncIterator[tuple[Running, list[str]]]:
    """warpd, and every exception that reaches its event loop while the test runs."""
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        seen.append(f"{context.get('message')}: {context.get('exception')!r}")
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    yield warpd, seen
    loop.set_exception_handler(previous)


def smpp_seeds(system_id: str, password: str) -> list[bytes]:
    text = SubmitSm(source_addr="BANK", destination_addr="447700900123", short_message=b"hi",
                    registered_delivery=1)  # fmt: skip
    pdus = [
        BindTransceiver(system_id=system_id, password=password, sequence_number=1),
        BindTransmitter(system_id=system_id, password=password, sequence_number=1),
        BindReceiver(system_id=system_id, password=password, sequence_number=1),
        EnquireLink(sequence_number=2), Unbind(sequence_number=3),
        GenericNack(sequence_number=4, command_status=CommandStatus.ESME_RINVCMDID),
        text,
        SubmitSm(source_addr="BANK", destination_addr="447700900123", esm_class=0x40,
                 short_message=b"\x05\x00\x03\x01\x02\x01hello", sequence_number=5),
        SubmitSm(destination_addr="447700900123", data_coding=8,
                 tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"\x00h" * 200),), sequence_number=6),
        DataSm(source_addr="BANK", destination_addr="447700900123", sequence_number=7),
        QuerySm(message_id="1", source_addr="BANK", sequence_number=8),
        CancelSm(message_id="1", source_addr="BANK", destination_addr="1", sequence_number=9),
        ReplaceSm(message_id="1", source_addr="BANK", short_message=b"x", sequence_number=10),
        DeliverSmResp(sequence_number=11), SubmitSmResp(sequence_number=12, message_id="x"),
    ]  # fmt: skip
    return [encode(p) for p in pdus]


def http_seeds(key: str, admin: str) -> list[bytes]:
    sms = orjson.dumps({"to": "+447700900123", "from": "BANK", "text": "code 1"})

    def req(method: str, path: str, token: str = "", body: bytes = b"") -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        length = (
            f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n" if body else ""
        )
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{length}\r\n".encode() + body

    return [
        req("GET", "/health"), req("GET", "/ready"), req("GET", "/v1/openapi.json"),
        req("POST", "/v1/sms", key, sms), req("POST", "/v1/sms/batch", key, b"[" + sms + b"]"),
        req("GET", "/v1/sms?state=delivered&limit=5", key), req("GET", "/v1/balance", key),
        req("GET", "/v1/usage?from=2026-01-01&to=2026-02-01&group_by=day", key),
        req("POST", "/v1/otp", key, b'{"to": "+447700900123"}'),
        req("GET", "/v1/admin/accounts", admin),
        b"POST /v1/sms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nAuthorization: "
        + f"Bearer {key}\r\n\r\n".encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(sms), sms),
    ]  # fmt: skip


async def exchange(host: str, port: int, data: bytes, *, read_for: float = 0.05) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(read_for):
            return await reader.read(65536)
    except (TimeoutError, ConnectionError):
        return b""
    finally:
        writer.transport.abort()


async def run_for(seconds: float, worker: Callable[[random.Random], Awaitable[None]]) -> None:
    deadline = time.monotonic() + seconds

    async def loop(n: int) -> None:
        rng = random.Random(SEED * 1000 + n)
        while time.monotonic() < deadline:
            await worker(rng)

    await asyncio.gather(*(loop(n) for n in range(WORKERS)))


async def fuzz_smpp_unbound(running: Running, target: Target) -> None:
    host, port = running.smpp
    seeds = smpp_seeds(running.system_id, running.password)

    async def one(rng: random.Random) -> None:
        target.inputs += 1
        await exchange(host, port, mutate(rng, seeds))

    await run_for(scaled(3.0), one)


async def fuzz_smpp_bound(running: Running, target: Target) -> None:
    """Mutated PDUs on bound sessions (the paths past authentication); re-bind when closed."""
    seeds = smpp_seeds(running.system_id, running.password)[3:]

    async def session(rng: random.Random) -> None:
        peer, resp = await bind(running, running.system_id, running.password)
        assert resp.command_status == CommandStatus.ESME_ROK
        try:
            for _ in range(200):
                data = mutate(rng, seeds)
                target.inputs += 1
                peer.writer.write(data)
                await peer.writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.01):
                        if not await peer.reader.read(65536):
                            return  # warpd closed it (a broken command_length): bind again
        except ConnectionError:
            return
        finally:
            peer.writer.transport.abort()

    await run_for(scaled(3.0), session)


async def fuzz_http_raw(http: Http, target: Target) -> None:
    seeds = http_seeds(http.api_key, http.admin_token)

    async def one(rng: random.Random) -> None:
        data = mutate(rng, seeds)
        target.inputs += 1
        head = await exchange(http.host, http.port, data, read_for=0.3)
        if head.startswith(b"HTTP/1.1 5") and not head.startswith(b"HTTP/1.1 503"):
            target.crashes.append(f"{head[:40]!r} for {data.hex()}")

    await run_for(scaled(3.0), one)


JSON_PATHS = ("/v1/sms", "/v1/sms/batch", "/v1/otp", "/v1/otp/verify", "/v1/webhooks")


async def fuzz_http_json(http: Http, target: Target) -> None:
    seeds = [
        orjson.dumps(v) for v in (
            {"to": "+447700900123", "from": "BANK", "text": "code 1", "client_ref": "r"},
            {"to": "+447700900123", "from": "BANK", "hex": "00480069", "data_coding": 8},
            {"to": "447700900123", "text": "x" * 400, "validity": 60, "callback_url": "http://a"},
            [{"to": "+447700900123", "text": "a"}, {"to": "+1", "text": "b"}],
            {"messages": [{"to": "+447700900123", "text": "a"}]},
            {"to": "+447700900123", "code": "123456"}, {"url": "http://127.0.0.1:9/x"},
        )
    ]  # fmt: skip
    base = f"http://{http.host}:{http.port}"
    headers = {"Authorization": f"Bearer {http.api_key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def one(rng: random.Random) -> None:
            path, body = rng.choice(JSON_PATHS), mutate(rng, seeds)
            target.inputs += 1
            async with session.post(base + path, data=body, headers=headers) as r:
                if r.status >= 500 and r.status != 503:
                    target.crashes.append(f"{r.status} {path} for {body.hex()}")

        await run_for(scaled(3.0), one)


async def still_serving(running: Running, http: Http) -> None:
    peer, resp = await bind(running, running.system_id, running.password)
    assert resp.command_status == CommandStatus.ESME_ROK
    answer = await peer.request(submit())
    assert answer.command_status == CommandStatus.ESME_ROK
    peer.close()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{http.host}:{http.port}/health") as r,
    ):
        assert r.status == 200


FUZZERS: dict[str, Callable[[Running, Http, Target], Awaitable[None]]] = {
    "SMPP listener, before bind": lambda r, h, t: fuzz_smpp_unbound(r, t),
    "SMPP listener, bound session": lambda r, h, t: fuzz_smpp_bound(r, t),
    "HTTP listener, raw requests": lambda r, h, t: fuzz_http_raw(h, t),
    "HTTP JSON handlers": lambda r, h, t: fuzz_http_json(h, t),
}


@pytest.mark.parametrize("name", list(FUZZERS))
async def test_socket_fuzz_leaves_warpd_serving(
    watched: tuple[Running, list[str]], name: str
) -> None:
    running, loop_errors = watched
    await running.query("UPDATE accounts SET balance_micros = balance_micros")  # warm pool
    http = http_of(running)
    target = Target(name)
    await FUZZERS[name](running, http, target)
    task: asyncio.Task[int] = running.daemon.task  # type: ignore[attr-defined]
    alive = not task.done()
    crashes = target.crashes + loop_errors + ([] if alive else ["warpd exited"])
    TALLY.fuzz.append(Fuzz(name, target.inputs, len(crashes), "; ".join(crashes)[:300]))
    assert alive, "warpd exited under fuzzing"
    assert target.inputs > 50
    await still_serving(running, http)
    assert crashes == [], crashes[:5]
