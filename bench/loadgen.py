"""The one place that says which SMPP simulator and load generator the scenarios run.

The carrier simulator is warpd's own (``python -m warpd.sim smsc``, the same as
``warpd sim-smsc``) with its HTTP control port for the submit count; setting
``WARPD_BENCH_SMSC=stopgap`` runs the asyncio stopgap in bench/sim/ instead
(about 3x faster per message on this machine, so a higher limit row).

The load generator is the stopgap in bench/sim/esme.py: it times receipts per
second from the first to the last, and holds idle binds for the memory
scenario, which ``warpd sim-esme`` does not (yet). The scenarios only see the
argv below and the JSON it prints.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import urllib.request


def smsc_implementation() -> str:
    chosen = os.environ.get("WARPD_BENCH_SMSC")
    if chosen in ("warpd", "stopgap"):
        return chosen
    return "warpd" if importlib.util.find_spec("warpd.sim") is not None else "stopgap"


def smsc_argv(
    port: int,
    control_port: int,
    delay: float,
    receipt_delay: float,
    credentials: tuple[str, str],
    stats: str,
) -> list[str]:
    """A carrier simulator on 127.0.0.1:``port`` binding ``credentials``: each submit_sm answered
    after ``delay`` s and, when it asks for one, receipted ``receipt_delay`` s after that."""
    if smsc_implementation() == "warpd":
        return [
            sys.executable, "-m", "warpd.sim", "smsc", "--listen", f"127.0.0.1:{port}",
            "--response-delay", str(delay), "--receipt-delay", str(receipt_delay),
            "--system-id", credentials[0], "--password", credentials[1],
            "--control", f"127.0.0.1:{control_port}",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "bench.sim", "smsc", "--port", str(port), "--delay", str(delay),
        "--receipt-delay", str(receipt_delay), "--stats-file", stats,
    ]  # fmt: skip


def smsc_submits(control_port: int, stats: str) -> tuple[int, float]:
    """(submit_sm the simulator has taken so far, when that was read: wall-clock seconds)."""
    if smsc_implementation() == "warpd":
        url = f"http://127.0.0.1:{control_port}/stats"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(json.load(response)["submits"]), time.time()
    with open(stats) as handle:
        counted = json.load(handle)
    return int(counted["submits"]), float(counted["at"])


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
    receipts: bool = True,
    receipt_wait: float = 10.0,
    idle: bool = False,
) -> list[str]:
    argv = [
        sys.executable, "-m", "bench.sim", "esme", "--port", str(port), "--system-id", system_id,
        "--password", password, "--binds", str(binds), "--window", str(window),
        "--seconds", str(seconds), "--receipt-wait", str(receipt_wait),
    ]  # fmt: skip
    if rate is not None:
        argv += ["--rate", str(rate)]
    if count is not None:
        argv += ["--count", str(count)]
    if not receipts:
        argv.append("--no-receipts")
    if idle:
        argv.append("--idle")
    return argv
