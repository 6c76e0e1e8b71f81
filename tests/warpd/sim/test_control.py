"""The simulator's HTTP control port, driven as bench/ and the fault suite drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.warpd.sim.conftest import Start
from tests.warpd.sim.support import load_for
from warpd.sim import ModeKind, SmscSimulator, run_esme
from warpd.sim.control import ControlServer


@pytest_asyncio.fixture
async def controlled(
    start_smsc: Start,
) -> AsyncIterator[tuple[SmscSimulator, aiohttp.ClientSession, str]]:
    smsc = await start_smsc()
    control = ControlServer(smsc, "127.0.0.1", 0)
    await control.start()
    async with aiohttp.ClientSession() as http:
        yield smsc, http, f"http://127.0.0.1:{control.port}"
    await control.stop()


Controlled = tuple[SmscSimulator, aiohttp.ClientSession, str]


async def test_stats_and_mode_start_normal(controlled: Controlled) -> None:
    _, http, base = controlled
    async with http.get(f"{base}/stats") as response:
        assert response.status == 200
        stats = await response.json()
    assert stats["mode"] == "normal"
    assert stats["submits"] == stats["binds"] == 0
    async with http.get(f"{base}/mode") as response:
        assert (await response.json())["mode"] == "normal"


async def test_post_mode_reject_applies_to_the_next_submits(controlled: Controlled) -> None:
    smsc, http, base = controlled
    body = {"mode": "reject", "status": "ESME_RINVDSTADR", "fraction": 1.0}
    async with http.post(f"{base}/mode", json=body) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["mode"] == "reject"
    assert answer["status"] == 0x0B
    assert smsc.mode.kind is ModeKind.REJECT
    summary = await run_esme(load_for(smsc, count=5))
    assert summary.responses_by_status == {"ESME_RINVDSTADR": 5}
    async with http.get(f"{base}/stats") as response:
        stats = await response.json()
    assert stats["submits_by_status"] == {"ESME_RINVDSTADR": 5}
    assert stats["mode"] == "reject"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"mode": "melt"}, "mode must be one of"),
        ({"mode": "throttle", "fraction": 2}, "fraction"),
        ({"mode": "throttle", "speed": 2}, "unknown mode parameters: speed"),
        ({"mode": "reject", "status": "ESME_NOPE"}, "unknown command_status"),
        ({"mode": "garbage", "every": "often"}, "every must be an integer"),
        ([1, 2], "JSON object"),
    ],
)
async def test_a_bad_mode_is_refused_with_a_reason(
    controlled: Controlled, body: object, reason: str
) -> None:
    smsc, http, base = controlled
    async with http.post(f"{base}/mode", json=body) as response:
        assert response.status == 400
        assert reason in (await response.json())["error"]
    assert smsc.mode.kind is ModeKind.NORMAL


async def test_a_body_that_is_not_json_is_refused(controlled: Controlled) -> None:
    _, http, base = controlled
    async with http.post(f"{base}/mode", data=b"mode=silent") as response:
        assert response.status == 400
        assert "JSON" in (await response.json())["error"]


async def test_post_mo_queues_it_for_the_next_receiver(controlled: Controlled) -> None:
    smsc, http, base = controlled
    body = {"source": "447700900123", "destination": "12345", "text": "STOP"}
    async with http.post(f"{base}/mo", json=body) as response:
        assert response.status == 200
        assert await response.json() == {"parts": 1}
    summary = await run_esme(load_for(smsc, count=1))
    assert summary.mo_received == 1
    assert smsc.stats.mo_acked == 1


async def test_post_mo_with_wait_times_out_without_a_receiver(controlled: Controlled) -> None:
    _, http, base = controlled
    body = {"source": "1", "destination": "2", "text": "x", "wait": True, "timeout": 0.1}
    async with http.post(f"{base}/mo", json=body) as response:
        assert response.status == 504


async def test_post_mo_refuses_missing_fields_and_bad_codings(controlled: Controlled) -> None:
    _, http, base = controlled
    async with http.post(f"{base}/mo", json={"text": "x"}) as response:
        assert response.status == 400
    body = {"source": "1", "destination": "2", "text": "x", "data_coding": 4}
    async with http.post(f"{base}/mo", json=body) as response:
        assert response.status == 400
        assert "data_coding" in (await response.json())["error"]


async def test_receipt_for_an_unknown_id(controlled: Controlled) -> None:
    smsc, http, base = controlled
    async with http.post(f"{base}/receipt-for-unknown", json={"stat": "EXPIRED"}) as response:
        assert response.status == 200
        message_id = (await response.json())["id"]
    summary = await run_esme(load_for(smsc, count=1))
    assert summary.unmatched_receipts == 1
    assert summary.receipts_by_stat == {"DELIVRD": 1, "EXPIRED": 1}
    assert message_id.startswith("unknown-")
    async with http.post(f"{base}/receipt-for-unknown", json={"stat": "GONE"}) as response:
        assert response.status == 400
