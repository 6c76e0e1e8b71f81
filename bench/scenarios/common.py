"""What every scenario shares: its settings, starting peers, and one SMPP load run as a row."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench import loadgen
from bench.harness.proc import cpu_seconds, run_measured
from bench.harness.results import Role, Row, ScenarioResult, Status
from bench.peers.base import Peer, PeerUnavailable


@dataclass(frozen=True, slots=True)
class Settings:
    runs: int = 3
    #: length of one measurement (a SIP step, a load run), seconds
    seconds: float = 10.0
    #: a few seconds per scenario, slow-to-install peers skipped (with the reason printed)
    smoke: bool = False
    #: only the rows that need no peer: the limits (what the test command runs)
    limits_only: bool = False
    #: only warpd's rows (no peer started, no limit row): A/B runs of warpd itself
    warpd_only: bool = False
    #: --seconds as given: it also shortens the long scenarios (soak, OTP), which
    #: otherwise run their own full length whatever ``seconds`` is
    seconds_given: float | None = None

    def length(self, full: float) -> float:
        """A long scenario's run length: --seconds when given, a smoke's seconds, else ``full``."""
        if self.seconds_given:
            return self.seconds_given
        return self.seconds if self.smoke else full


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    heading: str
    run: Callable[[Settings], ScenarioResult]


class Skipped(Exception):
    """A row that is not run this time, for the reason in the message."""


def say(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


def bring_up(stack: contextlib.ExitStack, peer: Peer, settings: Settings) -> None:
    """Install (unless smoke mode finds it missing), start and check ``peer``; it is stopped
    with ``stack``."""
    installed = getattr(peer, "installed", None)
    if settings.limits_only:
        raise Skipped("limit rows only (--limits-only)")
    if settings.warpd_only:
        raise Skipped("warpd rows only (--warpd-only)")
    if settings.smoke and installed is not None and not installed():
        reason = f"{peer.name} is not installed yet and smoke mode does not install it"
        say(f"skipping {peer.name}: {reason} (run the scenario once without smoke)")
        raise Skipped(reason)
    peer.install()
    stack.callback(peer.stop)
    say(f"starting {peer.name}")
    peer.start()
    if not peer.health():
        raise PeerUnavailable(f"{peer.name} started but does not answer its health check")


def start_peer(
    stack: contextlib.ExitStack, peer: Peer, settings: Settings, system: str, role: Role
) -> Row | None:
    """None once ``peer`` is up; else the row (skipped or failed) that each run reports for it."""
    try:
        bring_up(stack, peer, settings)
    except Skipped as skipped:
        return Row(system, role, status=Status.SKIPPED, note=str(skipped))
    except (PeerUnavailable, RuntimeError, OSError) as failed:
        say(f"{system} did not start: {failed}")
        return Row(system, role, status=Status.FAILED, note=f"did not start: {failed}"[:300])
    return None


def warpd_guarded(settings: Settings, system: str, measure: Callable[..., Row], *args: Any) -> Row:
    """A warpd row: ``guarded``, except that limit-only runs (the test command's) skip it."""
    if settings.limits_only:
        return Row(
            system, Role.WARPD, status=Status.SKIPPED, note="limit rows only (--limits-only)"
        )
    return guarded(system, Role.WARPD, measure, *args)


def limit_guarded(settings: Settings, system: str, measure: Callable[..., Row], *args: Any) -> Row:
    """A limit row: ``guarded``, except that warpd-only runs skip it."""
    if settings.warpd_only:
        return Row(system, Role.LIMIT, status=Status.SKIPPED, note="warpd rows only (--warpd-only)")
    return guarded(system, Role.LIMIT, measure, *args)


def guarded(system: str, role: Role, measure: Callable[..., Row], *args: Any) -> Row:
    """The row ``measure(*args)`` returns, or a row saying why there is none."""
    try:
        return measure(*args)
    except NotImplementedError as pending:
        return Row(system, role, status=Status.PENDING, note=str(pending))
    except Skipped as skipped:
        return Row(system, role, status=Status.SKIPPED, note=str(skipped))
    except (PeerUnavailable, RuntimeError, OSError, ValueError, KeyError) as failed:
        say(f"{system} failed: {failed}")
        return Row(
            system, role, status=Status.FAILED, note=f"{type(failed).__name__}: {failed}"[:300]
        )


@contextlib.contextmanager
def cpu_of(pids: Callable[[], list[int]]) -> Iterator[list[float]]:
    """CPU seconds the processes used inside the block (appended to the yielded list)."""
    watched = pids()
    before = cpu_seconds(watched)
    spent: list[float] = []
    yield spent
    spent.append(cpu_seconds(watched) - before)


#: the processes of a system by part ("jasmind", "rabbitmq", ...), read when a measurement starts
Processes = Callable[[], dict[str, list[int]]]


@contextlib.contextmanager
def cpu_by(processes: Processes) -> Iterator[dict[str, float]]:
    """CPU seconds each part used inside the block (filled into the yielded dict)."""
    watched = processes()
    before = {part: cpu_seconds(pids) for part, pids in watched.items()}
    spent: dict[str, float] = {}
    yield spent
    spent.update({part: cpu_seconds(pids) - before[part] for part, pids in watched.items()})


@dataclass(frozen=True, slots=True)
class SmppLoad:
    """What the load generator offers: ``messages`` submits over ``binds`` x ``window``,
    as fast as the window lets them or paced at ``rate`` a second."""

    messages: int
    binds: int = 1
    window: int = 50
    receipt_wait: float = 60.0
    rate: float | None = None


def esme_run(
    port: int,
    credentials: tuple[str, str],
    load: SmppLoad,
    processes: Processes,
    support: Processes,
    seconds: float = 600.0,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Run the load generator: (its JSON, CPU seconds by part of the system, of the rest:
    ``support`` and the load generator itself)."""
    argv = loadgen.esme_argv(
        port,
        system_id=credentials[0],
        password=credentials[1],
        binds=load.binds,
        window=load.window,
        seconds=seconds,
        count=load.messages,
        receipt_wait=load.receipt_wait,
        rate=load.rate,
    )
    with cpu_by(processes) as spent, cpu_by(support) as support_spent:
        finished = run_measured(argv, timeout=seconds + load.receipt_wait + 60)
    try:  # sim-esme exits 1 when a receipt is missing: the row says how many
        result = loadgen.esme_result(finished.stdout)
    except ValueError:
        raise RuntimeError(
            f"load generator exited {finished.returncode}: {finished.stderr[-500:]}"
        ) from None
    return result, spent, {**support_spent, "load generator": finished.cpu}


def sms_row(
    system_name: str,
    role: Role,
    port: int,
    credentials: tuple[str, str],
    load: SmppLoad,
    processes: Processes,
    support: Processes = dict,
) -> Row:
    """One end-to-end SMS run against any SMPP endpoint (warpd, Jasmin, the simulator itself).

    ``processes`` are the system under test's, its databases included
    (``cpu_ms`` per message receipted); ``support`` the upstream simulator,
    counted with the load generator in ``cpu_ms_all``. The row's ``cpu``
    keeps each part's CPU ms per message.
    """
    result, system, rest = esme_run(port, credentials, load, processes, support)
    done = max(result["receipts"], 1)
    system_cpu, generator_cpu = sum(system.values()), sum(rest.values())
    values = {
        "e2e_rate": result["e2e_rate"],
        "accept_rate": result["rate"],
        "resp_p50": result["resp_p50_ms"],
        "resp_p99": result["resp_p99_ms"],
        "receipt_p50": result["receipt_p50_ms"],
        "receipt_p99": result["receipt_p99_ms"],
        "receipted": 100.0 * result["receipts"] / max(result["sent"], 1),
        "cpu_ms": 1000 * system_cpu / done,
        "cpu_ms_all": 1000 * (system_cpu + generator_cpu) / done,
    }
    clean = {k: float(v) for k, v in values.items() if v is not None}
    lost = result["sent"] - result["receipts"]
    by_part = {part: 1000 * seconds / done for part, seconds in (system | rest).items()}
    return Row(
        system_name, role, clean, note=f"{lost} without receipt" if lost else "", cpu=by_part
    )
