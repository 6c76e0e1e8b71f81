"""Upstream pipelining: how much of binds x window / delay a gateway gets from a 20 ms carrier.

One customer bind with a deep window keeps the gateway's queue full; the
carrier simulator answers each submit_sm after 20 ms and counts what
arrives. With b binds of window w the most a gateway can send is
b x w / 0.02 submit_sm/s; the row shows the rate the simulator saw over the
measurement and that fraction. Jasmin has no upstream window (one submit_sm
in flight per connector): its binds are connectors under a round-robin MT
route, so its theoretical rate is b / 0.02 whatever w is. The limit is the
load generator bound straight to the simulator with the same binds and window.
"""

from __future__ import annotations

import contextlib
import subprocess
import time

from bench import loadgen
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers.jasmin import PASSWORD, USER, Jasmin
from bench.peers.simulator import Simulator
from bench.scenarios.common import Scenario, Settings, Skipped, cpu_of, guarded, say, start_peer

DELAY = 0.02
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

    Start warpd with that connector, bind one customer, keep its queue full for
    ``seconds`` (``offer()`` below does it for any SMPP endpoint) and return
    ``measured("warpd", Role.WARPD, ...)``.
    """
    raise NotImplementedError("warpd row lands with issue 8")


def offer(
    port: int,
    credentials: tuple[str, str],
    upstream: Simulator,
    seconds: float,
    binds: int = 1,
    window: int = 500,
) -> tuple[int, float]:
    """Keep ``port`` loaded for ``seconds``; (submits the simulator saw, over how long)."""
    argv = loadgen.esme_argv(
        port,
        system_id=credentials[0],
        password=credentials[1],
        binds=binds,
        window=window,
        seconds=seconds + 1.0,
        receipt_wait=0,
    )
    # The simulator's count is sampled from 1 s in (binds up, queues full) to the end.
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as generator:
        time.sleep(1.0)
        first, first_at = upstream.submits()
        time.sleep(seconds)
        last, last_at = upstream.submits()
        generator.wait(timeout=seconds + 60)
    if generator.returncode != 0:
        raise RuntimeError(f"load generator exited {generator.returncode}")
    return last - first, last_at - first_at


def measured(system: str, role: Role, sent: int, span: float, theory: float, cpu: float) -> Row:
    rate = sent / span if span > 0 else 0.0
    return Row(
        system,
        role,
        {
            "fraction": 100 * rate / theory,
            "rate": rate,
            "theory": theory,
            "cpu_ms": 1000 * cpu / max(sent, 1),
        },
    )


def _limit(binds: int, window: int, seconds: float) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator(f"smsc-pipe-{binds}x{window}", DELAY, receipt_delay=None)
        stack.callback(sim.stop)
        sim.start()
        with cpu_of(sim.pids) as spent:
            sent, span = offer(sim.port, ("bench", "bench"), sim, seconds, binds, window)
        return measured(LIMIT, Role.LIMIT, sent, span, binds * window / DELAY, spent[0])


def _jasmin(binds: int, seconds: float, settings: Settings) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator(f"smsc-pipe-jasmin-{binds}", DELAY, receipt_delay=None)
        stack.callback(sim.stop)
        sim.start()
        jasmin = Jasmin(sim.port, connectors=binds)
        down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)
        if down is not None:
            raise Skipped(down.note) if down.status.value == "skipped" else RuntimeError(down.note)
        with cpu_of(jasmin.pids) as spent:
            sent, span = offer(jasmin.smpp_port, (USER, PASSWORD), sim, seconds)
        return measured(JASMIN, Role.PEER, sent, span, binds / DELAY, spent[0])


def _warpd(binds: int, window: int, seconds: float) -> Row:
    with contextlib.ExitStack() as stack:
        sim = Simulator("smsc-pipe-warpd", DELAY, receipt_delay=None)
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
                    guarded("warpd", Role.WARPD, _warpd, binds, window, seconds),
                    guarded(JASMIN, Role.PEER, _jasmin, binds, seconds, settings),
                    guarded(LIMIT, Role.LIMIT, _limit, binds, window, seconds),
                ]
            )
        notes = (
            f"carrier delay {DELAY * 1000:.0f} ms; rate sampled at the simulator over "
            f"{seconds:g} s; Jasmin: {binds} connector(s), one submit_sm in flight each, so its "
            f"theory is {binds / DELAY:,.0f}/s.",
        )
        tables.append(Table(f"{binds} bind(s) x window {window}", METRICS, runs, notes))
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    return ScenarioResult("pipelining", "Upstream pipelining", description, tables)


SCENARIO = Scenario("pipelining", "Upstream pipelining", run)
