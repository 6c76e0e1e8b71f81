"""Carrier faults under load (issue 12): the simulator plays each fault on the route's first
connector, a healthy second connector stands behind it, and the customer's load runs through.

After each: warpd is bound again, every acknowledged message reached a final state with its
receipt delivered to the customer, nothing was charged twice, the ledger equals the balances.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.warpd.sms.conftest import Running
from tests.warpd.sms.helpers import add_connector, only_route, reloaded, start_simulator, wait_for
from warpd.sim import EsmeConfig, Mode, ModeKind, SmscSimulator, run_esme

from .accounting import balances_match, reconcile
from .tally import TALLY, Fault, scaled

COUNT = 150


def faults() -> dict[str, Mode]:
    window = scaled(2.0)
    return {
        "drop every 0.5 s": Mode(ModeKind.DROP, interval=0.5, duration=window),
        "ESME_RTHROTTLED storm": Mode(ModeKind.THROTTLE, fraction=0.9, duration=window),
        "silent hang": Mode(ModeKind.SILENT, duration=window),
        "slow responses (+0.3 s)": Mode(ModeKind.SLOW, extra_delay=0.3, duration=window),
        "garbage PDUs": Mode(ModeKind.GARBAGE, every=5, duration=window),
        "receipts before responses": Mode(ModeKind.RECEIPT_FIRST),
    }


def load(warpd: Running, log: Path, count: int = COUNT) -> EsmeConfig:
    host, port = warpd.smpp
    return EsmeConfig(
        host=host, port=port, system_id=warpd.system_id, password=warpd.password,
        count=count, rate=100, window=20, destination="447700900000-447700900999",
        receipt_timeout=25, response_timeout=5, log=log,
    )  # fmt: skip


async def two_connectors(warpd: Running) -> tuple[SmscSimulator, SmscSimulator, int, int]:
    faulty, backup = await start_simulator(), await start_simulator()
    first = await add_connector(warpd, "faulty", faulty.port, window_size=20)
    second = await add_connector(warpd, "backup", backup.port, window_size=20)
    route = await only_route(warpd, [first, second])
    await reloaded(warpd, [first, second], route)
    return faulty, backup, first, second


async def run_fault(warpd: Running, tmp_path: Path, kind: str, mode: Mode) -> Fault:
    faulty, backup, first, _ = await two_connectors(warpd)
    try:
        binds_before = faulty.stats.binds
        log = tmp_path / "esme.jsonl"
        task = asyncio.create_task(run_esme(load(warpd, log)))
        await asyncio.sleep(0.3)  # mid-load
        faulty.set_mode(mode)
        summary = await asyncio.wait_for(task, 60)
        sms = warpd.daemon.sms
        assert sms is not None
        # Re-bound after the fault (drop and garbage close the binds).
        await wait_for(lambda: sms.connectors[first].up, 15, "the faulty connector re-bound")
        fault = await reconcile(warpd, summary, log, [faulty, backup], Fault(kind, injected=1))
        stats = faulty.stats
        fault.injected = {
            ModeKind.DROP: stats.drops,
            ModeKind.GARBAGE: stats.garbage_sent,
            ModeKind.THROTTLE: stats.submits_by_status.get("ESME_RTHROTTLED", 0),
        }.get(mode.kind, 1)
        fault.note = (
            f"re-binds {stats.binds - binds_before}, backup connector took "
            f"{backup.stats.submits_by_status.get('ESME_ROK', 0)}, run {summary.elapsed_s:.1f} s"
        )
        TALLY.faults.append(fault)
        assert summary.responses_by_status == {"ESME_ROK": COUNT}, summary
        assert fault.acknowledged == COUNT
        assert fault.lost == 0, fault
        assert fault.charged_twice == 0, fault
        assert summary.duplicate_receipts == 0, summary
        await balances_match(warpd)
        return fault
    finally:
        await faulty.stop()
        await backup.stop()


@pytest.mark.parametrize("kind", list(faults()))
async def test_carrier_fault_loses_nothing(warpd: Running, tmp_path: Path, kind: str) -> None:
    mode = faults()[kind]
    fault = await run_fault(warpd, tmp_path, kind, mode)
    if mode.kind is ModeKind.DROP:
        assert fault.injected >= 2
        assert "re-binds 0" not in fault.note
    if mode.kind in {ModeKind.THROTTLE, ModeKind.GARBAGE}:
        assert fault.injected > 0


async def test_receipts_for_unknown_ids_are_acknowledged_and_never_reach_a_customer(
    warpd: Running, tmp_path: Path
) -> None:
    faulty, backup, _, _ = await two_connectors(warpd)
    try:
        log = tmp_path / "esme.jsonl"
        task = asyncio.create_task(run_esme(load(warpd, log, count=50)))
        unknown = [faulty.send_receipt_for_unknown() for _ in range(20)]
        summary = await asyncio.wait_for(task, 60)
        await wait_for(lambda: faulty.stats.receipts_acked >= 50 + 20, 10, "receipts acked")
        fault = await reconcile(
            warpd, summary, log, [faulty, backup], Fault("receipts for unknown ids", 20)
        )
        parked = await warpd.value(
            "SELECT count(*) FROM pending_receipts WHERE carrier_message_id = any($1::text[])",
            unknown,
        )
        fault.note = f"{parked} parked in pending_receipts (1 day)"
        TALLY.faults.append(fault)
        assert summary.unmatched_receipts == 0, summary  # none forwarded to the customer
        assert fault.lost == 0, fault
        assert fault.charged_twice == 0, fault
        assert faulty.stats.receipts_refused == 0
        assert parked == 20
        await balances_match(warpd)
    finally:
        await faulty.stop()
        await backup.stop()


async def test_expired_parked_receipts_are_purged(warpd: Running, tmp_path: Path) -> None:
    faulty, backup, _, _ = await two_connectors(warpd)
    try:
        unknown = faulty.send_receipt_for_unknown()
        await wait_for(lambda: faulty.stats.receipts_acked >= 1, 10, "receipt acked")
        await warpd.query(
            "UPDATE pending_receipts SET expires_at = now() - interval '1 s'"
            " WHERE carrier_message_id = $1",
            unknown,
        )
        # Traffic afterwards: whatever sweep there is has had its chance.
        summary = await run_esme(load(warpd, tmp_path / "esme.jsonl", count=10))
        assert summary.receipts == 10
        await asyncio.sleep(2.0)
        left = await warpd.value(
            "SELECT count(*) FROM pending_receipts WHERE carrier_message_id = $1", unknown
        )
        assert left == 0
    finally:
        await faulty.stop()
        await backup.stop()
