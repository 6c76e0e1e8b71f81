"""SMPP 3.4 section 7.1.1 times (protocols/smpp/time_format.py): format, parse, round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.time_format import (
    format_absolute_time,
    parse_absolute_time,
    parse_smpp_time,
)

NOW = datetime(2026, 1, 31, 23, 30, 0, tzinfo=UTC)


def tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        # Hand-written from the section 7.1.1 field table.
        (datetime(2026, 12, 1, 21, 5, 30, 700_000, tzinfo=tz(120)), "261201210530708+"),
        (datetime(2026, 12, 1, 21, 5, 30, tzinfo=UTC), "261201210530000+"),
        (datetime(2000, 1, 1, 0, 0, 0, 999_999, tzinfo=tz(-210)), "000101000000914-"),
        (datetime(2099, 12, 31, 23, 59, 59, tzinfo=tz(12 * 60)), "991231235959048+"),
        (datetime(2030, 6, 15, 8, 0, 0, tzinfo=tz(345)), "300615080000023+"),  # Nepal +05:45
    ],
)
def test_format_and_parse_vectors(dt: datetime, text: str) -> None:
    assert format_absolute_time(dt) == text
    parsed = parse_absolute_time(text)
    assert parsed == dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)
    assert parsed.utcoffset() == dt.utcoffset()
    assert parse_smpp_time(text, NOW) == parsed


def test_offsets_smpp_cannot_write_become_utc() -> None:
    kiribati = datetime(2026, 12, 2, 11, 0, tzinfo=tz(14 * 60))
    assert format_absolute_time(kiribati) == "261201210000000+"
    odd = datetime(2026, 12, 1, 21, 0, tzinfo=tz(10))
    assert format_absolute_time(odd) == "261201205000000+"
    assert parse_absolute_time(format_absolute_time(odd)) == odd


def test_format_refuses_naive_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_absolute_time(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="year"):
        format_absolute_time(datetime(1999, 12, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="year"):
        format_absolute_time(datetime(2100, 1, 1, tzinfo=UTC))


def test_formatted_time_goes_through_the_codec() -> None:
    text = format_absolute_time(NOW)
    pdu = SubmitSm(sequence_number=1, validity_period=text, schedule_delivery_time=text)
    assert decode(encode(pdu)) == pdu


aware = st.datetimes(
    min_value=datetime(2000, 1, 1, 12), max_value=datetime(2099, 12, 31, 12)
).flatmap(
    lambda dt: st.integers(-48, 48).map(
        lambda q: dt.replace(tzinfo=timezone(q * timedelta(minutes=15)))
    )
)


@given(aware)
def test_round_trip(dt: datetime) -> None:
    parsed = parse_absolute_time(format_absolute_time(dt))
    assert parsed == dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)
    assert parsed.utcoffset() == dt.utcoffset()


@given(
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(-24 * 60 + 1, 24 * 60 - 1),
)
def test_any_offset_round_trips_as_the_same_instant(dt: datetime, minutes: int) -> None:
    aware_dt = dt.replace(tzinfo=tz(minutes))
    parsed = parse_absolute_time(format_absolute_time(aware_dt))
    assert abs(parsed - aware_dt) < timedelta(seconds=0.1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("000000000000000R", NOW),
        ("000001000000000R", NOW + timedelta(days=1)),
        ("000000013000000R", NOW + timedelta(hours=1, minutes=30)),
        ("000000480000000R", NOW + timedelta(hours=48)),  # a relative hh may exceed 23
        ("000000000099000R", NOW + timedelta(seconds=99)),
        ("000100000000000R", datetime(2026, 2, 28, 23, 30, tzinfo=UTC)),  # Jan 31 + 1 month
        ("001100000000000R", datetime(2026, 12, 31, 23, 30, tzinfo=UTC)),
        ("011300000000000R", datetime(2028, 2, 29, 23, 30, tzinfo=UTC)),  # leap year
        ("000000000000123R", NOW),  # t and nn are unused in a relative time
    ],
)
def test_relative_times(text: str, expected: datetime) -> None:
    assert parse_smpp_time(text, NOW) == expected


def test_relative_time_keeps_a_naive_now_naive() -> None:
    naive = datetime(2026, 1, 1, 12)
    assert parse_smpp_time("000000010000000R", naive) == datetime(2026, 1, 1, 13)


def test_empty_means_none() -> None:
    assert parse_smpp_time("", NOW) is None


@pytest.mark.parametrize(
    "text",
    [
        "2612012105300",  # too short
        "26120121053070+X",
        "261301210530000+",  # month 13
        "260230210530000+",  # February 30
        "261201250530000+",  # hour 25
        "261201210530049+",  # 49 quarter hours
        "26120121053000 +",
    ],
)
def test_malformed_times_raise_with_the_callers_status(text: str) -> None:
    with pytest.raises(SmppError) as info:
        parse_smpp_time(text, NOW)
    assert info.value.command_status == CommandStatus.ESME_RINVEXPIRY
    with pytest.raises(SmppError) as info:
        parse_smpp_time(text, NOW, command_status=CommandStatus.ESME_RINVSCHED)
    assert info.value.command_status == CommandStatus.ESME_RINVSCHED


def test_parse_absolute_refuses_a_relative_time() -> None:
    with pytest.raises(SmppError):
        parse_absolute_time("000001000000000R")


def test_relative_time_beyond_the_calendar_raises() -> None:
    late = datetime(9999, 12, 1, tzinfo=UTC)
    with pytest.raises(SmppError) as info:
        parse_smpp_time("010000000000000R", late, command_status=CommandStatus.ESME_RINVSCHED)
    assert info.value.command_status == CommandStatus.ESME_RINVSCHED
    with pytest.raises(SmppError):
        parse_smpp_time("000099000000000R", datetime(9999, 12, 30, tzinfo=UTC))
