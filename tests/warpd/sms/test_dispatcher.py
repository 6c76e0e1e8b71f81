"""The dispatcher's two paths: memory in the steady state, the table behind a backlog."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from warpd.smpp import connector as connector_module

from .conftest import start_warpd, stop_warpd
from .helpers import bind, submit, take_carrier_away, wait_for


async def test_new_messages_queue_behind_a_backlog_only_while_it_lasts(
    database_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connector_module, "BACKOFF_MAX", 1.0)
    warpd = await start_warpd(
        database_dsn, tmp_path / "state", 0, sms="connector_queue_max = 100\n"
    )
    try:
        sms = warpd.daemon.sms
        assert sms is not None
        dispatcher = sms.dispatcher
        [connector_id] = sms.connectors
        # Once the first claim has seen the table empty, everything takes the memory path.
        await wait_for(lambda: dispatcher.has_room(connector_id), what="the fast path")
        peer, _ = await bind(warpd, warpd.system_id, warpd.password)
        for n in range(20):
            assert (await peer.request(submit(to=f"44770090{n:04d}"))).command_status == 0
        assert dispatcher.has_room(connector_id)

        port = await take_carrier_away(warpd, connector_id)
        for n in range(150):
            assert (await peer.request(submit(to=f"44770091{n:04d}"))).command_status == 0
        # The memory queue overflowed: what follows queues behind the rows in the table.
        assert dispatcher.queued(connector_id) <= 100
        assert not dispatcher.has_room(connector_id)
        assert (await peer.request(submit(to="447700919999"))).command_status == 0
        assert not dispatcher.has_room(connector_id)

        await warpd.query("UPDATE connectors SET port = $2 WHERE id = $1", connector_id, port)
        await wait_for(
            lambda: dispatcher.has_room(connector_id), 30, "the fast path after the backlog"
        )
        # The claim that found the table empty took the last of the backlog.
        for _ in range(300):
            if not await warpd.value("SELECT count(*) FROM messages WHERE state = 'queued'"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the backlog was not sent")
        assert (await peer.request(submit(to="447700929999"))).command_status == 0
        assert dispatcher.has_room(connector_id)
        peer.close()
    finally:
        await stop_warpd(warpd)
