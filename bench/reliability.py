"""``python -m bench reliability``: the fault and abuse suite of issue 12, as one table.

It runs tests/reliability (carrier faults under load, a carrier outage with its backlog,
PostgreSQL cut mid-load, hostile SMPP and HTTP clients, the security review, the socket
fuzzer and its vectors) and the kill -9 run under SMPP and HTTP load on the embedded
PostgreSQL, against real warpd, simulator and PostgreSQL processes on loopback, collects
what each test injected and how it ended, and prints and writes the table to
bench/reliability.md.

    python -m bench reliability              the bounded run (the test command runs the same tests)
    python -m bench reliability --soak 5     every fault window and fuzz budget 5x longer
    python -m bench reliability --soak 100   ... and the backlog a million messages
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = HERE / "reliability.md"

Record = Mapping[str, Any]

#: What the table is made of: the reliability suite and the kill -9 run that records its row.
SUITE = ("tests/reliability", "tests/integration/sms/test_crash_http.py")


def _cells(values: Sequence[object]) -> str:
    return "| " + " | ".join(str(v).replace("|", "/") for v in values) + " |"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_cells(head), _cells(["---"] * len(head)), *(_cells(r) for r in rows)]


def totals(data: Mapping[str, Sequence[Record]]) -> dict[str, int]:
    """What must be zero: lost and double-charged messages, fuzz crashes, failed hostile cases."""
    faults, fuzz, hostile = data["faults"], data["fuzz"], data["hostile"]
    return {
        "lost": sum(int(f["lost"]) for f in faults),
        "charged_twice": sum(int(f["charged_twice"]) for f in faults),
        "crashes": sum(int(f["crashes"]) for f in fuzz),
        "hostile_not_ended": sum(1 for h in hostile if not h["ok"]),
    }


def render(data: Mapping[str, Sequence[Record]], heading: str = "") -> str:
    """The report in markdown: faults, fuzz targets, hostile cases, then the totals."""
    keys = ("injected", "offered", "acknowledged", "delivered", "duplicated", "lost",
            "charged_twice")  # fmt: skip
    lines = [f"# Reliability and security (issue 12){heading}", "", "## Faults under load", ""]
    lines += _table(
        ["fault", *keys, "note"],
        [[f["kind"], *(f[k] for k in keys), f["note"]] for f in data["faults"]],
    )
    lines += ["", "## Socket fuzzing", ""]
    lines += _table(
        ["target", "inputs", "crashes", "note"],
        [[f["target"], f["inputs"], f["crashes"], f["note"]] for f in data["fuzz"]],
    )
    lines += ["", "## Hostile clients", ""]
    lines += _table(
        ["case", "how it ended", "as it should"],
        [[h["case"], h["outcome"], "yes" if h["ok"] else "**no**"] for h in data["hostile"]],
    )
    total = totals(data)
    lines += [
        "",
        f"Totals: {total['lost']} lost, {total['charged_twice']} charged twice, "
        f"{total['crashes']} fuzz crashes, {total['hostile_not_ended']} hostile cases not ended "
        "as they should (each such case is an xfail test naming the gap).",
        "",
    ]
    return "\n".join(lines)


def run_suite(scale: float, out: Path, pytest_args: Sequence[str]) -> int:
    env = {**os.environ, "WARPD_RELIABILITY_OUT": str(out), "WARPD_RELIABILITY_SCALE": str(scale)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rxX",
               *SUITE, *pytest_args]  # fmt: skip
    if scale > 1:  # the suite's per-test timeout is sized for the bounded run
        command += ["--timeout", str(int(120 * scale))]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench reliability", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--soak", type=float, default=1.0, help="scale fault windows and fuzzing")
    parser.add_argument("--out", type=Path, default=REPORT, help="where the markdown goes")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "reliability.json"
        code = run_suite(args.soak, results, args.pytest_args)
        if not results.exists():
            print("bench reliability: the suite wrote no results", file=sys.stderr)
            return code or 1
        data = json.loads(results.read_text())
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render(data, f"\n\n`python -m bench reliability --soak {args.soak:g}`, {when}")
    print(text)
    args.out.write_text(text)
    print(f"bench reliability: wrote {args.out}", file=sys.stderr)
    if any(totals(data).get(k) for k in ("lost", "charged_twice", "crashes")):
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
