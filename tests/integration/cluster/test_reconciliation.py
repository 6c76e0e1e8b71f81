"""The cluster cases' reconciliation catches each fault it exists for (no processes, no loop)."""

from __future__ import annotations

from collections import Counter

from tests.integration.cluster.customer import NO_RESPONSE, Submitted
from tests.integration.cluster.reconciliation import Reconciliation

OK = [Submitted(f"t-{n}", 0, f"id-{n}", "b") for n in range(3)]


def clean(**changes: object) -> Reconciliation:
    fields: dict[str, object] = {
        "submitted": OK,
        "state": {s.message_id: "delivered" for s in OK},
        "texts": {s.text: ["delivered"] for s in OK},
        "charges": Counter(s.message_id for s in OK),
        "upstream": Counter(s.text for s in OK),
        "receipts": Counter(s.message_id for s in OK),
        "ledger_mismatch": [],
    }
    fields.update(changes)
    return Reconciliation(**fields)  # type: ignore[arg-type]


def test_a_clean_run_reports_nothing() -> None:
    report = clean()
    summary = report.summary()
    assert summary["acknowledged"] == 3
    assert [v for k, v in summary.items() if k != "acknowledged" and v] == []


def test_each_fault_is_reported() -> None:
    assert clean(state={"id-0": "delivered", "id-1": "delivered"}).lost() == ["id-2"]
    report = clean(state={"id-0": "delivered", "id-1": "queued", "id-2": "delivered"})
    assert report.not_final() == {"id-1": "queued"}
    assert clean(upstream=Counter({"t-0": 1, "t-1": 1})).never_upstream() == ["t-2"]
    assert clean(upstream=Counter({"t-0": 2, "t-1": 1, "t-2": 1})).duplicates() == {"t-0": 2}
    assert clean(charges=Counter({"id-0": 2, "id-1": 1})).charged_wrong() == {"id-0": 2, "id-2": 0}
    assert clean(receipts=Counter({"id-0": 1, "id-1": 1})).without_receipt() == ["id-2"]
    twice = {"t-0": ["delivered", "delivered"], "t-1": ["delivered"], "t-2": ["delivered"]}
    assert clean(texts=twice).committed_twice() == {"t-0": 2}


def test_another_cases_texts_are_not_this_ones_duplicates() -> None:
    upstream = Counter({"t-0": 1, "t-1": 1, "t-2": 1, "other-0": 2})
    assert clean(upstream=upstream).duplicates() == {}


def test_an_unanswered_submit_that_was_committed_is_followed() -> None:
    lost_answer = Submitted("t-9", NO_RESPONSE, "", "b")
    texts = {s.text: ["delivered"] for s in OK} | {"t-9": ["queued"]}
    report = clean(submitted=[*OK, lost_answer], texts=texts)
    assert report.unanswered_committed() == {"t-9": ["queued"]}
    assert report.acknowledged.keys() == {"id-0", "id-1", "id-2"}
