"""Voice pricing: per-minute rates billed in increments (60/60, 1/1, 30/6 ...), pure.

A call answered for ``billsec`` seconds is billed ``first_increment_s`` for its
first part and whole ``next_increment_s`` blocks after that; the price is the
connect fee plus the per-minute price of the billed seconds, rounded up to a
whole micro-unit (money stays an exact integer; rounding never favours the
customer by a fraction nobody can pay). An unanswered call costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VoiceRate:
    """One ``voice_rates`` (or ``voice_costs``) row: a price for a prefix."""

    prefix: str
    per_min_micros: int
    connect_fee_micros: int = 0
    first_increment_s: int = 60
    next_increment_s: int = 60

    def __post_init__(self) -> None:
        if self.first_increment_s <= 0 or self.next_increment_s <= 0:
            raise ValueError("billing increments must be positive")
        if self.per_min_micros < 0 or self.connect_fee_micros < 0:
            raise ValueError("prices must not be negative")


def billsec_of(answered_ms: int) -> int:
    """Whole seconds a call was up: a started second counts (CDR billsec)."""
    if answered_ms <= 0:
        return 0
    return -(-answered_ms // 1000)


def billed_seconds(rate: VoiceRate, billsec: int) -> int:
    """The seconds charged: the first increment, then whole next increments."""
    if billsec <= 0:
        return 0
    if billsec <= rate.first_increment_s:
        return rate.first_increment_s
    rest = billsec - rate.first_increment_s
    blocks = -(-rest // rate.next_increment_s)
    return rate.first_increment_s + blocks * rate.next_increment_s


def price_micros(rate: VoiceRate, billsec: int) -> int:
    """Connect fee plus the billed seconds at the per-minute price, rounded up."""
    if billsec <= 0:
        return 0
    seconds = billed_seconds(rate, billsec)
    return rate.connect_fee_micros + -(-rate.per_min_micros * seconds // 60)


def best_rate(rates: Iterable[VoiceRate], number: str) -> VoiceRate | None:
    """The rate with the longest prefix of ``number`` (E.164 digits, no '+')."""
    best: VoiceRate | None = None
    for rate in rates:
        if number.startswith(rate.prefix) and (best is None or len(rate.prefix) > len(best.prefix)):
            best = rate
    return best
