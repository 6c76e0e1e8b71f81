"""The one place that says which SMPP simulator and load generator the scenarios run.

The carrier simulator is warpd's own (``python -m warpd.sim smsc``, the same as
``warpd sim-smsc``) with its HTTP control port for the submit count; setting
``WARPD_BENCH_SMSC=stopgap`` runs the asyncio stopgap in bench/sim/ instead
(about 3x faster per message on this machine, so a higher limit row).

The load generator is bench/sim/esme.py unless ``WARPD_BENCH_ESME=warpd``
selects ``warpd sim-esme``: the stopgap times receipts per second from the
first receipt to the last (sim-esme's summary has only the whole run's
length, so its end-to-end rate counts the fixed submit->receipt latency too),
holds idle binds for the memory scenario (always the stopgap), and took
1,000 submits with receipts through warpd's simulator at 2,100 resp/s where
sim-esme took them at 1,370 (this machine, window 50): slower than Jasmin
accepts, and the load generator must outrun what it measures. The scenarios
see only the argv below and the JSON ``esme_result`` makes of the output.
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
            "--system-id", credentials[0], f"--password={credentials[1]}",
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


def esme_implementation() -> str:
    return "warpd" if os.environ.get("WARPD_BENCH_ESME") == "warpd" else "stopgap"


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
    interval: float = 0.0,
) -> list[str]:
    if esme_implementation() == "warpd" and not idle and count is not None and not interval:
        argv = [
            sys.executable, "-m", "warpd.sim", "esme", "--port", str(port),
            "--system-id", system_id, f"--password={password}", "--binds", str(binds),
            "--window", str(window), "--count", str(count), "--json",
            "--registered-delivery", "1" if receipts else "0",
        ]  # fmt: skip
        if receipts and receipt_wait > 0:
            argv += ["--receipts", "--receipt-timeout", str(receipt_wait)]
        return argv if rate is None else [*argv, "--rate", str(rate)]
    argv = [
        sys.executable, "-m", "bench.sim", "esme", "--port", str(port), "--system-id", system_id,
        f"--password={password}", "--binds", str(binds), "--window", str(window),
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
    if interval:  # per-interval figures: the stopgap's only (the soak's start against end)
        argv += ["--interval", str(interval)]
    return argv


def esme_result(stdout: str) -> dict[str, float]:
    """The load generator's summary with the stopgap's keys, whichever of the two ran."""
    summary = json.loads(stdout)
    if "submitted" not in summary:
        return dict(summary)
    receipts = summary["receipt_ids_matched"]
    elapsed = max(summary["elapsed_s"], 1e-9)
    ok = summary["responses_by_status"].get("ESME_ROK", 0)
    return {
        "sent": summary["submitted"],
        "ok": ok,
        "errors": sum(summary["responses_by_status"].values()) - ok + summary["timeouts"],
        "receipts": receipts,
        "elapsed": elapsed,
        "rate": summary["rate"],
        "e2e_rate": receipts / elapsed,
        "resp_p50_ms": summary["submit_to_resp_p50_ms"],
        "resp_p99_ms": summary["submit_to_resp_p99_ms"],
        "receipt_p50_ms": summary["submit_to_receipt_p50_ms"],
        "receipt_p99_ms": summary["submit_to_receipt_p99_ms"],
    }
