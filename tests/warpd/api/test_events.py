"""GET /v1/events: the WebSocket stream of receipts and MO, resumed from a cursor."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson

from tests.warpd.api.conftest import Http


async def frames(http: Http, key: str, count: int, cursor: str = "") -> list[dict[str, Any]]:
    url = http.base.replace("http://", "ws://") + "/v1/events"
    if cursor:
        url += f"?cursor={cursor}"
    got: list[dict[str, Any]] = []
    async with http.session.ws_connect(url, headers={"Authorization": f"Bearer {key}"}) as ws:
        async with asyncio.timeout(20):
            while len(got) < count:
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                got.append(orjson.loads(message.data))
        # Nothing more than asked for arrives meanwhile.
        try:
            extra = await ws.receive(timeout=2.0)
        except TimeoutError:
            extra = None
        assert extra is None or extra.type != aiohttp.WSMsgType.TEXT, extra
    return got


async def send(http: Http, key: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        status, sent = await http.call(
            "POST", "/v1/sms", key, {"to": "447700900123", "from": "WARPD", "text": f"e{i}"}
        )
        assert status == 202, sent
        ids.append(sent["id"])
    return ids


async def test_the_stream_resumes_from_a_cursor_without_a_gap_or_a_repeat(http: Http) -> None:
    account, (key,) = await http.customer()
    first = await send(http, key, 3)
    seen = await frames(http, key, 3)
    assert [f["event"]["message_id"] for f in seen] == first
    assert all(f["event"]["type"] == "dlr" and f["event"]["state"] == "delivered" for f in seen)
    later = await send(http, key, 2)
    mo_id = uuid.uuid4()
    await http.running.query(
        "INSERT INTO mo_messages (id, account_id, source_addr, destination_addr, body)"
        " VALUES ($1, $2, '447700900555', '447700900000', 'STOP')",
        mo_id, account,
    )  # fmt: skip
    resumed = await frames(http, key, 3, seen[-1]["cursor"])
    dlrs = [f["event"]["message_id"] for f in resumed if f["event"]["type"] == "dlr"]
    mos = [f["event"] for f in resumed if f["event"]["type"] == "mo"]
    assert sorted(dlrs) == sorted(later)
    assert [(m["id"], m["text"], m["from"]) for m in mos] == [(str(mo_id), "STOP", "447700900555")]
    again = await frames(http, key, 0, resumed[-1]["cursor"])
    assert again == []


async def test_another_account_sees_nothing_and_plain_get_is_426(http: Http) -> None:
    _, (key,) = await http.customer()
    _, (other,) = await http.customer()
    await send(http, key, 1)
    assert await frames(http, other, 0) == []
    status, body = await http.call("GET", "/v1/events", other)
    assert (status, body["code"]) == (426, "upgrade_required")
    status, body = await http.call("GET", "/v1/events?cursor=bm9wZQ", other)
    assert (status, body["code"]) == (400, "invalid_request")
