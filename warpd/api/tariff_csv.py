"""Tariff CSV: ``prefix,mcc_mnc,price,valid_from`` with prices in the plan's currency.

Carrier costs use the same rules with ``prefix,mcc_mnc,cost,currency,quality,valid_from``
(:func:`parse_costs`): what a connector's carrier charges per part, and how well
it delivers (0..100), for least-cost routing and margins.

Prices are decimal strings in major units (``0.0035`` EUR) read with
``Decimal`` and turned into exact integer micro-units; more than six decimal
places is refused rather than rounded. Either a prefix or an MCC/MNC may be
empty, not both unless the row is the catch-all (empty prefix). ``valid_from``
is an RFC 3339 time or empty (always). Every refusal names the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

HEADER = ("prefix", "mcc_mnc", "price", "valid_from")
MICROS = Decimal(1_000_000)
MAX_MICROS = (1 << 63) - 1
MAX_ROWS = 500_000
_PREFIX = re.compile(r"^[0-9]{0,15}$")
_MCC_MNC = re.compile(r"^[0-9]{5,6}$")


@dataclass(frozen=True, slots=True)
class Tariff:
    prefix: str
    mcc_mnc: str | None
    price_micros: int
    valid_from: dt.datetime | None


class TariffError(ValueError):
    pass


def parse(text: str) -> list[Tariff]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != HEADER:
        raise TariffError(f"line 1: the header must be {','.join(HEADER)}")
    if len(rows) - 1 > MAX_ROWS:
        raise TariffError(f"at most {MAX_ROWS} rows per import")
    out: list[Tariff] = []
    seen: set[tuple[str, str | None, dt.datetime | None]] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        tariff = _row(number, row)
        identity = (tariff.prefix, tariff.mcc_mnc, tariff.valid_from)
        if identity in seen:
            raise TariffError(f"line {number}: the same prefix, network and time twice")
        seen.add(identity)
        out.append(tariff)
    return out


def _row(number: int, row: list[str]) -> Tariff:
    if len(row) != len(HEADER):
        raise TariffError(f"line {number}: {len(row)} fields, expected {len(HEADER)}")
    prefix, mcc_mnc, price, valid_from = (c.strip() for c in row)
    prefix = prefix.removeprefix("+")
    if not _PREFIX.match(prefix):
        raise TariffError(f"line {number}: prefix {prefix!r} is not up to 15 digits")
    if mcc_mnc and not _MCC_MNC.match(mcc_mnc):
        raise TariffError(f"line {number}: mcc_mnc {mcc_mnc!r} is not 5 or 6 digits")
    return Tariff(prefix, mcc_mnc or None, to_micros(price, number), _time(valid_from, number))


def to_micros(text: str, number: int = 0) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise TariffError(f"line {number}: price {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise TariffError(f"line {number}: price {text!r} must be a finite number >= 0")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise TariffError(f"line {number}: price {text!r} has more than 6 decimal places")
    if micros > MAX_MICROS:
        raise TariffError(f"line {number}: price {text!r} is too large")
    return int(micros)


def from_micros(micros: int) -> str:
    """Exact and canonical: 3500 -> ``0.0035``, 1000000 -> ``1``."""
    text = format(Decimal(micros) / MICROS, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _time(text: str, number: int) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TariffError(f"line {number}: valid_from {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise TariffError(f"line {number}: valid_from {text!r} needs a time zone")
    return value


COST_HEADER = ("prefix", "mcc_mnc", "cost", "currency", "quality", "valid_from")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Cost:
    prefix: str
    mcc_mnc: str | None
    cost_micros: int
    currency: str
    quality: int
    valid_from: dt.datetime | None


def parse_costs(text: str) -> list[Cost]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != COST_HEADER:
        raise TariffError(f"line 1: the header must be {','.join(COST_HEADER)}")
    if len(rows) - 1 > MAX_ROWS:
        raise TariffError(f"at most {MAX_ROWS} rows per import")
    out: list[Cost] = []
    seen: set[tuple[str, str | None, dt.datetime | None]] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(COST_HEADER):
            raise TariffError(f"line {number}: {len(row)} fields, expected {len(COST_HEADER)}")
        prefix, mcc_mnc, cost, currency, quality, valid_from = (c.strip() for c in row)
        base = _row(number, [prefix, mcc_mnc, cost, valid_from])
        if not _CURRENCY.match(currency):
            raise TariffError(f"line {number}: currency {currency!r} is not an ISO 4217 code")
        if not quality.isdigit() or int(quality) > 100:
            raise TariffError(f"line {number}: quality {quality!r} is not 0 to 100")
        identity = (base.prefix, base.mcc_mnc, base.valid_from)
        if identity in seen:
            raise TariffError(f"line {number}: the same prefix, network and time twice")
        seen.add(identity)
        out.append(Cost(base.prefix, base.mcc_mnc, base.price_micros, currency, int(quality),
                        base.valid_from))  # fmt: skip
    return out


def render_costs(costs: Iterable[Cost]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COST_HEADER)
    for c in costs:
        writer.writerow((c.prefix, c.mcc_mnc or "", from_micros(c.cost_micros), c.currency,
                         c.quality, c.valid_from.isoformat() if c.valid_from else ""))  # fmt: skip
    return out.getvalue()


def render(tariffs: Iterable[Tariff]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for t in tariffs:
        writer.writerow(
            (
                t.prefix,
                t.mcc_mnc or "",
                from_micros(t.price_micros),
                t.valid_from.isoformat() if t.valid_from else "",
            )
        )
    return out.getvalue()
