"""PostgreSQL unreachable mid-load (issue 12): a TCP proxy between warpd and PostgreSQL is cut
for a few seconds while a customer submits over SMPP and HTTP.

While nothing can be committed, SMPP answers ESME_RMSGQFUL and HTTP 503, never an id for an
uncommitted message; /ready says why; afterwards work resumes and the process never exits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from protocols.record import replace
from protocols.smpp.constants import CommandStatus
from tests.warpd.sms import conftest as sms_conftest
from tests.warpd.sms.conftest import Running, start_warpd, stop_warpd
from tests.warpd.sms.helpers import Peer, bind, submit

from .accounting import balances_match
from .pgproxy import PgProxy
from .tally import TALLY, Fault, Hostile, scaled

ROK, MSGQFUL = CommandStatus.ESME_ROK, CommandStatus.ESME_RMSGQFUL


#: A partition answers nothing: each statement waits out asyncpg's command_timeout (30 s by
#: default), so the tests set it short, as an operator who wants fast refusals would.
COMMAND_TIMEOUT = 1.5


@pytest_asyncio.fixture
async def behind_proxy(
    database_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Running, PgProxy]]:
    plain = sms_conftest.warpd_config

    def short_timeouts(*args: Any, **kwargs: Any) -> str:
        return plain(*args, **kwargs).replace(
            "pool_max = 6\n",
            f"pool_max = 6\ncommand_timeout = {COMMAND_TIMEOUT}\nconnect_timeout = 1.0\n",
        )

    monkeypatch.setattr(sms_conftest, "warpd_config", short_timeouts)
    proxy = PgProxy(database_dsn)
    await proxy.start()
    running = await start_warpd(proxy.dsn, tmp_path / "state", 0)
    try:
        yield running, proxy
    finally:
        proxy.restore()
        if not running.daemon.task.done():  # type: ignore[attr-defined]
            await stop_warpd(running)
        await proxy.stop()


class Customer:
    """One SMPP bind and one HTTP key, each request timed."""

    def __init__(self, running: Running, peer: Peer, http: aiohttp.ClientSession) -> None:
        creds = json.loads((running.state_dir / "demo-credentials.json").read_text())["http"]
        self.base, self.key = creds["base_url"].rstrip("/"), creds["api_key"]
        self.peer, self.http = peer, http
        self.smpp: list[tuple[int, str, float]] = []  # status, message_id, seconds
        self.posts: list[tuple[int, str, float]] = []

    async def send_smpp(self, n: int) -> int:
        started = time.monotonic()
        self.peer.seq += 1
        self.peer.send(replace(submit(text=f"code {n}".encode()), sequence_number=self.peer.seq))
        resp = await self.peer.read(timeout=40)
        self.smpp.append(
            (resp.command_status, resp.message_id, time.monotonic() - started)  # type: ignore[attr-defined]
        )
        return resp.command_status

    async def send_http(self, n: int) -> int:
        started = time.monotonic()
        body = {"to": "+447700900123", "from": "BANK", "text": f"code {n}"}
        headers = {"Authorization": f"Bearer {self.key}"}
        async with self.http.post(f"{self.base}/v1/sms", json=body, headers=headers) as r:
            answer = await r.json()
            self.posts.append((r.status, answer.get("id", ""), time.monotonic() - started))
            return r.status

    async def ready(self) -> tuple[int, dict[str, object]]:
        async with self.http.get(f"{self.base}/ready") as r:
            return r.status, await r.json()


@pytest.mark.parametrize("how", ["refused", "partition"])
async def test_postgresql_unreachable_mid_load(
    behind_proxy: tuple[Running, PgProxy], how: str
) -> None:
    running, proxy = behind_proxy
    task: asyncio.Task[int] = running.daemon.task  # type: ignore[attr-defined]
    peer, resp = await bind(running, running.system_id, running.password)
    assert resp.command_status == ROK
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        customer = Customer(running, peer, http)
        n = 0
        for _ in range(5):  # before: accepted
            n += 1
            assert await customer.send_smpp(n) == ROK
            assert await customer.send_http(n) == 202
        before = (len(customer.smpp), len(customer.posts))
        proxy.cut(blackhole=how == "partition")
        readies: list[tuple[int, dict[str, object]]] = []
        deadline = time.monotonic() + scaled(3.0)
        while time.monotonic() < deadline:
            n += 1
            await customer.send_smpp(n)
            await customer.send_http(n)
            readies.append(await customer.ready())
            await asyncio.sleep(0.05)
        assert not task.done(), "warpd exited while PostgreSQL was unreachable"
        during_smpp = customer.smpp[before[0] :]
        during_http = customer.posts[before[1] :]
        proxy.restore()
        resumed = time.monotonic()

        async def accepted_again() -> None:
            nonlocal n
            while True:
                n += 1
                if await customer.send_smpp(n) == ROK and await customer.send_http(n) == 202:
                    return
                await asyncio.sleep(0.1)

        await asyncio.wait_for(accepted_again(), 20)
        recovery = time.monotonic() - resumed
        ready_status, ready_body = await customer.ready()
    peer.close()

    smpp_statuses = Counter(s for s, _, _ in during_smpp)
    smpp_names = {CommandStatus(s).name: n for s, n in smpp_statuses.items()}
    http_statuses = Counter(s for s, _, _ in during_http)
    fault = Fault(
        f"PostgreSQL unreachable {scaled(3.0):.0f} s ({how})", injected=1,
        offered=len(customer.smpp) + len(customer.posts),
    )  # fmt: skip
    acked = [m for s, m, _ in customer.smpp if s == ROK] + [
        m for s, m, _ in customer.posts if s == 202
    ]
    stored = {
        r[0]
        for r in await running.query(
            "SELECT id::text FROM messages WHERE id::text = any($1)", acked
        )
    }
    fault.acknowledged = len(acked)
    fault.lost = len(set(acked) - stored)
    deadline = time.monotonic() + 15
    while True:  # the accepted ones go upstream once the database is back
        delivered = await running.value(
            "SELECT count(*) FROM messages WHERE state = 'delivered' AND id::text = any($1)", acked
        )
        if delivered == len(acked) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    fault.delivered = int(delivered or 0)  # type: ignore[call-overload]
    slowest = max(t for _, _, t in during_smpp + during_http)
    fault.note = (
        f"during the cut SMPP {smpp_names}, HTTP {dict(http_statuses)}; "
        f"slowest answer {slowest:.2f} s; accepting again {recovery:.1f} s after restore; "
        f"{proxy.aborted} connections cut, {proxy.refused} refused"
    )
    TALLY.faults.append(fault)
    TALLY.hostile.append(Hostile(f"/ready, PostgreSQL {how}", str(readies[-1][1].get("reason"))))
    assert fault.lost == 0, fault  # never an id for an uncommitted message
    assert set(smpp_statuses) <= {ROK, MSGQFUL}, smpp_statuses
    assert set(http_statuses) <= {202, 503}, http_statuses
    # Observed: 2 x command_timeout (a statement, then the pool's reset of its connection).
    assert slowest < 2 * COMMAND_TIMEOUT + 1.0, fault.note
    assert smpp_statuses[MSGQFUL] > 0, fault.note
    assert http_statuses[503] > 0, fault.note
    assert all(status == 503 for status, _ in readies[1:]), readies
    assert "database" in str(readies[-1][1].get("reason")), readies[-1]
    assert (ready_status, ready_body.get("ready")) == (200, True)
    assert fault.delivered == len(acked), fault
    assert not task.done()
    await balances_match(running)
    # Regression: the webhook sender's LISTEN connection died in the cut, and
    # removing its listener at shutdown raised InterfaceError out of Daemon.run.
    await stop_warpd(running)
