"""Carrier connectors: failover, a connector that is down, throttling upstream, receipts early,
failed receipts refunded, long messages split per connector."""

from __future__ import annotations

from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.tlv import Tag, Tlv
from warpd.sim import EsmeConfig, Mode, ModeKind, run_esme

from .conftest import Running
from .helpers import (
    add_connector,
    bind,
    ledger_matches_balances,
    only_route,
    reloaded,
    start_simulator,
)


def esme(warpd: Running, **overrides: object) -> EsmeConfig:
    host, port = warpd.smpp
    base: dict[str, object] = {
        "host": host,
        "port": port,
        "system_id": warpd.system_id,
        "password": warpd.password,
        "count": 20,
        "window": 10,
        "receipt_timeout": 15.0,
    }
    base.update(overrides)
    return EsmeConfig(**base)  # type: ignore[arg-type]


async def states(warpd: Running) -> dict[str, int]:
    rows = await warpd.query("SELECT state, count(*) FROM messages GROUP BY state")
    return {r[0]: r[1] for r in rows}


async def test_permanent_refusal_fails_over_to_the_next_connector(warpd: Running) -> None:
    refusing = await start_simulator()
    refusing.set_mode(Mode(ModeKind.REJECT, status=CommandStatus.ESME_RINVDSTADR))
    working = await start_simulator()
    try:
        first = await add_connector(warpd, "refusing", refusing.port)
        second = await add_connector(warpd, "working", working.port)
        route = await only_route(warpd, [first, second])
        await reloaded(warpd, [first, second], route)
        summary = await run_esme(esme(warpd))
        assert summary.responses_by_status == {"ESME_ROK": 20}
        assert summary.receipts == 20
        assert summary.receipt_ids_matched == 20
        assert refusing.stats.submits_by_status.get("ESME_RINVDSTADR") == 20
        assert await states(warpd) == {"delivered": 20}
        parts = await warpd.value(
            "SELECT count(*) FROM message_parts WHERE connector_id = $1", second
        )
        assert parts == 20
    finally:
        await refusing.stop()
        await working.stop()
    await ledger_matches_balances(warpd)


async def test_refused_everywhere_is_rejected_refunded_and_reported(warpd: Running) -> None:
    refusing = await start_simulator()
    refusing.set_mode(Mode(ModeKind.REJECT, status=CommandStatus.ESME_RINVDSTADR))
    try:
        only = await add_connector(warpd, "refusing", refusing.port)
        route = await only_route(warpd, [only])
        await reloaded(warpd, [only], route)
        before = await warpd.value("SELECT balance_micros FROM accounts WHERE name = 'demo'")
        summary = await run_esme(esme(warpd, count=5))
        assert summary.responses_by_status == {"ESME_ROK": 5}  # accepted: we owned it
        assert summary.receipts_by_stat == {"REJECTD": 5}
        assert await states(warpd) == {"rejected": 5}
        error = await warpd.value("SELECT DISTINCT error_code FROM messages")
        assert error == CommandStatus.ESME_RINVDSTADR  # the carrier's status, kept
        after = await warpd.value("SELECT balance_micros FROM accounts WHERE name = 'demo'")
        assert after == before
        assert await warpd.value("SELECT count(*) FROM ledger WHERE kind = 'sms_refund'") == 5
    finally:
        await refusing.stop()
    await ledger_matches_balances(warpd)


async def test_a_connector_that_is_down_is_passed_over(warpd: Running) -> None:
    working = await start_simulator()
    try:
        # Nothing listens on the first connector's port.
        dead = await add_connector(warpd, "dead", 1)
        alive = await add_connector(warpd, "alive", working.port)
        route = await only_route(warpd, [dead, alive])
        await reloaded(warpd, [alive], route)
        summary = await run_esme(esme(warpd))
        assert summary.receipt_ids_matched == 20
        assert await states(warpd) == {"delivered": 20}
    finally:
        await working.stop()


async def test_throttled_upstream_pauses_and_still_delivers(warpd: Running) -> None:
    sms = warpd.daemon.sms
    assert sms is not None
    throttling = await start_simulator()
    throttling.set_mode(Mode(ModeKind.THROTTLE, fraction=0.5))
    try:
        only = await add_connector(warpd, "throttling", throttling.port)
        route = await only_route(warpd, [only])
        await reloaded(warpd, [only], route)
        summary = await run_esme(esme(warpd, count=10))
        assert summary.receipt_ids_matched == 10
        assert throttling.stats.submits_by_status.get("ESME_RTHROTTLED", 0) > 0
        assert sms.connectors[only].throttled > 0
        assert await states(warpd) == {"delivered": 10}
    finally:
        await throttling.stop()


async def test_receipts_before_their_submit_response_are_not_lost(warpd: Running) -> None:
    early = await start_simulator(receipt_delay=0.0)
    early.set_mode(Mode(ModeKind.RECEIPT_FIRST))
    try:
        only = await add_connector(warpd, "early", early.port)
        route = await only_route(warpd, [only])
        await reloaded(warpd, [only], route)
        summary = await run_esme(esme(warpd))
        assert summary.receipt_ids_matched == 20
        assert await states(warpd) == {"delivered": 20}
        assert await warpd.value("SELECT count(*) FROM pending_receipts") == 0
    finally:
        await early.stop()


async def test_undelivered_receipts_are_refunded_once(warpd: Running) -> None:
    failing = await start_simulator(outcomes={"UNDELIV": 1.0})
    try:
        only = await add_connector(warpd, "failing", failing.port)
        route = await only_route(warpd, [only])
        await reloaded(warpd, [only], route)
        summary = await run_esme(esme(warpd, count=10))
        assert summary.receipts_by_stat == {"UNDELIV": 10}
        assert await states(warpd) == {"undeliverable": 10}
        assert await warpd.value("SELECT count(*) FROM ledger WHERE kind = 'sms_refund'") == 10
        assert (
            await warpd.value("SELECT sum(amount_micros) FROM ledger WHERE kind LIKE 'sms%'") == 0
        )
    finally:
        await failing.stop()
    await ledger_matches_balances(warpd)


async def test_a_long_payload_is_split_by_the_connectors_split_mode(warpd: Running) -> None:
    sar = await start_simulator()
    try:
        only = await add_connector(warpd, "sar", sar.port, split_mode="sar")
        route = await only_route(warpd, [only])
        await reloaded(warpd, [only], route)
        peer, _ = await bind(warpd, warpd.system_id, warpd.password)
        text = ("Your statement is ready. " * 12).encode()  # 300 GSM7 characters: 2 parts
        resp = await peer.request(
            SubmitSm(
                source_addr="BANK",
                dest_addr_ton=1,
                destination_addr="447700900123",
                registered_delivery=1,
                tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, text),),
            )
        )
        assert resp.command_status == 0
        receipts = await peer.deliveries(1)
        assert f"id:{resp.message_id} ".encode() in receipts[0].short_message  # type: ignore[attr-defined]
        row = (await warpd.query("SELECT parts, state, price_micros FROM messages"))[0]
        assert row["parts"] == 2
        assert row["price_micros"] == 2 * 5_000
        assert row["state"] == "delivered"
        assert sar.stats.submits == 2
        peer.close()
    finally:
        await sar.stop()
