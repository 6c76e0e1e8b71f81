"""SMPP 3.4 section 7.1.1 times: ``YYMMDDhhmmsstnnp`` in schedule_delivery_time and validity_period.

* Absolute (section 7.1.1.1), p '+' or '-': local time to the tenth of a
  second, and nn, the difference between that local time and UTC in quarter
  hours (00-48), ahead ('+') or behind ('-') UTC.
* Relative (section 7.1.1.2), p 'R': years, months, days, hours, minutes and
  seconds from the SMSC's current time; t and nn are not used ("000").

The codec checks only the shape (codec_sm.TIME_FORMAT); these turn the text
into datetimes and back. ``now`` comes from the caller: nothing here reads a
clock.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

from protocols.smpp.codec_sm import TIME_FORMAT
from protocols.smpp.constants import CommandStatus
from protocols.smpp.errors import SmppError

QUARTER_HOUR = timedelta(minutes=15)
#: Section 7.1.1: nn runs 00-48, so offsets up to 12 hours either way.
MAX_QUARTER_HOURS = 48


def format_absolute_time(dt: datetime) -> str:
    """``dt`` (aware) as an absolute SMPP time, to the tenth of a second.

    Written in ``dt``'s own offset when that is whole quarter hours within
    12 hours of UTC, else as the same instant in UTC (+14:00, say, has no
    SMPP form). Only years 2000-2099 fit YY.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("an SMPP absolute time needs an aware datetime")
    quarters, rest = divmod(offset, QUARTER_HOUR)
    if rest or abs(quarters) > MAX_QUARTER_HOURS:
        dt, quarters = dt.astimezone(UTC), 0
    if not 2000 <= dt.year <= 2099:
        raise ValueError(f"year {dt.year} does not fit an SMPP time (2000-2099)")
    sign = "-" if quarters < 0 else "+"
    return f"{dt:%y%m%d%H%M%S}{dt.microsecond // 100_000}{abs(quarters):02d}{sign}"


def parse_absolute_time(
    value: str, *, command_status: int = CommandStatus.ESME_RINVEXPIRY
) -> datetime:
    """An absolute SMPP time as an aware datetime; SmppError(``command_status``) if malformed."""
    if not TIME_FORMAT.fullmatch(value) or value[15] == "R":
        raise SmppError(command_status, f"{value!r} is not an absolute SMPP time")
    quarters = int(value[13:15])
    if quarters > MAX_QUARTER_HOURS:
        raise SmppError(command_status, f"{value!r}: UTC offset of {quarters} quarter hours")
    if value[15] == "-":
        quarters = -quarters
    try:
        return datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12]) * 100_000,
            tzinfo=timezone(quarters * QUARTER_HOUR),
        )
    except ValueError as exc:
        raise SmppError(command_status, f"{value!r}: {exc}") from None


def parse_smpp_time(
    value: str, now: datetime, *, command_status: int = CommandStatus.ESME_RINVEXPIRY
) -> datetime | None:
    """schedule_delivery_time or validity_period as a datetime; None when empty.

    Empty means "immediate delivery" / "the SMSC's default validity".

    A relative time counts from ``now`` (give it aware, in UTC) and keeps its
    tzinfo; years and months move the calendar, a day missing from the month
    becomes its last (January 31 + 1 month is February 28 or 29). Malformed
    text raises SmppError with ``command_status``: ESME_RINVEXPIRY for
    validity_period (the default), ESME_RINVSCHED for schedule_delivery_time.
    """
    if not value:
        return None
    if not TIME_FORMAT.fullmatch(value):
        raise SmppError(command_status, f"{value!r} is not an SMPP time")
    if value[15] != "R":
        return parse_absolute_time(value, command_status=command_status)
    years, months, days, hours, minutes, seconds = (int(value[i : i + 2]) for i in range(0, 12, 2))
    try:
        month_index = now.month - 1 + months + 12 * years
        year, month = now.year + month_index // 12, month_index % 12 + 1
        day = min(now.day, calendar.monthrange(year, month)[1])
        moved = now.replace(year=year, month=month, day=day)
        return moved + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except (ValueError, OverflowError) as exc:
        raise SmppError(command_status, f"{value!r} from {now.isoformat()}: {exc}") from None
