"""Longest-prefix lookups over E.164 digits, and prices that hold for a time.

The rate, cost, MCC/MNC and route tables all answer "which entry has the
longest prefix of this number?". A trie in Python costs one dict per digit and
an object per node; instead each table keeps one dict keyed by the prefix and
the distinct prefix lengths present, longest first. A lookup is then one slice
and one dict probe per distinct length (a dozen at most for E.164), whatever
the table's size: 50,000 network prefixes cost the same as 50.

These live in billing, the lower of the two packages that share them, so that
imports point one way: routing -> billing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class PrefixMap(Generic[V]):
    """``prefix -> value``; '' is a prefix of every number."""

    entries: Mapping[str, V] = field(default_factory=dict)
    lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "lengths", tuple(sorted({len(p) for p in self.entries}, reverse=True))
        )

    def __len__(self) -> int:
        return len(self.entries)

    def longest(self, number: str) -> tuple[str, V] | None:
        """The entry with the longest prefix of ``number``, or None."""
        entries = self.entries
        size = len(number)
        for n in self.lengths:
            if n <= size:
                prefix = number[:n]
                value = entries.get(prefix)
                if value is not None:
                    return prefix, value
        return None

    def matches(self, number: str) -> Iterator[tuple[str, V]]:
        """Every entry whose prefix starts ``number``, longest first."""
        entries = self.entries
        size = len(number)
        for n in self.lengths:
            if n <= size:
                prefix = number[:n]
                value = entries.get(prefix)
                if value is not None:
                    yield prefix, value


@dataclass(frozen=True, slots=True)
class Window(Generic[V]):
    """A value valid from ``valid_from`` (inclusive) to ``valid_to`` (exclusive).

    None stands for PostgreSQL's -infinity / infinity. Times are timezone-aware.
    """

    valid_from: datetime | None
    valid_to: datetime | None
    value: V

    def holds_at(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_to is None or at < self.valid_to
        )


def current(windows: tuple[Window[V], ...], at: datetime) -> V | None:
    """The value valid at ``at``; ``windows`` newest first, so a later price overrides."""
    for window in windows:
        if window.holds_at(at):
            return window.value
    return None


@dataclass(frozen=True, slots=True)
class PriceList(Generic[V]):
    """Priced destinations: network-specific entries beat prefix-only ones.

    ``by_network[mcc_mnc]`` holds the rows that name a network (their prefix, ''
    when they name none, narrows them further); ``by_prefix`` the rows that do
    not. Within either, the longest prefix with a window valid at ``at`` wins.
    """

    by_prefix: PrefixMap[tuple[Window[V], ...]] = field(default_factory=PrefixMap)
    by_network: Mapping[str, PrefixMap[tuple[Window[V], ...]]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str | None, Window[V]]]) -> PriceList[V]:
        """From ``(prefix, mcc_mnc, window)`` rows in any order."""
        by_prefix: dict[str, list[Window[V]]] = {}
        by_network: dict[str, dict[str, list[Window[V]]]] = {}
        for prefix, mcc_mnc, window in rows:
            bucket = by_prefix if mcc_mnc is None else by_network.setdefault(mcc_mnc, {})
            bucket.setdefault(prefix, []).append(window)
        return cls(
            by_prefix=_freeze(by_prefix),
            by_network={mcc: _freeze(b) for mcc, b in by_network.items()},
        )

    def find(self, msisdn: str, mcc_mnc: str | None, at: datetime) -> V | None:
        if mcc_mnc is not None:
            network = self.by_network.get(mcc_mnc)
            if network is not None:
                for _, windows in network.matches(msisdn):
                    value = current(windows, at)
                    if value is not None:
                        return value
        for _, windows in self.by_prefix.matches(msisdn):
            value = current(windows, at)
            if value is not None:
                return value
        return None


def _newest_first(window: Window[V]) -> tuple[bool, datetime]:
    # -infinity sorts last: an open-ended row is the fallback for dated ones.
    return (window.valid_from is not None, window.valid_from or datetime.min)


def _freeze(bucket: dict[str, list[Window[V]]]) -> PrefixMap[tuple[Window[V], ...]]:
    return PrefixMap(
        {p: tuple(sorted(ws, key=_newest_first, reverse=True)) for p, ws in bucket.items()}
    )
