"""What a scenario measures: rows per run, and their medians, ranges and ratios over runs.

Every run measures all of a scenario's rows (warpd, the peers, the limit) one
after another, so a row's ratio to the peer and to the limit is taken inside
one run, where the machine's load was the same for both; the report shows the
median of those per-run ratios, and of each metric its median and min-max.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from enum import Enum


class Role(Enum):
    WARPD = "warpd"
    #: the system every row's "vs peer" ratio is taken against (one per table)
    PEER = "peer"
    #: another system measured beside it (Kamailio with media, the Sippy B2BUA)
    OTHER = "other peer"
    LIMIT = "limit"


class Status(Enum):
    OK = "ok"
    #: the row's hook is not filled in yet (the feature it measures has not landed)
    PENDING = "pending"
    #: not run, for a printed reason (smoke mode skipping a slow peer install)
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    #: digits after the point in the table
    digits: int = 0
    #: the metric ratios are taken on (throughput); others are shown only
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One system's figures in one run."""

    system: str
    role: Role
    values: dict[str, float] = field(default_factory=dict)
    status: Status = Status.OK
    note: str = ""
    #: CPU ms per message or call of each process involved, by part ("jasmind", "rabbitmq")
    cpu: dict[str, float] = field(default_factory=dict)

    @classmethod
    def pending(cls, system: str, why: str) -> Row:
        return cls(system, Role.WARPD, status=Status.PENDING, note=why)


@dataclass(frozen=True, slots=True)
class Summary:
    """One system over all runs."""

    system: str
    role: Role
    status: Status
    note: str
    #: metric key -> (median, min, max) over the runs where it was measured
    values: dict[str, tuple[float, float, float]]
    #: median over runs of this row's primary metric / the peer's / the limit's, same run
    vs_peer: float | None
    vs_limit: float | None


def _spread(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def _ratio(runs: list[list[Row]], system: str, other_role: Role, key: str) -> float | None:
    ratios = []
    for rows in runs:
        mine = next((r for r in rows if r.system == system and r.status is Status.OK), None)
        other = next((r for r in rows if r.role is other_role and r.status is Status.OK), None)
        if mine is None or other is None or other is mine:
            continue
        if key in mine.values and other.values.get(key):
            ratios.append(mine.values[key] / other.values[key])
    return statistics.median(ratios) if ratios else None


def summarise(runs: list[list[Row]], primary: str) -> list[Summary]:
    """Rows in first-seen order, each with its medians and same-run ratios."""
    order: dict[str, Row] = {}
    for rows in runs:
        for row in rows:
            order.setdefault(row.system, row)
    summaries = []
    for system, first in order.items():
        mine = [r for rows in runs for r in rows if r.system == system]
        ok = [r for r in mine if r.status is Status.OK]
        keys = {k for r in ok for k in r.values}
        values = {k: _spread([r.values[k] for r in ok if k in r.values]) for k in sorted(keys)}
        status = Status.OK if ok else mine[-1].status
        note = next((r.note for r in reversed(mine) if r.note), "")
        summaries.append(
            Summary(
                system,
                first.role,
                status,
                note,
                values,
                None if first.role is Role.PEER else _ratio(runs, system, Role.PEER, primary),
                None if first.role is Role.LIMIT else _ratio(runs, system, Role.LIMIT, primary),
            )
        )
    return summaries


@dataclass(frozen=True, slots=True)
class Table:
    """A scenario's figures for the report: one table, possibly one of several per scenario."""

    title: str
    metrics: tuple[Metric, ...]
    runs: list[list[Row]]
    notes: tuple[str, ...] = ()

    @property
    def primary(self) -> str:
        return next(m.key for m in self.metrics if m.primary)

    def summaries(self) -> list[Summary]:
        return summarise(self.runs, self.primary)


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    heading: str
    description: str
    tables: list[Table]
    #: (file name under the report's directory, alt text) of charts drawn for it
    charts: list[tuple[str, str]] = field(default_factory=list)
    #: a line chart's points per system, e.g. completed against offered calls/s
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: that chart's (title, x label, y label)
    series_axes: tuple[str, str, str] = ("", "", "")
    #: how, when and where it was measured (filled in by the report when empty)
    command: str = ""
    at: str = ""
    machine: str = ""
