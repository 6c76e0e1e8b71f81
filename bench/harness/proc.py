"""Processes the suite starts, and what /proc says about them (CPU, memory, sockets).

CPU is utime+stime from ``/proc/<pid>/stat`` (fields 14 and 15, in clock ticks),
read before and after a measurement for every process involved; a process
started and reaped inside the measurement (SIPp, wrk, a Python load generator)
is counted through ``RUSAGE_CHILDREN`` instead, because its /proc entry is gone
by the time it is read.  Memory is PSS from ``smaps_rollup``: RSS would count
the shared memory of a forking server (Kamailio) once per child.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
#: the checkout, on the path of every service so ``python -m bench.*`` works from its run dir
ROOT = Path(__file__).resolve().parents[2]
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw.rsplit(")", 1)[1].split()


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime+stime of ``pids`` so far; a pid that has gone counts nothing."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


def children_cpu_seconds() -> float:
    """CPU of every child this process has reaped so far (utime+stime)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (Kamailio's children, a venv's shims)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, ()))
    return found


def _kib_field(pids: Iterable[int], name: str, field: str) -> int:
    """The ``field:`` line (in KiB) of ``/proc/<pid>/<name>``, in bytes, summed over ``pids``."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size of ``pids`` together (shared pages split between them)."""
    return _kib_field(pids, "smaps_rollup", "Pss")


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident set size of ``pids`` summed (for one process, what an operator's ``ps`` shows)."""
    return _kib_field(pids, "status", "VmRSS")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody holds right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def tcp_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_tcp(
    port: int, seconds: float, what: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if tcp_answers(port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {process.returncode} before listening on {port}"
            )
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {HOST}:{port} within {seconds:.0f} s")


def listening_pids(port: int) -> list[int]:
    """The processes holding a listening TCP socket on ``port`` (for servers not started here)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        pids.append(int(entry.name))
                        break
    return pids


@dataclass
class Service:
    """A long-running process the suite started, with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        rundir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Service:
        rundir.mkdir(parents=True, exist_ok=True)
        log = rundir / f"{name}.log"
        if os.fspath(argv[0]) == sys.executable:  # our own modules; the peers' venvs keep theirs
            base = os.environ if env is None else env
            path = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
            env = {**base, "PYTHONPATH": path}
        with log.open("wb") as out:  # one start's output: Sippy logs every SIP message
            process = subprocess.Popen(
                [os.fspath(a) for a in argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd or rundir,  # crash dumps and stray files land in the run directory
                start_new_session=True,
            )
        return cls(name, process, log)

    def pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process.poll() is None else []

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the process group this service leads, SIGKILL after ``grace``."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(grace)


@dataclass(frozen=True)
class Finished:
    """A load generator's run: its output and the CPU it used."""

    stdout: str
    stderr: str
    returncode: int
    cpu: float
    wall: float


def run_measured(
    argv: Sequence[str | os.PathLike[str]], timeout: float, cwd: Path | None = None
) -> Finished:
    """Run a short-lived process to its end, counting its CPU through RUSAGE_CHILDREN."""
    before, started = children_cpu_seconds(), time.monotonic()
    result = subprocess.run(
        [os.fspath(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    return Finished(
        result.stdout,
        result.stderr,
        result.returncode,
        children_cpu_seconds() - before,
        time.monotonic() - started,
    )


def run_together(
    argvs: Sequence[Sequence[str | os.PathLike[str]]], timeout: float
) -> tuple[list[Finished], float]:
    """Run short-lived processes side by side to their ends: each one's output, and the CPU
    they used together (RUSAGE_CHILDREN cannot tell them apart)."""
    before, started = children_cpu_seconds(), time.monotonic()
    processes = [
        subprocess.Popen(
            [os.fspath(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for argv in argvs
    ]
    outputs = []
    try:
        for process in processes:
            left = max(1.0, started + timeout - time.monotonic())
            outputs.append((*process.communicate(timeout=left), process.returncode))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    wall = time.monotonic() - started
    finished = [Finished(out, err, code, 0.0, wall) for out, err, code in outputs]
    return finished, children_cpu_seconds() - before
