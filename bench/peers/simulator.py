"""The carrier SMSC simulator as a peer process (the upstream of every SMS scenario)."""

from __future__ import annotations

import contextlib
import time

from bench import loadgen
from bench.harness.proc import Service, free_port, tcp_answers, wait_tcp
from bench.peers.base import rundir

#: what the simulator accepts unless told otherwise (the load generator's default login)
CREDENTIALS = ("bench", "bench")


class Simulator:
    """A carrier: resp after ``delay`` s, a receipt ``receipt_delay`` s later when asked for."""

    def __init__(
        self,
        name: str = "smsc",
        delay: float = 0.02,
        receipt_delay: float = 0.2,
        credentials: tuple[str, str] = CREDENTIALS,
    ) -> None:
        self.name, self.delay, self.receipt_delay = name, delay, receipt_delay
        self.credentials = credentials
        self.port, self.control_port = free_port(), free_port()
        self.stats = str(rundir(name) / "stats.json")
        self.service: Service | None = None

    def install(self) -> None:
        """Nothing to install: it is Python from this checkout."""

    def start(self) -> None:
        self.launch()
        self.wait()

    def launch(self) -> None:
        """Start the process without waiting for it to listen (several start side by side)."""
        argv = loadgen.smsc_argv(
            self.port, self.control_port, self.delay, self.receipt_delay, self.credentials,
            self.stats,
        )  # fmt: skip
        self.service = Service.start(self.name, argv, rundir(self.name))

    def wait(self) -> None:
        assert self.service is not None, "launch() first"
        wait_tcp(self.port, 20, self.name, self.service.process)

    def submits(self) -> tuple[int, float]:
        """(submit_sm received so far, when that was counted, wall clock)."""
        deadline = time.monotonic() + 3
        while True:
            try:
                return loadgen.smsc_submits(self.control_port, self.stats)
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def health(self) -> bool:
        return tcp_answers(self.port)

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def processes(self) -> dict[str, list[int]]:
        return {"simulator": self.pids()}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def start_all(stack: contextlib.ExitStack, *simulators: Simulator) -> None:
    """Start ``simulators`` side by side; each is stopped when ``stack`` closes."""
    for simulator in simulators:
        stack.callback(simulator.stop)
        simulator.launch()
    for simulator in simulators:
        simulator.wait()
