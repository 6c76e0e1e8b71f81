"""HTTP send: warpd ``POST /v1/sms``, Jasmin's ``/send`` and a bare aiohttp 202, N in flight.

The load client (wrk with a Lua script, or the asyncio client where wrk is
missing; bench/http_load.py) keeps N requests in flight for the measurement
and reports requests/s with p50/p99 latency; only 2xx answers count. Jasmin
routes what it accepts to the carrier simulator (20 ms; /send asks no receipt). The
limit is aiohttp on uvloop answering 202 with no work at all.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from urllib.parse import urlencode

from bench.harness.proc import Service, free_port, run_measured, wait_tcp
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers.base import apt_install, rundir
from bench.peers.jasmin import PASSWORD, UPSTREAM, USER, Jasmin
from bench.peers.simulator import Simulator, start_all
from bench.scenarios.common import (
    Processes,
    Scenario,
    Settings,
    cpu_by,
    guarded,
    say,
    start_peer,
    warpd_guarded,
)

WARPD = "warpd POST /v1/sms"
JASMIN = "Jasmin 0.11.0 /send"
LIMIT = "bare aiohttp 202"
METRICS = (
    Metric("rate", "2xx/s", primary=True),
    Metric("p50", "p50 ms", 2),
    Metric("p99", "p99 ms", 2),
    Metric("ok", "% 2xx", 1),
    Metric("cpu_ms", "CPU ms/req", 3),
)


def warpd_row(concurrency: int, seconds: float, upstream: Simulator) -> Row:
    """warpd's send API under ``load()``, with a customer API key and a connector to
    ``upstream``; every 202 is counted as a charged row in PostgreSQL after the run."""
    from bench.peers.warpd import http_row

    return http_row(WARPD, concurrency, seconds, upstream)


def load(
    system: str,
    role: Role,
    url: str,
    method: str,
    body: str,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    processes: Processes,
) -> Row:
    """Run the load client against ``url``; CPU is that of ``processes`` (the server's)."""
    argv = [
        sys.executable,
        "-m",
        "bench.http_load",
        url,
        "--method",
        method,
        "--body",
        body,
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
    ]
    for key, value in headers.items():
        argv += ["--header", f"{key}: {value}"]
    with cpu_by(processes) as spent:
        finished = run_measured(argv, timeout=seconds + 60)
    if finished.returncode != 0:
        raise RuntimeError(f"load client exited {finished.returncode}: {finished.stderr[-400:]}")
    result = json.loads(finished.stdout)
    good = max(result["ok"], 1)
    return Row(
        system,
        role,
        {
            "rate": result["ok"] * result["rate"] / max(result["requests"], 1),
            "p50": result["p50_ms"],
            "p99": result["p99_ms"],
            "ok": 100 * result["ok"] / max(result["requests"], 1),
            "cpu_ms": 1000 * sum(spent.values()) / good,
        },
        note=f"client: {result['client']}",
        cpu={part: 1000 * seconds / good for part, seconds in spent.items()},
    )


def _limit(concurrency: int, seconds: float) -> Row:
    port = free_port()
    run = rundir("http-sink")
    sink = Service.start(
        "http-sink", [sys.executable, "-m", "bench.http_sink", "--port", str(port)], run
    )
    try:
        wait_tcp(port, 15, "http sink", sink.process)
        return load(
            LIMIT,
            Role.LIMIT,
            f"http://127.0.0.1:{port}/v1/sms",
            "POST",
            '{"to": "+447700900123", "from": "Bench", "text": "Your code is 493817"}',
            {"Content-Type": "application/json"},
            concurrency,
            seconds,
            lambda: {"aiohttp": sink.pids()},
        )
    finally:
        sink.stop()


def concurrencies(settings: Settings) -> list[int]:
    return [10] if settings.smoke else [10, 100]


def run(settings: Settings) -> ScenarioResult:
    if shutil.which("wrk") is None and not settings.smoke:
        apt_install("wrk")  # the faster client; smoke runs the asyncio one rather than install
    tables = []
    seconds = settings.seconds
    with contextlib.ExitStack() as stack:
        behind_jasmin = Simulator("smsc-http-jasmin", credentials=UPSTREAM)
        behind_warpd = Simulator("smsc-http-warpd")
        start_all(stack, behind_jasmin, behind_warpd)
        jasmin = Jasmin(behind_jasmin.port)
        down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)
        query = urlencode(
            {
                "username": USER,
                "password": PASSWORD,
                "to": "447700900123",
                "from": "Bench",
                "content": "Your code is 493817",
            }
        )
        jasmin_url = f"http://127.0.0.1:{jasmin.http_port}/send"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for concurrency in concurrencies(settings):
            runs = []
            for number in range(settings.runs):
                say(f"http concurrency {concurrency} run {number + 1}/{settings.runs}")
                warpd = warpd_guarded(
                    settings, WARPD, warpd_row, concurrency, seconds, behind_warpd
                )
                peer = down or guarded(
                    JASMIN,
                    Role.PEER,
                    load,
                    JASMIN,
                    Role.PEER,
                    jasmin_url,
                    "POST",
                    query,
                    form,
                    concurrency,
                    seconds,
                    jasmin.processes,
                )
                limit = guarded(LIMIT, Role.LIMIT, _limit, concurrency, seconds)
                runs.append([warpd, peer, limit])
            notes = (
                f"{seconds:g} s per measurement. CPU: the server's processes (Jasmin's daemons "
                "with RabbitMQ and Redis), not the load client's.",
            )
            tables.append(Table(f"{concurrency} requests in flight", METRICS, runs, notes))
    return ScenarioResult("http", "HTTP send", __doc__.split("\n\n")[1].replace("\n", " "), tables)


SCENARIO = Scenario("http", "HTTP send", run)
