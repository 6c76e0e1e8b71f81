"""Raw loopback clients for the hostile cases: bytes in, and when the server hung up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd

#: Short SMPP timers, so each hostile case ends in seconds (the schema's minimums).
SMPP_TIMERS = "session_init_timeout = 1.0\nenquire_link_interval = 1.0\nresponse_timeout = 1.0\n"
#: The HTTP slowloris guard's deadline for a first request's headers, short for the same reason.
HTTP_HEADER_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Http:
    host: str
    port: int
    api_key: str
    admin_token: str


def http_of(running: Running) -> Http:
    creds = json.loads((running.state_dir / "demo-credentials.json").read_text())["http"]
    host, port = creds["base_url"].removeprefix("http://").rsplit(":", 1)
    return Http(host, int(port), creds["api_key"], creds["admin_token"])


@pytest_asyncio.fixture
async def hardened(database_dsn: str, tmp_path: Path) -> AsyncIterator[Running]:
    running = await start_warpd(
        database_dsn, tmp_path / "state", 0, smpp=SMPP_TIMERS,
        http=f"header_timeout = {HTTP_HEADER_TIMEOUT}\n",
    )  # fmt: skip
    yield running
    task: asyncio.Task[int] = running.daemon.task  # type: ignore[attr-defined]
    assert not task.done(), "warpd exited during the hostile cases"
    await stop_warpd(running)


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float | None:
    """Seconds until the server closed the connection (what it sent is discarded), or None."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, data: bytes, gap: float, until: float) -> int:
    """Send ``data`` a byte every ``gap`` s until ``until`` (monotonic) or the peer closes."""
    sent = 0
    for byte in data:
        if time.monotonic() >= until or writer.is_closing():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        sent += 1
        await asyncio.sleep(gap)
    return sent
