"""Reconciliation after a fault: the load generator's log against PostgreSQL and the carrier."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from tests.warpd.sms.conftest import Running
from warpd.sim import EsmeSummary, SmscSimulator

from .tally import Fault

FINAL = frozenset({"delivered", "rejected", "undeliverable", "expired"})


def esme_events(log: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]


async def reconcile(
    warpd: Running,
    summary: EsmeSummary,
    log: Path,
    carriers: list[SmscSimulator],
    fault: Fault,
) -> Fault:
    """Fill ``fault``'s accounting from what the customer saw and what PostgreSQL holds.

    Lost: an id the customer got in a submit_sm_resp that is not in a final state
    with its receipt delivered to the customer. Duplicated: upstream submits beyond
    one per message (at least once after a drop or a timeout) plus receipts the
    customer got twice.
    """
    events = esme_events(log)
    acked = {e["id"] for e in events if e["kind"] == "resp" and e["status"] == "ESME_ROK"}
    receipted = {e["id"] for e in events if e["kind"] == "receipt"}
    state = {r[0]: r[1] for r in await warpd.query("SELECT id::text, state FROM messages")}
    charges = Counter(
        r[0]
        for r in await warpd.query("SELECT message_id::text FROM ledger WHERE kind = 'sms_charge'")
    )
    upstream_ok = sum(c.stats.submits_by_status.get("ESME_ROK", 0) for c in carriers)
    fault.offered = summary.messages
    fault.acknowledged = len(acked)
    fault.delivered = sum(1 for m in acked if state.get(m) == "delivered")
    fault.lost = sum(1 for m in acked if state.get(m) not in FINAL or m not in receipted)
    fault.charged_twice = sum(1 for n in charges.values() if n > 1)
    fault.duplicated = max(0, upstream_ok - len(state)) + summary.duplicate_receipts
    return fault


async def balances_match(warpd: Running) -> None:
    rows = await warpd.query(
        "SELECT a.id, a.balance_micros, coalesce(sum(l.amount_micros), 0) AS ledger"
        " FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id GROUP BY a.id"
    )
    for row in rows:
        assert row["balance_micros"] == row["ledger"], dict(row)
