"""The one place that says which SMPP simulator and load generator the scenarios run.

Until ``warpd sim-smsc`` / ``warpd sim-esme`` (warpd/sim/, issue 8) land, the
stopgap in bench/sim/ plays both parts. Switching is these two functions: the
scenarios only see the argv and the JSON the load generator prints (see
bench/sim/esme.py for its keys).
"""

from __future__ import annotations

import sys
from pathlib import Path


def smsc_argv(port: int, delay: float, receipt_delay: float | None, stats: Path) -> list[str]:
    """A carrier simulator on 127.0.0.1:``port``: resp after ``delay`` s, a receipt per message
    ``receipt_delay`` s after its resp (None: no receipts), its submit count kept in ``stats``."""
    argv = [
        sys.executable,
        "-m",
        "bench.sim",
        "smsc",
        "--port",
        str(port),
        "--delay",
        str(delay),
        "--stats-file",
        str(stats),
    ]
    if receipt_delay is None:
        return [*argv, "--no-receipts"]
    return [*argv, "--receipt-delay", str(receipt_delay)]


def esme_argv(
    port: int,
    *,
    system_id: str,
    password: str,
    binds: int,
    window: int,
    seconds: float,
    rate: float | None = None,
    count: int | None = None,
    receipt_wait: float = 10.0,
    idle: bool = False,
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "bench.sim",
        "esme",
        "--port",
        str(port),
        "--system-id",
        system_id,
        "--password",
        password,
        "--binds",
        str(binds),
        "--window",
        str(window),
        "--seconds",
        str(seconds),
        "--receipt-wait",
        str(receipt_wait),
    ]
    if rate is not None:
        argv += ["--rate", str(rate)]
    if count is not None:
        argv += ["--count", str(count)]
    if idle:
        argv.append("--idle")
    return argv
