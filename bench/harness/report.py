"""bench/REPORT.md, bench/report.json and the charts, from the scenarios' results.

REPORT.md is made of blocks between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` markers: one per system scenario and one for the
codec and parser tables (``python -m bench codec``). A run rewrites only the
blocks of what it ran, so one scenario can be re-measured without losing the
others; report.json is merged the same way, by scenario name.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

from bench.harness import charts
from bench.harness.results import Metric, Role, Row, ScenarioResult, Status, Summary, Table

TITLE = "# Benchmark report\n"
SYSTEM_INTRO = (
    "## System benchmarks\n\n"
    "`python -m bench all` installs or finds every peer, runs each scenario several times "
    "and keeps, per row, the median with the min-max over the runs. Every run measures all "
    "rows one after another on the same machine, so the ratios (`vs peer`, `vs limit`) are "
    "taken inside one run and then their median is shown: a row's first metric divided by the "
    "peer's or the limit's, written `12.3x` (for memory, lower is better). Rows marked *pending* "
    "wait for the warpd feature they measure (the hook is `warpd_row` or `warpd_*_row` in "
    "bench/scenarios/NAME.py). Run one scenario with `python -m bench NAME [--runs N] "
    "[--seconds S]`; `python -m bench smoke` runs each for a few seconds into bench/out/smoke/; "
    "`python -m bench redraw` redraws this file and the charts from report.json. The SIP "
    "steps, the soak and the OTP acceptance run their own length (30 s a step, 600 s and "
    "300 s) unless `--seconds` is given.\n"
)


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({sys.base_prefix}), {platform.system()} {platform.release()}; "
        f"load average before the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _cell(summary: Summary, key: str, digits: int) -> str:
    if key not in summary.values:
        return ""
    median, low, high = summary.values[key]
    if low == high:
        return _number(median, digits)
    return f"{_number(median, digits)} ({_number(low, digits)}–{_number(high, digits)})"


def _ratio(value: float | None) -> str:
    """``12.3x``; below 1 with two significant digits, so a peer's 0.14x is not 0.1x."""
    if value is None:
        return ""
    if abs(value) >= 1:
        return f"{value:.1f}x"
    return f"{value:.2g}x"


def table_markdown(table: Table) -> str:
    metrics = table.metrics
    head = ["system", "role", *(m.label for m in metrics), "vs peer", "vs limit", "note"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * (len(metrics) + 2) + "---|",
    ]
    for summary in table.summaries():
        if summary.status is Status.OK:
            cells = [_cell(summary, m.key, m.digits) for m in metrics]
            note = summary.note
        else:
            cells = [""] * len(metrics)
            note = f"**{summary.status.value}**: {summary.note}"
        lines.append(
            "| "
            + " | ".join(
                [
                    summary.system,
                    summary.role.value,
                    *cells,
                    _ratio(summary.vs_peer),
                    _ratio(summary.vs_limit),
                    note.replace("|", "/"),
                ]
            )
            + " |"
        )
    runs = len(table.runs)
    notes = [f"{runs} run{'s' if runs != 1 else ''}; median (min–max).", *table.notes]
    notes += _cpu_lines(table)
    return f"#### {table.title}\n\n" + "\n".join(lines) + "\n\n" + "  \n".join(notes) + "\n"


def _cpu_lines(table: Table) -> list[str]:
    """Per row, the median CPU ms of each process involved (per message or call)."""
    lines = []
    for summary in table.summaries():
        parts: dict[str, list[float]] = {}
        for rows in table.runs:
            for row in rows:
                if row.system == summary.system and row.status is Status.OK:
                    for part, value in row.cpu.items():
                        parts.setdefault(part, []).append(value)
        if parts:
            shares = ", ".join(
                f"{part} {statistics.median(values):.3f}" for part, values in parts.items()
            )
            lines.append(f"CPU ms by process, {summary.system}: {shares}.")
    return lines


def scenario_markdown(result: ScenarioResult) -> str:
    parts = [
        f"### {result.heading}\n",
        f"`{result.command}` ({result.at}; {result.machine}).\n",
        f"{result.description}\n",
    ]
    parts += [table_markdown(table) for table in result.tables]
    parts += [f"![{alt}]({name})\n" for name, alt in result.charts]
    return "\n".join(parts)


def splice(text: str, name: str, block: str, after: str | None = None) -> str:
    """``text`` with block ``name`` replaced (or added after block ``after``, else at the end)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    new = f"{begin}\n{block.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: new, text)
    if after is not None:
        anchor = f"<!-- /bench:{after} -->"
        if anchor in text:
            return text.replace(anchor, f"{anchor}\n\n{new}", 1)
    return text.rstrip() + f"\n\n{new}\n"


def adopt(text: str) -> str:
    """Put a report without blocks into them: what is there is the codec section."""
    if not text.startswith(TITLE):
        text = TITLE + "\n" + text
    if "<!-- bench:" in text:
        return text
    rest = text[len(TITLE) :].strip()
    if rest:  # the codec report of before the system benchmarks: one level down, one heading
        rest = "## Codec and parser benchmarks\n\n" + re.sub(r"(?m)^## ", "### ", rest)
    system = "<!-- bench:system -->\n<!-- /bench:system -->"
    codec = f"\n\n<!-- bench:codec -->\n{rest}\n<!-- /bench:codec -->" if rest else ""
    return f"{TITLE}\n{system}{codec}\n"


def _json_table(table: Table) -> dict[str, object]:
    return {
        "title": table.title,
        "metrics": [asdict(m) for m in table.metrics],
        "notes": list(table.notes),
        "runs": [
            [{**asdict(r), "role": r.role.value, "status": r.status.value} for r in rows]
            for rows in table.runs
        ],
        "summary": [
            {**asdict(s), "role": s.role.value, "status": s.status.value} for s in table.summaries()
        ],
    }


def write(results: list[ScenarioResult], directory: Path, command: str, order: list[str]) -> Path:
    """Update REPORT.md, report.json and the charts in ``directory`` with ``results``."""
    directory.mkdir(parents=True, exist_ok=True)
    report_json = directory / "report.json"
    stored = json.loads(report_json.read_text()) if report_json.exists() else {}
    stored.setdefault("scenarios", {})
    here = machine()
    results = [
        r if r.command else replace(r, command=command, at=now(), machine=here) for r in results
    ]
    for result in results:
        result.charts.clear()
        result.charts.extend(charts.draw(result, directory))
        if result.series:
            drawn = charts.line(
                directory, f"{result.name}-steps", *result.series_axes, result.series
            )
            result.charts.extend([drawn] if drawn else [])
        stored["scenarios"][result.name] = {
            "heading": result.heading,
            "description": result.description,
            "command": result.command,
            "at": result.at,
            "machine": result.machine,
            "tables": [_json_table(t) for t in result.tables],
            "series": result.series,
            "series_axes": result.series_axes,
            "charts": [name for name, _ in result.charts],
        }
    report_json.write_text(json.dumps(stored, indent=1, default=str) + "\n")
    report_md = directory / "REPORT.md"
    text = adopt(report_md.read_text() if report_md.exists() else TITLE)
    text = splice(text, "system", SYSTEM_INTRO + "\n" + headlines(load(directory), order))
    for result in results:
        previous = _previous(order, result.name, text)
        text = splice(text, result.name, scenario_markdown(result), after=previous)
    report_md.write_text(text)
    return report_md


def _previous(order: list[str], name: str, text: str) -> str:
    """The block a new scenario block goes after: the nearest earlier scenario present."""
    earlier = order[: order.index(name)] if name in order else order
    for candidate in reversed(earlier):
        if f"<!-- /bench:{candidate} -->" in text:
            return candidate
    return "system"


def headlines(results: list[ScenarioResult], order: list[str]) -> str:
    """One line per table: warpd's first metric beside the peer's and the limit's, with the
    same-run ratios; the tables below have the rest."""
    lines = [
        "### At a glance\n",
        "| scenario | table | metric | warpd | peer | vs peer | limit | vs limit |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    rank = {name: index for index, name in enumerate(order)}
    for result in sorted(results, key=lambda r: rank.get(r.name, len(rank))):
        for table in result.tables:
            metric = next(m for m in table.metrics if m.primary)
            summaries = table.summaries()
            warpd = next((s for s in summaries if s.role is Role.WARPD), None)
            if warpd is None:
                continue
            by_role: dict[Role, Summary] = {}
            for summary in summaries:  # the first of a role (the soak's first interval)
                if summary.status is Status.OK:
                    by_role.setdefault(summary.role, summary)
            peer, limit = by_role.get(Role.PEER), by_role.get(Role.LIMIT)

            def shown(summary: Summary | None, metric: Metric = metric) -> str:
                if summary is None:
                    return ""
                return f"{_cell(summary, metric.key, metric.digits)} ({summary.system})"

            mine = (
                _cell(warpd, metric.key, metric.digits)
                if warpd.status is Status.OK
                else f"*{warpd.status.value}*"
            )
            lines.append(
                f"| {result.heading} | {table.title} | {metric.label} | {mine} | {shown(peer)} "
                f"| {_ratio(warpd.vs_peer)} | {shown(limit)} | {_ratio(warpd.vs_limit)} |"
            )
    return "\n".join(lines) + "\n"


def load(directory: Path) -> list[ScenarioResult]:
    """The results stored in ``directory``/report.json, to draw again without measuring."""
    stored = json.loads((directory / "report.json").read_text())["scenarios"]
    results = []
    for name, scenario in stored.items():
        tables = []
        for table in scenario["tables"]:
            runs = [
                [
                    Row(
                        r["system"],
                        Role(r["role"]),
                        r["values"],
                        Status(r["status"]),
                        r["note"],
                        r.get("cpu", {}),
                    )
                    for r in rows
                ]
                for rows in table["runs"]
            ]
            metrics = tuple(Metric(**m) for m in table["metrics"])
            tables.append(Table(table["title"], metrics, runs, tuple(table["notes"])))
        series = {k: [(x, y) for x, y in v] for k, v in scenario.get("series", {}).items()}
        results.append(
            ScenarioResult(
                name, scenario["heading"], scenario.get("description", ""), tables, [], series,
                tuple(scenario.get("series_axes", ("", "", ""))), scenario["command"],
                scenario["at"], scenario["machine"],
            )
        )  # fmt: skip
    return results
