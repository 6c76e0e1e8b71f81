"""Run every codec and parser benchmark and rewrite their block of bench/REPORT.md.

Run: ``.venv/bin/python -m bench codec [--seconds 2] [--only smpp_codec ...]``
(or, as before, ``python -m bench.report``). The system scenarios' blocks of
the same file are left as they are (``python -m bench all`` writes those).

Each benchmark is a module printing markdown tables in which every row names
what ran (warpd or the peer) and its ratio to the peer measured in the same
run. This script runs them one after another (never in parallel: they would
measure each other), records the machine and its load, and keeps the output
verbatim under one heading per scenario. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

from bench.harness.report import TITLE, adopt, machine, splice

HERE = Path(__file__).resolve().parent

# (module, heading, what the issue asks of it)
SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("smpp_codec", "SMPP PDU codec", "issue 3: at least 10x aiosmpplib's encode+decode rate"),
    ("smpp_text", "SMS text, segmentation and receipts", "issue 3"),
    ("smpp_session", "SMPP session (SMSC side)", "issue 3"),
    (
        "sip_parse",
        "SIP parse, routing headers, serialize",
        "issue 4: INVITE at least 3x sipmessage",
    ),
    ("ng_roundtrip", "bencode and RTPEngine ng round trips", "issue 4"),
    (
        "instructions",
        "Instructions per operation (callgrind, independent of load)",
        "issues 3 and 4, the same work as the timed tables above",
    ),
)


def run(module: str, seconds: float) -> str:
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--seconds", str(seconds)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        return f"**failed** (exit {result.returncode}):\n\n```\n{result.stderr[-3000:]}\n```\n"
    return result.stdout.strip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--only", nargs="*", help="modules to run (default: all)")
    args = parser.parse_args(argv)
    wanted = [s for s in SCENARIOS if not args.only or s[0] in args.only]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "## Codec and parser benchmarks\n",
        f"Latest run: {now}, `python -m bench codec --seconds {args.seconds}`.  \n"
        f"Machine: {machine()}.\n",
        "Each table comes from one run of its module: ours and the peer are measured "
        "in the same process run, alternating, so the ratio holds even when absolute "
        "figures move with the machine's load.\n",
    ]
    for module, heading, target in wanted:
        print(f"running bench.{module} ...", file=sys.stderr, flush=True)
        parts.append(f"### {heading}\n\n`python -m bench.{module}` ({target})\n\n")
        parts.append(run(module, args.seconds))
    path = HERE / "REPORT.md"
    text = adopt(path.read_text() if path.exists() else TITLE)
    path.write_text(splice(text, "codec", "\n".join(parts)))
    print(f"wrote {HERE / 'REPORT.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
