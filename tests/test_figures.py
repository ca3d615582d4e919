"""Per-link figures (SPEC §6) folded from real signed log entries, with known answers."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hotline.figures
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_envelope_entry, encode_event_entry
from hotline.errors import UsageError, VerificationFailed
from hotline.figures import (
    HOP_COLUMNS,
    LINK_COLUMNS,
    Latency,
    LinkFigures,
    median,
    nearest_rank,
    render_legend,
    render_text,
)
from hotline.protocol.bodies import (
    Body,
    CancelBody,
    LinkTestBody,
    Predicted,
    ReceiptBody,
    Recipients,
    TextBody,
    Track,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.envelope import Envelope, body_hash
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import (
    CancelReason,
    ObjectKind,
    Precedence,
    Source,
    Stage,
    Status,
)
from tests.factories import TestNet, make_network

T0 = 1_764_000_000_000
NET = make_network()
TIMEOUT = NET.network.link_test_timeout_ms


@dataclass
class LogBook:
    """Builds a log of real signed entries, keeping each decoded value beside its bytes."""

    net: TestNet = NET
    entries: list[bytes] = field(default_factory=list)
    values: list[tuple[int, Envelope | LogEvent]] = field(default_factory=list)
    seq: Counter[str] = field(default_factory=Counter)

    def _header(self, sender: str, ts: int) -> dict[str, Any]:
        self.seq[sender] += 1
        serial = len(self.entries).to_bytes(10, "big")
        return {"id": make_id(ts, serial), "sender": sender, "ts": ts, "seq": self.seq[sender],
                "kid": self.net.keys[sender].public.kid}

    def _log(self, relay_ts: int, body: Body) -> None:
        frame = self.net.seal(body)
        _, body_bytes, signature = msgpack.unpackb(frame)
        self.entries.append(encode_envelope_entry(relay_ts, frame))
        self.values.append((relay_ts, Envelope(frame, body_bytes, signature, body)))

    def warning(
        self, sender: str, to: Recipients, relay_ts: int, *, ts: int | None = None,
        crossing_at: int | None = None, status: Status = Status.ACTUAL,
        ref: bytes | None = None,
    ) -> WarningBody:
        ts = relay_ts if ts is None else ts
        fields: dict[str, Any] = dict(
            **self._header(sender, ts), to=to, status=status, precedence=Precedence.FLASH,
            incident=make_id(ts, b"\x01" * 10), expires=ts + 3_600_000,
            track=Track(lat=54.0, lon=25.0, observed_at=ts, object=ObjectKind.UAV,
                        confidence=0.9, source=Source.RADAR),
            predicted=None if crossing_at is None else Predicted(
                border=f"{sender}-LT", crossing_at=crossing_at
            ),
        )
        body = WarningBody(**fields) if ref is None else UpdateBody(**fields, ref=ref)
        self._log(relay_ts, body)
        return body

    def text(self, sender: str, to: Recipients, relay_ts: int, status: Status) -> TextBody:
        body = TextBody(**self._header(sender, relay_ts), to=to, status=status,
                        precedence=Precedence.ROUTINE, text="line check", lang="en")
        self._log(relay_ts, body)
        return body

    def cancel(self, sender: str, ref: WarningBody, relay_ts: int, status: Status) -> None:
        self._log(relay_ts, CancelBody(
            **self._header(sender, relay_ts), to=ref.to, status=status,
            precedence=Precedence.FLASH, incident=ref.incident, ref=ref.id,
            reason=CancelReason.RESOLVED,
        ))

    def receipt(
        self, sender: str, message: Body, stage: Stage, relay_ts: int, *, ts: int | None = None
    ) -> None:
        self._log(relay_ts, ReceiptBody(
            **self._header(sender, relay_ts if ts is None else ts), ref=message.id,
            hash=body_hash(encode_body(message)), stage=stage,
            reason="refused" if stage is Stage.REJECTED else None,
        ))

    def link_test(self, recipient: str, relay_ts: int) -> LinkTestBody:
        body = LinkTestBody(**self._header("relay", relay_ts), to=(recipient,))
        self._log(relay_ts, body)
        return body

    def answered_test(
        self, recipient: str, relay_ts: int, rtt_ms: int, *, clock_ahead_ms: int = 0
    ) -> None:
        """A link test answered after ``rtt_ms``, written at mid-trip on a skewed clock."""
        test = self.link_test(recipient, relay_ts)
        midway = relay_ts + rtt_ms // 2 + clock_ahead_ms
        self.receipt(recipient, test, Stage.DELIVERED, relay_ts + rtt_ms, ts=midway)

    def event(self, kind: EntryKind, relay_ts: int, **fields: object) -> None:
        event = LogEvent(kind, dict(fields))
        self.entries.append(encode_event_entry(relay_ts, event))
        self.values.append((relay_ts, event))

    def figures(self) -> LinkFigures:
        figures = LinkFigures(self.net.network)
        for index, entry in enumerate(self.entries):
            figures.add_entry(index, entry)
        return figures

    def snapshot(self) -> dict[str, Any]:
        return self.figures().snapshot()


def link(snapshot: dict[str, Any], origin: str, recipient: str) -> dict[str, Any]:
    rows = [r for r in snapshot["links"] if (r["from"], r["to"]) == (origin, recipient)]
    assert len(rows) == 1, f"{origin}→{recipient} appears {len(rows)} times"
    row: dict[str, Any] = rows[0]
    return row


def hop(snapshot: dict[str, Any], endpoint: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in snapshot["hops"] if r["endpoint"] == endpoint)
    return row


def stats(*values: float) -> dict[str, Any]:
    """The latency figure of samples all within one list (given sorted)."""
    return Latency.of(values).as_dict()


def one_warning_two_recipients() -> LogBook:
    """BY warns LT and LV of a crossing in 10 min; LT answers, LV never does."""
    book = LogBook()
    warning = book.warning("BY", ("LT", "LV"), T0, crossing_at=T0 + 600_000)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 40, ts=T0 + 30)
    book.event(EntryKind.REDELIVERED, T0 + 3_000, ref=warning.id, recipient="LV", attempt=2)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 2_040)
    book.event(EntryKind.OVERDUE, T0 + 5_000, ref=warning.id, recipient="LV",
              stage="delivered", deadline=T0 + 5_000)
    book.event(EntryKind.REDELIVERED, T0 + 6_000, ref=warning.id, recipient="LV", attempt=3)
    book.event(EntryKind.OVERDUE, T0 + 60_000, ref=warning.id, recipient="LV",
              stage="acknowledged", deadline=T0 + 60_000)
    return book


# ----------------------------------------------------------------------------- known answers


def test_answered_recipient_has_exact_counts_latencies_and_lead_times() -> None:
    """LT delivered after 40 ms and acknowledged 2 s later: counts, latencies, lead times exact."""
    row = link(one_warning_two_recipients().snapshot(), "BY", "LT")
    assert (row["messages"], row["delivered"], row["acknowledged"], row["rejected"]) == (1, 1, 1, 0)
    assert row["delivery_ms"] == {"p50": 40, "p90": 40, "p99": 40, "max": 40, "count": 1}
    assert row["ack_ms"] == stats(2_000)
    assert row["e2e_ms"] == stats(30)  # no link tests: both offsets are 0
    assert row["lead_time_s"] == stats(597.96)
    assert row["lead_time_delivered_s"] == stats(599.96)
    assert (row["overdue"], row["redelivered"]) == (0, 0)
    assert row["counts"]["warning"] == {"actual": 1, "exercise": 0, "test": 0}


def test_silent_recipient_has_no_latencies_and_its_events_counted() -> None:
    """LV never answers: nothing delivered, null latencies, two overdue and two redeliveries."""
    row = link(one_warning_two_recipients().snapshot(), "BY", "LV")
    assert (row["messages"], row["delivered"], row["acknowledged"]) == (1, 0, 0)
    assert (row["overdue"], row["redelivered"]) == (2, 2)
    empty = {"p50": None, "p90": None, "p99": None, "max": None, "count": 0}
    for name in ("delivery_ms", "ack_ms", "e2e_ms", "lead_time_s", "lead_time_delivered_s"):
        assert row[name] == empty


def test_every_linked_pair_appears_both_ways_sorted() -> None:
    """All 20 directed links of the full five-party network, sorted, idle ones at zero."""
    snapshot = one_warning_two_recipients().snapshot()
    pairs = [(r["from"], r["to"]) for r in snapshot["links"]]
    parties = sorted(NET.network.endpoints)
    assert pairs == [(a, b) for a in parties for b in parties if a != b]
    assert link(snapshot, "LT", "BY")["messages"] == 0
    assert [h["endpoint"] for h in snapshot["hops"]] == parties
    assert (snapshot["entries"], snapshot["as_of"]) == (7, T0 + 60_000)


def test_snapshot_keys_and_order_are_the_documented_shape() -> None:
    """The snapshot has exactly the documented keys, in the documented order."""
    snapshot = one_warning_two_recipients().snapshot()
    assert list(snapshot) == ["links", "hops", "entries", "as_of"]
    assert list(snapshot["links"][0]) == [
        "from", "to", "messages", "counts", "delivered", "acknowledged", "rejected", "overdue",
        "redelivered", "delivery_ms", "ack_ms", "e2e_ms", "lead_time_s",
        "lead_time_delivered_s", "availability",
    ]
    assert list(snapshot["hops"][0]) == [
        "endpoint", "tests", "answered", "availability", "rtt_ms", "clock_offset_ms", "connected",
    ]
    assert list(snapshot["links"][0]["counts"]) == ["warning", "update", "cancel", "text"]


def test_repeated_receipts_count_once_per_stage() -> None:
    """A second delivered receipt (after a redelivery) changes no count and adds no sample."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 40)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 3_040)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 5_000)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 6_000)
    row = link(book.snapshot(), "BY", "LT")
    assert (row["delivered"], row["acknowledged"]) == (1, 1)
    assert row["delivery_ms"] == stats(40)
    assert row["ack_ms"] == stats(4_960)


def test_rejection_is_counted_and_receipts_from_strangers_are_ignored() -> None:
    """A rejected receipt counts on its link; a receipt from a non-recipient counts nowhere."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    book.receipt("EE", warning, Stage.DELIVERED, T0 + 10)  # EE was not addressed
    book.receipt("LT", warning, Stage.REJECTED, T0 + 50)
    snapshot = book.snapshot()
    assert link(snapshot, "BY", "LT")["rejected"] == 1
    assert link(snapshot, "BY", "LT")["delivered"] == 0
    assert link(snapshot, "BY", "EE")["messages"] == 0
    assert link(snapshot, "BY", "EE")["delivered"] == 0


def test_late_event_after_the_final_receipt_still_finds_its_link() -> None:
    """An overdue event logged just after the acknowledgement counts on the right link."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 40)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 60_000)
    book.event(EntryKind.OVERDUE, T0 + 60_001, ref=warning.id, recipient="LT",
              stage="acknowledged", deadline=T0 + 60_000)
    assert link(book.snapshot(), "BY", "LT")["overdue"] == 1


def test_updates_with_a_predicted_crossing_give_lead_times_too() -> None:
    """An update's predicted crossing is measured against its own receipts."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    update = book.warning("BY", ("LT",), T0 + 1_000, crossing_at=T0 + 61_000, ref=warning.id)
    book.receipt("LT", update, Stage.DELIVERED, T0 + 1_500)
    book.receipt("LT", update, Stage.ACKNOWLEDGED, T0 + 11_000)
    row = link(book.snapshot(), "BY", "LT")
    assert row["counts"]["update"]["actual"] == 1
    assert row["lead_time_s"] == stats(50.0)
    assert row["lead_time_delivered_s"] == stats(59.5)


# ----------------------------------------------------------------------------- clock offsets


def test_e2e_is_corrected_by_clock_offsets_from_link_tests() -> None:
    """LT's clock 5 s ahead and BY's 1 s behind: e2e shows the true 25 ms, not 6,025."""
    book = LogBook()
    sent = T0 + 1_000  # relay time BY wrote the warning; its clock says 1 s earlier
    warning = book.warning("BY", ("LT",), sent + 5, ts=sent - 1_000)
    book.receipt("LT", warning, Stage.DELIVERED, sent + 30, ts=sent + 25 + 5_000)
    # The tests come later in the log: offsets are applied when the figures are read.
    for i, rtt in enumerate((20, 40, 60)):
        book.answered_test("LT", T0 + 10_000 + i * 5_000, rtt, clock_ahead_ms=5_000)
        book.answered_test("BY", T0 + 10_500 + i * 5_000, rtt, clock_ahead_ms=-1_000)
    snapshot = book.snapshot()
    assert hop(snapshot, "LT")["clock_offset_ms"] == 5_000
    assert hop(snapshot, "BY")["clock_offset_ms"] == -1_000
    assert hop(snapshot, "LV")["clock_offset_ms"] is None
    assert link(snapshot, "BY", "LT")["e2e_ms"] == stats(25)
    assert link(snapshot, "BY", "LT")["delivery_ms"] == stats(25)


def test_clock_offset_is_the_median_of_the_test_samples() -> None:
    """One wild sample does not move the offset: it is the median, not the mean."""
    book = LogBook()
    for i, ahead in enumerate((5_000, 5_002, 90_000)):
        book.answered_test("LT", T0 + i * 5_000, 20, clock_ahead_ms=ahead)
    assert hop(book.snapshot(), "LT")["clock_offset_ms"] == 5_002


# ----------------------------------------------------------------------------- availability


def test_availability_counts_in_time_late_and_old_unanswered_tests() -> None:
    """In time counts for, late and old-unanswered count against, a young unanswered not at all."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0 - 1, party="LT")
    book.answered_test("LT", T0, 200)  # in time
    book.answered_test("LT", T0 + 10_000, TIMEOUT + 1_000)  # late
    book.link_test("LT", T0 + 20_000)  # never answered, old by the end
    book.link_test("LT", T0 + 30_000)  # never answered, still young at the end
    book.event(EntryKind.CONNECTED, T0 + 30_000 + TIMEOUT, party="BY")
    snapshot = book.snapshot()
    lt = hop(snapshot, "LT")
    assert (lt["tests"], lt["answered"]) == (4, 2)
    assert lt["availability"] == pytest.approx(1 / 3)
    assert lt["rtt_ms"] == {"p50": 200, "p90": TIMEOUT + 1_000, "p99": TIMEOUT + 1_000,
                            "max": TIMEOUT + 1_000, "count": 2}
    assert link(snapshot, "BY", "LT")["availability"] == lt["availability"]
    assert link(snapshot, "LT", "BY")["availability"] is None  # no test to BY decided


def test_a_young_unanswered_test_fails_once_now_passes_its_timeout() -> None:
    """The same unanswered test is undecided at its timeout and failed one millisecond later."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0 - 1, party="LV")
    book.answered_test("LV", T0, TIMEOUT)  # exactly at the timeout is in time
    book.link_test("LV", T0 + 5_000)
    book.event(EntryKind.CONNECTED, T0 + 5_000 + TIMEOUT, party="LV")
    assert hop(book.snapshot(), "LV")["availability"] == 1.0
    book.event(EntryKind.CONNECTED, T0 + 5_000 + TIMEOUT + 1, party="LV")
    assert hop(book.snapshot(), "LV")["availability"] == 0.5


def test_availability_is_null_until_a_test_is_decided() -> None:
    """A hop with only a young unanswered test has no availability yet."""
    book = LogBook()
    book.link_test("EE", T0)
    assert hop(book.snapshot(), "EE")["availability"] is None
    assert hop(book.snapshot(), "EE")["tests"] == 1


def test_a_long_forgotten_test_stays_failed() -> None:
    """An unanswered test dropped from memory after hours still counts against availability."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0 - 1, party="PL")
    book.link_test("PL", T0)
    book.answered_test("PL", T0 + 3_600_000, 10)
    assert hop(book.snapshot(), "PL")["availability"] == 0.5


def test_tests_before_an_endpoint_first_connects_do_not_count_against_it() -> None:
    """An endpoint not yet up fails no test; once it has connected, a lost test counts."""
    book = LogBook()
    book.link_test("EE", T0)  # EE has never connected: not up yet
    book.event(EntryKind.CONNECTED, T0 + 1_000, party="EE")
    book.answered_test("EE", T0 + 5_000, 10)
    book.event(EntryKind.DISCONNECTED, T0 + 6_000, party="EE", reason="closed 1001")
    book.link_test("EE", T0 + 10_000)  # down after it was up: counts
    book.event(EntryKind.CONNECTED, T0 + 10_000 + TIMEOUT + 1, party="EE")
    ee = hop(book.snapshot(), "EE")
    assert (ee["tests"], ee["answered"], ee["availability"]) == (3, 1, 0.5)


def test_a_relay_shutdown_voids_the_tests_it_did_not_see_time_out() -> None:
    """A test still open when the relay stops or restarts never counts against the endpoint."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0, party="LT")
    book.answered_test("LT", T0 + 1_000, 10)
    book.link_test("LT", T0 + 5_000)  # open when the relay stops
    book.event(EntryKind.RELAY_STOPPED, T0 + 5_500)
    book.link_test("LT", T0 + 9_000)  # an old relay's test, cut by a crash and restart
    book.event(EntryKind.RELAY_STARTED, T0 + 9_100, version="1", network_sha256=b"\0" * 32)
    book.link_test("LT", T0 + 9_200)  # LT still reconnecting after the restart
    book.event(EntryKind.CONNECTED, T0 + 9_500, party="LT")
    book.answered_test("LT", T0 + 12_000, 10)
    book.event(EntryKind.CONNECTED, T0 + 60_000, party="BY")
    lt = hop(book.snapshot(), "LT")
    assert (lt["tests"], lt["answered"], lt["availability"]) == (5, 2, 1.0)


def test_a_test_still_unanswered_after_the_reconnect_grace_counts() -> None:
    """After a relay restart, an endpoint that stays away past one interval fails its tests."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0, party="PL")
    book.answered_test("PL", T0 + 1_000, 10)
    book.event(EntryKind.RELAY_STARTED, T0 + 2_000, version="1", network_sha256=b"\0" * 32)
    interval = book.net.network.link_test_interval_ms
    book.link_test("PL", T0 + 2_000 + interval)
    book.event(EntryKind.CONNECTED, T0 + 2_000 + interval + TIMEOUT + 1, party="BY")
    assert hop(book.snapshot(), "PL")["availability"] == 0.5


# ----------------------------------------------------------------------------- connections


def test_connected_follows_the_last_event_and_a_relay_restart() -> None:
    """connected is the last connect/disconnect; a relay start drops every connection."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0, party="LT")
    book.event(EntryKind.CONNECTED, T0 + 1, party="LV")
    book.event(EntryKind.DISCONNECTED, T0 + 2, party="LV", reason="closed")
    snapshot = book.snapshot()
    assert [hop(snapshot, p)["connected"] for p in ("LT", "LV", "EE")] == [True, False, None]
    book.event(EntryKind.RELAY_STARTED, T0 + 3, version="0.1.0", network_sha256=b"\0" * 32)
    snapshot = book.snapshot()
    assert [hop(snapshot, p)["connected"] for p in ("LT", "LV", "EE")] == [False, False, None]


def test_with_replicas_an_endpoint_is_connected_through_its_latest_session() -> None:
    """A late disconnect or restart of a replica the endpoint left does not mark it down."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0, party="LT", replica="r1")
    book.event(EntryKind.CONNECTED, T0, party="LV", replica="r1")
    book.event(EntryKind.CONNECTED, T0 + 1, party="LT", replica="r2")  # failed over from r1
    book.event(EntryKind.DISCONNECTED, T0 + 2, party="LT", reason="closed 1006", replica="r1")
    snapshot = book.snapshot()
    assert [hop(snapshot, p)["connected"] for p in ("LT", "LV")] == [True, True]
    book.event(EntryKind.RELAY_STARTED, T0 + 3, version="1", network_sha256=b"\0" * 32,
               replica="r1")
    snapshot = book.snapshot()
    assert [hop(snapshot, p)["connected"] for p in ("LT", "LV")] == [True, False]
    book.event(EntryKind.DISCONNECTED, T0 + 4, party="LT", reason="closed 1000", replica="r2")
    assert hop(book.snapshot(), "LT")["connected"] is False


def test_a_connected_entry_logged_late_does_not_replace_the_later_session() -> None:
    """r1 logs LT's short session after r2 logged LT's newer one: LT stays connected (r2)."""
    book = LogBook()
    book.event(EntryKind.CONNECTED, T0 + 10, party="LT", replica="r2")
    book.event(EntryKind.CONNECTED, T0 + 5, party="LT", replica="r1")  # stuck, then logged
    book.event(EntryKind.DISCONNECTED, T0 + 8, party="LT", reason="closed 1013", replica="r1")
    assert hop(book.snapshot(), "LT")["connected"] is True


# ----------------------------------------------------------------------------- percentiles


def test_nearest_rank_on_one_to_a_hundred() -> None:
    """1..100 gives p50 = 50, p90 = 90, p99 = 99, max = 100."""
    assert Latency.of(range(100, 0, -1)) == Latency(50, 90, 99, 100, 100)
    assert [nearest_rank(list(range(1, 101)), p) for p in (1, 50, 90, 99, 100)] == [
        1, 50, 90, 99, 100
    ]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([7], Latency(7, 7, 7, 7, 1)),
        ([4, 1, 3, 2], Latency(2, 4, 4, 4, 4)),
        (list(range(1, 11)), Latency(5, 9, 10, 10, 10)),
        ([], Latency(None, None, None, None, 0)),
    ],
)
def test_nearest_rank_on_small_lists(samples: list[int], expected: Latency) -> None:
    """The value at rank ceil(q·n) of the sorted samples; nothing for no samples."""
    assert Latency.of(samples) == expected


@given(st.lists(st.integers(-10**6, 10**6), min_size=1), st.integers(1, 100))
def test_nearest_rank_is_the_smallest_value_covering_the_share(
    samples: list[int], percent: int
) -> None:
    """Nearest rank is the least sample with at least q of all samples at or below it."""
    naive = min(v for v in samples if 100 * sum(s <= v for s in samples) >= percent * len(samples))
    assert nearest_rank(sorted(samples), percent) == naive


def test_median_averages_the_middle_pair() -> None:
    """The median of an even count is the mean of the two middle values; of none, None."""
    assert (median([3, 1, 2]), median([1, 2, 3, 10]), median([])) == (2, 2.5, None)


def test_latencies_through_the_accumulator_use_nearest_rank() -> None:
    """Ten messages delivered after 10, 20, … 100 ms: p50 50, p90 90, p99 and max 100."""
    book = LogBook()
    for i in range(1, 11):
        warning = book.warning("LT", ("PL",), T0 + i * 1_000)
        book.receipt("PL", warning, Stage.DELIVERED, T0 + i * 1_000 + 10 * (11 - i))
    row = link(book.snapshot(), "LT", "PL")
    assert row["delivery_ms"] == {"p50": 50, "p90": 90, "p99": 100, "max": 100, "count": 10}


# ----------------------------------------------------------------------------- routing, status


def test_star_reaches_linked_endpoints_only_and_status_is_counted_apart() -> None:
    """to="*" counts on BY's linked peers only; actual, exercise and test stay apart."""
    net = make_network(links=[("BY", "LT"), ("BY", "LV"), ("LT", "LV")])
    book = LogBook(net)
    warning = book.warning("BY", "*", T0)
    book.warning("BY", "*", T0 + 1, status=Status.EXERCISE)
    book.text("BY", "*", T0 + 2, Status.TEST)
    book.text("BY", ("LT",), T0 + 3, Status.EXERCISE)
    book.cancel("BY", warning, T0 + 4, Status.ACTUAL)
    snapshot = book.snapshot()
    assert [(r["from"], r["to"]) for r in snapshot["links"]] == [
        ("BY", "LT"), ("BY", "LV"), ("LT", "BY"), ("LT", "LV"), ("LV", "BY"), ("LV", "LT"),
    ]
    by_lt, by_lv = link(snapshot, "BY", "LT"), link(snapshot, "BY", "LV")
    assert (by_lt["messages"], by_lv["messages"]) == (5, 4)
    assert by_lt["counts"] == {
        "warning": {"actual": 1, "exercise": 1, "test": 0},
        "update": {"actual": 0, "exercise": 0, "test": 0},
        "cancel": {"actual": 1, "exercise": 0, "test": 0},
        "text": {"actual": 0, "exercise": 1, "test": 1},
    }
    assert by_lv["counts"]["text"] == {"actual": 0, "exercise": 0, "test": 1}
    assert [h["endpoint"] for h in snapshot["hops"]] == ["BY", "EE", "LT", "LV", "PL"]


# ----------------------------------------------------------------------------- decoding


def everything() -> LogBook:
    """One log mixing every scenario above: messages, receipts, tests and events."""
    book = one_warning_two_recipients()
    warning = book.warning("LT", "*", T0 + 61_000, ts=T0 + 66_000, crossing_at=T0 + 900_000)
    book.receipt("BY", warning, Stage.DELIVERED, T0 + 61_050)
    book.receipt("PL", warning, Stage.REJECTED, T0 + 61_070)
    book.receipt("BY", warning, Stage.ACKNOWLEDGED, T0 + 75_000)
    book.text("EE", ("LV",), T0 + 76_000, Status.EXERCISE)
    book.answered_test("LT", T0 + 80_000, 30, clock_ahead_ms=5_000)
    book.answered_test("BY", T0 + 80_100, 3_000)
    book.link_test("LV", T0 + 80_200)
    book.event(EntryKind.CONNECTED, T0 + 90_000, party="EE")
    return book


def test_add_entry_agrees_with_add_envelope_and_add_event() -> None:
    """Feeding the encoded entries gives the same snapshot as feeding the decoded values."""
    book = everything()
    direct = LinkFigures(NET.network)
    for index, (relay_ts, value) in enumerate(book.values):
        if isinstance(value, LogEvent):
            direct.add_event(index, relay_ts, value)
        else:
            direct.add_envelope(index, relay_ts, value)
    assert direct.snapshot() == book.snapshot()
    assert direct.figures() == book.figures().figures()


def test_a_damaged_entry_is_named_by_its_index() -> None:
    """add_entry refuses an entry whose envelope no longer verifies, naming the entry."""
    book = everything()
    data = bytearray(book.entries[3])
    data[-1] ^= 0x01  # the last byte of the signature
    figures = LinkFigures(NET.network)
    with pytest.raises(VerificationFailed, match=r"^entry 3: bad_signature"):
        figures.add_entry(3, bytes(data))


def test_text_report_names_every_link_and_the_reciprocity_of_each_pair() -> None:
    """The text table has one line per link and a BY→LT n / LT→BY m line per pair."""
    figures = everything().figures().figures()
    text = render_text(figures)
    for row in figures.links:
        assert sum(line.startswith(f"{row.origin}→{row.recipient} ")
                   for line in text.splitlines()) == 1
    assert "BY↔LT: BY→LT 1 / LT→BY 1" in text
    assert "EE↔LV: EE→LV 1 / LV→EE 0" in text


# ----------------------------------------------------------------------------- purity

FIGURES_DIR = Path(hotline.figures.__file__).parent
FORBIDDEN = {"aiohttp", "asyncio", "socket", "time", "datetime", "os", "pathlib", "io",
             "sqlite3", "random", "secrets", "threading", "structlog"}


@pytest.mark.parametrize("path", sorted(FIGURES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_figures_modules_do_no_io_and_read_no_clock(path: Path) -> None:
    """No figures module imports I/O, clock or event-loop modules, nor calls print or open."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "open", "input"}
            continue
        else:
            continue
        assert not names & FORBIDDEN, f"{path.name} imports {names & FORBIDDEN}"


def test_importing_figures_loads_no_event_loop() -> None:
    """A fresh interpreter importing hotline.figures has neither asyncio nor aiohttp loaded."""
    code = ("import sys, hotline.figures\n"
            "print(sorted(m for m in ('asyncio', 'aiohttp', 'socket') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_link_that_carried_nothing_shows_no_availability() -> None:
    """A link with no message shows — for availability, not a share of link tests."""
    figures = everything().figures().figures()
    text = render_text(figures)
    for row in figures.links:
        (line,) = [x for x in text.splitlines() if x.startswith(f"{row.origin}→{row.recipient} ")]
        assert ("—" in line.split()) == (row.messages == 0)


def test_the_legend_defines_every_column_in_the_words_of_docs_relay() -> None:
    """One legend line per column of both tables, each also a row of docs/relay.md."""
    docs = (Path(__file__).parent.parent / "docs" / "relay.md").read_text(encoding="utf-8")
    legend = render_legend()
    for name, meaning in (*LINK_COLUMNS, *HOP_COLUMNS):
        assert f"| `{name}` | {meaning} |" in docs
        assert meaning in legend
    header = render_text(everything().figures().figures()).splitlines()[1].split()
    assert " ".join(header) == " ".join(name for name, _ in LINK_COLUMNS)


# ----------------------------------------------------------------------------- saved state


@pytest.mark.parametrize("cut", [1, 5, 9, 14])
def test_state_saved_anywhere_and_loaded_ends_with_the_same_figures(cut: int) -> None:
    """Folding, saving through MessagePack, loading and folding on equals folding straight."""
    book = one_warning_two_recipients()
    book.event(EntryKind.CONNECTED, T0 + 70_000, party="LT")
    for i, rtt in enumerate((20, 40, 6_000, 60)):
        book.answered_test("LT", T0 + 71_000 + i * 5_000, rtt, clock_ahead_ms=300)
    book.link_test("LT", T0 + 95_000)
    book.event(EntryKind.RELAY_STOPPED, T0 + 95_500)
    book.event(EntryKind.RELAY_STARTED, T0 + 96_000, version="1", network_sha256=b"\0" * 32)
    assert len(book.entries) > cut
    first = LinkFigures(book.net.network)
    for index, entry in enumerate(book.entries[:cut]):
        first.add_entry(index, entry)
    saved = msgpack.unpackb(msgpack.packb(first.state()), strict_map_key=False)
    loaded = LinkFigures.from_state(book.net.network, saved)
    assert loaded.snapshot() == first.snapshot()
    for index, entry in enumerate(book.entries[cut:], cut):
        loaded.add_entry(index, entry)
    assert loaded.snapshot() == book.snapshot()
    assert loaded.state() == book.figures().state()


def test_a_saved_state_that_does_not_parse_is_refused() -> None:
    """A state with a missing or mistyped part raises UsageError, not a crash later."""
    state = one_warning_two_recipients().figures().state()
    broken = dict(state, hops=[["LT", [1, 2], [], []]])
    with pytest.raises(UsageError):
        LinkFigures.from_state(NET.network, broken)
    with pytest.raises(UsageError):
        LinkFigures.from_state(NET.network, {"exact": False})
