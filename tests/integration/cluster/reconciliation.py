"""What the customer, the carrier and PostgreSQL say about one case's messages, side by side."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass

import asyncpg

from tests.integration.cluster.customer import NO_RESPONSE, Submitted
from tests.integration.cluster.harness import Cluster, until


@dataclass(frozen=True)
class Reconciliation:
    """What the customer, the carrier and PostgreSQL say about one case's messages."""

    submitted: list[Submitted]
    state: dict[str, str]  # our id -> messages.state, every message in the table
    texts: dict[str, list[str]]  # message text -> the states of the rows with it
    charges: Counter[str]  # our id -> sms_charge rows
    upstream: Counter[str]  # text -> ESME_ROK answers from the carrier
    receipts: Counter[str]  # our id -> receipts the customer got
    ledger_mismatch: list[tuple[int, int, int]]  # (account, balance, ledger sum)

    @property
    def acknowledged(self) -> dict[str, Submitted]:
        return {s.message_id: s for s in self.submitted if s.status == 0}

    def lost(self) -> list[str]:
        return [m for m in self.acknowledged if m not in self.state]

    def not_final(self) -> dict[str, str]:
        return {
            m: self.state.get(m, "") for m in self.acknowledged if self.state.get(m) != "delivered"
        }

    def never_upstream(self) -> list[str]:
        return [s.text for s in self.acknowledged.values() if self.upstream[s.text] == 0]

    def duplicates(self) -> dict[str, int]:
        """This case's texts sent upstream more than once, with how often."""
        texts = {s.text for s in self.submitted}
        return {t: n for t, n in self.upstream.items() if n > 1 and t in texts}

    def committed_twice(self) -> dict[str, int]:
        """This case's texts stored as more than one message (one submit_sm is one row)."""
        counts = {s.text: len(self.texts.get(s.text, ())) for s in self.submitted}
        return {text: n for text, n in counts.items() if n > 1}

    def unanswered_committed(self) -> dict[str, list[str]]:
        """Submits the customer got no answer to (its bind's instance died) that were
        committed all the same, with their states: they must be sent like the others."""
        return {
            s.text: self.texts[s.text]
            for s in self.submitted
            if s.status == NO_RESPONSE and s.text in self.texts
        }

    def charged_wrong(self) -> dict[str, int]:
        """Messages (of any case) not charged exactly once."""
        return {m: self.charges[m] for m in self.state if self.charges[m] != 1}

    def without_receipt(self) -> list[str]:
        return [m for m in self.acknowledged if self.receipts[m] == 0]

    def summary(self) -> dict[str, object]:
        return {
            "acknowledged": len(self.acknowledged), "lost": len(self.lost()),
            "not_final": len(self.not_final()), "never_upstream": len(self.never_upstream()),
            "duplicates": len(self.duplicates()), "committed_twice": len(self.committed_twice()),
            "charged_wrong": len(self.charged_wrong()),
            "without_receipt": len(self.without_receipt()),
            "duplicate_receipts": sum(
                self.receipts[m] - 1 for m in self.acknowledged if self.receipts[m] > 1
            ),
            "ledger_mismatch": self.ledger_mismatch,
        }  # fmt: skip


async def reconcile(cluster: Cluster, submitted: list[Submitted]) -> Reconciliation:
    """Read everything back once the carrier's log shows every acknowledged text (it is
    flushed each second)."""
    acknowledged = {s.text for s in submitted if s.status == 0}
    with contextlib.suppress(AssertionError):  # never_upstream() names what is missing
        await until(lambda: acknowledged <= cluster.upstream().keys(), 3, "the carrier log")
    conn = await asyncpg.connect(cluster.dsn)
    try:
        rows = await conn.fetch("SELECT id::text, state, body FROM messages")
        state = {r[0]: r[1] for r in rows}
        texts: dict[str, list[str]] = {}
        for row in rows:
            texts.setdefault(bytes(row[2]).decode(errors="replace"), []).append(row[1])
        charges = Counter(
            r[0]
            for r in await conn.fetch(
                "SELECT message_id::text FROM ledger WHERE kind = 'sms_charge'"
            )
        )
        balances = await conn.fetch(
            "SELECT a.id, a.balance_micros, (SELECT coalesce(sum(amount_micros), 0) FROM ledger l"
            " WHERE l.account_id = a.id) FROM accounts a"
        )
    finally:
        await conn.close()
    return Reconciliation(
        submitted=submitted,
        state=state,
        texts=texts,
        charges=charges,
        upstream=cluster.upstream(),
        receipts=cluster.receipts(),
        ledger_mismatch=[(r[0], r[1], r[2]) for r in balances if r[1] != r[2]],
    )
