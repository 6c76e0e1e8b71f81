"""Memory: PSS per idle customer bind and per active call.

Binds: the load generator opens N transceiver binds and leaves them idle
(answering enquire_link); the row is the growth of the server's PSS over N.
warpd's is its own process's (its PostgreSQL holds nothing per bind),
Jasmin's jasmind's (the daemon that holds the binds); the limit is the
carrier simulator (an asyncio SMPP server) holding the same binds. Calls:
SIPp places N calls that hold for a minute through the system to the SIPp
UAS; the row is the growth of the system's PSS (all its processes, shared
memory split between them) over N: warpd's own process (media on an
RTPEngine, every call checked as active in PostgreSQL), Kamailio's proxy.
PSS rather than RSS: Kamailio's children share one memory pool.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable

from bench import loadgen
from bench.harness.proc import pss_bytes
from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers import sipp
from bench.peers.base import rundir
from bench.peers.jasmin import PASSWORD, UPSTREAM, USER, Jasmin
from bench.peers.kamailio import Kamailio
from bench.peers.simulator import CREDENTIALS, Simulator, start_all
from bench.scenarios.common import (
    Scenario,
    Settings,
    guarded,
    limit_guarded,
    say,
    start_peer,
    warpd_guarded,
)

WARPD, JASMIN, KAMAILIO = "warpd", "Jasmin 0.11.0", "Kamailio 5.6 proxy"
SIM = "carrier simulator"
#: how long each held call lasts: longer than the measurement takes to place them all
HOLD_MS = 60_000
BIND_METRICS = (
    Metric("kib", "KiB per idle bind", 1, primary=True),
    Metric("before_mib", "PSS before, MiB", 1),
    Metric("after_mib", "PSS with the binds, MiB", 1),
    Metric("count", "binds"),
)
CALL_METRICS = (
    Metric("kib", "KiB per active call", 2, primary=True),
    Metric("before_mib", "PSS before, MiB", 1),
    Metric("after_mib", "PSS with the calls, MiB", 1),
    Metric("count", "calls"),
)


def warpd_binds_row(binds: int, upstream: Simulator) -> Row:
    """warpd holding ``binds`` idle customer binds (its own process's PSS, as jasmind's)."""
    from bench.peers import warpd

    return warpd.binds_row(binds, upstream)


def warpd_calls_row(calls: int, uas: sipp.Uas) -> Row:
    """warpd's B2BUA holding ``calls`` answered calls to ``uas`` (the voice side's measure:
    media on an RTPEngine of its own, every call checked as active in PostgreSQL)."""
    from bench import warpd_voice

    return warpd_voice.calls_row(calls, uas)


def _growth(system: str, role: Role, count: int, before: int, after: int) -> Row:
    return Row(
        system,
        role,
        {
            "kib": (after - before) / 1024 / count,
            "before_mib": before / 2**20,
            "after_mib": after / 2**20,
            "count": count,
        },
    )


def hold_binds(
    system: str,
    role: Role,
    port: int,
    credentials: tuple[str, str],
    binds: int,
    pids: Callable[[], list[int]],
) -> Row:
    """PSS growth of ``pids`` while the load generator holds ``binds`` idle binds on ``port``."""
    before = pss_bytes(pids())
    argv = loadgen.esme_argv(
        port,
        system_id=credentials[0],
        password=credentials[1],
        binds=binds,
        window=1,
        seconds=0,
        idle=True,
    )
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        line = holder.stdout.readline()
        if not line or json.loads(line).get("bound") != binds:
            holder.kill()
            raise RuntimeError(f"the load generator did not hold {binds} binds: {line!r}")
        time.sleep(1.0)  # let the server settle (buffers, first enquire_links)
        after = pss_bytes(pids())
        holder.stdin.close()
        holder.wait(30)
    return _growth(system, role, binds, before, after)


def hold_calls(
    system: str,
    role: Role,
    target: str,
    calls: int,
    pids: Callable[[], list[int]],
    service: str = "",
) -> Row:
    """PSS growth of ``pids`` while SIPp keeps ``calls`` answered calls through ``target``."""
    run = rundir("sipp-hold")
    uac, _ = sipp.write_scenarios(run)
    before = pss_bytes(pids())
    rate = 200
    argv = sipp.uac_argv(uac, target, rate, calls, calls, HOLD_MS, service)
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run
    ) as uac_process:
        time.sleep(calls / rate + 2.0)  # every call answered and holding
        after = pss_bytes(pids())
        uac_process.terminate()
        uac_process.wait(30)
    return _growth(system, role, calls, before, after)


def run(settings: Settings) -> ScenarioResult:
    binds = 50 if settings.smoke else 1000
    calls = 50 if settings.smoke else 1000
    bind_runs: list[list[Row]] = []
    call_runs: list[list[Row]] = []
    with contextlib.ExitStack() as stack:
        direct = Simulator("smsc-mem-limit")
        behind_jasmin = Simulator("smsc-mem-jasmin", credentials=UPSTREAM)
        behind_warpd = Simulator("smsc-mem-warpd")
        start_all(stack, direct, behind_jasmin, behind_warpd)
        jasmin = Jasmin(behind_jasmin.port)
        jasmin_down = start_peer(stack, jasmin, settings, JASMIN, Role.PEER)
        sipp.install()
        uas = sipp.Uas()
        stack.callback(uas.stop)
        uas.start()
        kamailio = Kamailio(uas.port)
        kamailio_down = start_peer(stack, kamailio, settings, KAMAILIO, Role.PEER)
        for number in range(settings.runs):
            say(f"memory run {number + 1}/{settings.runs}")
            bind_runs.append([
                warpd_guarded(settings, WARPD, warpd_binds_row, binds, behind_warpd),
                jasmin_down or guarded(
                    JASMIN, Role.PEER, hold_binds, JASMIN, Role.PEER, jasmin.smpp_port,
                    (USER, PASSWORD), binds, jasmin.jasmind_pids,
                ),
                limit_guarded(
                    settings, SIM, hold_binds, SIM, Role.LIMIT, direct.port, CREDENTIALS,
                    binds, direct.pids,
                ),
            ])  # fmt: skip
            call_runs.append([
                warpd_guarded(settings, WARPD, warpd_calls_row, calls, uas),
                kamailio_down or guarded(
                    KAMAILIO, Role.PEER, hold_calls, KAMAILIO, Role.PEER,
                    f"127.0.0.1:{kamailio.port}", calls, kamailio.pids,
                ),
            ])  # fmt: skip
    tables = [
        Table(f"{binds} idle customer binds", BIND_METRICS, bind_runs, (
            "Jasmin: jasmind's PSS (the brokers do not grow with binds).",
        )),
        Table(f"{calls} active calls", CALL_METRICS, call_runs, (
            "Kamailio without the dialog module keeps little per answered call: its "
            "transactions end with the INVITE's.",
        )),
    ]  # fmt: skip
    return ScenarioResult("memory", "Memory", __doc__.split("\n\n")[1].replace("\n", " "), tables)


SCENARIO = Scenario("memory", "Memory", run)
