"""The carrier SMSC simulator as a peer process (the upstream of every SMS scenario)."""

from __future__ import annotations

import json
import time

from bench import loadgen
from bench.harness.proc import Service, free_port, tcp_answers, wait_tcp
from bench.peers.base import rundir


class Simulator:
    def __init__(
        self, name: str = "smsc", delay: float = 0.02, receipt_delay: float | None = 0.2
    ) -> None:
        self.name, self.delay, self.receipt_delay = name, delay, receipt_delay
        self.port = free_port()
        self.stats = rundir(name) / "stats.json"
        self.service: Service | None = None

    def install(self) -> None:
        """Nothing to install: it is Python from this checkout."""

    def start(self) -> None:
        self.stats.unlink(missing_ok=True)
        argv = loadgen.smsc_argv(self.port, self.delay, self.receipt_delay, self.stats)
        self.service = Service.start(self.name, argv, rundir(self.name))
        wait_tcp(self.port, 15, self.name, self.service.process)

    def submits(self) -> tuple[int, float]:
        """(submit_sm received so far, when that was counted, wall clock)."""
        deadline = time.monotonic() + 2
        while True:
            try:
                stats = json.loads(self.stats.read_text())
                return int(stats["submits"]), float(stats["at"])
            except (FileNotFoundError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def health(self) -> bool:
        return tcp_answers(self.port)

    def pids(self) -> list[int]:
        return self.service.pids() if self.service else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
