"""SIPp (Debian ``sip-tester``): the UAS every SIP row calls, and the UAC that offers the load.

The scenarios are SIPp's built-in uac and uas, dumped with ``sipp -sd`` and
made route-set aware (test-peers.md): the UAC records the 200's
Record-Route (``rrs``) and sends ACK and BYE to ``[next_url]`` with
``[routes]``; the UAS copies the INVITE's Record-Route into its 200, which
it sends without a 180 first (see ``_without_ringing``).
Without Record-Route (the direct limit, a B2BUA) both reduce to the built-ins.
"""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.harness.proc import HOST, Finished, Service, free_port, run_measured
from bench.peers.base import PeerUnavailable, apt_install, rundir

BUFFERS = ["-buff_size", "4194304"]


def _dump(role: str) -> str:
    # sipp -sd prints the scenario, then exits with 99 ("usage") all the same.
    dumped = subprocess.run(["sipp", "-sd", role], capture_output=True, text=True, check=False)
    if "<scenario" not in dumped.stdout:
        raise PeerUnavailable(f"sipp -sd {role} printed no scenario: {dumped.stderr[-300:]}")
    return dumped.stdout


def write_scenarios(directory: Path) -> tuple[Path, Path]:
    uac = _dump("uac")
    uac = uac.replace(
        '<recv response="200" rtd="true">', '<recv response="200" rtd="true" rrs="true">'
    )
    for method in ("ACK", "BYE"):
        uac = uac.replace(
            f"{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n",
            f"{method} [next_url] SIP/2.0\n      [routes]\n",
        )
    uas = _without_ringing(_dump("uas"))
    # The 200 answering the INVITE comes first; the BYE's 200 needs no route set.
    uas = uas.replace("[last_Via:]\n", "[last_Via:]\n      [last_Record-Route:]\n", 1)
    if "[next_url]" not in uac or "[last_Record-Route:]" not in uas:
        raise PeerUnavailable("this SIPp's built-in scenarios changed: cannot add route sets")
    paths = directory / "uac_rr.xml", directory / "uas_rr.xml"
    paths[0].write_text(uac)
    paths[1].write_text(uas)
    return paths


def _without_ringing(uas: str) -> str:
    """The UAS answers 200 at once, no 180 first: a proxy with several worker processes
    (Kamailio) may forward the two out of order, and SIPp's UAC fails the call when a
    180 arrives after the 200, which measured the race rather than the proxy."""
    start = uas.index("<send>", 0, uas.index("SIP/2.0 180 Ringing"))
    end = uas.index("</send>", start) + len("</send>")
    return uas[:start] + uas[end:]


def install() -> None:
    if shutil.which("sipp") is None:
        apt_install("sip-tester")
    if shutil.which("sipp") is None:
        raise PeerUnavailable("sipp not found after installing sip-tester")


class Uas:
    """A SIPp UAS answering every INVITE (180, 200 with SDP), the far end of every SIP row."""

    name = "sipp-uas"

    def __init__(self) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.service: Service | None = None

    def install(self) -> None:
        install()

    def start(self) -> None:
        run = rundir(self.name)
        _, uas = write_scenarios(run)
        self.service = Service.start(
            self.name,
            [
                "sipp",
                "-sf",
                uas,
                "-i",
                HOST,
                "-p",
                str(self.port),
                "-mi",
                HOST,
                "-mp",
                str(free_port(socket.SOCK_DGRAM)),
                "-cp",
                str(free_port(socket.SOCK_DGRAM)),
                "-nostdin",
                *BUFFERS,
            ],
            run,
            cwd=run,
        )

    def health(self) -> bool:
        return self.service is not None and self.service.process.poll() is None

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@dataclass(frozen=True)
class Step:
    """One UAC run at one offered rate."""

    rate: int
    seconds: float
    created: int
    ok: int
    failed: int
    retransmissions: int
    finished: Finished

    @property
    def failure_ratio(self) -> float:
        return self.failed / max(self.created, 1)

    def sustained(self) -> bool:
        """Every call offered and done in about the step's time, under 0.1% failed.

        The time bound matters: a UAC whose calls back up behind a slow system
        places them all the same, only later, so a step that ran well over its
        length was carried at a lower rate than offered. The 1 s allowed covers
        SIPp's start and one retransmission (T1, 0.5 s) of a last message; on
        steps of a few seconds that still leaves the verdict coarse."""
        offered = int(self.rate * self.seconds)
        return (
            self.created >= offered
            and self.ok > 0
            and self.failure_ratio < 0.001
            and self.finished.wall <= self.seconds * 1.1 + 1.0
        )


def uac_argv(
    uac: Path, target: str, rate: float, calls: int, limit: int, hold_ms: int, service: str = ""
) -> list[str]:
    """SIPp's UAC offering ``calls`` calls at ``rate``/s to ``target``, at most ``limit`` at
    once, each held ``hold_ms``; ``service`` is the number dialled (SIPp's default is
    "service", which a B2BUA routing on numbers answers with 484)."""
    return [
        "sipp", "-sf", str(uac), target, "-i", HOST,
        "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", HOST, "-mp", str(free_port(socket.SOCK_DGRAM)),
        "-cp", str(free_port(socket.SOCK_DGRAM)),
        "-r", f"{rate:g}", "-m", str(calls), "-l", str(limit), "-d", str(hold_ms),
        "-nostdin", *(["-s", service] if service else []), *BUFFERS,
    ]  # fmt: skip


def uac_step(target: str, rate: int, seconds: float, tag: str, service: str = "") -> Step:
    """Run the UAC at ``rate`` calls/s for ``seconds`` against ``target`` (host:port)."""
    run = rundir("sipp-uac")
    uac, _ = write_scenarios(run)
    stats = run / f"{tag}_{rate}.csv"
    stats.unlink(missing_ok=True)
    calls = max(1, int(rate * seconds))
    finished = run_measured(
        [
            *uac_argv(uac, target, rate, calls, max(100, rate * 5), 0, service),
            "-trace_stat", "-stf", str(stats), "-fd", "1", "-recv_timeout", "5000",
            "-timeout", f"{int(seconds * 3 + 20)}s", "-timeout_error",
        ],
        timeout=seconds * 3 + 40,
        cwd=run,
    )  # fmt: skip
    if not stats.exists():
        raise RuntimeError(
            f"sipp wrote no statistics (exit {finished.returncode}): {finished.stderr[-800:]}"
        )
    with stats.open() as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    last = dict(zip(rows[0], rows[-1], strict=False))
    return Step(
        rate,
        seconds,
        int(last["TotalCallCreated"]),
        int(last["SuccessfulCall(C)"]),
        int(last["FailedCall(C)"]),
        int(last["Retransmissions(C)"]),
        finished,
    )
