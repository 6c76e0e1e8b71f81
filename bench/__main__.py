"""``python -m bench``: the benchmark suite's one entry point.

    python -m bench all                 every system scenario, then REPORT.md
    python -m bench sms [sip ...]       the named scenarios only
    python -m bench smoke               every scenario for a few seconds (output in bench/out/smoke)
    python -m bench codec               the codec and parser benchmarks (as bench.report did)
    python -m bench reliability         faults, hostile clients and fuzzing (bench/reliability.md)
    python -m bench list                the scenarios and what each measures
    python -m bench redraw              REPORT.md and the charts again from report.json

System scenarios install or find their peers (Debian packages with apt-get,
Jasmin and Sippy in venvs under ~/.cache/warpd-bench), run everything on
127.0.0.1, stop what they started, and rewrite their blocks of bench/REPORT.md
and bench/report.json, with charts in bench/charts/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import reliability
from bench import report as codec_report
from bench.harness import charts, report
from bench.harness.results import ScenarioResult, Status
from bench.scenarios import SCENARIOS
from bench.scenarios.common import Settings, say

HERE = Path(__file__).resolve().parent
SMOKE_DIR = HERE / "out" / "smoke"


def run_scenarios(names: list[str], settings: Settings) -> list[ScenarioResult]:
    results = []
    for name in names:
        started = time.monotonic()
        say(f"scenario {name}")
        result = SCENARIOS[name].run(settings)
        say(f"scenario {name} done in {time.monotonic() - started:.0f} s")
        results.append(result)
    return results


def failures(results: list[ScenarioResult]) -> list[str]:
    """Rows that failed (pending and skipped rows are reported, not failures)."""
    return [
        f"{result.name}/{row.system}: {row.note}"
        for result in results
        for table in result.tables
        for rows in table.runs
        for row in rows
        if row.status is Status.FAILED
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="+", help="all | smoke | codec | list | redraw | scenario names"
    )
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3, smoke 1)")
    parser.add_argument("--seconds", type=float, help="one measurement's length (default 10)")
    parser.add_argument(
        "--limits-only", action="store_true", help="only the rows that need no peer"
    )
    parser.add_argument(
        "--warpd-only", action="store_true", help="only warpd's rows (no peers, no limits)"
    )
    parser.add_argument("--out", type=Path, help="where REPORT.md/report.json go (default bench/)")
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["codec"]:  # its own options (--seconds, --only), its own --help
        codec_report.main(given[1:])
        return 0
    if given[:1] == ["reliability"]:  # the fault and abuse suite (issue 12), its own options
        return reliability.main(given[1:])
    args = parser.parse_args(given)
    what = args.what
    if what == ["list"]:
        for name, scenario in SCENARIOS.items():
            print(f"{name:12} {scenario.heading}")
        return 0
    if what == ["redraw"]:
        directory = args.out or HERE
        say(f"wrote {report.write(report.load(directory), directory, '', list(SCENARIOS))}")
        return 0
    smoke = what == ["smoke"]
    names = list(SCENARIOS) if smoke or what == ["all"] else what
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    settings = Settings(
        runs=args.runs or (1 if smoke else 3),
        seconds=args.seconds or (2.0 if smoke else 10.0),
        smoke=smoke,
        limits_only=args.limits_only,
        warpd_only=args.warpd_only,
        seconds_given=args.seconds,
    )
    if not smoke:
        charts.ensure()  # a fresh machine's first full run gets its charts too
    results = run_scenarios(names, settings)
    command = "python -m bench " + " ".join(given)
    written = report.write(
        results, args.out or (SMOKE_DIR if smoke else HERE), command, list(SCENARIOS)
    )
    say(f"wrote {written}")
    broken = failures(results)
    for line in broken:
        say(f"FAILED {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
