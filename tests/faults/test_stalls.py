"""The stall rules of `make failover`: when a stall starts and ends, windows, silence."""

from __future__ import annotations

from faults.stalls import Timeline, stalls, summarise


def test_a_stall_runs_from_the_first_waiting_message_to_an_acceptance() -> None:
    """Queued at 0 and 100, accepted at 1000 and 1200: two stalls, 1000 and 200 ms."""
    timeline = Timeline(queued={"a": 0, "b": 100}, accepted={"a": 1000, "b": 1200})
    found = stalls("BY", timeline, end_ms=5000)
    assert [(s.start_ms, s.end_ms) for s in found] == [(0, 1000), (1000, 1200)]


def test_a_message_never_accepted_stalls_until_the_end() -> None:
    """A message still waiting at the end of the run stalls until then."""
    found = stalls("BY", Timeline(queued={"a": 100}), end_ms=900)
    assert [(s.start_ms, s.end_ms) for s in found] == [(100, 900)]


def test_quorum_loss_windows_do_not_count_toward_the_longest_stall() -> None:
    """A 10 s stall of which 8 s fall in an excluded window counts 2 s."""
    timelines = {"BY": Timeline(queued={"a": 0}, accepted={"a": 10_000}, alarms=[4_000])}
    longest, silent, _ = summarise(timelines, end_ms=20_000, excluded=[(1_000, 9_000)])
    assert longest == 2.0
    assert silent == 0


def test_a_long_stall_without_an_alarm_is_silent() -> None:
    """Over 5 s with no relay_unavailable between its start and end: silent."""
    timelines = {
        "BY": Timeline(queued={"a": 0}, accepted={"a": 6_000}),
        "LT": Timeline(queued={"b": 0}, accepted={"b": 6_000}, alarms=[4_500]),
        "LV": Timeline(queued={"c": 0}, accepted={"c": 4_000}),
    }
    _, silent, _ = summarise(timelines, end_ms=10_000)
    assert silent == 1
