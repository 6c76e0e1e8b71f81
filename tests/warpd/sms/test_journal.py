"""The journal under a row PostgreSQL refuses: the rest of the batch is still written."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from warpd.sms.journal import PartAccepted

from .conftest import Running
from .helpers import bind, submit, wait_for


async def test_a_refused_entry_does_not_stop_the_others(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    # A part of a message that does not exist: the foreign key refuses it.
    ghost = sms.journal.add_and_wait(
        PartAccepted(uuid.uuid4(), 1, next(iter(sms.connectors)), "x", last=True, attempts=1)
    )
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    resp = await peer.request(submit())
    assert resp.command_status == 0
    [receipt] = await peer.deliveries(1)
    assert resp.message_id.encode() in receipt.short_message  # type: ignore[attr-defined]
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await ghost
    await wait_for(lambda: sms.journal.idle, what="journal idle")
    assert await warpd.value("SELECT state FROM messages") == "delivered"
    peer.close()
