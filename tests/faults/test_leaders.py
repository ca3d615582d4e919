"""Leader elections read from JetStream's advisories end `make failover`'s leaderless windows."""

from __future__ import annotations

import json

from faults.leaders import Election, LeaderWatch, parse_election


def _advisory(leader: str, stamp: str) -> bytes:
    return json.dumps({"type": "io.nats.jetstream.advisory.v1.stream_leader_elected",
                       "stream": "HOTLINE_LOG", "leader": leader, "timestamp": stamp}).encode()


def test_an_advisory_gives_the_leader_and_the_election_time_in_milliseconds() -> None:
    """Nanosecond RFC 3339 time in UTC: truncated to the millisecond since the epoch."""
    election = parse_election(_advisory("n2", "2026-12-03T14:21:55.123456789Z"))
    assert election == Election("n2", 1796307715123)


def test_an_advisory_with_an_offset_or_no_fraction_is_read_too() -> None:
    """The same instant written with +01:00 and without a fraction."""
    assert parse_election(_advisory("n1", "2026-12-03T15:21:55+01:00")) == \
        Election("n1", 1796307715000)


def test_something_that_is_not_an_election_advisory_is_none() -> None:
    """Not JSON, no leader, or a time that is not RFC 3339: None."""
    assert parse_election(b"{") is None
    assert parse_election(json.dumps({"timestamp": "2026-12-03T14:21:55Z"}).encode()) is None
    assert parse_election(_advisory("n1", "yesterday")) is None


def test_the_first_election_of_another_leader_in_the_span_ends_the_window() -> None:
    """The gone leader's own re-election and elections outside the span do not count."""
    watch = LeaderWatch([], "HOTLINE_LOG")
    watch.elections = [Election("n1", 900), Election("n2", 1_000), Election("n3", 5_000),
                       Election("n2", 6_000), Election("n1", 9_000)]
    assert watch.elected("n2", 1_000, 10_000) == 5_000
    assert watch.elected("", 5_500, 8_000) == 6_000
    assert watch.elected("n1", 10_000, 20_000) is None
