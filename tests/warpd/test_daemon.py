"""The daemon in-process: ops endpoints, draining, SIGHUP reload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from warpd.config import parse
from warpd.daemon import Daemon
from warpd.errors import StorageError
from warpd.store.database import KEPT_CONNECTIONS
from warpd.store.migrate import load_migrations
from warpd.systemd import Notifier

LATEST = load_migrations()[-1].version


def daemon_config(dsn: str, extra: str = "") -> str:
    return (
        f"[database]\ndsn = '{dsn}'\npool_min = 1\npool_max = 3\n"
        f"[http]\nlisten = '127.0.0.1:0'\n[smpp]\nlisten = '127.0.0.1:0'\n"
        f"[daemon]\nshutdown_timeout = 2.0\n{extra}"
    )


@pytest_asyncio.fixture
async def running(database_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    path = tmp_path / "warpd.toml"
    path.write_text(daemon_config(database_dsn))
    daemon = Daemon(
        parse(path.read_text(), str(path), {}),
        config_path=path,
        migrate=True,
        notifier=Notifier({}),
    )
    task = asyncio.create_task(daemon.run(install_signals=False))
    async with asyncio.timeout(20):
        await daemon.ready.wait()
    assert daemon.http is not None
    host, port = daemon.http.addresses[0]
    yield daemon, f"http://{host}:{port}"
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.content_type, await response.text()


async def test_health_ready_metrics(running: tuple[Daemon, str]) -> None:
    _, base = running
    assert await get(base + "/health") == (200, "application/json", '{"status":"ok"}')
    assert await get(base + "/ready") == (
        200,
        "application/json",
        f'{{"ready":true,"schema_version":{LATEST}}}',
    )
    status, content_type, body = await get(base + "/metrics")
    assert status == 200
    assert content_type == "text/plain"
    for line in (
        "warpd_ready 1.0",
        f"warpd_schema_version {LATEST}.0",
        # pool_max = 3 for queries, and the connections warpd keeps beside them
        f'warpd_db_pool_connections{{state="max"}} {3 + KEPT_CONNECTIONS}.0',
        'warpd_http_requests_total{route="/ready",status="200"} 1.0',
        "process_resident_memory_bytes",
        "warpd_build_info{python=",
    ):
        assert line in body, line


async def test_unknown_routes_and_methods_answer_json(running: tuple[Daemon, str]) -> None:
    _, base = running
    assert await get(base + "/nope") == (
        404,
        "application/json",
        '{"code":"not_found","message":"Not Found"}',
    )
    async with aiohttp.ClientSession() as session, session.post(base + "/health") as response:
        assert response.status == 405
        assert await response.json() == {
            "code": "method_not_allowed",
            "message": "Method Not Allowed",
        }
    _, _, body = await get(base + "/metrics")
    assert 'warpd_http_requests_total{route="unmatched",status="404"} 1.0' in body


async def test_ready_turns_503_when_the_database_goes_away(
    running: tuple[Daemon, str], database_dsn: str
) -> None:
    daemon, base = running
    assert daemon.database is not None
    async with daemon.database.pool.acquire() as conn:
        await conn.execute("DROP TABLE schema_migrations")
    status, _, body = await get(base + "/ready")
    assert status == 503
    assert f"schema version 0, expected {LATEST}" in body


async def test_sighup_reload_applies_log_level_and_refuses_a_broken_file(
    running: tuple[Daemon, str], tmp_path: Path, database_dsn: str
) -> None:
    daemon, base = running
    path = tmp_path / "warpd.toml"
    path.write_text(daemon_config(database_dsn, "[log]\nlevel = 'debug'\n"))
    assert await daemon.reload()
    assert daemon.config.log.level == "debug"
    path.write_text("[log]\nlevel = 'shouting'\n")
    assert not await daemon.reload()
    assert daemon.config.log.level == "debug"
    _, _, body = await get(base + "/metrics")
    assert 'warpd_config_reloads_total{result="ok"} 1.0' in body
    assert 'warpd_config_reloads_total{result="error"} 1.0' in body


async def test_run_refuses_an_unmigrated_schema(database_dsn: str) -> None:
    daemon = Daemon(parse(daemon_config(database_dsn), "t", {}), notifier=Notifier({}))
    with pytest.raises(StorageError, match="run 'warpd migrate'"):
        await daemon.run(install_signals=False)
