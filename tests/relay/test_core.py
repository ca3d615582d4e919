"""The relay's sans-IO core on its own: no sockets, no disk, time as an argument.

One test (or a few) per rule of :mod:`hotline.relay.core`'s docstring, driven only through
its public inputs (``receive``, ``appended``, ``tick``, ``connected``, ``restore``,
``follow``, ``superseded``, ``withdrawn``) and outputs (the actions, the log entries they
ask for, the ``Note`` lines among the actions, ``counters`` and the queries ``owed``,
``state_of``, ``queued_for``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from hotline.auditlog.leaf import EntryKind, LogEvent, decode_entry
from hotline.network import Limits
from hotline.protocol.bodies import (
    AcceptedBody,
    Body,
    LinkTestBody,
    ReceiptBody,
    WarningBody,
)
from hotline.protocol.envelope import body_hash, open_envelope
from hotline.protocol.lifecycle import RecipientState
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    REFUSAL_FLOOD_CLOSE,
    Accepted,
    Deliver,
    RejectedNotice,
    decode_control,
)
from hotline.protocol.vocab import Precedence, Stage
from hotline.relay.core import (
    REFUSALS_BURST,
    RESEND_BACKOFF_MAX,
    TESTS_KEPT_FOR,
    Append,
    Broadcast,
    Close,
    LogLine,
    RelayAction,
    RelayCore,
    Send,
)
from tests.endpoint.builders import Author
from tests.factories import TestNet, make_network

Out = Send | Broadcast | Close  # what the core asks the edge to do besides appending
NOW = 1_764_000_000_000
NET = make_network()
RETRY = NET.network.limits.retry_interval_ms
INTERVAL = NET.network.link_test_interval_ms
FLASH = NET.network.deadlines[Precedence.FLASH]


def _random() -> itertools.count[int]:
    return itertools.count(1)


def new_core(net: TestNet = NET) -> RelayCore:
    counter = _random()
    return RelayCore(net.network, net.keys["relay"], lambda n: next(counter).to_bytes(n, "big"))


@dataclass
class Edge:
    """Plays the relay's edge: every Append becomes durable at the next index, in order;
    every LogLine is kept in ``notes``, as the real edge writes it to the structured log."""

    core: RelayCore
    log: list[bytes] = field(default_factory=list)
    notes: list[LogLine] = field(default_factory=list)

    def run(self, actions: Iterable[RelayAction], now: int) -> list[Out]:
        out: list[Out] = []
        for action in actions:
            if isinstance(action, LogLine):
                self.notes.append(action)
            elif isinstance(action, Append):
                index = len(self.log)
                self.log.append(action.entry)
                out.extend(self.run(self.core.appended(action.token, index, now), now))
            else:
                out.append(action)
        return out

    def connect(self, *parties: str, now: int = NOW) -> list[Out]:
        return [s for p in parties for s in self.run(self.core.connected(p, now), now)]

    def send(self, party: str, frame: bytes, now: int = NOW) -> list[Out]:
        return self.run(self.core.receive(party, frame, now), now)

    def tick(self, now: int) -> list[Out]:
        return self.run(self.core.tick(now), now)

    def events(self, kind: EntryKind) -> list[LogEvent]:
        entries = [decode_entry(entry) for entry in self.log]
        return [e.event for e in entries if e.event is not None and e.kind is kind]

    def bodies(self) -> list[Body]:
        entries = [decode_entry(entry) for entry in self.log]
        return [
            open_envelope(e.envelope, NET.network).body for e in entries if e.envelope is not None
        ]


def sent(actions: list[RelayAction]) -> list[Out]:
    """The actions besides notes, which must all be sends (no entry to append)."""
    out = [a for a in actions if isinstance(a, Out)]
    assert len(out) == len([a for a in actions if not isinstance(a, LogLine)])
    return out


def controls(sends: Sequence[Out], party: str) -> list[object]:
    return [decode_control(s.data) for s in sends if isinstance(s, Send) and s.party == party]


def delivered(sends: Sequence[Out], party: str, *, tests: bool = False) -> list[Body]:
    """The bodies delivered to ``party``, in order (link tests only if asked for)."""
    out = []
    for control in controls(sends, party):
        if isinstance(control, Deliver):
            body = open_envelope(control.frame, NET.network).body
            if tests or not isinstance(body, LinkTestBody):
                out.append(body)
    return out


def accepted(sends: Sequence[Out], party: str) -> list[AcceptedBody]:
    out = []
    for control in controls(sends, party):
        if isinstance(control, Accepted):
            body = open_envelope(control.frame, NET.network).body
            assert isinstance(body, AcceptedBody)
            out.append(body)
    return out


def receipt(
    author: Author, sender: str, message: Body, stage: Stage, ts: int = NOW
) -> bytes:
    """``sender``'s signed receipt of ``stage`` for ``message``."""
    template = ReceiptBody(
        id=author.ids(ts), sender=sender, ts=ts, seq=author.seqs.get(sender, 0) + 1,
        kid=NET.keys[sender].public.kid, ref=message.id,
        hash=body_hash(encode_body(message)), stage=stage,
        reason="refused" if stage is Stage.REJECTED else None,
    )
    author.seqs[sender] = template.seq
    return NET.seal(template)


def warned(
    edge: Edge, author: Author, to: tuple[str, ...] = ("LT",),
    precedence: Precedence = Precedence.FLASH, now: int = NOW,
) -> tuple[WarningBody, list[Out]]:
    """BY sends a warning; returns its body and what the relay sent."""
    body = author.warning(sender="BY", to=to, ts=now, precedence=precedence)
    return body, edge.send("BY", NET.seal(body), now)


# ----------------------------------------------------------------------------- rule 1


def test_nothing_is_accepted_before_it_is_in_the_log() -> None:
    """receive only asks for an append; the accepted receipt comes from appended, with the index."""
    core, author = new_core(), Author(NET)
    body = author.warning(sender="BY", to=("LT",))
    actions = core.receive("BY", NET.seal(body), NOW)
    assert [type(a) for a in actions] == [Append]
    (append,) = actions
    assert isinstance(append, Append)
    assert append.envelope is not None
    assert append.envelope.body == body
    sends = core.appended(append.token, 7, NOW + 3)
    (receipt_body,) = accepted([s for s in sends if isinstance(s, Send)], "BY")
    assert (receipt_body.ref, receipt_body.index, receipt_body.ts) == (body.id, 7, NOW)
    assert core.counters.accepted == {"warning": 1}
    assert [n.event for n in sends if isinstance(n, LogLine)] == ["envelope_accepted"]


# ----------------------------------------------------------------------------- rule 2


def test_messages_go_out_most_urgent_first_then_in_log_order() -> None:
    """A backlog goes flash, immediate, priority, routine; log order within a precedence."""
    edge, author = Edge(new_core()), Author(NET)
    order = [Precedence.ROUTINE, Precedence.FLASH, Precedence.PRIORITY, Precedence.FLASH,
             Precedence.IMMEDIATE]
    bodies = [warned(edge, author, precedence=p, now=NOW + i)[0] for i, p in enumerate(order)]
    expected = [bodies[1].id, bodies[3].id, bodies[4].id, bodies[2].id, bodies[0].id]
    assert edge.core.queued_for("LT") == tuple(expected)
    sends = edge.connect("LT", now=NOW + 10)
    assert [b.id for b in delivered(sends, "LT")] == expected


def test_an_online_recipient_gets_a_message_as_soon_as_it_is_logged() -> None:
    """The recipient gets the message, then the sender its accepted receipt (signing it
    need not delay the forward)."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body, sends = warned(edge, author)
    assert [s.party for s in sends if isinstance(s, Send)] == ["LT", "BY"]
    assert delivered(sends, "LT") == [body]
    assert edge.core.owed(body.id) == {"LT": {Stage.DELIVERED, Stage.ACKNOWLEDGED}}


def test_the_accepted_receipt_comes_before_the_appends_a_forward_asks_for() -> None:
    """A message logged while an older one's resend is due: both go to LT, then BY's
    accepted receipt, and only then the resend's redelivered entry is asked for (the edge
    writes its notes at an append: they must not delay the receipt)."""
    core, author = new_core(), Author(NET)
    edge = Edge(core)
    edge.connect("BY", "LT")
    warned(edge, author, now=NOW)
    later = author.warning(sender="BY", to=("LT",), ts=NOW + RETRY)
    (append,) = core.receive("BY", NET.seal(later), NOW + RETRY)
    assert isinstance(append, Append)
    actions = core.appended(append.token, len(edge.log), NOW + RETRY)
    kinds = [(type(a).__name__, a.party) if isinstance(a, Send) else type(a).__name__
             for a in actions if not isinstance(a, LogLine)]
    assert kinds == [("Send", "LT"), ("Send", "LT"), ("Send", "BY"), "Append"]


def test_an_undelivered_message_is_resent_with_the_same_bytes_each_retry_interval() -> None:
    """No delivered receipt: the same frame goes again once the retry interval has passed."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    _, first = warned(edge, author)
    assert delivered(edge.tick(NOW + RETRY - 1), "LT") == []
    again = edge.tick(NOW + RETRY)
    assert controls(again, "LT") == controls(first, "LT")
    (redelivered,) = edge.events(EntryKind.REDELIVERED)
    assert (redelivered.fields["recipient"], redelivered.fields["attempt"]) == ("LT", 2)
    assert edge.core.counters.redeliveries == 1


def test_each_owed_message_is_resent_when_its_own_retry_interval_is_over() -> None:
    """A silent recipient that stays connected: every message goes again once its own
    interval is over, most urgent first then log order; none sooner, none answered; the
    next wait is twice as long; a new session sends everything owed at once and the
    intervals start again from one retry interval."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    m1, _ = warned(edge, author, now=NOW)
    m2, _ = warned(edge, author, precedence=Precedence.ROUTINE, now=NOW + 10)
    m3, _ = warned(edge, author, now=NOW + 20)
    m4, _ = warned(edge, author, now=NOW + 30)
    edge.send("LT", receipt(author, "LT", m4, Stage.DELIVERED, NOW + 40), NOW + 40)
    assert delivered(edge.tick(NOW + RETRY - 1), "LT") == []
    assert delivered(edge.tick(NOW + RETRY), "LT") == [m1]
    assert delivered(edge.tick(NOW + RETRY + 25), "LT") == [m3, m2]
    assert delivered(edge.tick(NOW + RETRY + 35), "LT") == []  # m4 was answered
    assert delivered(edge.tick(3 * RETRY + NOW - 1), "LT") == []
    assert delivered(edge.tick(3 * RETRY + NOW), "LT") == [m1]
    assert delivered(edge.tick(3 * RETRY + NOW + 25), "LT") == [m3, m2]
    edge.run(edge.core.disconnected("LT", "closed 1006", NOW + 3 * RETRY + 30),
             NOW + 3 * RETRY + 30)
    back = NOW + 3 * RETRY + 40
    assert delivered(edge.connect("LT", now=back), "LT") == [m1, m3, m2]
    assert delivered(edge.tick(back + RETRY - 1), "LT") == []
    assert delivered(edge.tick(back + RETRY), "LT") == [m1, m3, m2]


def test_resends_to_a_session_that_answers_nothing_back_off_to_a_bound() -> None:
    """One message to a recipient that never answers: resent after 1, 2, 4 and 8 retry
    intervals, then every RESEND_BACKOFF_MAX intervals, each resend a redelivered entry
    with the next attempt number; not a resend every retry interval for ever."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body, _ = warned(edge, author, now=NOW)
    resent_at = [k for k in range(1, 80) if delivered(edge.tick(NOW + k * RETRY), "LT")]
    assert RESEND_BACKOFF_MAX == 16
    assert resent_at == [1, 3, 7, 15, 31, 47, 63, 79]
    redelivered = edge.events(EntryKind.REDELIVERED)
    assert [e.fields["attempt"] for e in redelivered] == list(range(2, 10))
    assert edge.core.owed(body.id) == {"LT": {Stage.DELIVERED, Stage.ACKNOWLEDGED}}


def test_a_delivered_receipt_stops_the_resends() -> None:
    """Once the recipient's delivered receipt is logged, only the acknowledgement is owed."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    body, _ = warned(edge, author)
    edge.send("LT", receipt(author, "LT", body, Stage.DELIVERED, NOW + 50), NOW + 50)
    assert delivered(edge.tick(NOW + 10 * RETRY), "LT") == []
    assert edge.core.owed(body.id) == {"LT": {Stage.ACKNOWLEDGED}}
    assert edge.core.state_of(body.id, "LT") is RecipientState.DELIVERED
    assert edge.core.pending_count() == 0


def test_an_acknowledgement_alone_settles_delivery_too() -> None:
    """An acknowledged receipt with no delivered one stops resends and the delivered deadline."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    body, _ = warned(edge, author)
    edge.send("LT", receipt(author, "LT", body, Stage.ACKNOWLEDGED, NOW + 50), NOW + 50)
    assert edge.core.owed(body.id) == {}
    assert edge.core.queued_for("LT") == ()
    assert delivered(edge.tick(NOW + FLASH.acknowledged_ms), "LT") == []
    assert edge.events(EntryKind.OVERDUE) == []


def test_a_reconnecting_recipient_gets_its_backlog_at_once() -> None:
    """A disconnect is logged; on reconnect what is owed is sent without waiting for a retry."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    body, _ = warned(edge, author)
    edge.run(edge.core.disconnected("LT", "closed", NOW + 10), NOW + 10)
    assert delivered(edge.tick(NOW + RETRY), "LT") == []
    assert delivered(edge.connect("LT", now=NOW + RETRY + 1), "LT") == [body]
    kinds = [e.fields["party"] for e in edge.events(EntryKind.DISCONNECTED)]
    assert kinds == ["LT"]
    assert edge.core.online == {"LT"}


def test_a_star_message_is_owed_by_every_linked_endpoint() -> None:
    """``*`` reaches every endpoint linked to the sender, each with its own state."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author, to="*")  # type: ignore[arg-type]
    assert set(edge.core.owed(body.id)) == {"LT", "LV", "EE", "PL"}


# ----------------------------------------------------------------------------- rule 3


def test_a_resent_message_gets_its_original_receipt_and_is_not_delivered_again() -> None:
    """Same id, same body: the byte-identical accepted receipt, no new entry, no delivery."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body = author.warning(sender="BY", to=("LT",))
    first = edge.send("BY", NET.seal(body))
    size = len(edge.log)
    again = edge.send("BY", NET.seal(body), NOW + 100)
    assert controls(again, "BY") == controls(first, "BY")[:1]
    assert delivered(again, "LT") == []
    assert len(edge.log) == size
    assert edge.core.counters.duplicates == 1
    assert edge.notes[-1].event == "duplicate_answered"


def test_a_resend_while_the_first_copy_is_being_logged_is_answered_once_it_is() -> None:
    """Two copies before the append completes: one entry, and each copy gets the receipt."""
    core, author = new_core(), Author(NET)
    frame = NET.seal(author.warning(sender="BY", to=("LT",)))
    (append,) = core.receive("BY", frame, NOW)
    (note,) = core.receive("BY", frame, NOW + 1)
    assert isinstance(note, LogLine)
    assert note.event == "duplicate_answered"
    assert isinstance(append, Append)
    sends = core.appended(append.token, 0, NOW + 2)
    answers = [s for s in sends if isinstance(s, Send) and s.party == "BY"]
    assert len(answers) == 2
    assert answers[0] == answers[1]


def test_the_same_id_with_another_body_is_a_replay() -> None:
    """A known id with a different body is rejected as replay, naming the id, and not logged."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author)
    size = len(edge.log)
    other = replace(body, seq=body.seq + 1, expires=body.expires + 1)
    (notice,) = controls(edge.send("BY", NET.seal(other), NOW + 5), "BY")
    assert isinstance(notice, RejectedNotice)
    assert (notice.ref, notice.code) == (body.id, "replay")
    assert len(edge.log) == size
    assert edge.core.counters.rejected == {"replay": 1}


def test_bytes_that_are_no_envelope_are_rejected_with_no_ref() -> None:
    """Garbage is answered with bad_frame and an empty ref, and changes nothing."""
    edge = Edge(new_core())
    (notice,) = controls(edge.send("BY", b"\x93not an envelope"), "BY")
    assert isinstance(notice, RejectedNotice)
    assert (notice.ref, notice.code) == (b"", "bad_frame")
    assert edge.log == []
    assert edge.notes[-1].event == "envelope_rejected"


# ----------------------------------------------------------------------------- rule 4


def test_missed_deadlines_are_logged_once_per_message_recipient_and_stage() -> None:
    """A silent recipient: one overdue for delivered at its deadline, one for acknowledged."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author, to=("LT", "LV"))
    edge.send("LV", receipt(author, "LV", body, Stage.DELIVERED, NOW + 10), NOW + 10)
    edge.tick(NOW + FLASH.delivered_ms - 1)
    assert edge.events(EntryKind.OVERDUE) == []
    edge.tick(NOW + FLASH.delivered_ms)
    edge.tick(NOW + FLASH.delivered_ms + 1)
    edge.tick(NOW + FLASH.acknowledged_ms)
    edge.tick(NOW + 2 * FLASH.acknowledged_ms)
    late = [(e.fields["recipient"], e.fields["stage"], e.fields["deadline"])
            for e in edge.events(EntryKind.OVERDUE)]
    assert late == [
        ("LT", "delivered", NOW + FLASH.delivered_ms),
        ("LT", "acknowledged", NOW + FLASH.acknowledged_ms),
        ("LV", "acknowledged", NOW + FLASH.acknowledged_ms),
    ]
    assert edge.core.counters.overdue == {"delivered": 1, "acknowledged": 2}


def test_a_rejected_receipt_ends_every_deadline() -> None:
    """A recipient that rejects owes nothing more: no resend, no overdue, nothing held."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    body, _ = warned(edge, author)
    edge.send("LT", receipt(author, "LT", body, Stage.REJECTED, NOW + 10), NOW + 10)
    assert edge.core.owed(body.id) == {}
    assert delivered(edge.tick(NOW + FLASH.acknowledged_ms), "LT") == []
    assert edge.events(EntryKind.OVERDUE) == []


def test_overdue_events_in_the_log_are_not_logged_again_after_a_restart() -> None:
    """A relay rebuilt from its log remembers which deadlines it already reported."""
    edge, author = Edge(new_core()), Author(NET)
    warned(edge, author)
    edge.tick(NOW + FLASH.delivered_ms)
    assert len(edge.events(EntryKind.OVERDUE)) == 1
    restarted = Edge(new_core(), list(edge.log))
    for index, entry in enumerate(edge.log):
        restarted.core.restore(index, entry)
    restarted.tick(NOW + FLASH.delivered_ms + 1)
    assert len(restarted.events(EntryKind.OVERDUE)) == 1


def test_deadlines_falling_due_in_one_tick_are_reported_in_log_order() -> None:
    """A ROUTINE warning logged first and a FLASH one logged later, both late at one tick:
    their overdue events follow the log's order, not the order of their deadlines."""
    edge, author = Edge(new_core()), Author(NET)
    routine, _ = warned(edge, author, precedence=Precedence.ROUTINE)
    flash, _ = warned(edge, author, now=NOW + 1)
    late = NOW + NET.network.deadlines[Precedence.ROUTINE].delivered_ms
    edge.tick(late)
    refs = [e.fields["ref"] for e in edge.events(EntryKind.OVERDUE)]
    assert refs == [routine.id, flash.id, flash.id]  # FLASH: delivered and acknowledged


def test_answered_messages_leave_no_deadline_work_behind() -> None:
    """Thousands of warnings answered in full before their deadlines: the deadline checks
    still scheduled shrink back to the messages still owed, and the one unanswered warning
    is still reported late."""
    unlimited = make_network(limits=Limits(messages_per_minute=1_000_000))
    edge, author = Edge(new_core(unlimited)), Author(NET)
    silent, _ = warned(edge, author)
    for n in range(1, 1500):
        body, _ = warned(edge, author, now=NOW + n)
        for stage in (Stage.DELIVERED, Stage.ACKNOWLEDGED):
            edge.send("LT", receipt(author, "LT", body, stage, NOW + n), NOW + n)
    assert edge.core.scheduled_looks <= 2 + 4 + 1024  # the silent one's, within slack
    edge.tick(NOW + FLASH.delivered_ms)
    assert [e.fields["ref"] for e in edge.events(EntryKind.OVERDUE)] == [silent.id]
    assert edge.core.scheduled_looks <= 4 + 1024  # the one owed warning's, within slack
    edge.tick(NOW + FLASH.acknowledged_ms)
    stages = [e.fields["stage"] for e in edge.events(EntryKind.OVERDUE)]
    assert stages == ["delivered", "acknowledged"]


def test_a_replay_keeps_the_deadline_checks_in_proportion_to_what_is_owed() -> None:
    """A core rebuilt from a log of 1,500 warnings answered in full schedules no deadline
    check for each of them until its first tick: what it keeps is bounded by what is owed."""
    unlimited = make_network(limits=Limits(messages_per_minute=1_000_000))
    edge, author = Edge(new_core(unlimited)), Author(NET)
    for n in range(1500):
        body, _ = warned(edge, author, now=NOW + n)
        for stage in (Stage.DELIVERED, Stage.ACKNOWLEDGED):
            edge.send("LT", receipt(author, "LT", body, stage, NOW + n), NOW + n)
    restarted = new_core(unlimited)
    for index, entry in enumerate(edge.log):
        restarted.restore(index, entry)
    assert restarted.owed(body.id) == {}
    assert restarted.scheduled_looks <= 1024


def test_a_link_test_logged_twice_is_forgotten_once_without_failing_the_tick() -> None:
    """A log that holds one link test twice (an older log, or a publish retried after the
    stream's duplicate window) is replayed; the tick that forgets the test does so once and
    goes on, reporting nothing overdue."""
    edge = Edge(new_core())
    edge.connect("LT")
    edge.tick(NOW + INTERVAL)
    tests = [entry for entry in edge.log if b"test" in entry]
    assert tests
    log = [*edge.log, tests[0]]
    restarted = Edge(new_core(), list(log))
    for index, entry in enumerate(log):
        restarted.core.restore(index, entry)
    late = NOW + 2 * INTERVAL + TESTS_KEPT_FOR * NET.network.link_test_timeout_ms + 1
    restarted.tick(late)
    assert restarted.events(EntryKind.OVERDUE) == []


# ----------------------------------------------------------------------------- rule 5


def _one_interval(edge: Edge, start: int = NOW) -> list[Out]:
    """Ticks spanning one link-test interval from ``start``."""
    return [*edge.tick(start), *edge.tick(start + INTERVAL - 1)]


def _tests(edge: Edge) -> list[LinkTestBody]:
    return [b for b in edge.bodies() if isinstance(b, LinkTestBody)]


def test_link_tests_are_logged_for_everyone_and_sent_to_the_online() -> None:
    """Each interval a signed test per endpoint is logged; only online ones are sent theirs."""
    edge = Edge(new_core())
    edge.connect("LT")
    sends = _one_interval(edge)
    assert sorted(t.to[0] for t in _tests(edge)) == sorted(NET.network.endpoints)
    assert {s.party for s in sends if isinstance(s, Send)} == {"LT"}
    assert edge.core.counters.link_tests == len(NET.network.endpoints)


def test_link_tests_are_spread_over_the_interval() -> None:
    """Endpoints are tested at different moments, not all in one burst."""
    edge = Edge(new_core())
    edge.tick(NOW)
    assert len(_tests(edge)) == 1
    assert len(NET.network.endpoints) > 1


def test_link_test_slots_are_aligned_to_absolute_time() -> None:
    """Two replicas agree on every endpoint's slot start, whenever each started."""
    a, b = new_core(), new_core()
    Edge(b).tick(NOW + 1234)
    for party in NET.network.endpoints:
        for ts in (NOW, NOW + 777, NOW + 3 * INTERVAL + 4_321):
            start = a.test_slot_start(party, ts)
            assert start == b.test_slot_start(party, ts)
            assert start <= ts < start + INTERVAL
            assert a.test_slot_start(party, start + INTERVAL) == start + INTERVAL


def test_a_link_test_is_never_queued_with_warnings() -> None:
    """A test goes straight out when logged, ahead of a warning still being resent, never queued."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    body, _ = warned(edge, author)
    sends = _one_interval(edge, NOW + 1)
    tests = [b for b in delivered(sends, "LT", tests=True) if isinstance(b, LinkTestBody)]
    assert len(tests) == 1
    assert edge.core.queued_for("LT") == (body.id,)
    assert edge.core.owed(tests[0].id) == {"LT": {Stage.DELIVERED}}


def test_an_answered_link_test_is_released_and_its_receipt_not_forwarded() -> None:
    """Once its receipt is logged nothing is owed for a test, and nobody is sent the receipt."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    (test,) = [
        b for b in delivered(_one_interval(edge), "LT", tests=True) if isinstance(b, LinkTestBody)
    ]
    sends = edge.send("LT", receipt(author, "LT", test, Stage.DELIVERED, NOW + 5), NOW + 5)
    assert edge.core.owed(test.id) == {}
    assert [s for s in sends if isinstance(s, Send) and s.party != "LT"] == []


def test_unanswered_link_tests_are_forgotten_after_ten_timeouts() -> None:
    """Tests to endpoints that never answer do not pile up in memory."""
    edge = Edge(new_core())
    _one_interval(edge)
    first = _tests(edge)
    assert all(edge.core.owed(t.id) for t in first)
    later = NOW + INTERVAL + 10 * NET.network.link_test_timeout_ms
    edge.tick(later)
    assert [t for t in first if edge.core.owed(t.id)] == []


def test_a_withdrawn_link_test_is_signed_again_while_its_slot_lasts() -> None:
    """A test the log refused is signed again at the next tick; a logged one is not."""
    core = new_core()
    (first,) = [a for a in core.tick(NOW) if isinstance(a, Append)]
    assert core.tick(NOW + 1) == []
    core.withdrawn(first.token)
    core.withdrawn(first.token)  # a second answer for the same token changes nothing
    (again,) = [a for a in core.tick(NOW + 2) if isinstance(a, Append)]
    assert again.envelope is not None
    assert first.envelope is not None
    assert again.envelope.body.to == first.envelope.body.to  # type: ignore[union-attr]
    assert again.envelope.body.id != first.envelope.body.id
    assert core.last_test_seq >= again.envelope.body.seq


def test_a_slot_another_replica_already_logged_is_skipped() -> None:
    """A replica following the shared log signs no test for a slot that already has one."""
    leader, follower = Edge(new_core()), Edge(new_core())
    leader.tick(NOW)
    for index, entry in enumerate(leader.log):
        follower.core.follow(index, entry, NOW)
    assert follower.core.tick(NOW + 1) == []


# ----------------------------------------------------------------------------- receipts


def test_receipts_go_back_to_the_sender_and_are_kept_for_its_reconnect() -> None:
    """A receipt reaches the online sender at once, and is resent after a later ``since``."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY")
    body, _ = warned(edge, author)
    sends = edge.send("LT", receipt(author, "LT", body, Stage.DELIVERED, NOW + 5), NOW + 5)
    (deliver,) = [c for c in controls(sends, "BY") if isinstance(c, Deliver)]
    forwarded = open_envelope(deliver.frame, NET.network).body
    assert isinstance(forwarded, ReceiptBody)
    assert forwarded.ref == body.id
    assert edge.notes[-1].event == "receipt_forwarded"
    again = sent(edge.core.resend_receipts("BY", since=deliver.index - 1))
    assert controls(again, "BY") == [deliver]
    assert edge.core.resend_receipts("BY", since=deliver.index) == []


def test_a_receipt_for_an_offline_sender_waits_for_its_reconnect() -> None:
    """An offline sender is sent nothing; the receipt is in what it asks for after ``since``."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author)
    sends = edge.send("LT", receipt(author, "LT", body, Stage.ACKNOWLEDGED, NOW + 5), NOW + 5)
    assert controls(sends, "BY") == []
    (kept,) = sent(edge.core.resend_receipts("BY", since=-1))
    assert isinstance(kept, Send)
    assert kept.party == "BY"


def test_a_receipt_the_lifecycle_no_longer_expects_is_refused_and_not_logged() -> None:
    """After an acknowledgement, a late delivered or a contradicting rejected receipt: replay."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body, _ = warned(edge, author)
    edge.send("LT", receipt(author, "LT", body, Stage.ACKNOWLEDGED, NOW + 5), NOW + 5)
    size = len(edge.log)
    for stage in (Stage.DELIVERED, Stage.REJECTED):
        sends = edge.send("LT", receipt(author, "LT", body, stage, NOW + 6), NOW + 6)
        (notice,) = controls(sends, "LT")
        assert isinstance(notice, RejectedNotice)
        assert notice.code == "replay"
        assert controls(sends, "BY") == []
    assert len(edge.log) == size
    assert edge.core.state_of(body.id, "LT") is None  # nothing held for it any more


# ----------------------------------------------------------------------------- the shared log


def test_the_pending_set_is_rebuilt_from_the_log() -> None:
    """A relay restored from its log delivers what was owed, and not what was answered."""
    edge, author = Edge(new_core()), Author(NET)
    owed, _ = warned(edge, author, to=("LT",))
    answered, _ = warned(edge, author, to=("LV",), now=NOW + 1)
    edge.send("LV", receipt(author, "LV", answered, Stage.DELIVERED, NOW + 2), NOW + 2)
    restarted = Edge(new_core(), list(edge.log))
    for index, entry in enumerate(edge.log):
        restarted.core.restore(index, entry, unsafe_signed_root_covers=index % 2 == 0)
    assert restarted.core.size == len(edge.log)
    sends = restarted.connect("LT", "LV", now=NOW + 10)
    assert delivered(sends, "LT") == [owed]
    assert delivered(sends, "LV") == []


def test_an_entry_another_replica_logged_is_applied_as_if_ours() -> None:
    """Following a peer's entries: its message reaches recipients connected here, its receipt
    the sender connected here."""
    leader, follower, author = Edge(new_core()), Edge(new_core()), Author(NET)
    follower.connect("LT", "BY")
    body, _ = warned(leader, author)
    leader.send("LT", receipt(author, "LT", body, Stage.DELIVERED, NOW + 5), NOW + 5)
    sends: list[object] = []
    for index, entry in enumerate(leader.log):
        actions, _, _ = follower.core.follow(index, entry, NOW + 6)
        sends.extend(follower.run(actions, NOW + 6))
    typed = [s for s in sends if isinstance(s, Out)]
    assert delivered(typed, "LT") == [body]
    assert [type(c) for c in controls(typed, "BY")] == [Deliver]
    assert follower.core.owed(body.id) == {"LT": {Stage.ACKNOWLEDGED}}


def test_a_message_another_replica_logged_first_gets_its_original_receipt() -> None:
    """Superseded: the sender is answered with the receipt the other replica's entry makes."""
    leader, follower, author = Edge(new_core()), Edge(new_core()), Author(NET)
    frame = NET.seal(author.warning(sender="BY", to=("LT",)))
    (ours,) = follower.core.receive("BY", frame, NOW)
    original = leader.send("BY", frame, NOW)
    for index, entry in enumerate(leader.log):
        follower.core.follow(index, entry, NOW + 1)
    assert isinstance(ours, Append)
    actions = follower.core.superseded(ours.token)
    assert controls(sent(actions), "BY") == controls(original, "BY")[:1]
    (note,) = [a for a in actions if isinstance(a, LogLine)]
    assert (note.event, note.fields["replica"]) == ("duplicate_answered", "other")
    assert follower.core.superseded(ours.token) == []


def test_appended_for_a_token_it_did_not_ask_for_changes_nothing() -> None:
    """An index for an unknown token only moves the size on."""
    core = new_core()
    assert core.appended(12345, 9, NOW) == []
    assert core.size == 10


# ----------------------------------------------------------------------------- rule 4a


def test_a_flood_of_refused_frames_closes_the_session_instead_of_signing() -> None:
    """Refusals are signed up to the burst; the next one closes the session with its code."""
    edge = Edge(new_core())
    answers = [
        edge.send("BY", b"\x93garbage" + n.to_bytes(4, "big"))[0] for n in range(REFUSALS_BURST)
    ]
    assert all(isinstance(a, Send) for a in answers)
    (closed,) = edge.send("BY", b"\x93one too many")
    assert isinstance(closed, Close)
    assert (closed.party, closed.code) == ("BY", REFUSAL_FLOOD_CLOSE)
    assert edge.core.counters.refusal_floods == 1
    assert edge.log == []


# ----------------------------------------------------------------------------- snapshots


def test_a_snapshot_gives_back_what_is_owed_to_whom() -> None:
    """A core loaded from another's state owes, queues and sends the same messages."""
    edge, author = Edge(new_core()), Author(NET)
    first, _ = warned(edge, author, to=("LT", "LV"))
    second, _ = warned(edge, author, to=("LT",), precedence=Precedence.ROUTINE, now=NOW + 1)
    edge.send("LV", receipt(author, "LV", first, Stage.DELIVERED, NOW + 2), NOW + 2)
    edge.tick(NOW + FLASH.delivered_ms)
    loaded = Edge(new_core(), list(edge.log))
    loaded.core.load_state(edge.core.state())
    for message in (first, second):
        assert loaded.core.owed(message.id) == edge.core.owed(message.id)
    assert loaded.core.state_of(first.id, "LV") is RecipientState.DELIVERED
    assert loaded.core.queued_for("LT") == (first.id, second.id)
    loaded.tick(NOW + FLASH.delivered_ms + 1)
    assert len(loaded.events(EntryKind.OVERDUE)) == len(edge.events(EntryKind.OVERDUE))
    assert delivered(loaded.connect("LT", now=NOW + 10), "LT") == [first, second]


def test_a_snapshot_keeps_the_seq_of_the_last_logged_envelope_not_of_one_on_its_way() -> None:
    """An envelope admitted but not logged when the state is saved may never be logged (the
    relay stops, the store fails): a core loaded from that state takes its resend."""
    edge, author = Edge(new_core()), Author(NET)
    logged, _ = warned(edge, author)
    pending = author.warning(sender="BY", to=("LT",), ts=NOW + 1)
    assert [type(a) for a in edge.core.receive("BY", NET.seal(pending), NOW + 1)] == [Append]
    assert edge.core.state()["last_seq"] == {"BY": logged.seq}
    loaded = Edge(new_core(), list(edge.log))
    loaded.core.load_state(edge.core.state())
    assert [type(a) for a in loaded.core.receive("BY", NET.seal(pending), NOW + 2)] == [Append]


def test_a_snapshot_from_before_the_lifecycle_table_reads_an_acknowledgement_as_delivery() -> None:
    """Listed as owing delivery but not acknowledgement: it acknowledged, so it owes nothing."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author, to=("LT", "LV"))
    state = edge.core.state()
    (message,) = state["messages"]
    message[3], message[4] = ["LT", "LV"], ["LV"]  # LT: acknowledged with no delivered receipt
    loaded = new_core()
    loaded.load_state(state)
    assert loaded.owed(body.id) == {"LV": {Stage.DELIVERED, Stage.ACKNOWLEDGED}}
    assert loaded.queued_for("LT") == ()


def test_a_receipt_for_a_message_not_applied_yet_is_recognised_as_such() -> None:
    """A receipt whose ref the core has not applied is 'unseen' until the test is logged."""
    edge = Edge(new_core())
    edge.connect("LT")
    asked = [*edge.core.tick(NOW), *edge.core.tick(NOW + INTERVAL - 1)]
    tests = [a for a in asked if isinstance(a, Append) and a.envelope is not None]
    test = next(
        t.envelope.body for t in tests
        if t.envelope is not None and isinstance(t.envelope.body, LinkTestBody)
        and t.envelope.body.to == ("LT",)
    )
    frame = receipt(Author(NET), "LT", test, Stage.DELIVERED)
    assert edge.core.answers_unseen(frame)  # signed, not yet logged
    edge.run(tests, NOW)
    assert not edge.core.answers_unseen(frame)
    assert not edge.core.answers_unseen(b"\x93\x01")  # not an envelope: left to admission


def test_a_session_the_edge_refused_is_counted_and_counters_change_only_inside() -> None:
    """session_refused counts with the refused frames by code; counters is a copy to read."""
    edge = Edge(new_core())
    edge.send("BY", b"\x93not an envelope")
    edge.core.session_refused("bad_signature")
    edge.core.session_refused("bad_signature")
    read = edge.core.counters
    assert read.rejected == {"bad_frame": 1, "bad_signature": 2}
    read.rejected["bad_signature"] = 0
    read.duplicates = 7
    assert edge.core.counters.rejected["bad_signature"] == 2
    assert edge.core.counters.duplicates == 0


# ----------------------------------------------------------------------------- a failed append


def _busy(sends: Sequence[Out], party: str) -> list[RejectedNotice]:
    notices = [c for c in controls(sends, party) if isinstance(c, RejectedNotice)]
    assert [n.code for n in notices] == ["busy"] * len(notices)
    return notices


def test_a_failed_append_answers_everyone_waiting_busy_and_the_resend_is_logged_once() -> None:
    """An append the store failed is forgotten: its sender and a resend waiting on it are
    answered busy, nothing is delivered; resent, it is logged once and delivered once."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body = author.warning(sender="BY", to=("LT",))
    frame = NET.seal(body)
    (append,) = edge.core.receive("BY", frame, NOW)
    assert isinstance(append, Append)
    assert [a.event for a in edge.core.receive("BY", frame, NOW + 1)  # type: ignore[union-attr]
            ] == ["duplicate_answered"]
    failed = sent(edge.core.append_failed(append.token, 500, "the disk is full", NOW + 2))
    notices = _busy(failed, "BY")
    assert [n.ref for n in notices] == [body.id, body.id]  # the sender and its resend
    assert controls(failed, "LT") == []
    assert edge.core.append_failed(append.token, 500, "again", NOW + 3)[0] == LogLine(
        "log_entry_lost", {"token": append.token, "reason": "again"})  # told once, kept once
    again = edge.send("BY", frame, NOW + 600)
    (receipt_body,) = accepted(again, "BY")
    assert receipt_body.ref == body.id
    assert delivered(again, "LT") == [body]
    assert [b.id for b in edge.bodies()] == [body.id]
    assert edge.core.counters.rejected == {"busy": 2}


def test_after_a_failed_append_the_sender_may_resend_in_seq_order() -> None:
    """Two warnings in flight both fail (the store stops at its first failure): the sender's
    seq goes back, so both are logged when resent in order, not refused as replays."""
    edge, author = Edge(new_core()), Author(NET)
    first = author.warning(sender="BY", to=("LT",))
    second = author.warning(sender="BY", to=("LT",))
    appends = [a for body in (first, second)
               for a in edge.core.receive("BY", NET.seal(body), NOW)]
    for append in appends:
        assert isinstance(append, Append)
        _busy(sent(edge.core.append_failed(append.token, 500, "write failed", NOW + 1)), "BY")
    sends = [s for body in (first, second) for s in edge.send("BY", NET.seal(body), NOW + 600)]
    assert [r.ref for r in accepted(sends, "BY")] == [first.id, second.id]
    assert [b.id for b in edge.bodies()] == [first.id, second.id]


def test_a_receipt_whose_append_failed_is_owed_again() -> None:
    """A delivered receipt the store failed is answered busy and taken when sent again, not
    refused as a receipt already admitted."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY")
    body, _ = warned(edge, author)
    frame = receipt(author, "LT", body, Stage.DELIVERED, NOW + 5)
    (append,) = edge.core.receive("LT", frame, NOW + 5)
    assert isinstance(append, Append)
    _busy(sent(edge.core.append_failed(append.token, 500, "write failed", NOW + 6)), "LT")
    assert edge.core.state_of(body.id, "LT") is RecipientState.ACCEPTED
    sends = edge.send("LT", frame, NOW + 700)
    assert accepted(sends, "LT")[0].ref != body.id  # the receipt's own id
    assert edge.core.state_of(body.id, "LT") is RecipientState.DELIVERED


def test_a_link_test_whose_append_failed_is_signed_again_and_answered_to_nobody() -> None:
    """The relay's own link test: no one waits on it; its slot is signed again next tick."""
    core = new_core()
    (first,) = [a for a in core.tick(NOW) if isinstance(a, Append)]
    (note,) = core.append_failed(first.token, 500, "write failed", NOW + 1)
    assert isinstance(note, LogLine)
    assert note.event == "link_test_not_logged"
    (again,) = [a for a in core.tick(NOW + 2) if isinstance(a, Append)]
    assert again.envelope is not None
    assert first.envelope is not None
    assert again.envelope.body.to == first.envelope.body.to  # type: ignore[union-attr]


def test_an_overdue_entry_whose_append_failed_is_asked_for_again_and_counted_once() -> None:
    """A deadline miss must reach the log: its overdue entry, failed, is asked for again at
    the next tick, and counted once, when it is logged."""
    edge, author = Edge(new_core()), Author(NET)
    body, _ = warned(edge, author, to=("LT",))
    due = NOW + FLASH.delivered_ms
    first = [a for a in edge.core.tick(due) if isinstance(a, Append)]
    assert [a.event.kind for a in first if a.event is not None] == [EntryKind.OVERDUE]
    (note,) = edge.core.append_failed(first[0].token, 500, "write failed", due + 1)
    assert note == LogLine("overdue_not_logged", {
        "id": body.id.hex(), "recipient": "LT", "stage": "delivered", "reason": "write failed"})
    assert edge.core.counters.overdue == {}
    edge.tick(due + 2)
    edge.tick(due + 3)
    late = [(e.fields["recipient"], e.fields["stage"], e.fields["deadline"])
            for e in edge.events(EntryKind.OVERDUE)]
    assert late == [("LT", "delivered", due)]
    assert edge.core.counters.overdue == {"delivered": 1}


def _session_entries(edge: Edge) -> list[tuple[str, str, int]]:
    """The connected and disconnected entries in log order: (kind, party, relay_ts)."""
    entries = [decode_entry(entry) for entry in edge.log]
    return [(e.kind.value, e.event.fields["party"], e.relay_ts) for e in entries
            if e.event is not None and e.kind in (EntryKind.CONNECTED, EntryKind.DISCONNECTED)]


def test_a_disconnected_whose_append_failed_is_logged_with_its_time_before_the_next_session(
) -> None:
    """An outage the store failed to record still reaches the log: the ``disconnected`` is
    owed, asked for again (its own relay_ts, the same bytes) before the next session's
    ``connected``, and never twice."""
    edge = Edge(new_core())
    edge.connect("BY")
    (gone,) = edge.core.disconnected("BY", "closed 1013", NOW + 5)
    assert isinstance(gone, Append)
    (note,) = edge.core.append_failed(gone.token, 500, "write failed", NOW + 6)
    assert note == LogLine("event_not_logged", {
        "kind": "disconnected", "relay_ts": NOW + 5, "reason": "write failed", "owed": 1})
    back = edge.core.connected("BY", NOW + 900)
    assert [a for a in back if isinstance(a, Append)] == []  # owed behind the disconnected
    edge.run(back, NOW + 900)
    appends = [a for a in edge.core.tick(NOW + 900) if isinstance(a, Append)]
    assert appends[0].entry == gone.entry
    edge.run(appends, NOW + 900)
    assert _session_entries(edge) == [
        ("connected", "BY", NOW), ("disconnected", "BY", NOW + 5), ("connected", "BY", NOW + 900),
    ]
    assert [a for a in edge.core.tick(NOW + 901) if isinstance(a, Append)
            and a.event is not None and a.event.kind is not EntryKind.OVERDUE] == []


def test_events_whose_appends_failed_are_asked_for_again_in_order_at_the_next_tick() -> None:
    """A store that stays down fails them again: still owed, in the order they happened."""
    edge = Edge(new_core())
    edge.connect("BY", "LT")
    first, second = (a for p, t in (("BY", 5), ("LT", 6))
                     for a in edge.core.disconnected(p, "closed 1013", NOW + t))
    assert isinstance(first, Append)
    assert isinstance(second, Append)
    for append in (first, second):
        edge.core.append_failed(append.token, 500, "write failed", NOW + 7)
    again = edge.core.events_owed()
    assert [a.entry for a in again] == [first.entry, second.entry]
    for append in again:
        edge.core.append_failed(append.token, 500, "still failing", NOW + 8)
    edge.tick(NOW + 9)
    assert _session_entries(edge)[-2:] == [
        ("disconnected", "BY", NOW + 5), ("disconnected", "LT", NOW + 6)]


def test_an_owed_event_found_durable_after_the_failure_is_not_logged_again() -> None:
    """A write reported failed whose entry the recovered store holds (applied as followed)."""
    edge = Edge(new_core())
    edge.connect("BY")
    (gone,) = edge.core.disconnected("BY", "closed 1013", NOW + 5)
    assert isinstance(gone, Append)
    edge.core.append_failed(gone.token, 500, "write failed", NOW + 6)
    edge.log.append(gone.entry)
    edge.core.follow(len(edge.log) - 1, gone.entry, NOW + 7)
    assert edge.core.events_owed() == []


def _fail_redelivered(edge: Edge, actions: list[RelayAction], now: int) -> None:
    """Run ``actions`` but fail the write of the (one) redelivered entry among them."""
    (failed,) = [a for a in actions if isinstance(a, Append) and a.event is not None
                 and a.event.kind is EntryKind.REDELIVERED]
    edge.run([a for a in actions if a is not failed], now)
    (note,) = edge.core.append_failed(failed.token, 500, "write failed", now)
    assert isinstance(note, LogLine)
    assert note.event == "event_not_logged"


def test_an_owed_redelivered_is_logged_before_a_later_attempt_of_the_same_message() -> None:
    """A message logged for LT before the next tick flushes LT's queue: the resend it makes
    (attempt 3) is owed behind the failed attempt 2, and both reach the log in order."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    warned(edge, author, now=NOW)
    _fail_redelivered(edge, edge.core.tick(NOW + RETRY), NOW + RETRY)
    warned(edge, author, now=NOW + 3 * RETRY)
    edge.tick(NOW + 3 * RETRY + 1)
    assert [e.fields["attempt"] for e in edge.events(EntryKind.REDELIVERED)] == [2, 3]


@dataclass
class _DownEdge(Edge):
    """A store that is down: every append fails at once (the relay's store while not ready)."""

    appends: int = 0

    def run(self, actions: Iterable[RelayAction], now: int) -> list[Out]:
        out: list[Out] = []
        for action in actions:
            if isinstance(action, Append):
                self.appends += 1
                out.extend(self.run(self.core.append_failed(action.token, 500, "down", now), now))
            elif isinstance(action, LogLine):
                self.notes.append(action)
            else:
                out.append(action)
        return out


def test_session_events_while_the_store_is_down_are_owed_without_asking_it_again() -> None:
    """Each session event while the store is down costs at most one failing append, not one
    per event already owed; all are owed, in order."""
    edge = _DownEdge(new_core())
    sessions = 30
    for k in range(sessions):
        edge.run(edge.core.connected("BY", NOW + 2 * k), NOW + 2 * k)
        edge.run(edge.core.disconnected("BY", "closed 1013", NOW + 2 * k + 1), NOW + 2 * k + 1)
    owed = edge.core.events_owed()
    assert [a.relay_ts for a in owed] == list(range(NOW, NOW + 2 * sessions))
    assert edge.appends <= 2 * sessions


def _held(edge: Edge, party: str, frame: bytes, now: int) -> list[RelayAction]:
    """``party`` sends ``frame``; its append, if any, is left on its way to the log."""
    return edge.core.receive(party, frame, now)


def test_a_receipt_not_owed_after_one_on_its_way_to_the_log_is_refused() -> None:
    """A receipt judged while an earlier one of the same sender for the same message is still
    being logged is judged by the state that one leads to: delivered or rejected after an
    acknowledgement on its way is refused (replay), so the log never holds one not owed."""
    for first, second in ((Stage.ACKNOWLEDGED, Stage.DELIVERED),
                          (Stage.ACKNOWLEDGED, Stage.REJECTED),
                          (Stage.REJECTED, Stage.ACKNOWLEDGED)):
        edge, author = Edge(new_core()), Author(NET)
        edge.connect("BY", "LT")
        body, _ = warned(edge, author)
        (append,) = [a for a in _held(edge, "LT", receipt(author, "LT", body, first, NOW + 5),
                                      NOW + 5) if isinstance(a, Append)]
        answer = _held(edge, "LT", receipt(author, "LT", body, second, NOW + 6), NOW + 6)
        assert [a for a in answer if isinstance(a, Append)] == [], (first, second)
        (notice,) = controls(sent(answer), "LT")
        assert isinstance(notice, RejectedNotice)
        assert notice.code == "replay"
        edge.run([append], NOW + 7)  # the first is logged and settles as before
        assert edge.core.state_of(body.id, "LT") is None


def test_a_delivered_receipt_while_another_is_on_its_way_is_still_taken_before_the_ack() -> None:
    """Delivered on its way, then acknowledged: both are owed in that order, both logged."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body, _ = warned(edge, author)
    first = _held(edge, "LT", receipt(author, "LT", body, Stage.DELIVERED, NOW + 5), NOW + 5)
    second = _held(edge, "LT", receipt(author, "LT", body, Stage.ACKNOWLEDGED, NOW + 6), NOW + 6)
    assert [type(a) for a in (*first, *second) if isinstance(a, Append)] == [Append, Append]


def test_a_second_answer_to_a_link_test_on_its_way_is_refused() -> None:
    """A link test is answered once: a second answer while the first is being logged is refused."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("LT")
    (test,) = [
        b for b in delivered(_one_interval(edge), "LT", tests=True) if isinstance(b, LinkTestBody)
    ]
    now = NOW + INTERVAL
    first = _held(edge, "LT", receipt(author, "LT", test, Stage.DELIVERED, now), now)
    assert [a for a in first if isinstance(a, Append)]
    answer = _held(edge, "LT", receipt(author, "LT", test, Stage.REJECTED, now + 1), now + 1)
    assert [a for a in answer if isinstance(a, Append)] == []
    (notice,) = controls(sent(answer), "LT")
    assert isinstance(notice, RejectedNotice)
    assert notice.code == "replay"


def test_attempt_numbers_go_on_after_a_restart_from_the_log_or_a_snapshot() -> None:
    """A relay rebuilt from its log, or loaded from a snapshot, counts a message's sends on
    from the last attempt logged for its recipient: no redelivered attempt recurs."""
    edge, author = Edge(new_core()), Author(NET)
    edge.connect("BY", "LT")
    body, _ = warned(edge, author, now=NOW)
    for k in (1, 3):  # resent after 1 and 2 more retry intervals: attempts 2 and 3
        assert delivered(edge.tick(NOW + k * RETRY), "LT") == [body]
    assert [e.fields["attempt"] for e in edge.events(EntryKind.REDELIVERED)] == [2, 3]
    replayed = Edge(new_core(), list(edge.log))
    for index, entry in enumerate(edge.log):
        replayed.core.restore(index, entry)
    loaded = Edge(new_core(), list(edge.log))
    loaded.core.load_state(edge.core.state())
    later = NOW + 4 * RETRY
    for restarted in (replayed, loaded):
        assert delivered(restarted.connect("LT", now=later), "LT") == [body]
        attempts = [e.fields["attempt"] for e in restarted.events(EntryKind.REDELIVERED)]
        assert attempts == [2, 3, 4]
