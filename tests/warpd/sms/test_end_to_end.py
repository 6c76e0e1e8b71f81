"""Through warpd and back: sim-esme -> warpd -> SMSC simulator -> receipt -> sim-esme."""

from __future__ import annotations

import aiohttp

from warpd.sim import EsmeConfig, run_esme

from .conftest import Running
from .helpers import ledger_matches_balances, wait_for


def esme(warpd: Running, **overrides: object) -> EsmeConfig:
    host, port = warpd.smpp
    base: dict[str, object] = {
        "host": host,
        "port": port,
        "system_id": warpd.system_id,
        "password": warpd.password,
        "count": 100,
        "window": 20,
        "receipt_timeout": 10.0,
    }
    base.update(overrides)
    return EsmeConfig(**base)  # type: ignore[arg-type]


async def test_100_messages_get_ids_and_receipts_and_are_charged_once(warpd: Running) -> None:
    before = await warpd.value("SELECT balance_micros FROM accounts WHERE name = 'demo'")
    summary = await run_esme(esme(warpd))
    assert summary.submitted == 100
    assert summary.responses_by_status == {"ESME_ROK": 100}, summary
    assert summary.receipts == 100
    assert summary.receipt_ids_matched == 100
    assert summary.unmatched_receipts == 0
    after = await warpd.value("SELECT balance_micros FROM accounts WHERE name = 'demo'")
    assert before - after == 100 * 5_000  # type: ignore[operator]
    charges = await warpd.value("SELECT count(*) FROM ledger WHERE kind = 'sms_charge'")
    assert charges == 100
    states = await warpd.query("SELECT state, count(*) FROM messages GROUP BY state")
    assert {r[0]: r[1] for r in states} == {"delivered": 100}
    # A delivery's outcome is committed in a batch nobody waits for (journal.LINGER).
    sms = warpd.daemon.sms
    assert sms is not None
    await wait_for(lambda: sms.journal.idle, what="journal idle")
    delivered = await warpd.value("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
    assert delivered == 100
    await ledger_matches_balances(warpd)
    assert warpd.daemon.http is not None
    host, port = warpd.daemon.http.addresses[0]
    url = f"http://{host}:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        metrics = await response.text()
    assert 'warpd_sms_accepted_total{account="demo",channel="smpp"} 100.0' in metrics
    assert 'warpd_sms_receipts_total{connector="demo-sim",state="delivered"} 100.0' in metrics
    assert 'warpd_sms_deliveries_taken_total{account="demo",kind="dlr"} 100.0' in metrics
    assert 'warpd_smpp_connector_binds{connector="demo-sim",state="bound"} 2.0' in metrics
    assert 'warpd_sms_events_total{event="part_sent_upstream"} 100.0' in metrics
