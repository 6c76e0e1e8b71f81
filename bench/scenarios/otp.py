"""OTP acceptance: 1,000 one-time-password messages/s for 5 minutes, half over SMPP, half over HTTP.

The load the platform was planned around, as an OTP sender offers it: 500
submit_sm/s from the load generator (2 binds, each message asking a receipt)
and 500 ``POST /v1/sms``/s from the paced HTTP client, together, to the
carrier simulator (20 ms, a receipt 0.2 s later). Every message must be
accounted for: over SMPP, submits = submit_sm_resp OK = receipts back at the
customer; over HTTP, 202s = warpd's own count; and in PostgreSQL, read once
nothing is left in flight, each of them a message row, charged in the ledger
and delivered (its receipt matched). ``lost`` counts what was accepted but is
not a charged row (it must be 0); a receipt still to come when the run ends
(the carrier's, or the customer's) lowers ``% receipted`` instead. Jasmin
(the peer) takes the same load on its SMPP server and its ``/send`` (which
asks no receipt); it has no store to reconcile against, so its row says what
came back. The limit is the load generator on the
simulator with the HTTP client on a bare aiohttp 202.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from typing import Any
from urllib.parse import urlencode

from bench import loadgen
from bench.harness.proc import Finished, Service, free_port, run_together, wait_tcp
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers.base import rundir
from bench.peers.jasmin import PASSWORD, UPSTREAM, USER, Jasmin
from bench.peers.simulator import CREDENTIALS, Simulator, start_all
from bench.peers.warpd import HTTP_BODY, Warpd
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

Json = dict[str, Any]
FULL_SECONDS = 300.0
SMPP_RATE = 500  # and as many over HTTP
#: seconds after the last submit for receipts still coming (Jasmin's fall far behind)
RECEIPT_WAIT = 30.0
WARPD, JASMIN, LIMIT = "warpd", "Jasmin 0.11.0", "load generator -> simulator + aiohttp 202"
METRICS = (
    Metric("accepted", "accepted msg/s", primary=True),
    Metric("offered", "offered msg/s"),
    Metric("resp_p99", "submit_sm_resp p99 ms", 1),
    Metric("http_p99", "HTTP p99 ms", 1),
    Metric("receipt_p99", "receipt p99 ms", 0),
    Metric("receipted", "% receipted", 1),
    Metric("lost", "lost"),
    Metric("cpu_ms", "CPU ms/msg", 3),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where the two halves of the load go."""

    smpp_port: int
    login: tuple[str, str]
    url: str
    body: str
    headers: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Load:
    seconds: float
    #: messages/s of each half (SMPP, HTTP)
    rate: int = SMPP_RATE


def offer(target: Target, load: Load, processes: Processes) -> tuple[Json, Json, dict[str, float]]:
    """Both halves at once: (the load generator's JSON, the HTTP client's, CPU s by part)."""
    seconds = load.seconds
    esme = loadgen.esme_argv(
        target.smpp_port, system_id=target.login[0], password=target.login[1], binds=2,
        window=200, seconds=seconds, rate=load.rate, receipt_wait=RECEIPT_WAIT,
    )  # fmt: skip
    http = [
        sys.executable, "-m", "bench.http_load", target.url, "--method", "POST", "--body",
        target.body, "--rate", str(load.rate), "--concurrency", "200", "--seconds", str(seconds),
        "--client", "asyncio",
    ]  # fmt: skip
    for key, value in target.headers.items():
        http += ["--header", f"{key}: {value}"]
    with cpu_by(processes) as spent:
        (sms, web), _ = run_together([esme, http], seconds + RECEIPT_WAIT + 120)
    return _json(sms, "load generator"), _json(web, "HTTP client"), spent


def _json(finished: Finished, what: str) -> Json:
    try:
        return dict(json.loads(finished.stdout))
    except ValueError:
        raise RuntimeError(
            f"{what} exited {finished.returncode}: {finished.stderr[-400:]}"
        ) from None


def _values(sms: Json, web: Json, seconds: float, cpu: float) -> dict[str, float]:
    accepted = sms["ok"] + web["ok"]
    values = {
        "accepted": accepted / seconds,
        "offered": (sms["sent"] + web["requests"]) / seconds,
        "resp_p99": sms["resp_p99_ms"],
        "http_p99": web["p99_ms"],
        "receipt_p99": sms["receipt_p99_ms"],
        "cpu_ms": 1000 * cpu / max(accepted, 1),
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def warpd_row(load: Load, upstream: Simulator) -> Row:
    """warpd: the load, then every message reconciled against PostgreSQL."""
    warpd = Warpd("warpd-otp", upstream.port, upstream.credentials, binds=2, window=100)
    try:
        warpd.start()
        headers = {"Authorization": f"Bearer {warpd.api_key}", "Content-Type": "application/json"}
        url = f"http://127.0.0.1:{warpd.http_port}/v1/sms"
        target = Target(warpd.smpp_port, warpd.credentials, url, HTTP_BODY, headers)
        sms, web, spent = offer(target, load, warpd.processes)
        accepted_202 = warpd.http_accepted()
        ledger = warpd.ledger()
    finally:
        warpd.stop()
    smpp = ledger.get("smpp", {})
    http = ledger.get("http", {})
    smpp_chain = (sms["sent"], sms["ok"], sms["receipts"], smpp.get("rows", 0),
                  smpp.get("charged", 0), smpp.get("delivered", 0))  # fmt: skip
    http_chain = (web["ok"], accepted_202, http.get("rows", 0), http.get("charged", 0),
                  http.get("delivered", 0))  # fmt: skip
    values = _values(sms, web, load.seconds, sum(spent.values()))
    accepted = sms["ok"] + web["ok"]
    values["receipted"] = 100 * (sms["receipts"] + http.get("delivered", 0)) / max(accepted, 1)
    # Lost: accepted (a submit_sm_resp OK, a 202) but not a charged row, or not in
    # warpd's own count; a receipt still to come is not lost (% receipted shows it).
    values["lost"] = float(
        sms["ok"]
        - min(smpp.get("rows", 0), smpp.get("charged", 0))
        + web["ok"]
        - min(accepted_202, http.get("rows", 0), http.get("charged", 0))
    )
    note = (
        "SMPP {} submits, {} resps OK, {} receipts, {} rows, {} charged, {} delivered; "
        "HTTP {} 202s, {} counted by warpd, {} rows, {} charged, {} delivered"
    ).format(*smpp_chain, *http_chain)
    cpu = {part: 1000 * s / max(accepted, 1) for part, s in spent.items()}
    return Row(WARPD, Role.WARPD, values, note=note, cpu=cpu)


def jasmin_row(load: Load, jasmin: Jasmin) -> Row:
    """Jasmin: the same load; what came back (it keeps no store this could be checked in)."""
    query = urlencode({"username": USER, "password": PASSWORD, "to": "447700900123",
                       "from": "Bench", "content": "Your code is 493817"})  # fmt: skip
    target = Target(jasmin.smpp_port, (USER, PASSWORD), f"http://127.0.0.1:{jasmin.http_port}/send",
                    query, {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    sms, web, spent = offer(target, load, jasmin.processes)
    values = _values(sms, web, load.seconds, sum(spent.values()))
    values["receipted"] = 100 * sms["receipts"] / max(sms["ok"], 1)
    note = (
        f"SMPP {sms['sent']} submits, {sms['ok']} resps OK, {sms['receipts']} receipts "
        f"{RECEIPT_WAIT:g} s after the last; HTTP {web['ok']} 2xx of {web['requests']} (/send "
        "asks no receipt: % receipted is SMPP's)"
    )
    cpu = {part: 1000 * s / max(sms["ok"] + web["ok"], 1) for part, s in spent.items()}
    return Row(JASMIN, Role.PEER, values, note=note, cpu=cpu)


def limit_row(load: Load, direct: Simulator) -> Row:
    run = rundir("http-sink-otp")
    port = free_port()
    sink = Service.start(
        "http-sink", [sys.executable, "-m", "bench.http_sink", "--port", str(port)], run
    )
    try:
        wait_tcp(port, 15, "http sink", sink.process)
        target = Target(direct.port, CREDENTIALS, f"http://127.0.0.1:{port}/v1/sms", HTTP_BODY,
                        {"Content-Type": "application/json"})  # fmt: skip
        sms, web, spent = offer(
            target, load, lambda: {"simulator": direct.pids(), "aiohttp": sink.pids()}
        )
    finally:
        sink.stop()
    values = _values(sms, web, load.seconds, sum(spent.values()))
    values["receipted"] = 100 * sms["receipts"] / max(sms["ok"], 1)
    return Row(LIMIT, Role.LIMIT, values)


def _jasmin(settings: Settings, load: Load, upstream: Simulator) -> Row:
    """Jasmin's row, last in a run and on a Jasmin of its own: the backlog it is left with
    (receipts, RabbitMQ queues) would weigh on whatever ran after it."""
    with contextlib.ExitStack() as stack:
        jasmin = Jasmin(upstream.port)
        down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)
        return down or guarded(JASMIN, Role.PEER, jasmin_row, load, jasmin)


def run(settings: Settings) -> ScenarioResult:
    # A smoke checks the harness, not warpd: a fifth of the load will do.
    load = Load(settings.length(FULL_SECONDS), SMPP_RATE // 5 if settings.smoke else SMPP_RATE)
    seconds = load.seconds
    runs: list[list[Row]] = []
    with contextlib.ExitStack() as stack:
        direct = Simulator("smsc-otp-limit")
        behind_jasmin = Simulator("smsc-otp-jasmin", credentials=UPSTREAM)
        behind_warpd = Simulator("smsc-otp-warpd")
        # A limit-only run (the test command's) starts only what its row needs.
        start_all(stack, direct, *(() if settings.limits_only else (behind_jasmin, behind_warpd)))
        for number in range(settings.runs):
            say(f"otp run {number + 1}/{settings.runs}: {2 * load.rate}/s for {seconds:g} s")
            warpd = warpd_guarded(settings, WARPD, warpd_row, load, behind_warpd)
            limit = guarded(LIMIT, Role.LIMIT, limit_row, load, direct)
            runs.append([warpd, _jasmin(settings, load, behind_jasmin), limit])
    notes = (
        f"{seconds:g} s at {load.rate} submit_sm/s (2 binds, receipts asked) and {load.rate} "
        f"POST/s (at most 200 in flight), together; receipts awaited {RECEIPT_WAIT:g} s after "
        "the last submit, PostgreSQL read once nothing was queued or in flight (60 s at most).",
        "accepted msg/s: submit_sm_resp OK and 2xx over the run's length. CPU per message "
        "accepted: the system's processes (warpd with PostgreSQL; Jasmin's daemons with "
        "RabbitMQ and Redis; the simulator and the aiohttp sink), not the load generators'.",
    )
    table = Table(f"{2 * load.rate:,} OTP messages/s, SMPP and HTTP", METRICS, runs, notes)
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    return ScenarioResult("otp", "OTP acceptance", description, [table])


SCENARIO = Scenario("otp", "OTP acceptance", run)
