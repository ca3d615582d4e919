"""RFC 3339 text for protocol times: exact both ways, and None for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.protocol.timetext import format_utc_ms, ms_from_fields, parse_utc_ms

END_OF_9999 = 253_402_300_799_999


def test_a_known_time_is_written_and_read_back() -> None:
    """1764000000000 ms is 2025-11-24T16:00:00Z; milliseconds appear only when not zero."""
    assert format_utc_ms(1_764_000_000_000) == "2025-11-24T16:00:00Z"
    assert format_utc_ms(1_764_000_000_123) == "2025-11-24T16:00:00.123Z"
    assert format_utc_ms(0) == "1970-01-01T00:00:00Z"
    assert parse_utc_ms("2025-11-24T16:00:00Z") == 1_764_000_000_000
    assert parse_utc_ms("2025-11-24t16:00:00.123z") == 1_764_000_000_123


@given(st.integers(min_value=0, max_value=END_OF_9999))
def test_every_millisecond_to_the_end_of_9999_round_trips(ms: int) -> None:
    """Formatting then parsing gives the same millisecond back."""
    assert parse_utc_ms(format_utc_ms(ms)) == ms


def test_offsets_are_applied_and_fractions_padded() -> None:
    """+02:00 is two hours earlier in UTC; .5 means 500 ms; trailing zeros past ms are fine."""
    assert parse_utc_ms("2025-11-24T18:00:00+02:00") == 1_764_000_000_000
    assert parse_utc_ms("2025-11-24T15:30:00-00:30") == 1_764_000_000_000
    assert parse_utc_ms("2025-11-24 16:00:00.5Z") == 1_764_000_000_500
    assert parse_utc_ms("2025-11-24T16:00:00.123000Z") == 1_764_000_000_123


@pytest.mark.parametrize("text", [
    "2025-11-24T16:00:00",  # no zone
    "2025-11-24",  # no time
    "2025-02-29T00:00:00Z",  # not a leap year
    "2025-13-01T00:00:00Z",  # no month 13
    "2025-04-31T00:00:00Z",  # April has 30 days
    "2025-11-24T24:00:00Z",  # no hour 24
    "2025-11-24T16:60:00Z",
    "2025-11-24T16:00:60Z",
    "2025-11-24T16:00:00.1234Z",  # finer than a millisecond
    "2025-11-24T16:00:00+24:00",
    "2025-11-24T16:00:00+01:60",
    "yesterday",
])
def test_anything_else_is_none(text: str) -> None:
    """A date-time missing a part, out of range, or finer than a millisecond is refused."""
    assert parse_utc_ms(text) is None


def test_leap_days_and_fields() -> None:
    """29 February exists in 2024 and 2000, not in 1900; bad fields give None."""
    assert parse_utc_ms("2024-02-29T00:00:00Z") is not None
    assert parse_utc_ms("2000-02-29T00:00:00Z") is not None
    assert parse_utc_ms("1900-02-29T00:00:00Z") is None
    assert ms_from_fields(2025, 11, 24, hour=16, minute=0, second=0, millisecond=1000) is None
    assert ms_from_fields(1969, 12, 31, hour=23, minute=59, second=59) == -1000
