"""LogThrottle: a burst of lines per event and window; the rest counted and reported once."""

from __future__ import annotations

import pytest

from hotline.errors import UsageError
from hotline.lograte import LogThrottle


def test_the_first_burst_is_written_and_the_rest_of_the_window_held_back() -> None:
    """Within one window the first `burst` lines pass (nothing held before them); later ones
    are held back."""
    throttle = LogThrottle(burst=3, window_ms=1_000)
    assert [throttle.admit("session_refused", t) for t in range(6)] == [0, 0, 0, None, None, None]


def test_the_next_line_after_the_window_carries_the_count_held_back() -> None:
    """The first line written in a new window says how many were held back before it."""
    throttle = LogThrottle(burst=2, window_ms=1_000)
    for t in range(7):
        throttle.admit("session_refused", t)
    assert throttle.admit("session_refused", 1_000) == 5
    assert throttle.admit("session_refused", 1_001) == 0
    assert throttle.due(5_000) == []  # already carried by a line: not reported twice


def test_a_flood_that_stops_is_reported_once_when_its_window_ends() -> None:
    """due() hands over a window's held-back count once the window is over, and only once."""
    throttle = LogThrottle(burst=1, window_ms=1_000)
    for t in range(10):
        throttle.admit("tls_handshake_failed", t)
    assert throttle.due(999) == []
    assert throttle.due(1_000) == [("tls_handshake_failed", 9)]
    assert throttle.due(2_000) == []
    assert throttle.admit("tls_handshake_failed", 2_000) == 0


def test_events_are_counted_apart() -> None:
    """One event's flood does not hold back another event's lines."""
    throttle = LogThrottle(burst=1, window_ms=1_000)
    assert throttle.admit("session_refused", 0) == 0
    assert throttle.admit("session_refused", 1) is None
    assert throttle.admit("tick_failed", 2) == 0
    assert throttle.due(1_500) == [("session_refused", 1)]


def test_a_clock_that_steps_back_starts_a_new_window() -> None:
    """A time before the window's start opens a new window and loses no count."""
    throttle = LogThrottle(burst=1, window_ms=1_000)
    throttle.admit("tick_failed", 10_000)
    throttle.admit("tick_failed", 10_001)
    assert throttle.admit("tick_failed", 5_000) == 1


@pytest.mark.parametrize(("burst", "window_ms"), [(0, 1_000), (1, 0)])
def test_a_throttle_that_would_write_nothing_is_refused(burst: int, window_ms: int) -> None:
    """A burst or window below 1 is a UsageError, not a throttle that drops every line."""
    with pytest.raises(UsageError, match="at least 1"):
        LogThrottle(burst=burst, window_ms=window_ms)


def test_fields_are_what_the_written_line_carries() -> None:
    """fields(): None for a line held back, {} for one with nothing held before it, and
    suppressed with the count for the first line after lines were held back."""
    throttle = LogThrottle(burst=1, window_ms=1_000)
    assert throttle.fields("session_refused", 0) == {}
    assert throttle.fields("session_refused", 1) is None
    assert throttle.fields("session_refused", 1_000) == {"suppressed": 1}


def test_one_peer_writes_at_most_its_share_and_cannot_hide_the_others() -> None:
    """One address looping: its first `per_peer` lines pass and the rest are held back
    (counted), while another address's lines still get through, up to the burst."""
    throttle = LogThrottle(burst=4, window_ms=1_000, per_peer=2)
    flood = [throttle.admit("authentication_refused", t, "10.0.0.9") for t in range(10)]
    assert flood == [0, 0] + [None] * 8
    assert throttle.admit("authentication_refused", 10, "10.0.0.7") == 8  # carries the count
    assert throttle.admit("authentication_refused", 11, "10.0.0.7") == 0
    assert throttle.admit("authentication_refused", 12, "10.0.0.8") is None  # burst spent
    assert throttle.admit("authentication_refused", 1_000, "10.0.0.9") == 1  # a new window


def test_lines_naming_no_peer_count_only_against_the_burst() -> None:
    """An event with no peer (a lasting fault) is limited by the burst alone."""
    throttle = LogThrottle(burst=3, window_ms=1_000, per_peer=1)
    assert [throttle.admit("tick_failed", t) for t in range(5)] == [0, 0, 0, None, None]


def test_a_share_per_peer_below_one_is_refused() -> None:
    """A peer's share of no line at all is a configuration mistake, refused."""
    with pytest.raises(UsageError, match="per_peer"):
        LogThrottle(per_peer=0)
