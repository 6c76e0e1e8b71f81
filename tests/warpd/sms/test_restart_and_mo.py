"""Durability across a restart, and MO from carriers to customers (with STOP and START)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from protocols.record import replace
from protocols.smpp.pdu import BindTransmitter, Unbind, make_response
from warpd.sms.journal import NewDelivery

from .conftest import Running, start_warpd, stop_warpd
from .helpers import (
    add_connector,
    bind,
    ledger_matches_balances,
    only_route,
    reloaded,
    start_simulator,
    submit,
    wait_for,
)


async def test_acknowledged_messages_wait_out_a_dead_carrier_and_a_restart(
    database_dsn: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = await start_warpd(database_dsn, state, 0)
    # The only carrier is down: nothing can go out.
    await first.query("UPDATE connectors SET port = 1 WHERE name = 'demo-sim'")
    sms = first.daemon.sms
    assert sms is not None
    await wait_for(lambda: not any(c.up for c in sms.connectors.values()), what="carrier gone")
    peer, _ = await bind(first, first.system_id, first.password)
    ids = []
    for n in range(30):
        resp = await peer.request(submit(to=f"44770090{n:04d}"))
        assert resp.command_status == 0
        ids.append(resp.message_id)  # type: ignore[attr-defined]
    peer.close()
    await stop_warpd(first)
    assert await first.value("SELECT count(*) FROM messages WHERE state = 'queued'") == 30

    # A new process, the carrier back (the demo provisioning points it at the simulator).
    second = await start_warpd(database_dsn, state, 0)
    try:
        peer, _ = await bind(second, second.system_id, second.password)
        receipts = await peer.deliveries(30, timeout=20)
        got = {r.short_message.split(b" ")[0][3:].decode() for r in receipts}
        assert got == set(ids)
        rows = await second.query("SELECT state, attempts FROM messages")
        assert {r["state"] for r in rows} == {"delivered"}
        assert await second.value("SELECT count(*) FROM ledger WHERE kind = 'sms_charge'") == 30
        peer.close()
        await ledger_matches_balances(second)
    finally:
        await stop_warpd(second)


async def test_mo_reaches_the_customer_and_stop_opts_out(warpd: Running) -> None:
    simulator = warpd.daemon.demo_simulator
    assert simulator is not None
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    await asyncio.sleep(0.3)  # the receiver bind is registered with the delivery router
    await simulator.send_mo("447700900555", "447700900000", "Hello bank")
    [mo] = await peer.deliveries(1)
    assert mo.short_message == b"Hello bank"
    assert mo.source_addr == "447700900555"
    assert mo.esm_class & 0x3C == 0  # an MO, not a receipt
    await simulator.send_mo("447700900555", "447700900000", "STOP")
    await peer.deliveries(2)
    assert await warpd.value("SELECT count(*) FROM opt_outs WHERE msisdn = '447700900555'") == 1
    refused = await peer.request(submit(to="447700900555"))
    assert refused.command_status == 0x400  # README: the destination opted out
    await simulator.send_mo("447700900555", "447700900000", "start")
    await peer.deliveries(3)
    account = await warpd.value("SELECT id FROM accounts WHERE name = 'demo'")
    sms = warpd.daemon.sms
    assert sms is not None
    await wait_for(lambda: (account, "447700900555") not in sms.opt_outs_view(), what="opt-in")
    allowed = await peer.request(submit(to="447700900555"))
    assert allowed.command_status == 0
    rows = await warpd.query("SELECT state FROM mo_messages")
    assert [r[0] for r in rows] == ["received"] * 3
    peer.close()


async def test_mo_for_an_unrouted_number_is_kept_and_answered(warpd: Running) -> None:
    simulator = warpd.daemon.demo_simulator
    assert simulator is not None
    await simulator.send_mo("447700900555", "15550001111", "to nobody")
    await wait_for(lambda: simulator.stats.mo_acked >= 1, what="MO answered")
    assert await warpd.value("SELECT state FROM mo_messages") == "unrouted"


async def test_receipts_wait_for_the_customer_to_bind(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    # A transmitter bind only: the receipts have nowhere to go yet.
    sender, resp = await bind(warpd, warpd.system_id, warpd.password, BindTransmitter)
    assert resp.command_status == 0
    for n in range(10):
        assert (await sender.request(submit(to=f"4477009001{n:02d}"))).command_status == 0
    await wait_for(lambda: sms.stats.receipts.total() >= 10, what="carrier receipts")
    await asyncio.sleep(0.3)
    assert await warpd.value("SELECT count(*) FROM deliveries WHERE state = 'pending'") == 10
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    receipts = await peer.deliveries(10)
    assert len(receipts) == 10
    await asyncio.sleep(0.5)  # the journal records them as taken
    assert await warpd.value("SELECT count(*) FROM deliveries WHERE state = 'delivered'") == 10
    peer.close()
    sender.close()


async def test_another_connector_added_at_run_time_is_used(warpd: Running) -> None:
    extra = await start_simulator()
    try:
        connector = await add_connector(warpd, "added", extra.port)
        route = await only_route(warpd, [connector])
        await reloaded(warpd, [connector], route)
        peer, _ = await bind(warpd, warpd.system_id, warpd.password)
        assert (await peer.request(submit())).command_status == 0
        await peer.deliveries(1)
        assert extra.stats.submits == 1
        peer.close()
    finally:
        await extra.stop()


async def test_a_message_that_outlives_its_validity_expires_refunded(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    await warpd.query("UPDATE connectors SET port = 1 WHERE name = 'demo-sim'")
    await wait_for(lambda: not any(c.up for c in sms.connectors.values()), what="carrier gone")
    peer, _ = await bind(warpd, warpd.system_id, warpd.password)
    short = replace(submit(), validity_period="000000000002000R")  # two seconds
    resp = await peer.request(short)
    assert resp.command_status == 0
    await asyncio.sleep(2.2)
    assert sms.dispatcher.expire() == 1
    [receipt] = await peer.deliveries(1)
    assert b"stat:EXPIRED" in receipt.short_message
    assert await warpd.value("SELECT state FROM messages") == "expired"
    assert await warpd.value("SELECT count(*) FROM ledger WHERE kind = 'sms_refund'") == 1
    peer.close()
    await ledger_matches_balances(warpd)


async def test_sigterm_unbinds_customers_gracefully(database_dsn: str, tmp_path: Path) -> None:
    running = await start_warpd(database_dsn, tmp_path / "state", 0)
    peer, _ = await bind(running, running.system_id, running.password)
    running.daemon.request_stop()
    unbind = await peer.read(timeout=5)
    assert isinstance(unbind, Unbind)
    peer.send(make_response(unbind))
    assert await peer.closed()
    assert await asyncio.wait_for(running.daemon.task, 15) == 0  # type: ignore[attr-defined]


async def test_a_receipt_for_a_bind_that_is_unbinding_waits(
    database_dsn: str, tmp_path: Path
) -> None:
    """SIGTERM unbinds a receiver; a receipt the journal commits before the customer answers
    the unbind must not be sent on that bind (deliver_sm is not allowed there any more) nor
    stop the daemon: it stays queued (in the table it is pending) and the daemon exits 0."""
    running = await start_warpd(database_dsn, tmp_path / "state", 0)
    sms = running.daemon.sms
    assert sms is not None
    peer, _ = await bind(running, running.system_id, running.password)
    user_id = await running.value("SELECT id FROM smpp_users WHERE system_id = $1",
                                  running.system_id)  # fmt: skip
    assert isinstance(user_id, int)
    running.daemon.request_stop()
    unbind = await peer.read(timeout=5)
    assert isinstance(unbind, Unbind)
    sms.router.offer([NewDelivery(1, "smpp", user_id, {"account_id": 1, "type": "receipt"})])
    assert sms.router.take(user_id) is not None  # still queued, not handed to the bind
    peer.send(make_response(unbind))
    assert await peer.closed()
    assert await asyncio.wait_for(running.daemon.task, 15) == 0  # type: ignore[attr-defined]
