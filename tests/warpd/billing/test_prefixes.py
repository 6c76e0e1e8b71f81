"""The longest-prefix structures agree with a naive scan, and windows hold when they should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from warpd.billing.prefixes import PrefixMap, PriceList, Window, current

digits = st.text(alphabet="0123456789", max_size=8)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def naive_matches(entries: dict[str, int], number: str) -> list[tuple[str, int]]:
    found = [(p, v) for p, v in entries.items() if number.startswith(p)]
    return sorted(found, key=lambda item: len(item[0]), reverse=True)


@given(st.dictionaries(digits, st.integers()), st.text(alphabet="0123456789", max_size=15))
def test_longest_and_matches_agree_with_a_scan(entries: dict[str, int], number: str) -> None:
    table = PrefixMap(entries)
    expected = naive_matches(entries, number)
    assert list(table.matches(number)) == expected
    assert table.longest(number) == (expected[0] if expected else None)


def test_empty_prefix_matches_everything_and_short_numbers_do_not_overmatch() -> None:
    table = PrefixMap({"": "default", "44": "gb", "447": "gb-mobile"})
    assert table.longest("447400123456") == ("447", "gb-mobile")
    assert table.longest("4420") == ("44", "gb")
    assert table.longest("4") == ("", "default")
    assert list(table.matches("44")) == [("44", "gb"), ("", "default")]
    empty: PrefixMap[str] = PrefixMap()
    assert empty.longest("44") is None
    assert len(table) == 3


def test_window_bounds_are_inclusive_then_exclusive() -> None:
    w = Window(T0, T0 + timedelta(days=1), "x")
    assert not w.holds_at(T0 - timedelta(microseconds=1))
    assert w.holds_at(T0)
    assert not w.holds_at(T0 + timedelta(days=1))
    assert Window(None, None, "x").holds_at(T0)
    assert Window(None, T0, "x").holds_at(T0 - timedelta(days=9999))


def test_a_later_window_overrides_an_open_ended_one() -> None:
    prices = PriceList.build(
        [
            ("44", None, Window(None, None, "old")),
            ("44", None, Window(T0, None, "new")),
        ]
    )
    assert prices.find("447400123456", None, T0 - timedelta(seconds=1)) == "old"
    assert prices.find("447400123456", None, T0) == "new"


def test_current_is_none_when_no_window_holds() -> None:
    assert current((Window(T0, T0 + timedelta(hours=1), 1),), T0 + timedelta(hours=2)) is None
