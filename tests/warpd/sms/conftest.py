"""A running warpd with the demo provisioned against an SMSC simulator, on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest_asyncio

from warpd.config import parse
from warpd.daemon import Daemon
from warpd.systemd import Notifier


@dataclass
class Running:
    daemon: Daemon
    dsn: str
    smpp: tuple[str, int]
    system_id: str
    password: str
    simulator_port: int
    state_dir: Path

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def value(self, sql: str, *args: object) -> object:
        rows = await self.query(sql, *args)
        return rows[0][0] if rows else None


def warpd_config(
    dsn: str,
    state: Path,
    simulator_port: int,
    extra: str = "",
    smpp: str = "",
    http: str = "",
    sms: str = "",
    pool_max: int = 6,
) -> str:
    return (
        f"[database]\ndsn = '{dsn}'\npool_min = {min(2, pool_max)}\npool_max = {pool_max}\n"
        f"[http]\nlisten = '127.0.0.1:0'\n{http}[smpp]\nlisten = '127.0.0.1:0'\n{smpp}"
        f"[daemon]\nstate_dir = '{state}'\nshutdown_timeout = 3.0\n"
        f"[demo]\nenabled = true\nsimulator_port = {simulator_port}\n"
        f"[sms]\nreload_interval = 0.5\n{sms}[cluster]\ninstance_id = 'test'\n{extra}"
    )


def write_config(state: Path, text: str) -> Path:
    """The file a SIGHUP re-reads."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "warpd.toml"
    path.write_text(text)
    return path


async def start_warpd(
    dsn: str,
    state: Path,
    simulator_port: int,
    extra: str = "",
    smpp: str = "",
    http: str = "",
    sms: str = "",
    pool_max: int = 6,
) -> Running:
    path = write_config(
        state, warpd_config(dsn, state, simulator_port, extra, smpp, http, sms, pool_max)
    )
    daemon = Daemon(
        parse(path.read_text(), str(path), {}),
        config_path=path,
        migrate=True,
        notifier=Notifier({}),
    )
    task = asyncio.create_task(daemon.run(install_signals=False))
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait([task, ready], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        raise AssertionError(f"warpd stopped during start: {task.result()!r}")
    assert ready.done(), "warpd not ready in 30 s"
    daemon.task = task  # type: ignore[attr-defined]
    assert daemon.sms is not None
    creds = json.loads((state / "demo-credentials.json").read_text())["smpp"]
    # The demo connector binds to the in-process simulator: wait for it.
    async with asyncio.timeout(10):
        while not all(c.up for c in daemon.sms.connectors.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return Running(
        daemon,
        dsn,
        (creds["host"], creds["port"]),
        creds["system_id"],
        creds["password"],
        simulator_port,
        state,
    )


async def stop_warpd(running: Running) -> None:
    running.daemon.request_stop()
    assert await asyncio.wait_for(running.daemon.task, 15) == 0  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def warpd(database_dsn: str, tmp_path: Path) -> AsyncIterator[Running]:
    running = await start_warpd(database_dsn, tmp_path / "state", 0)
    yield running
    await stop_warpd(running)
