"""Per-link figures (SPEC §6) folded from audit-log entries, one entry at a time.

:class:`LinkFigures` is the single implementation behind both the relay's live
``GET /v1/links`` (fed each entry as it is appended) and ``hotline audit
report`` (fed a bundle's entries): the same entries in the same order give the
same figures, by construction.

Invariants:

- **Pure.** No I/O, no clock, no asyncio. Time comes only from the entries: the
  accumulator's "now" is the largest ``relay_ts`` it has been given.
- **Log order is the only order.** A receipt is matched to the message it
  names only if that message came earlier; receipts for unknown ids, from
  parties that were not recipients, or for a link test sent to someone else
  are ignored, as are ``accepted`` bodies (the relay does not log them).
- **Each message counts once per stage per recipient.** A recipient's receipts
  move it through the lifecycle table (:mod:`hotline.protocol.lifecycle`); a
  stage is counted, and timed, by the receipt that first reaches it. An
  ``acknowledged`` receipt that comes first reaches ``delivered`` too: it counts
  as delivered, times the delivery latency (an upper bound) and adds no
  acknowledgement-latency sample (there is no separate delivery to measure from).
  Repeats (after a redelivery), a ``delivered`` receipt after the acknowledgement
  and a receipt that contradicts a final one change nothing.
- **Offsets are applied late.** End-to-end samples are kept raw (the
  recipient's clock minus the origin's) and corrected by the clock offsets
  current when the figures are asked for (a constant shift per link, which
  moves every order statistic by the same amount), so a live snapshot and a
  report over the same entries agree exactly.
- **A link test fails only once it is decided.** A test counts against
  availability when answered after ``link_test_timeout_ms`` or, unanswered,
  once "now" is past its timeout; a younger unanswered test counts neither way.
- **A test fails only while both ends were up.** A late or unanswered test
  counts against its endpoint only if that endpoint had connected before the
  test was logged, was not still reconnecting after a relay start (the first
  link-test interval after ``relay_started``), and no ``relay_stopped`` or
  ``relay_started`` entry came before its timeout passed; a test answered in
  time always counts for it.

Memory: per-message state lives while some recipient still owes a final
answer (``rejected`` or ``acknowledged``); a message a
recipient never answers is kept for as long as the accumulator lives, since a
stored-and-forwarded receipt may come hours later. The ids of the last
:data:`RECENTLY_FINISHED` finished messages are remembered with their origin,
so an ``overdue`` or ``redelivered`` event logged just after the final receipt
still finds its link; an event about an older id is ignored. An unanswered
link test is kept until it is answered or older than the late-answer horizon
(ten timeouts, at least ten minutes), and then counted as failed and
forgotten. Latency samples go into fixed-bucket histograms
(:mod:`hotline.figures.histogram`): memory does not grow with their number, and
percentiles are within 0.4 % of the exact ones (``exact=True`` keeps every
sample instead, for ``hotline audit report --exact``). ``state()`` and
``from_state()`` save and restore everything, so the relay can restart from a
snapshot instead of the whole log.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from hotline.auditlog.leaf import EntryKind, LogEvent, decode_entry
from hotline.errors import EntryError, Rejected, UsageError, VerificationFailed
from hotline.figures.histogram import SIGNIFICANT_BITS, ExactSamples, Histogram, Samples
from hotline.figures.rows import Figures, HopRow, LinkRow
from hotline.figures.stats import Number, plain
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import (
    CancelBody,
    LinkTestBody,
    ReceiptBody,
    RoutedBody,
    TextBody,
    WarningBody,
)
from hotline.protocol.envelope import Envelope, open_envelope
from hotline.protocol.lifecycle import (
    RecipientState,
    Step,
    advance,
    finished,
    implies,
    reached,
    state_of,
)
from hotline.protocol.vocab import BodyType, Stage, Status

__all__ = ["RECENTLY_FINISHED", "ROUTED_TYPES", "LinkFigures"]

ROUTED_TYPES: Final = (BodyType.WARNING, BodyType.UPDATE, BodyType.CANCEL, BodyType.TEXT)
RECENTLY_FINISHED: Final = 4096
_LATE_ANSWER_TIMEOUTS: Final = 10
_LATE_ANSWER_MIN_MS: Final = 600_000


SampleFactory = Callable[[int], Samples]  # significant bits → an empty set of samples
_BITS: Final = {  # significant bits per kind of sample; 8 keeps within 0.4 % of the value
    "raw_e2e_ms": 12,  # skewed clocks inflate the raw value; the offset is subtracted later
    "offset_half_ms": 16,  # exact up to 32 s, since it corrects every end-to-end time
}
_LINK_COUNTERS: Final = ("messages", "delivered", "acknowledged", "rejected", "overdue",
                         "redelivered")
_LINK_SAMPLES: Final = ("delivery_ms", "ack_ms", "raw_e2e_ms", "lead_ms", "lead_delivered_ms")
_HOP_COUNTERS: Final = ("tests", "in_time", "late", "forgotten", "failed_late", "voided")
_HOP_SAMPLES: Final = ("rtt_ms", "offset_half_ms")


@dataclass(slots=True)
class _Link:
    """Running totals and latency histograms of one directed link."""

    new: SampleFactory
    messages: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    delivered: int = 0
    acknowledged: int = 0
    rejected: int = 0
    overdue: int = 0
    redelivered: int = 0
    delivery_ms: Samples = field(init=False)
    ack_ms: Samples = field(init=False)
    raw_e2e_ms: Samples = field(init=False)  # receipt.ts - message.ts, uncorrected
    lead_ms: Samples = field(init=False)  # crossing_at - relay_ts of the acknowledgement
    lead_delivered_ms: Samples = field(init=False)

    def __post_init__(self) -> None:
        for name in _LINK_SAMPLES:
            setattr(self, name, self.new(_BITS.get(name, SIGNIFICANT_BITS)))


@dataclass(slots=True)
class _Hop:
    """Link tests to one endpoint and its connection state."""

    new: SampleFactory
    tests: int = 0
    in_time: int = 0
    late: int = 0  # answered after the timeout (a failure only if the test counted)
    forgotten: int = 0  # counted tests unanswered beyond the late-answer horizon
    failed_late: int = 0  # late answers to tests that counted
    voided: int = 0  # tests whose timeout the relay did not live to see
    rtt_ms: Samples = field(init=False)
    offset_half_ms: Samples = field(init=False)  # 2 * (receipt.ts - mid-trip relay time)
    connected: bool | None = None
    joined: bool = False  # connected at least once
    back_since_start: bool = False  # connected since the latest relay_started
    session: str = ""  # the replica of the latest connected entry ("" for one relay)
    session_ts: int = -1  # that entry's relay_ts

    def __post_init__(self) -> None:
        for name in _HOP_SAMPLES:
            setattr(self, name, self.new(_BITS.get(name, SIGNIFICANT_BITS)))

    @property
    def answered(self) -> int:
        return self.in_time + self.late


@dataclass(frozen=True, slots=True)
class _Test:
    recipient: str
    relay_ts: int
    counts: bool  # a failure of this test counts against the endpoint


@dataclass(slots=True)
class _Answers:
    """When one recipient reached each stage of one message (the receipt's relay_ts)."""

    delivered_at: int | None = None
    acknowledged_at: int | None = None
    rejected: bool = False

    @property
    def state(self) -> RecipientState:
        """Its state in the lifecycle table, from the stages it reached."""
        stages = [
            stage
            for stage, reached_it in (
                (Stage.DELIVERED, self.delivered_at is not None),
                (Stage.ACKNOWLEDGED, self.acknowledged_at is not None),
                (Stage.REJECTED, self.rejected),
            )
            if reached_it
        ]
        return state_of(stages, logged=True)


@dataclass(slots=True)
class _Message:
    origin: str
    relay_ts: int
    ts: int
    crossing_at: int | None
    waiting: dict[str, _Answers]  # recipients that still owe a final answer


class LinkFigures:
    """Fold log entries, in log order, into the per-link figures; see the module docstring."""

    def __init__(self, network: Network, *, exact: bool = False) -> None:
        self._network: Final = network
        self._new: SampleFactory = _exact_samples if exact else Histogram
        self._exact: Final = exact
        self._timeout_ms: Final = network.link_test_timeout_ms
        self._horizon_ms: Final = max(
            _LATE_ANSWER_MIN_MS, _LATE_ANSWER_TIMEOUTS * network.link_test_timeout_ms
        )
        self._links: dict[tuple[str, str], _Link] = {}
        self._hops: dict[str, _Hop] = {
            endpoint: _Hop(self._new) for endpoint in network.endpoints
        }
        self._messages: dict[bytes, _Message] = {}
        self._finished: OrderedDict[bytes, str] = OrderedDict()
        self._tests: OrderedDict[bytes, _Test] = OrderedDict()
        self._entries = 0
        self._now: int | None = None
        self._started_at: int | None = None  # relay_ts of the latest relay_started
        for pair in network.links:
            a, b = sorted(pair)
            self._link(a, b)
            self._link(b, a)

    # ------------------------------------------------------------------ feeding

    def add_entry(self, index: int, entry: bytes) -> None:
        """Decode and verify one log entry, then fold it in.

        Raises VerificationFailed naming ``index`` if the entry does not decode
        or its envelope does not verify against the network's keys.
        """
        try:
            decoded = decode_entry(entry)
            envelope = (
                None if decoded.envelope is None else open_envelope(
                    decoded.envelope, self._network,
                    max_size=self._network.limits.max_frame_bytes,
                )
            )
        except (EntryError, Rejected) as exc:
            raise VerificationFailed(index, exc.describe()) from exc
        if envelope is not None:
            self.add_envelope(index, decoded.relay_ts, envelope)
        else:
            assert decoded.event is not None
            self.add_event(index, decoded.relay_ts, decoded.event)

    def add_envelope(self, index: int, relay_ts: int, envelope: Envelope) -> None:
        """Fold in a verified envelope that the relay logged at ``relay_ts``.

        ``index`` is the entry's position in the log; folding needs only the
        order of the calls, so it is taken to give every feeder one shape.
        """
        self._entries += 1
        self._advance(relay_ts)
        body = envelope.body
        if isinstance(body, WarningBody | CancelBody | TextBody):
            self._add_message(relay_ts, body)
        elif isinstance(body, ReceiptBody):
            self._add_receipt(relay_ts, body)
        elif isinstance(body, LinkTestBody):
            self._add_test(relay_ts, body)

    def add_event(self, index: int, relay_ts: int, event: LogEvent) -> None:
        """Fold in a relay event that the relay logged at ``relay_ts`` (``index`` as above)."""
        if event.kind is EntryKind.ENVELOPE:
            raise UsageError("envelopes are folded in with add_envelope, not add_event")
        self._entries += 1
        self._advance(relay_ts)
        fields = event.fields
        if event.kind in (EntryKind.OVERDUE, EntryKind.REDELIVERED):
            link = self._link_of(fields.get("ref"), fields.get("recipient"))
            if link is None:
                return
            if event.kind is EntryKind.OVERDUE:
                link.overdue += 1
            else:
                link.redelivered += 1
        elif event.kind in (EntryKind.CONNECTED, EntryKind.DISCONNECTED):
            self._session_event(relay_ts, event)
        elif event.kind in (EntryKind.RELAY_STARTED, EntryKind.RELAY_STOPPED):
            # A relay (replica) that stops or restarts holds no connections any more; with
            # replicas, only the sessions held by the one that names itself end.
            replica = fields.get("replica")
            for hop in self._hops.values():
                if hop.connected and (not isinstance(replica, str) or hop.session == replica):
                    hop.connected = False
                hop.back_since_start = False
            if event.kind is EntryKind.RELAY_STARTED:
                self._started_at = relay_ts
            self._void_open_tests(relay_ts)

    def _void_open_tests(self, relay_ts: int) -> None:
        """The relay went down: tests whose timeout had not passed cannot fail any more."""
        for test_id, test in list(self._tests.items()):
            if relay_ts - test.relay_ts <= self._timeout_ms:
                del self._tests[test_id]
                self._hop(test.recipient).voided += 1

    def _session_event(self, relay_ts: int, event: LogEvent) -> None:
        """connected/disconnected: an endpoint has one session at a time, its latest.

        The latest session is the ``connected`` entry with the highest relay_ts (a
        replica that could not log for a while logs its ``connected`` late, after
        the endpoint had moved on to another replica). A ``disconnected`` ends the
        session only if it names the session's replica (a replica that notices late,
        after a pause, that the endpoint left it changes nothing).
        """
        party, replica = event.fields.get("party"), event.fields.get("replica", "")
        if not isinstance(party, str) or not isinstance(replica, str):
            return
        hop = self._hop(party)
        if event.kind is EntryKind.CONNECTED:
            if relay_ts >= hop.session_ts:
                hop.connected, hop.session, hop.session_ts = True, replica, relay_ts
                hop.joined = hop.back_since_start = True
        elif replica == hop.session or not replica:
            hop.connected = False

    def _advance(self, relay_ts: int) -> None:
        if self._now is None or relay_ts > self._now:
            self._now = relay_ts
        while self._tests:
            test_id, test = next(iter(self._tests.items()))
            if self._now - test.relay_ts <= self._horizon_ms:
                break
            del self._tests[test_id]
            if test.counts:
                self._hop(test.recipient).forgotten += 1

    def _link(self, origin: str, recipient: str) -> _Link:
        link = self._links.get((origin, recipient))
        if link is None:
            link = self._links[origin, recipient] = _Link(self._new)
        return link

    def _hop(self, endpoint: str) -> _Hop:
        hop = self._hops.get(endpoint)
        if hop is None:
            hop = self._hops[endpoint] = _Hop(self._new)
        return hop

    def _link_of(self, ref: object, recipient: object) -> _Link | None:
        """The link an overdue or redelivered event is about, if its fields name one."""
        if not isinstance(ref, bytes) or not isinstance(recipient, str):
            return None
        message = self._messages.get(ref)
        origin = message.origin if message is not None else self._finished.get(ref)
        if origin is None or origin == recipient:
            return None
        return self._link(origin, recipient)

    def _add_message(self, relay_ts: int, body: RoutedBody) -> None:
        if body.id in self._messages or body.id in self._finished:
            return  # the same message logged twice is still one message
        recipients = [
            r for r in dict.fromkeys(recipients_of(self._network, body.sender, body.to))
            if r != body.sender
        ]
        for recipient in recipients:
            link = self._link(body.sender, recipient)
            link.messages += 1
            link.counts[body.type.value, body.status.value] += 1
        if not recipients:
            return
        crossing_at = None
        if isinstance(body, WarningBody) and body.predicted is not None:
            crossing_at = body.predicted.crossing_at
        self._messages[body.id] = _Message(
            body.sender, relay_ts, body.ts, crossing_at, {r: _Answers() for r in recipients}
        )

    def _add_test(self, relay_ts: int, body: LinkTestBody) -> None:
        if body.sender != self._network.relay.id or body.id in self._tests:
            return
        recipient = body.to[0]  # the schema allows exactly one
        hop = self._hop(recipient)
        hop.tests += 1
        reconnecting = (
            not hop.back_since_start
            and self._started_at is not None
            and relay_ts - self._started_at < self._network.link_test_interval_ms
        )
        self._tests[body.id] = _Test(recipient, relay_ts, hop.joined and not reconnecting)

    def _add_receipt(self, relay_ts: int, receipt: ReceiptBody) -> None:
        message = self._messages.get(receipt.ref)
        if message is None:
            self._answer_test(relay_ts, receipt)
            return
        answers = message.waiting.get(receipt.sender)
        if answers is None:
            return
        link = self._link(message.origin, receipt.sender)
        before = answers.state
        after = advance(before, Step.of(receipt.stage))
        new = reached(before, after)
        if Stage.DELIVERED in new:
            answers.delivered_at = relay_ts
            link.delivered += 1
            link.delivery_ms.add(relay_ts - message.relay_ts)
            link.raw_e2e_ms.add(receipt.ts - message.ts)
            if message.crossing_at is not None:
                link.lead_delivered_ms.add(message.crossing_at - relay_ts)
        if Stage.ACKNOWLEDGED in new:
            answers.acknowledged_at = relay_ts
            link.acknowledged += 1
            if message.crossing_at is not None:
                link.lead_ms.add(message.crossing_at - relay_ts)
            if Stage.DELIVERED not in new and answers.delivered_at is not None:
                link.ack_ms.add(relay_ts - answers.delivered_at)
        if Stage.REJECTED in new:
            answers.rejected = True
            link.rejected += 1
        if finished(after):
            del message.waiting[receipt.sender]
            if not message.waiting:
                self._finish(receipt.ref, message.origin)

    def _finish(self, message_id: bytes, origin: str) -> None:
        del self._messages[message_id]
        self._finished[message_id] = origin
        if len(self._finished) > RECENTLY_FINISHED:
            self._finished.popitem(last=False)

    def _answer_test(self, relay_ts: int, receipt: ReceiptBody) -> None:
        test = self._tests.get(receipt.ref)
        if (
            test is None
            or receipt.sender != test.recipient
            or Stage.DELIVERED not in implies(receipt.stage)
        ):
            return
        del self._tests[receipt.ref]
        hop = self._hop(test.recipient)
        rtt = relay_ts - test.relay_ts
        if rtt <= self._timeout_ms:
            hop.in_time += 1
        else:
            hop.late += 1
            hop.failed_late += test.counts
        hop.rtt_ms.add(rtt)
        # the recipient's clock less the relay's at mid-trip, in half milliseconds
        hop.offset_half_ms.add(2 * receipt.ts - test.relay_ts - relay_ts)

    # ------------------------------------------------------------------ reading

    def figures(self) -> Figures:
        """Every link and hop as of the entries folded in so far."""
        offsets = {party: _offset(hop) for party, hop in self._hops.items()}
        availability = self._availability()
        links = tuple(
            self._link_row(origin, recipient, link, offsets, availability.get(recipient))
            for (origin, recipient), link in sorted(self._links.items())
        )
        hops = tuple(
            HopRow(
                endpoint=endpoint,
                tests=hop.tests,
                answered=hop.answered,
                availability=availability[endpoint],
                rtt_ms=hop.rtt_ms.latency(),
                clock_offset_ms=offsets[endpoint],
                connected=hop.connected,
            )
            for endpoint, hop in sorted(self._hops.items())
        )
        return Figures(links=links, hops=hops, entries=self._entries, as_of=self._now)

    def snapshot(self) -> dict[str, object]:
        """The figures in their JSON-ready form (see :class:`~hotline.figures.rows.Figures`)."""
        return self.figures().as_dict()

    def _availability(self) -> dict[str, float | None]:
        timed_out: Counter[str] = Counter()
        if self._now is not None:
            now = self._now
            timed_out.update(
                test.recipient for test in self._tests.values()
                if test.counts and now - test.relay_ts > self._timeout_ms
            )
        out: dict[str, float | None] = {}
        for endpoint, hop in self._hops.items():
            decided = hop.in_time + hop.failed_late + hop.forgotten + timed_out[endpoint]
            out[endpoint] = hop.in_time / decided if decided else None
        return out

    @staticmethod
    def _link_row(
        origin: str,
        recipient: str,
        link: _Link,
        offsets: dict[str, Number | None],
        availability: float | None,
    ) -> LinkRow:
        # end to end is the raw difference less offset(recipient), plus offset(origin)
        shift = (offsets.get(recipient) or 0) - (offsets.get(origin) or 0)
        counts = {
            kind.value: {status.value: link.counts[kind.value, status.value] for status in Status}
            for kind in ROUTED_TYPES
        }
        return LinkRow(
            origin=origin,
            recipient=recipient,
            messages=link.messages,
            counts=counts,
            delivered=link.delivered,
            acknowledged=link.acknowledged,
            rejected=link.rejected,
            overdue=link.overdue,
            redelivered=link.redelivered,
            delivery_ms=link.delivery_ms.latency(),
            ack_ms=link.ack_ms.latency(),
            e2e_ms=link.raw_e2e_ms.latency(shift=shift),
            lead_time_s=link.lead_ms.latency(scale=1000),
            lead_time_delivered_s=link.lead_delivered_ms.latency(scale=1000),
            availability=availability,
        )

    # ------------------------------------------------------------------ saving

    def state(self) -> dict[str, Any]:
        """Everything folded so far as plain values (MessagePack-ready); see from_state."""
        return {
            "exact": self._exact,
            "entries": self._entries,
            "now": self._now,
            "started_at": self._started_at,
            "links": [
                [origin, recipient, [getattr(link, n) for n in _LINK_COUNTERS],
                 [[kind, status, n] for (kind, status), n in sorted(link.counts.items())],
                 [getattr(link, n).state() for n in _LINK_SAMPLES]]
                for (origin, recipient), link in sorted(self._links.items())
            ],
            "hops": [
                [endpoint, [getattr(hop, n) for n in _HOP_COUNTERS],
                 [getattr(hop, n).state() for n in _HOP_SAMPLES],
                 [hop.connected, hop.joined, hop.back_since_start, hop.session,
                  hop.session_ts]]
                for endpoint, hop in sorted(self._hops.items())
            ],
            "messages": [
                [message_id, m.origin, m.relay_ts, m.ts, m.crossing_at,
                 [[r, a.delivered_at, a.acknowledged_at, a.rejected]
                  for r, a in m.waiting.items()]]
                for message_id, m in self._messages.items()
            ],
            "finished": [[message_id, origin] for message_id, origin in self._finished.items()],
            "tests": [[test_id, t.recipient, t.relay_ts, t.counts]
                      for test_id, t in self._tests.items()],
        }

    @classmethod
    def from_state(cls, network: Network, state: dict[str, Any]) -> LinkFigures:
        """The accumulator ``state()`` described; UsageError if it is not one.

        ``network`` must be the one the state was folded with (the relay
        checks that before it trusts a snapshot).
        """
        try:
            figures = cls(network, exact=bool(state["exact"]))
            figures._entries = int(state["entries"])
            figures._now = state["now"]
            figures._started_at = state["started_at"]
            load = figures._load_samples
            for origin, recipient, counters, counts, samples in state["links"]:
                link = figures._link(origin, recipient)
                for name, value in zip(_LINK_COUNTERS, counters, strict=True):
                    setattr(link, name, int(value))
                link.counts = Counter({(kind, status): int(n) for kind, status, n in counts})
                for name, value in zip(_LINK_SAMPLES, samples, strict=True):
                    setattr(link, name, load(value))
            for endpoint, counters, samples, flags in state["hops"]:
                hop = figures._hop(endpoint)
                for name, value in zip(_HOP_COUNTERS, counters, strict=True):
                    setattr(hop, name, int(value))
                for name, value in zip(_HOP_SAMPLES, samples, strict=True):
                    setattr(hop, name, load(value))
                hop.connected, hop.joined, hop.back_since_start = flags[:3]
                if len(flags) == 5:  # the replica of its session (since relay replicas)
                    hop.session, hop.session_ts = str(flags[3]), int(flags[4])
            for message_id, origin, relay_ts, ts, crossing_at, waiting in state["messages"]:
                figures._messages[message_id] = _Message(origin, relay_ts, ts, crossing_at, {
                    r: _Answers(delivered, acknowledged, rejected)
                    for r, delivered, acknowledged, rejected in waiting
                })
            figures._finished = OrderedDict((i, origin) for i, origin in state["finished"])
            figures._tests = OrderedDict(
                (i, _Test(recipient, relay_ts, counts))
                for i, recipient, relay_ts, counts in state["tests"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not a saved state of the per-link figures: {exc}") from exc
        return figures

    def _load_samples(self, state: list[int]) -> Samples:
        return ExactSamples(state) if self._exact else Histogram.from_state(state)


def _exact_samples(bits: int) -> Samples:
    return ExactSamples()


def _offset(hop: _Hop) -> Number | None:
    """The endpoint's clock offset: the median (nearest rank) of its link tests' offsets."""
    half_ms = hop.offset_half_ms.percentile(50)
    return None if half_ms is None else plain(half_ms / 2)
