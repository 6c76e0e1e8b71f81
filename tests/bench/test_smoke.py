"""``python -m bench smoke --limits-only``: every scenario's limit row runs, briefly, for real.

The limit rows need no peer install (the carrier simulator, the load
generator, a bare aiohttp server, SIPp from config/setup.sh), so the harness
cannot rot between full benchmark runs. The peers' and warpd's rows are
skipped with that reason (``python -m bench smoke`` without the flag runs
them). The scenarios are bench.scenarios.SCENARIOS: a new one is checked here
as soon as it is registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_limit_rows(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "smoke", "--limits-only", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["scenarios"]) == set(SCENARIOS)
    for name in SCENARIOS:
        for table in report["scenarios"][name]["tables"]:
            primary = next(m["key"] for m in table["metrics"] if m["primary"])
            rows = {row["role"]: row for row in table["summary"]}
            assert rows["warpd"]["status"] == "skipped", (name, rows["warpd"])
            if "peer" in rows:  # the soak has none: no peer carries its load
                assert rows["peer"]["status"] == "skipped", (name, rows["peer"])
            if "limit" in rows:
                limit = rows["limit"]
                assert limit["status"] == "ok", (name, limit)
                assert limit["values"][primary][0] != 0, (name, limit)
    markdown = (tmp_path / "REPORT.md").read_text()
    for name in SCENARIOS:
        assert f"<!-- bench:{name} -->" in markdown
        # every scenario with a measured row has its chart, and the report embeds it
        tables = report["scenarios"][name]["tables"]
        measured = any(row["status"] == "ok" for t in tables for row in t["summary"])
        charts = report["scenarios"][name]["charts"]
        assert charts or not measured, name
        for chart in charts:
            assert (tmp_path / chart).stat().st_size > 1000, chart
            assert f"]({chart})" in markdown, chart
    otp = report["scenarios"]["otp"]["tables"][0]["summary"]
    limit = next(row for row in otp if row["role"] == "limit")
    assert limit["values"]["receipted"][0] == 100.0, limit  # every receipt came back
    assert "**skipped**: limit rows only (--limits-only)" in markdown


def test_an_unknown_scenario_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "nosuch"], cwd=ROOT, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown scenario nosuch" in done.stderr
