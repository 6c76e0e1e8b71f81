"""The benchmark harness's own logic: medians, same-run ratios, report blocks, failed rows."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import loadgen
from bench.harness import proc
from bench.harness.report import adopt, headlines, splice, table_markdown
from bench.harness.results import Metric, Role, Row, ScenarioResult, Status, Table, summarise
from bench.scenarios import soak
from bench.scenarios.common import Settings, Skipped, guarded, limit_guarded, start_peer

METRICS = (Metric("rate", "msg/s", primary=True), Metric("p99", "p99 ms", 1))


def run(warpd: float, peer: float, limit: float) -> list[Row]:
    return [
        Row("warpd", Role.WARPD, {"rate": warpd, "p99": 1.0}),
        Row("jasmin", Role.PEER, {"rate": peer, "p99": 9.0}),
        Row("limit", Role.LIMIT, {"rate": limit}),
    ]


def test_medians_ranges_and_ratios_are_taken_run_by_run() -> None:
    # Run 2 is on a loaded machine: everything halves, the ratio does not move.
    runs = [run(100, 10, 200), run(50, 5, 100), run(120, 12, 240)]
    warpd, jasmin, limit = summarise(runs, "rate")
    assert warpd.values["rate"] == (100.0, 50.0, 120.0)
    assert (warpd.vs_peer, warpd.vs_limit) == pytest.approx((10.0, 0.5))
    assert jasmin.vs_peer is None
    assert jasmin.vs_limit == pytest.approx(0.05)
    assert limit.vs_limit is None


def test_a_pending_row_is_reported_not_dropped() -> None:
    runs = [[Row.pending("warpd", "warpd row lands with issue 8"), *run(1, 10, 20)[1:]]]
    text = table_markdown(Table("SMS", METRICS, runs))
    line = next(line for line in text.splitlines() if line.startswith("| warpd"))
    assert "**pending**: warpd row lands with issue 8" in line
    assert "0.5x" in next(line for line in text.splitlines() if line.startswith("| jasmin"))


def test_guarded_turns_each_kind_of_failure_into_its_row() -> None:
    def pending() -> Row:
        raise NotImplementedError("lands with issue 10")

    def skipped() -> Row:
        raise Skipped("not installed")

    def broken() -> Row:
        raise RuntimeError("peer crashed")

    assert guarded("w", Role.WARPD, pending).status is Status.PENDING
    assert guarded("p", Role.PEER, skipped).status is Status.SKIPPED
    failed = guarded("p", Role.PEER, broken)
    assert failed.status is Status.FAILED
    assert "peer crashed" in failed.note


def test_a_warpd_only_run_skips_the_limit_rows_and_starts_no_peer() -> None:
    measured: list[str] = []

    def measure(system: str) -> Row:
        measured.append(system)
        return Row(system, Role.LIMIT, {"rate": 1.0})

    only = Settings(warpd_only=True)
    assert limit_guarded(only, "limit", measure, "limit").status is Status.SKIPPED
    assert limit_guarded(Settings(), "limit", measure, "limit").status is Status.OK
    assert measured == ["limit"]

    class Peer:
        name = "peer"

        def install(self) -> None:
            raise AssertionError("a warpd-only run installs no peer")

    with contextlib.ExitStack() as stack:
        row = start_peer(stack, Peer(), only, "peer", Role.PEER)  # type: ignore[arg-type]
    assert row is not None
    assert row.status is Status.SKIPPED


def test_splice_rewrites_one_block_and_keeps_the_others() -> None:
    text = adopt("# Benchmark report\n\n## SMPP PDU codec\n\n| a | b |\n")
    assert "<!-- bench:codec -->" in text
    assert "### SMPP PDU codec" in text  # one level down, under the codec heading
    text = splice(text, "sms", "first", after="system")
    text = splice(text, "sip", "second", after="sms")
    text = splice(text, "sms", "third", after="system")
    assert "first" not in text
    assert text.index("third") < text.index("second") < text.index("### SMPP PDU codec")


def test_cpu_and_memory_of_a_real_child_process() -> None:
    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass",
        ]
    )
    try:
        before = proc.cpu_seconds([busy.pid])
        busy.wait(5)
    finally:
        busy.kill()
    assert before >= 0
    assert proc.pss_bytes([os.getpid()]) > 1_000_000
    assert proc.cpu_seconds([busy.pid]) == 0  # reaped: gone from /proc, counts nothing


BURN = (
    "import resource\n"
    "sum(range(10_000_000))\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(usage.ru_utime + usage.ru_stime)"
)


def test_run_measured_counts_a_short_lived_childs_cpu() -> None:
    finished = proc.run_measured([sys.executable, "-c", BURN], timeout=30)
    assert finished.returncode == 0
    own_count = float(finished.stdout)
    assert own_count > 0.05
    assert finished.cpu == pytest.approx(own_count, rel=0.2, abs=0.02)


def test_each_processes_cpu_is_reported_as_its_median() -> None:
    runs = [
        [Row("jasmin", Role.PEER, {"rate": 1}, cpu={"jasmind": 3.0, "redis": 0.5})],
        [Row("jasmin", Role.PEER, {"rate": 1}, cpu={"jasmind": 5.0, "redis": 0.7})],
        [Row("jasmin", Role.PEER, {"rate": 1}, cpu={"jasmind": 4.0, "redis": 0.6})],
    ]
    text = table_markdown(Table("SMS", METRICS, runs))
    assert "CPU ms by process, jasmin: jasmind 4.000, redis 0.600." in text


def test_a_sim_esme_summary_reads_as_the_stopgaps_keys() -> None:
    summary = {
        "submitted": 10, "responses_by_status": {"ESME_ROK": 9, "ESME_RTHROTTLED": 1},
        "timeouts": 0, "receipt_ids_matched": 8, "elapsed_s": 2.0, "rate": 5.0,
        "submit_to_resp_p50_ms": 21.0, "submit_to_resp_p99_ms": 30.0,
        "submit_to_receipt_p50_ms": 220.0, "submit_to_receipt_p99_ms": 260.0,
    }  # fmt: skip
    result = loadgen.esme_result(json.dumps(summary))
    assert (result["sent"], result["ok"], result["errors"], result["receipts"]) == (10, 9, 1, 8)
    assert result["e2e_rate"] == 4.0
    assert result["receipt_p99_ms"] == 260.0
    stopgap = {"sent": 3, "ok": 3, "receipts": 3, "e2e_rate": 100.0}
    assert loadgen.esme_result(json.dumps(stopgap)) == stopgap


def test_the_headline_puts_warpd_beside_its_peer_and_limit_with_same_run_ratios() -> None:
    sms = ScenarioResult("sms", "SMS end to end", "", [Table("SMS", METRICS, [run(100, 10, 200)])])
    pending = [[Row.pending("warpd", "lands with issue 10"), *run(1, 10, 20)[1:]]]
    sip = ScenarioResult("sip", "SIP", "", [Table("calls", METRICS, pending)])
    text = headlines([sip, sms], ["sms", "sip"])
    lines = [
        line for line in text.splitlines() if line.startswith("| SMS") or line.startswith("| SIP")
    ]
    assert (
        lines[0]
        == "| SMS end to end | SMS | msg/s | 100 | 10 (jasmin) | 10.0x | 200 (limit) | 0.5x |"
    )
    assert lines[1].startswith("| SIP | calls | msg/s | *pending* | 10 (jasmin) |  |")


def test_soak_calls_count_in_the_interval_they_started_and_late_failures_in_the_last(
    tmp_path: Path,
) -> None:
    stats = tmp_path / "calls.csv"
    stats.write_text(
        "ElapsedTime(C);FailedCall(C);\n"
        "00:00:00;0;\n00:00:01;1;\n00:00:02;1;\n00:00:03;1;\n00:00:04;3;\n00:00:09;4;\n"
    )
    rtt = tmp_path / "uac_1_rtt.csv"
    rtt.write_text(
        "Date_ms;response_time_ms;rtd_no\n100;5;1\n900;7;1\n1500;9;1\n2500;40;1\n3999;50;1\n"
    )
    first, last = soak.call_intervals(stats, rtt, soak.Span(4.0, 2.0))
    assert (first["calls"], first["call_errors"], first["call_p50"]) == (1.5, 1, 7.0)
    # the last interval takes what failed after the run (4 at 9 s) and its 2 answered calls
    assert (last["calls"], last["call_errors"], last["call_p99"]) == (1.0, 3, 50.0)
    assert soak.call_intervals(stats, None, soak.Span(4.0, 2.0))[0]["call_p50"] is None
