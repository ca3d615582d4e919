"""RFC 3339 text for protocol times (integer milliseconds since the Unix epoch, UTC).

Pure arithmetic on the proleptic Gregorian calendar, so the protocol and the
network file can name a time in a sentence or read one from ``network.toml``
without the ``datetime`` module or a clock.

Invariants: ``parse_utc_ms(format_utc_ms(ms)) == ms`` for every ``ms`` from 0
to the end of year 9999; :func:`format_utc_ms` writes ``Z`` and milliseconds only when they
are not zero; :func:`parse_utc_ms` answers ``None`` for anything that is not a
full RFC 3339 date-time with a zone, or that is not a whole millisecond.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["format_utc_ms", "ms_from_fields", "parse_utc_ms"]

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_DAY_MS: Final = 86_400_000


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the given date (negative before it)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719_468
    era = (days if days >= 0 else days - 146_096) // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def ms_from_fields(
    year: int, month: int, day: int, *, hour: int, minute: int, second: int,
    millisecond: int = 0, offset_minutes: int = 0,
) -> int | None:
    """Milliseconds since the epoch of a calendar time at a UTC offset; None if invalid."""
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        return None
    if not 0 <= millisecond <= 999:
        return None
    seconds = hour * 3600 + minute * 60 + second - offset_minutes * 60
    return _days_from_civil(year, month, day) * _DAY_MS + seconds * 1000 + millisecond


def parse_utc_ms(text: str) -> int | None:
    """An RFC 3339 date-time with a zone, as milliseconds since the epoch; None if not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    if fraction[3:].strip("0"):
        return None  # finer than a millisecond
    millisecond = int((fraction[:3] or "0").ljust(3, "0"))
    offset = 0
    if match.group(9):
        hours, minutes = int(match.group(10)), int(match.group(11))
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * (1 if match.group(9) == "+" else -1)
    return ms_from_fields(
        year, month, day, hour=hour, minute=minute, second=second, millisecond=millisecond,
        offset_minutes=offset,
    )


def format_utc_ms(ms: int) -> str:
    """``2026-03-01T10:00:00Z`` (with ``.123`` when the milliseconds are not zero)."""
    days, rest = divmod(ms, _DAY_MS)
    year, month, day = _civil_from_days(days)
    seconds, millisecond = divmod(rest, 1000)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    fraction = f".{millisecond:03d}" if millisecond else ""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}Z"
