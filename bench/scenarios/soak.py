"""Soak: 1,000 messages/s and 50 calls/s together for 10 minutes; the first minute against the last.

warpd (one process, its embedded PostgreSQL, media on RTPEngine) takes both
loads at once for the whole run: the load generator's paced 1,000 submit_sm/s
on 2 binds, each asking a receipt, to the carrier simulator (20 ms, a receipt
0.2 s later), and SIPp's 50 calls/s, each held 10 s, to the SIPp UAS. The run
is cut into intervals (a minute each at full length) by the time a submit or
a call started; the table shows the first and the last: submit->resp and
submit->receipt p50/p99, INVITE->200 p50/p99, every error (a submit refused
or unanswered, a receipt missing, a call failed), warpd's RSS at the
interval's end and its CPU (with PostgreSQL's and RTPEngine's). No growth
means the last interval looks like the first. The limit rows are the same
load with nothing between (the load generator on the simulator, SIPp's UAC on
its UAS), for at most a minute: the floor of every latency. Jasmin has no
row: it does not carry 1,000 messages/s end to end (SMS end to end above).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen
from bench.harness.proc import cpu_seconds, rss_bytes
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers import sipp
from bench.peers.base import rundir
from bench.peers.rtpengine import RtpEngine
from bench.peers.simulator import CREDENTIALS, Simulator, start_all
from bench.peers.warpd import Voice, Warpd
from bench.scenarios.common import (
    Processes,
    Scenario,
    Settings,
    guarded,
    say,
    warpd_guarded,
)

FULL_SECONDS = 600.0
SMS_RATE, CALL_RATE, HOLD_MS = 1000, 50, 10_000
LIMIT_SECONDS = 60.0
WARPD, LIMIT = "warpd", "load generator + SIPp direct"
METRICS = (
    Metric("resp_rate", "submit_sm_resp/s", primary=True),
    Metric("resp_p50", "resp p50 ms", 1),
    Metric("resp_p99", "resp p99 ms", 1),
    Metric("receipt_p99", "receipt p99 ms", 0),
    Metric("sms_errors", "SMS errors"),
    Metric("calls", "calls/s answered", 1),
    Metric("call_p50", "INVITE->200 p50 ms", 0),
    Metric("call_p99", "INVITE->200 p99 ms", 0),
    Metric("call_errors", "failed calls"),
    Metric("rss_mib", "warpd RSS MiB", 1),
    Metric("cpu_pct", "CPU % of a core", 0),
)


@dataclass(frozen=True, slots=True)
class Span:
    """A run's length and the intervals it is cut into."""

    seconds: float
    interval: float
    sms_rate: int = SMS_RATE
    call_rate: int = CALL_RATE

    @property
    def hold_ms(self) -> int:
        """How long each call is held: 10 s, or a quarter of a short run."""
        return min(HOLD_MS, int(self.seconds * 250))

    @property
    def count(self) -> int:
        return max(1, round(self.seconds / self.interval))

    @classmethod
    def of(cls, seconds: float, smoke: bool = False) -> Span:
        # A minute each at full length; a short run (--seconds, smoke) still has 2 or more.
        # A smoke checks the harness, not warpd: a fifth of the load will do.
        rates = (SMS_RATE // 5, CALL_RATE // 5) if smoke else (SMS_RATE, CALL_RATE)
        return cls(seconds, min(60.0, seconds / 2), *rates)


class Sampler:
    """RSS of ``rss`` and CPU of ``cpu`` read at every interval's end, on a thread."""

    def __init__(self, span: Span, rss: Callable[[], list[int]], cpu: Processes) -> None:
        self.span, self.rss, self.cpu = span, rss, cpu
        self.samples: list[tuple[int, float]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stopped = threading.Event()

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()

    def _read(self) -> tuple[int, float]:
        return rss_bytes(self.rss()), sum(cpu_seconds(p) for p in self.cpu().values())

    def _run(self) -> None:
        last = self._read()
        for number in range(1, self.span.count + 1):
            due = self.started + number * self.span.interval
            if self.stopped.wait(max(0.0, due - time.monotonic())):
                return
            now = self._read()
            self.samples.append((now[0], now[1] - last[1]))
            last = now

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def _seconds(clock: str) -> float:
    hours, minutes, seconds = clock.split(":")[:3]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _percentile(samples: list[float], q: float) -> float | None:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def call_intervals(stats: Path, rtt: Path | None, span: Span) -> list[dict[str, float | None]]:
    """Per interval: calls answered per second, failed, INVITE->200 p50/p99 (ms).

    Answered calls and their times come from SIPp's per-call response times
    (-trace_rtt, one line when the 200 arrives), failures from its cumulative
    statistics (every second, -fd 1); what fails after the last interval (in
    the last calls' hold) counts in it."""
    marks = [(_seconds(r["ElapsedTime(C)"]), int(r["FailedCall(C)"])) for r in _rows(stats)]

    def failed_by(when: float) -> int:
        return max((failed for at, failed in marks if at <= when), default=0)

    times: list[list[float]] = [[] for _ in range(span.count)]
    for row in _rows(rtt) if rtt is not None else []:
        index = min(int(float(row["Date_ms"]) / 1000 / span.interval), span.count - 1)
        times[index].append(float(row["response_time_ms"]))
    result = []
    for index in range(span.count):
        start = index * span.interval
        end = float("inf") if index == span.count - 1 else start + span.interval
        result.append({
            "calls": len(times[index]) / span.interval,
            "call_errors": failed_by(end) - failed_by(start),
            "call_p50": _percentile(times[index], 0.5),
            "call_p99": _percentile(times[index], 0.99),
        })  # fmt: skip
    return result


def soak(
    system: str,
    role: Role,
    smpp: tuple[int, tuple[str, str]],
    sip_target: str,
    service: str,
    span: Span,
    rss: Callable[[], list[int]],
    cpu: Processes,
) -> tuple[list[Row], list[tuple[float, float]]]:
    """Both loads at once against ``smpp`` (port, login) and ``sip_target``: the rows of the
    first and the last interval, and RSS (MiB) at the end of each interval."""
    port, (system_id, password) = smpp
    run = rundir(f"soak-{role.value}")
    uac, _ = sipp.write_scenarios(run)
    stats = run / "calls.csv"
    for stale in (stats, *run.glob("*_rtt.csv")):
        stale.unlink(missing_ok=True)
    calls = int(span.call_rate * span.seconds)
    uac_argv = [
        *sipp.uac_argv(uac, sip_target, span.call_rate, calls, calls, span.hold_ms, service),
        "-trace_stat", "-stf", str(stats), "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
        "-recv_timeout", "10000", "-timeout", f"{int(span.seconds + span.hold_ms / 1000 + 60)}s",
        "-timeout_error",
    ]  # fmt: skip
    esme_argv = loadgen.esme_argv(
        port, system_id=system_id, password=password, binds=2, window=200,
        seconds=span.seconds, rate=span.sms_rate, receipt_wait=30, interval=span.interval,
    )  # fmt: skip
    sampler = Sampler(span, rss, cpu)
    say(f"soak {system}: {span.sms_rate} msg/s, {span.call_rate} calls/s for {span.seconds:g} s")
    with (
        subprocess.Popen(uac_argv, cwd=run, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True) as calls_process,
        subprocess.Popen(esme_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True) as sms_process,
    ):  # fmt: skip
        sampler.start()
        try:
            sms_out, sms_err = sms_process.communicate(timeout=span.seconds + 120)
            _, calls_err = calls_process.communicate(timeout=span.hold_ms / 1000 + 90)
        finally:
            sampler.stop()
            for process in (sms_process, calls_process):
                if process.poll() is None:
                    process.kill()
    try:
        sms = json.loads(sms_out)["intervals"]
    except (ValueError, KeyError):
        raise RuntimeError(
            f"load generator exited {sms_process.returncode}: {sms_err[-400:]}"
        ) from None
    if not stats.exists():
        raise RuntimeError(f"sipp wrote no statistics: {calls_err[-400:]}")
    rtt = next(iter(run.glob("*_rtt.csv")), None)
    voice = call_intervals(stats, rtt, span)
    samples = sampler.samples
    rows = []
    for name, index in zip(_names(system, span), (0, span.count - 1), strict=True):
        bucket = sms[min(index, len(sms) - 1)]
        values = {
            "resp_rate": bucket["ok"] / span.interval,
            "resp_p50": bucket["resp_p50_ms"],
            "resp_p99": bucket["resp_p99_ms"],
            "receipt_p99": bucket["receipt_p99_ms"],
            "sms_errors": bucket["errors"],
            **voice[index],
        }
        if index < len(samples):
            values["cpu_pct"] = 100 * samples[index][1] / span.interval
            if samples[index][0]:
                values["rss_mib"] = samples[index][0] / 2**20
        clean = {k: float(v) for k, v in values.items() if v is not None}
        rows.append(Row(name, role, clean))
    growth = [(number * span.interval / 60, rss / 2**20) for number, (rss, _) in
              enumerate(samples, start=1) if rss]  # fmt: skip
    errors = sum(b["errors"] for b in sms), sum(int(v["call_errors"] or 0) for v in voice)
    note = f"whole run: {errors[0]} SMS errors, {errors[1]} failed calls"
    if len(growth) > 1:
        note += f"; RSS {growth[-1][1] - growth[0][1]:+.1f} MiB from the first interval's end"
    rows[-1] = dataclasses.replace(rows[-1], note=note)
    return rows, growth


Measured = tuple[list[Row], list[tuple[float, float]]]


def warpd_rows(span: Span, upstream: Simulator, uas: sipp.Uas, rtpengine: RtpEngine) -> Measured:
    """warpd with SMPP and its B2BUA, under both loads; its own process's RSS."""
    voice = Voice(uas.port, rtpengine.ng_port)
    warpd = Warpd("warpd-soak", upstream.port, upstream.credentials, voice=voice)
    try:
        warpd.start()

        def processes() -> dict[str, list[int]]:
            return {**warpd.processes(), "rtpengine": rtpengine.pids()}

        return soak(
            WARPD, Role.WARPD, (warpd.smpp_port, warpd.credentials),
            f"127.0.0.1:{warpd.sip_port}", voice.number, span,
            lambda: warpd.processes()["warpd"], processes,
        )  # fmt: skip
    finally:
        warpd.stop()


def limit_rows(span: Span, direct: Simulator, uas: sipp.Uas) -> Measured:
    return soak(
        LIMIT, Role.LIMIT, (direct.port, CREDENTIALS), f"127.0.0.1:{uas.port}", "", span,
        list, lambda: {"simulator": direct.pids(), "sipp uas": uas.pids()},
    )  # fmt: skip


def _pair(
    settings: Settings, system: str, role: Role, span: Span, measure: Callable[[], Measured],
    growth: dict[str, list[tuple[float, float]]],
) -> list[Row]:  # fmt: skip
    """The two rows ``measure`` returns (its RSS curve kept in ``growth``), or the reason
    there are none (pending, skipped, failed) in both."""
    found: list[Row] = []

    def first() -> Row:
        rows, growth[system] = measure()
        found.extend(rows)
        return rows[0]

    if role is Role.WARPD:
        row = warpd_guarded(settings, system, first)
    else:
        row = guarded(system, role, first)
    return found or [dataclasses.replace(row, system=name) for name in _names(system, span)]


def _names(system: str, span: Span) -> tuple[str, str]:
    unit = "minute" if span.interval == 60 else f"{span.interval:g} s"
    return f"{system}, first {unit}", f"{system}, last {unit}"


def run(settings: Settings) -> ScenarioResult:
    span = Span.of(settings.length(FULL_SECONDS), settings.smoke)
    limit_span = Span.of(min(span.seconds, LIMIT_SECONDS), settings.smoke)
    runs: list[list[Row]] = []
    growth: dict[str, list[tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        direct, behind_warpd = Simulator("smsc-soak-limit"), Simulator("smsc-soak-warpd")
        start_all(stack, direct, *(() if settings.limits_only else (behind_warpd,)))
        sipp.install()
        uas, rtpengine = sipp.Uas(), RtpEngine()
        for far_end in (uas,) if settings.limits_only else (uas, rtpengine):
            far_end.install()
            stack.callback(far_end.stop)
            far_end.start()
        for number in range(settings.runs):
            say(f"soak run {number + 1}/{settings.runs}")
            runs.append([
                *_pair(settings, WARPD, Role.WARPD, span,
                       lambda: warpd_rows(span, behind_warpd, uas, rtpengine), growth),
                *_pair(settings, LIMIT, Role.LIMIT, limit_span,
                       lambda: limit_rows(limit_span, direct, uas), growth),
            ])  # fmt: skip
    notes = (
        f"{span.seconds:g} s at {span.sms_rate} submit_sm/s (2 binds, receipts asked) and "
        f"{span.call_rate} calls/s held {span.hold_ms / 1000:g} s, in {span.count} intervals of "
        f"{span.interval:g} s; the limit for {limit_span.seconds:g} s.",
        "A submit or call counts in the interval it started in; errors: submit_sm refused or "
        "unanswered, receipts missing 30 s after the last submit, calls SIPp failed. CPU: warpd, "
        "PostgreSQL and RTPEngine (the limit: the simulator and the SIPp UAS).",
    )
    table = Table("First interval against the last", METRICS, runs, notes)
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    axes = ("Soak: warpd's RSS at the end of each interval (last run)", "minutes", "RSS MiB")
    series = {"warpd RSS": growth[WARPD]} if growth.get(WARPD) else {}
    return ScenarioResult("soak", "Soak", description, [table], [], series, axes)


SCENARIO = Scenario("soak", "Soak", run)
