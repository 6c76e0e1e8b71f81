"""The report of ``python -m bench reliability``, from this session's own records: the bounded
mode of the bench target, inside the test command (conftest runs this test last)."""

from __future__ import annotations

from bench.reliability import render, totals

from .tally import TALLY


def test_the_report_shows_zero_lost_double_charged_and_crashes() -> None:
    data = TALLY.as_json()
    text = render(data)
    for section in ("## Faults under load", "## Socket fuzzing", "## Hostile clients"):
        assert section in text
    for fault in data["faults"]:
        assert f"| {fault['kind']} |" in text
    total = totals(data)
    assert total["lost"] == 0, text
    assert total["charged_twice"] == 0, text
    assert total["crashes"] == 0, text
    assert "Totals: 0 lost, 0 charged twice, 0 fuzz crashes" in text


def test_render_counts_what_must_be_zero() -> None:
    data = {
        "faults": [{"kind": "drop", "injected": 3, "offered": 10, "acknowledged": 10,
                    "delivered": 9, "duplicated": 1, "lost": 1, "charged_twice": 2,
                    "note": "a | b"}],
        "fuzz": [{"target": "smpp", "inputs": 5, "crashes": 1, "note": ""}],
        "hostile": [{"case": "slowloris", "outcome": "held open", "ok": False}],
    }  # fmt: skip
    assert totals(data) == {"lost": 1, "charged_twice": 2, "crashes": 1, "hostile_not_ended": 1}
    text = render(data)
    assert "| drop | 3 | 10 | 10 | 9 | 1 | 1 | 2 | a / b |" in text
    assert "| slowloris | held open | **no** |" in text
