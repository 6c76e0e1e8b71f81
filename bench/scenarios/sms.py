"""SMS end to end: a customer bind -> the gateway -> the carrier simulator -> receipts back.

The simulator answers every submit_sm after 20 ms and sends its receipt
0.2 s later; the load generator binds as the customer, submits a fixed number
of messages with a window, and times submit->resp and submit->receipt. Rows:
warpd (issue 8), Jasmin 0.11.0 with RabbitMQ and Redis (the peer), and the
load generator bound straight to the simulator (the limit: what the load
generator and the simulator do with nothing between them).
"""

from __future__ import annotations

import contextlib

from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers.jasmin import PASSWORD, UPSTREAM, USER, Jasmin
from bench.peers.simulator import CREDENTIALS, Simulator, start_all
from bench.scenarios.common import (
    Scenario,
    Settings,
    SmppLoad,
    guarded,
    say,
    sms_row,
    start_peer,
    warpd_guarded,
)

UPSTREAM_DELAY = 0.02
PACED_RATE, PACED_SECONDS = 1000, 20
# The burst's 1,000 messages are done in a third of a second, before the receipts' costs
# come due; this many keep every stage busy for ten seconds and more: the rate it holds.
SUSTAINED = 30_000
# Over as many customer binds as it takes for the load itself not to be the bound: one
# bind's window of 50 over the carrier's 20 ms is 2,500 msg/s, below the 5,000,
# so the limit row could not have shown that target reachable by anything.
SUSTAINED_BINDS = 4
JASMIN = "Jasmin 0.11.0"
LIMIT = "load generator -> simulator"
METRICS = (
    Metric("e2e_rate", "msg/s end to end", primary=True),
    Metric("accept_rate", "submit_sm_resp/s"),
    Metric("resp_p50", "resp p50 ms", 1),
    Metric("resp_p99", "resp p99 ms", 1),
    Metric("receipt_p50", "receipt p50 ms", 0),
    Metric("receipt_p99", "receipt p99 ms", 0),
    Metric("receipted", "% receipted", 1),
    Metric("cpu_ms", "CPU ms/msg", 3),
    Metric("cpu_ms_all", "CPU ms/msg incl. load gen + sim", 3),
)
# At a fixed rate throughput is the offered one: the figure that differs is the wait.
PACED_METRICS = (
    Metric("resp_p99", "resp p99 ms", 1, primary=True),
    Metric("resp_p50", "resp p50 ms", 1),
    Metric("accept_rate", "submit_sm_resp/s"),
    Metric("receipt_p99", "receipt p99 ms", 0),
    Metric("receipted", "% receipted", 1),
    Metric("cpu_ms", "CPU ms/msg", 3),
)


def warpd_row(load: SmppLoad, upstream: Simulator) -> Row:
    """warpd between the load generator and ``upstream``: the SMS core owner fills this in.

    Start warpd (with its PostgreSQL) with one carrier connector to
    ``127.0.0.1:upstream.port`` (login ``upstream.credentials``), a customer
    account with an SMPP user, a route and a balance; then return
    ``sms_row("warpd", Role.WARPD, <warpd's SMPP port>, (<system_id>,
    <password>), load, lambda: {"warpd": <pids>, "postgres": <pids>},
    upstream.processes)`` and stop warpd.
    """
    from bench.peers import warpd as warpd_peer

    return warpd_peer.sms_row(load, upstream)


def run(settings: Settings) -> ScenarioResult:
    load = SmppLoad(
        messages=100 if settings.smoke else 1000,
        window=50,
        receipt_wait=30 if settings.smoke else 120,
    )
    paced = SmppLoad(
        messages=(PACED_RATE // 5 if settings.smoke else PACED_RATE * PACED_SECONDS),
        window=50,
        receipt_wait=10 if settings.smoke else 30,
        rate=PACED_RATE,
    )
    sustained = SmppLoad(
        messages=500 if settings.smoke else SUSTAINED,
        binds=SUSTAINED_BINDS,
        window=50,
        receipt_wait=10 if settings.smoke else 30,
    )
    runs: list[list[Row]] = []
    paced_runs: list[list[Row]] = []
    sustained_runs: list[list[Row]] = []
    with contextlib.ExitStack() as stack:
        direct = Simulator("smsc-limit", UPSTREAM_DELAY)
        behind_jasmin = Simulator("smsc-jasmin", UPSTREAM_DELAY, credentials=UPSTREAM)
        behind_warpd = Simulator("smsc-warpd", UPSTREAM_DELAY)
        start_all(stack, direct, behind_jasmin, behind_warpd)
        jasmin = Jasmin(behind_jasmin.port)
        jasmin_down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)

        def warpd(offered: SmppLoad) -> Row:
            return warpd_guarded(settings, "warpd", warpd_row, offered, behind_warpd)

        def peer(offered: SmppLoad) -> Row:
            return jasmin_down or guarded(
                JASMIN, Role.PEER, sms_row, JASMIN, Role.PEER, jasmin.smpp_port,
                (USER, PASSWORD), offered, jasmin.processes, behind_jasmin.processes,
            )  # fmt: skip

        def limit(offered: SmppLoad) -> Row:
            return guarded(
                LIMIT, Role.LIMIT, sms_row, LIMIT, Role.LIMIT, direct.port, CREDENTIALS,
                offered, direct.processes,
            )  # fmt: skip

        for number in range(settings.runs):
            say(f"sms run {number + 1}/{settings.runs}")
            runs.append([warpd(load), peer(load), limit(load)])
        # Jasmin returns receipts at about 19/s: a paced run leaves it minutes of them to
        # work through, which would load the machine under every run after it. Its
        # paced runs come last.
        for number in range(settings.runs):
            say(f"sms run {number + 1}/{settings.runs} at {PACED_RATE} msg/s")
            paced_runs.append([warpd(paced), limit(paced)])
        for number in range(settings.runs):
            say(f"sms run {number + 1}/{settings.runs}, {sustained.messages:,} messages")
            sustained_runs.append([warpd(sustained), limit(sustained)])
        for number, rows in enumerate(paced_runs):
            say(f"sms run {number + 1}/{settings.runs} at {PACED_RATE} msg/s, {JASMIN}")
            rows.insert(1, peer(paced))
        for number, rows in enumerate(sustained_runs):
            say(f"sms run {number + 1}/{settings.runs}, {sustained.messages:,} messages, {JASMIN}")
            rows.insert(1, peer(sustained))
    notes = (
        f"{load.messages} messages per run, 1 customer bind, window {load.window}; carrier "
        f"resp after {UPSTREAM_DELAY * 1000:.0f} ms, receipt 0.2 s after the resp.",
        "msg/s end to end: receipts back at the customer per second, from the first receipt "
        "to the last. CPU per message receipted: Jasmin's three daemons with RabbitMQ and Redis "
        "(the machine's brokers are shared: anything else they serve meanwhile counts too); "
        "report.json has each process's share.",
    )
    paced_notes = (
        f"{paced.messages} messages per run offered at {PACED_RATE}/s on 1 bind (window "
        f"{paced.window}), each asking a receipt; receipts awaited {paced.receipt_wait:.0f} s "
        f"after the last submit. {JASMIN}'s paced runs come after the others (each leaves it "
        "a backlog of receipts): its second and third start with the first's.",
        "Lower is better: 'vs peer' and 'vs limit' divide p99s. A system that cannot take "
        f"{PACED_RATE}/s shows it in submit_sm_resp/s.",
    )
    sustained_notes = (
        f"{sustained.messages:,} messages per run as fast as {sustained.binds} binds with "
        f"window {sustained.window} take them, each asking a receipt; receipts awaited "
        f"{sustained.receipt_wait:.0f} s after the last submit. Unlike the burst above, long "
        "enough that receipts, customer deliveries and their commits run beside acceptance "
        f"for most of the run. {JASMIN}'s runs come last, after its paced ones.",
        f"The windows allow {sustained.binds} x {sustained.window} / 0.02 s = "
        f"{sustained.binds * sustained.window / UPSTREAM_DELAY:,.0f} msg/s; the limit row is "
        "what the load generator and the simulator reach of it on this machine. warpd binds "
        "the carrier twice with window 100 (the same 10,000 msg/s).",
    )
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    tables = [
        Table("SMS end to end", METRICS, runs, notes),
        Table(f"submit_sm_resp at {PACED_RATE:,} msg/s", PACED_METRICS, paced_runs, paced_notes),
        Table(f"SMS end to end, sustained ({sustained.messages:,} messages, "
              f"{sustained.binds} binds)", METRICS, sustained_runs, sustained_notes),
    ]  # fmt: skip
    return ScenarioResult("sms", "SMS end to end", description, tables)


SCENARIO = Scenario("sms", "SMS end to end", run)
