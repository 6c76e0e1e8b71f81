"""The connection pool: ``database.pool_max`` counts the connections for queries; the
ones warpd's writers and listeners keep for the process's life come on top of it."""

from __future__ import annotations

from pathlib import Path

from protocols.smpp.constants import CommandStatus

from .conftest import start_warpd, stop_warpd
from .helpers import bind, submit


async def test_a_pool_of_one_still_sends_and_brings_the_receipt_back(
    database_dsn: str, tmp_path: Path
) -> None:
    """With the kept connections counted in pool_max, a small pool is all kept: the
    dispatcher's claim and the receipt's delivery would wait for a connection for ever."""
    running = await start_warpd(database_dsn, tmp_path / "state", 0, pool_max=1)
    try:
        peer, resp = await bind(running, running.system_id, running.password)
        assert resp.command_status == CommandStatus.ESME_ROK
        sent = await peer.request(submit())
        assert sent.command_status == CommandStatus.ESME_ROK
        [receipt] = await peer.deliveries(1)
        assert sent.message_id.encode() in receipt.short_message  # type: ignore[attr-defined]
        peer.close()
    finally:
        await stop_warpd(running)
