"""``[sms] max_queue_age``: back-pressure instead of delay when a route's queue has stalled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from protocols.smpp.constants import CommandStatus
from warpd.smpp import connector as connector_module

from .conftest import start_warpd, stop_warpd
from .helpers import bind, submit, take_carrier_away, wait_for


async def test_new_messages_are_refused_while_the_oldest_for_their_connector_waits_too_long(
    database_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connector_module, "BACKOFF_MAX", 1.0)
    warpd = await start_warpd(database_dsn, tmp_path / "state", 0, sms="max_queue_age = 1.0\n")
    try:
        sms = warpd.daemon.sms
        assert sms is not None
        dispatcher = sms.dispatcher
        [connector_id] = sms.connectors
        peer, _ = await bind(warpd, warpd.system_id, warpd.password)
        assert (await peer.request(submit(to="447700900001"))).command_status == 0

        port = await take_carrier_away(warpd, connector_id)
        # The carrier is away: new messages queue for it while the oldest is young.
        for n in range(2, 4):
            assert (await peer.request(submit(to=f"44770090000{n}"))).command_status == 0
        assert dispatcher.queued(connector_id) == 2
        await asyncio.sleep(1.2)
        assert dispatcher.queue_age(connector_id) > 1.0
        refused = await peer.request(submit(to="447700900004"))
        assert refused.command_status == CommandStatus.ESME_RMSGQFUL
        account_id = await warpd.value(
            "SELECT account_id FROM smpp_users WHERE system_id = $1", warpd.system_id
        )
        assert sms.stats.refused[account_id, "queue_full"] == 1
        # Refused before anything was stored or charged.
        stored = "SELECT count(*) FROM messages WHERE destination_addr = $1"
        assert await warpd.value(stored, "447700900004") == 0

        # The carrier back: the queue drains and new messages are taken again.
        await warpd.query("UPDATE connectors SET port = $2 WHERE id = $1", connector_id, port)
        await wait_for(lambda: dispatcher.queued(connector_id) == 0, 30, "the queue drained")
        assert dispatcher.queue_age(connector_id) == 0.0
        assert (await peer.request(submit(to="447700900005"))).command_status == 0
        sent = "SELECT count(*) FROM messages WHERE state <> 'queued' AND destination_addr = $1"
        for n in (2, 3, 5):
            for _ in range(200):
                if await warpd.value(sent, f"44770090000{n}") == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"message {n} was not sent")
        peer.close()
    finally:
        await stop_warpd(warpd)
