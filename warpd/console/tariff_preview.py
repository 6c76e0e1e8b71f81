"""What a tariff CSV would change in a rate plan, before it is imported.

A pure comparison of the plan's rows and the file's, keyed by (prefix,
network, valid_from): rows added, prices changed (old and new), rows removed
(only when the import replaces the table) and how many stay as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from warpd.api.tariff_csv import Tariff

Key = tuple[str, str | None, dt.datetime | None]


@dataclass(frozen=True, slots=True)
class Change:
    prefix: str
    mcc_mnc: str | None
    valid_from: dt.datetime | None
    old_micros: int | None
    new_micros: int | None


@dataclass(frozen=True, slots=True)
class Preview:
    added: tuple[Change, ...]
    changed: tuple[Change, ...]
    removed: tuple[Change, ...]
    unchanged: int


def _key(tariff: Tariff) -> Key:
    return tariff.prefix, tariff.mcc_mnc, tariff.valid_from


def preview(current: Iterable[Tariff], incoming: Iterable[Tariff], *, replace: bool) -> Preview:
    old = {_key(t): t.price_micros for t in current}
    new = {_key(t): t.price_micros for t in incoming}
    added, changed, unchanged = [], [], 0
    for key, price in sorted(new.items(), key=lambda kv: _order(kv[0])):
        if key not in old:
            added.append(Change(*key, None, price))
        elif old[key] != price:
            changed.append(Change(*key, old[key], price))
        else:
            unchanged += 1
    removed = [
        Change(*k, p, None)
        for k, p in sorted(old.items(), key=lambda kv: _order(kv[0]))
        if replace and k not in new
    ]
    return Preview(tuple(added), tuple(changed), tuple(removed), unchanged)


def _order(key: Key) -> tuple[str, str, str]:
    prefix, network, since = key
    return prefix, network or "", since.isoformat() if since else ""
