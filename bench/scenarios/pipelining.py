"""Upstream pipelining: how much of binds x window / delay a gateway gets from a 20 ms carrier.

One customer with a deep window offers the gateway a quarter more than its
binds can take (paced, so its queue always holds work while the customer's
ingest does not compete with the sending at several times the upstream
rate: the SMS scenario measures ingest at full speed); the carrier
simulator answers each submit_sm after 20 ms and counts what arrives. With
b binds of window w the most a gateway can send is b x w / 0.02 submit_sm/s;
the row shows the rate the simulator saw over the measurement and that
fraction. Jasmin has no upstream window (one submit_sm in flight per
connector): its binds are connectors under a round-robin MT route, so it can
reach at most b / 0.02 whatever w is, and the fraction shows what that costs. The limit is the
load generator bound straight to the simulator with the same binds and window.
"""

from __future__ import annotations

import contextlib
import subprocess
import time

from bench import loadgen
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers.jasmin import PASSWORD, UPSTREAM, USER, Jasmin
from bench.peers.simulator import CREDENTIALS, Simulator
from bench.scenarios.common import (
    Processes,
    Scenario,
    Settings,
    Skipped,
    cpu_by,
    guarded,
    say,
    start_peer,
    warpd_guarded,
)

DELAY = 0.02
# Offered per second, against what the binds can take at most.
OVERSUPPLY = 1.25
JASMIN = "Jasmin 0.11.0"
LIMIT = "load generator -> simulator"
METRICS = (
    Metric("fraction", "% of binds x window / delay", 1, primary=True),
    Metric("rate", "submit_sm/s at the carrier"),
    Metric("theory", "binds x window / delay"),
    Metric("cpu_ms", "CPU ms/msg", 3),
)


def grid(settings: Settings) -> list[tuple[int, int]]:
    return [(1, 10)] if settings.smoke else [(1, 1), (1, 10), (2, 10), (4, 50)]


def warpd_row(binds: int, window: int, upstream: Simulator, seconds: float) -> Row:
    """warpd with a connector of ``binds`` binds and ``window`` to ``upstream``: issue 8 fills it.

    Start warpd with that connector and a customer; ``offer()`` (or
    ``offer_counted()``, which also counts each process's CPU over the same
    span) keeps its queue full, and ``measured()`` makes the row.
    """
    from bench.peers import warpd as warpd_peer

    return warpd_peer.pipelining_row(binds, window, upstream, seconds)


def offer(
    port: int,
    credentials: tuple[str, str],
    upstream: Simulator,
    seconds: float,
    theory: float,
    binds: int = 1,
    window: int = 500,
) -> tuple[int, float]:
    """Fill ``port``'s upstream queue; (submits the simulator saw in ``seconds``, the span)."""
    sent, span, _ = offer_counted(port, credentials, upstream, seconds, theory, dict, binds, window)
    return sent, span


def offer_counted(
    port: int,
    credentials: tuple[str, str],
    upstream: Simulator,
    seconds: float,
    theory: float,
    processes: Processes,
    binds: int = 1,
    window: int = 500,
) -> tuple[int, float, dict[str, float]]:
    """``offer()``, with the CPU seconds of each of ``processes`` over the counted span.

    The load generator offers OVERSUPPLY x the theoretical rate, paced, for
    the whole measurement: more than a gateway can send upstream, so its queue
    always holds work while the simulator counts.
    The count is sampled from 0.5 s after the first submit_sm reached the
    simulator, for ``seconds``.
    """
    rate = OVERSUPPLY * theory
    messages = min(int(rate * (seconds + 3.0)) + 100, 200_000)
    argv = loadgen.esme_argv(
        port,
        system_id=credentials[0],
        password=credentials[1],
        binds=binds,
        window=window,
        seconds=600,
        rate=rate,
        count=messages,
        receipts=False,
        receipt_wait=0,
    )
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as generator:
        try:
            deadline = time.monotonic() + 20
            while upstream.submits()[0] == 0:
                # A gateway may have taken every message before sending the first upstream.
                if time.monotonic() > deadline or generator.poll() not in (None, 0):
                    generator.kill()
                    _, err = generator.communicate()
                    raise RuntimeError(f"no submit_sm reached the simulator: {err[-300:]!r}")
                time.sleep(0.05)
            time.sleep(0.5)
            with cpu_by(processes) as spent:
                first, first_at = upstream.submits()
                time.sleep(seconds)
                last, last_at = upstream.submits()
        finally:
            # What is still queued is not measured; the limit's generator may still be sending.
            generator.terminate()
            generator.wait(timeout=30)
    return last - first, last_at - first_at, spent


def measured(
    system: str,
    role: Role,
    sent: int,
    span: float,
    theory: float,
    cpu: float,
    parts: dict[str, float] | None = None,
) -> Row:
    """The row for ``sent`` submits over ``span`` s that cost ``cpu`` s (``parts``: by process)."""
    rate = sent / span if span > 0 else 0.0
    per_message = {part: 1000 * seconds / max(sent, 1) for part, seconds in (parts or {}).items()}
    values = {
        "fraction": 100 * rate / theory,
        "rate": rate,
        "theory": theory,
        "cpu_ms": 1000 * cpu / max(sent, 1),
    }
    return Row(system, role, values, cpu=per_message)


def _counted_row(system: str, role: Role, counted: tuple[int, float, dict[str, float]],
                 theory: float) -> Row:  # fmt: skip
    sent, span, parts = counted
    return measured(system, role, sent, span, theory, sum(parts.values()), parts)


def _limit(binds: int, window: int, seconds: float) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator(f"smsc-pipe-{binds}x{window}", DELAY)
        stack.callback(sim.stop)
        sim.start()
        theory = binds * window / DELAY
        counted = offer_counted(
            sim.port, CREDENTIALS, sim, seconds, theory, sim.processes, binds, window
        )
        return _counted_row(LIMIT, Role.LIMIT, counted, theory)


def _jasmin(binds: int, window: int, seconds: float, settings: Settings) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator(f"smsc-pipe-jasmin-{binds}", DELAY, credentials=UPSTREAM)
        stack.callback(sim.stop)
        sim.start()
        jasmin = Jasmin(sim.port, connectors=binds)
        down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)
        if down is not None:
            raise Skipped(down.note) if down.status.value == "skipped" else RuntimeError(down.note)
        counted = offer_counted(
            jasmin.smpp_port, (USER, PASSWORD), sim, seconds, binds / DELAY, jasmin.processes
        )
        return _counted_row(JASMIN, Role.PEER, counted, binds * window / DELAY)


def _warpd(binds: int, window: int, seconds: float) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator("smsc-pipe-warpd", DELAY)
        stack.callback(sim.stop)
        sim.start()
        return warpd_row(binds, window, sim, seconds)


def run(settings: Settings) -> ScenarioResult:
    seconds = settings.seconds
    tables = []
    for binds, window in grid(settings):
        runs = []
        for number in range(settings.runs):
            say(f"pipelining {binds}x{window} run {number + 1}/{settings.runs}")
            runs.append(
                [
                    warpd_guarded(settings, "warpd", _warpd, binds, window, seconds),
                    guarded(JASMIN, Role.PEER, _jasmin, binds, window, seconds, settings),
                    guarded(LIMIT, Role.LIMIT, _limit, binds, window, seconds),
                ]
            )
        notes = (
            f"carrier delay {DELAY * 1000:.0f} ms; rate sampled at the simulator over "
            f"{seconds:g} s; Jasmin: {binds} connector(s), one submit_sm in flight each, so at "
            f"most {binds / DELAY:,.0f}/s.",
        )
        tables.append(Table(f"{binds} bind(s) x window {window}", METRICS, runs, notes))
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    return ScenarioResult("pipelining", "Upstream pipelining", description, tables)


SCENARIO = Scenario("pipelining", "Upstream pipelining", run)
