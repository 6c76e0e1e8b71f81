"""SIP calls per second: the highest rate each system sustains with under 0.1% failed calls.

SIPp's UAC offers INVITE/200/ACK/BYE calls (no hold time, no 180: see
bench/peers/sipp.py) at a stepped rate for 30 s a step (--seconds shortens it), through
the system to one SIPp UAS; a step is sustained when every call was offered,
under 0.1% failed and the run ended within 10% (+1 s) of its length. The
rate doubles from a start value until a step fails (or halves from it until
one holds), then one step bisects the last gap; each system first takes a
second of warm-up calls, not counted. Rows: warpd with RTPEngine (issue 10),
Kamailio as a stateful proxy (the peer), Kamailio with its rtpengine module on
the same RTPEngine, the Sippy B2BUA, and SIPp UAC -> UAS direct (the limit).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.harness.results import Metric, Role, Row, ScenarioResult, Table
from bench.peers import sipp
from bench.peers.kamailio import Kamailio
from bench.peers.rtpengine import RtpEngine
from bench.peers.sippy import Sippy
from bench.scenarios.common import (
    Processes,
    Scenario,
    Settings,
    cpu_by,
    guarded,
    limit_guarded,
    say,
    start_peer,
    warpd_guarded,
)

if TYPE_CHECKING:  # bench.peers.warpd imports bench.scenarios
    from bench.peers.warpd import Warpd

METRICS = (
    Metric("cps", "sustained calls/s", primary=True),
    Metric("cpu_ms", "CPU ms/call", 3),
    Metric("cpu_ms_all", "CPU ms/call incl. SIPp", 3),
    Metric("failed", "% failed at that rate", 3),
    Metric("steps", "steps run"),
)
#: where each system's search starts (calls/s): about a fifth of what it did here before
# A rate counts as sustained only over this long a step (the 30 s); --seconds
# or a smoke run shortens it.
STEP_SECONDS = 30.0
START = {"limit": 500, "kamailio": 500, "kamailio-rtpengine": 250, "sippy": 25, "warpd": 100}
CEILING = 16000
FLOOR = 10
WARM_UP = 20

Steps = list[sipp.Step]
WARPD = "warpd + RTPEngine"
KAMAILIO = "Kamailio 5.6 proxy"
LIMIT = "SIPp UAC -> UAS direct"


def warpd_row(uas: sipp.Uas, rtpengine: RtpEngine, settings: Settings, steps: Steps) -> Row:
    """warpd's B2BUA between the UAC and ``uas``, media on ``rtpengine``.

    Each step is recounted from warpd's side: a call counts as completed only when
    SIPp says so *and* warpd wrote its ANSWERED CDR and charged it (``warpd_recount``).
    """
    from bench import warpd_voice
    from bench.peers.warpd import Voice

    voice = Voice(uas.port, rtpengine.ng_port)
    warpd = warpd_voice.start("warpd-voice", voice)
    try:

        def processes() -> dict[str, list[int]]:
            return {**warpd.processes(), "rtpengine": rtpengine.pids()}

        row = search(
            WARPD, Role.WARPD, warpd_voice.target(warpd), processes, uas, START["warpd"],
            settings, steps, warpd_recount(warpd), voice.number,
        )  # fmt: skip
        total = warpd_voice.counted(warpd)
        note = (
            f"warpd's count: {total.cdrs} CDRs, {total.answered} answered, {total.charged} "
            "charged (warm-up included)"
        )
        return dataclasses.replace(row, note=f"{row.note}; {note}" if row.note else note)
    finally:
        warpd.stop()


def warpd_recount(warpd: Warpd) -> Callable[[sipp.Step], sipp.Step]:
    """A step as warpd saw it: its calls' CDRs (one each, answered or not) and charges,
    read once the step's calls have all ended; SIPp's own failures are kept."""
    from bench import warpd_voice

    seen = [warpd_voice.counted(warpd)]

    def recount(step: sipp.Step) -> sipp.Step:
        before = seen[-1]
        after = warpd_voice.settled(warpd, before.cdrs + step.created)
        seen.append(after)
        completed = min(after.answered - before.answered, after.charged - before.charged)
        failed = max(step.failed, step.created - completed)
        return dataclasses.replace(step, ok=min(step.ok, completed), failed=failed)

    return recount


def search(
    system: str,
    role: Role,
    target: str,
    processes: Processes,
    uas: sipp.Uas,
    start: int,
    settings: Settings,
    steps: Steps,
    recount: Callable[[sipp.Step], sipp.Step] | None = None,
    service: str = "",
) -> Row:
    """Step the offered rate against ``target`` (each step appended to ``steps``); the row
    holds the best sustained step, with the CPU of each of ``processes`` at that step.
    ``recount`` replaces SIPp's count of a step with the system's own (warpd's CDRs);
    ``service`` is the number the UAC dials."""
    cpu: dict[int, tuple[dict[str, float], dict[str, float]]] = {}

    def step(rate: int) -> bool:
        tag = system.split(maxsplit=1)[0].lower()
        with cpu_by(processes) as own, cpu_by(lambda: {"sipp uas": uas.pids()}) as far_end:
            result = sipp.uac_step(target, rate, settings.length(STEP_SECONDS), tag, service)
        if recount is not None:
            result = recount(result)
        cpu[rate] = (own, {**far_end, "sipp uac": result.finished.cpu})
        steps.append(result)
        verdict = "sustained" if result.sustained() else "not sustained"
        say(f"{system} {rate} calls/s: {result.ok} ok, {result.failed} failed, {verdict}")
        return result.sustained()

    # A few calls first, not counted: the first calls after a start pay for caches and
    # buffers the system does not allocate again, and failed here before.
    warm_up = sipp.uac_step(target, WARM_UP, 1.0, "warm-up", service)
    if recount is not None:
        recount(warm_up)
    if settings.smoke:
        step(min(50, start))
    else:
        rate = start
        while not step(rate) and rate > FLOOR:  # below the start: halve until one holds
            rate //= 2
        good = rate if steps[-1].sustained() else 0
        rate = good * 2
        while good and rate <= CEILING and step(rate):
            good, rate = rate, rate * 2
        if good and rate <= CEILING and rate - good > good // 4 and step((good + rate) // 2):
            good = (good + rate) // 2
    best = max((s for s in steps if s.sustained()), key=lambda s: s.rate, default=None)
    if best is None:
        last = steps[-1]
        raise RuntimeError(f"not even {last.rate} calls/s: {last.ok} ok, {last.failed} failed")
    own, others = cpu[best.rate]
    calls = max(best.ok, 1)
    values = {
        "cps": best.rate,
        "cpu_ms": 1000 * sum(own.values()) / calls,
        "cpu_ms_all": 1000 * (sum(own.values()) + sum(others.values())) / calls,
        "failed": 100 * best.failure_ratio,
        "steps": len(steps),
    }
    by_part = {part: 1000 * seconds / calls for part, seconds in (own | others).items()}
    return Row(system, role, values, cpu=by_part)


def _peer_row(
    system: str, role: Role, peer: Kamailio | Sippy, start: int, extra: Processes,
    uas: sipp.Uas, settings: Settings, steps: Steps,
) -> Row:  # fmt: skip
    target = f"127.0.0.1:{peer.port}"

    def processes() -> dict[str, list[int]]:
        return {peer.name: peer.pids(), **extra()}

    return search(system, role, target, processes, uas, start, settings, steps)


def run(settings: Settings) -> ScenarioResult:
    runs: list[list[Row]] = []
    curves: dict[str, list[tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        sipp.install()
        uas, rtpengine = sipp.Uas(), RtpEngine()
        # The limit row needs no media relay: a limit-only run (the test command's) starts none.
        for far_end in (uas,) if settings.limits_only else (uas, rtpengine):
            far_end.install()
            stack.callback(far_end.stop)
            far_end.start()
        peers = (
            (KAMAILIO, Role.PEER, Kamailio(uas.port), START["kamailio"], dict),
            (
                "Kamailio + rtpengine", Role.OTHER, Kamailio(uas.port, rtpengine.ng_port),
                START["kamailio-rtpengine"], lambda: {"rtpengine": rtpengine.pids()},
            ),
            ("Sippy B2BUA 2.5.0", Role.OTHER, Sippy(uas.port), START["sippy"], dict),
        )  # fmt: skip
        down = {
            name: start_peer(stack, peer, settings, name, role) for name, role, peer, *_ in peers
        }
        for number in range(settings.runs):
            say(f"sip run {number + 1}/{settings.runs}")
            steps: dict[str, Steps] = {name: [] for name in (WARPD, *down, LIMIT)}
            rows = [
                warpd_guarded(settings, WARPD, warpd_row, uas, rtpengine, settings, steps[WARPD])
            ]
            for name, role, peer, start, extra in peers:
                rows.append(down[name] or guarded(
                    name, role, _peer_row, name, role, peer, start, extra, uas, settings,
                    steps[name],
                ))  # fmt: skip
            rows.append(limit_guarded(
                settings, LIMIT, search, LIMIT, Role.LIMIT, f"127.0.0.1:{uas.port}", dict, uas,
                START["limit"], settings, steps[LIMIT],
            ))  # fmt: skip
            runs.append(rows)
            curves = {
                name: [(s.rate, s.ok / max(s.finished.wall, 1e-9)) for s in found]
                for name, found in steps.items() if found
            }  # fmt: skip
    notes = (
        f"{settings.length(STEP_SECONDS):g} s per step, calls without hold time. CPU per call "
        "at the best step: the system's processes (with rtpengine where it relays media); "
        "'incl. SIPp' adds the UAC and the UAS.",
    )
    table = Table("Highest sustained call rate", METRICS, runs, notes)
    axes = ("SIP: completed against offered calls/s (last run)", "offered", "completed calls/s")
    description = __doc__.split("\n\n")[1].replace("\n", " ")
    return ScenarioResult("sip", "SIP calls per second", description, [table], [], curves, axes)


SCENARIO = Scenario("sip", "SIP calls per second", run)
