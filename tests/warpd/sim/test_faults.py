"""The simulator's fault modes, each seen through the load generator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from protocols.smpp.constants import CommandStatus
from tests.warpd.sim.conftest import Start
from tests.warpd.sim.support import load_for
from warpd.sim import Mode, ModeKind, SmscSimulator, run_esme


async def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def _bound(smsc: SmscSimulator, binds: int = 1) -> None:
    await _until(lambda: smsc.stats.binds >= binds)


async def test_throttle_makes_the_esme_back_off_and_still_complete(start_smsc: Start) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.THROTTLE, fraction=0.3))
    summary = await run_esme(load_for(smsc, count=100, binds=2))
    assert summary.ok, summary.render()
    throttled = summary.responses_by_status["ESME_RTHROTTLED"]
    assert throttled > 0
    assert summary.resubmitted == throttled
    assert summary.responses_by_status["ESME_ROK"] == 100
    assert summary.submitted == 100 + throttled
    assert smsc.stats.submits_by_status["ESME_RTHROTTLED"] == throttled


async def test_throttle_at_a_tps_cap_refuses_only_what_exceeds_it(start_smsc: Start) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.THROTTLE, tps=100))
    summary = await run_esme(load_for(smsc, count=150, window=20, receipts=False))
    assert summary.ok, summary.render()
    assert summary.responses_by_status["ESME_RTHROTTLED"] > 0
    # A burst of 100, then 100/s for the other 50.
    assert summary.elapsed_s >= 0.4


async def test_a_throttle_storm_ends_after_its_duration(start_smsc: Start) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.THROTTLE, duration=0.3))
    summary = await run_esme(load_for(smsc, count=20))
    assert summary.ok, summary.render()
    assert summary.elapsed_s >= 0.25
    assert smsc.mode.kind is ModeKind.NORMAL


async def test_reject_is_counted_and_fails_the_run(start_smsc: Start) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.REJECT, status=CommandStatus.ESME_RINVDSTADR))
    summary = await run_esme(load_for(smsc, count=30))
    assert not summary.ok
    assert summary.responses_by_status == {"ESME_RINVDSTADR": 30}
    assert summary.receipts == summary.receipts_missing == 0
    assert summary.resubmitted == 0  # a permanent error is not retried
    assert smsc.stats.receipts_sent == 0


async def test_silent_carrier_makes_every_submit_time_out(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.2)
    task = asyncio.create_task(run_esme(load_for(smsc, count=10, response_timeout=0.5)))
    await _bound(smsc)
    smsc.set_mode(Mode(ModeKind.SILENT))
    summary = await task
    assert not summary.ok
    assert summary.timeouts == 10
    assert summary.responses_by_status == {}
    assert "timed out" in summary.render()
    assert smsc.stats.submits == 0  # read, never answered


async def test_drop_closes_every_bind_and_the_esme_resumes(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.005, receipt_delay=0.02)
    # Paced, so the load is still running when the drop comes on any machine.
    load = load_for(smsc, count=300, binds=2, window=20, rate=1500.0)
    task = asyncio.create_task(run_esme(load))
    await _until(lambda: smsc.stats.submits >= 50)
    smsc.set_mode(Mode(ModeKind.DROP))
    summary = await task
    assert smsc.stats.drops == 1
    assert smsc.mode.kind is ModeKind.NORMAL  # one drop, then binds are accepted again
    assert summary.reconnects == 2
    assert smsc.stats.binds == 4
    assert summary.responses_by_status == {"ESME_ROK": 300}
    # Receipts unacknowledged at the drop are sent again on the new binds.
    assert summary.receipts_missing == 0
    assert summary.receipt_ids_matched == 300


async def test_repeated_drops_while_the_load_runs(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.005)
    task = asyncio.create_task(run_esme(load_for(smsc, count=400, window=10, rate=800.0)))
    await _bound(smsc)
    smsc.set_mode(Mode(ModeKind.DROP, interval=0.15, duration=0.4))
    summary = await task
    await _until(lambda: smsc.mode.kind is ModeKind.NORMAL)
    assert smsc.stats.drops == 3  # at 0, 0.15 and 0.30 s
    assert summary.reconnects >= 2
    assert summary.responses_by_status == {"ESME_ROK": 400}
    assert summary.receipts_missing == 0


async def test_slow_adds_its_delay_to_every_response(start_smsc: Start) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.SLOW, extra_delay=0.05))
    summary = await run_esme(load_for(smsc, count=20, window=20, receipts=False))
    assert summary.ok
    assert summary.submit_to_resp_p50_ms is not None
    assert summary.submit_to_resp_p50_ms >= 45


async def test_garbage_pdus_are_answered_by_the_peer_and_the_load_completes(
    start_smsc: Start,
) -> None:
    smsc = await start_smsc()
    smsc.set_mode(Mode(ModeKind.GARBAGE, every=5))
    summary = await run_esme(load_for(smsc, count=100, window=5))
    assert summary.ok, summary.render()
    assert smsc.stats.garbage_sent == 20
    # The ESME answered each: generic_nack for the unknown command, an error
    # deliver_sm_resp for the broken deliver_sm; neither matches a request of ours.
    await _until(lambda: smsc.stats.stray_responses == 20)


async def test_receipts_before_responses_are_still_matched(start_smsc: Start) -> None:
    smsc = await start_smsc(response_delay=0.01)
    smsc.set_mode(Mode(ModeKind.RECEIPT_FIRST))
    summary = await run_esme(load_for(smsc, count=50, window=10))
    assert summary.ok, summary.render()
    assert summary.receipts_before_response == 50
    assert summary.unmatched_receipts == 0


async def test_a_receipt_for_an_unknown_id_is_reported_unmatched(start_smsc: Start) -> None:
    smsc = await start_smsc()
    unknown = smsc.send_receipt_for_unknown("UNDELIV")  # waits in the outbox for a receiver
    assert unknown.startswith("unknown-")
    summary = await run_esme(load_for(smsc, count=10))
    assert summary.unmatched_receipts == 1
    assert summary.receipt_ids_matched == 10
    assert not summary.ok
    assert smsc.stats.receipts_for_unknown == 1


async def test_a_stopped_carrier_comes_back_on_its_port_and_the_load_rebinds(
    start_smsc: Start,
) -> None:
    smsc = await start_smsc(response_delay=0.005)
    port = smsc.port
    task = asyncio.create_task(run_esme(load_for(smsc, count=200, window=10, rate=500.0)))
    await _until(lambda: smsc.stats.submits >= 20)
    await smsc.stop()
    await asyncio.sleep(0.3)  # the load finds nothing listening and keeps trying
    await smsc.start()
    assert smsc.port == port
    summary = await task
    assert summary.reconnects >= 1
    assert summary.responses_by_status == {"ESME_ROK": 200}
    assert summary.receipts_missing == 0
