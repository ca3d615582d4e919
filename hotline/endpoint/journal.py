"""The endpoint core's memory: what it signed and received, written as it happens.

:meth:`Journal.record` writes a batch of the core's events
(:mod:`hotline.endpoint.events`) in one transaction; the edge calls it before
sending anything those events carry. :meth:`Journal.load_state` gives the core
back its state when the endpoint starts. The journal also holds what the
console reads (:attr:`Journal.reads`, :mod:`hotline.endpoint.journal_reads`)
and the feeds' idempotency ledger (:attr:`Journal.feed_posts`,
:mod:`hotline.endpoint.feed_ledger`), over the same SQLite connection; the file
and its tables are :mod:`hotline.endpoint.journal_file`.

Blocking: the edge runs a journal on one dedicated thread
(:mod:`hotline.endpoint.journal_thread`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import assert_never

from hotline.endpoint.events import (
    CheckpointInconsistent,
    CheckpointRefused,
    CheckpointWitnessed,
    DeliveryRefused,
    DuplicateIgnored,
    EndpointEvent,
    LinkTestAnswered,
    MessageAccepted,
    MessageAcknowledged,
    MessageQueued,
    MessageReceived,
    MessageRejected,
    Overdue,
    PathArrived,
    ReceiptQueued,
    ReceiptStored,
    RelayBack,
    RelayConnected,
    RelayDisconnected,
    RelayOutage,
    RelaySuspected,
    event_name,
)
from hotline.endpoint.feed_ledger import FeedLedger
from hotline.endpoint.journal_file import (
    JOURNAL_FILE,
    open_journal_db,
    set_state_value,
    state_value,
    to_json,
    transaction,
)
from hotline.endpoint.journal_paths import (
    PATHS_SCHEMA,
    PathArrival,
    arrivals,
    last_checkpoints,
    load_arrivals,
    load_paths,
    record_path_event,
)
from hotline.endpoint.journal_reads import JournalReads
from hotline.endpoint.state import (
    Answer,
    CoreState,
    HeldCheckpoint,
    HeldMessage,
    OverdueKey,
    PendingEnvelope,
    SentMessage,
)
from hotline.protocol.bodies import RoutedBody
from hotline.protocol.ids import format_id
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.lifecycle import implies
from hotline.protocol.vocab import BodyType, Precedence, Stage

__all__ = ["JOURNAL_FILE", "Journal"]


class Journal:
    """One endpoint's journal file; every method is blocking and thread-bound."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.reads = JournalReads(db)
        self.feed_posts = FeedLedger(db)

    @classmethod
    def open(cls, path: Path, *, initial_seq: int = 1) -> Journal:
        """Open (or create) the journal; a new one starts its ``seq`` at ``initial_seq``."""
        db = open_journal_db(path, initial_seq=initial_seq)
        db.executescript(PATHS_SCHEMA)  # several relays (journal_paths.py)
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    def path_arrivals(self, since_ms: int = 0) -> tuple[PathArrival, ...]:
        """Several relays: each path's arrivals since ``since_ms`` (journal_paths.py)."""
        return arrivals(self._db, since_ms)

    def path_checkpoints(self) -> dict[str, tuple[int, bytes, int]]:
        """Several relays: each relay's largest witnessed checkpoint (journal_paths.py)."""
        return last_checkpoints(self._db)

    def durability(self) -> tuple[str, str]:
        """SQLite's ``journal_mode`` and ``synchronous`` on this connection (``wal``, ``full``)."""
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        sync = self._db.execute("PRAGMA synchronous").fetchone()[0]
        return str(mode), {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(sync, str(sync))

    # ------------------------------------------------------------------ the core's memory

    def next_seq(self) -> int:
        """The ``seq`` of the next envelope we sign (above every one signed so far)."""
        stored = int(state_value(self._db, "next_seq") or 1)
        top = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        return max(stored, 0 if top is None else top + 1)

    def since(self) -> int:
        """The receipts cursor: the highest log index of a receipt stored for us, or -1."""
        since = state_value(self._db, "since")
        return -1 if since is None else int(since)

    def unaccepted(self) -> tuple[PendingEnvelope, ...]:
        """What we signed that the relay has neither accepted nor rejected, in ``seq`` order."""
        rows = self._db.execute(
            "SELECT seq, id, frame, body_hash, t FROM outbox "
            "WHERE accepted_index IS NULL AND rejected_code IS NULL ORDER BY seq"
        ).fetchall()
        return tuple(
            PendingEnvelope(seq, id_, frame, digest, receipt=t == BodyType.RECEIPT.value)
            for seq, id_, frame, digest, t in rows
        )

    def load_state(self) -> CoreState:
        """The snapshot the core starts from."""
        reached: dict[bytes, set[tuple[str, Stage]]] = {}
        for ref, party, stage in self._db.execute("SELECT ref, party, stage FROM stages"):
            reached.setdefault(ref, set()).add((party, Stage(stage)))
        sent = tuple(
            SentMessage(
                id=id_,
                body_hash=digest,
                recipients=tuple(json.loads(recipients)),
                precedence=Precedence(precedence),
                accepted_ms=accepted_ms,
                rejected=rejected is not None,
                reached=frozenset(reached.get(id_, ())),
            )
            for id_, digest, recipients, precedence, accepted_ms, rejected in self._db.execute(
                "SELECT id, body_hash, recipients, precedence, accepted_received_ms, "
                "rejected_code FROM outbox WHERE t IN ('warning', 'update', 'cancel', 'text') "
                "ORDER BY seq"
            )
        )
        inbox = tuple(
            HeldMessage(id_, sender, digest, Precedence(precedence), received, acked is not None)
            for id_, sender, digest, precedence, received, acked in self._db.execute(
                "SELECT id, sender, body_hash, precedence, received_ms, acknowledged_ms "
                "FROM inbox ORDER BY received_ms"
            )
        )
        answers: dict[bytes, Answer] = {}
        for ref, id_, frame in self._db.execute(
            "SELECT o.ref, o.id, o.frame FROM outbox o JOIN inbox i ON i.id = o.ref "
            "WHERE o.t = 'receipt' AND o.stage = 'delivered' AND o.rejected_code IS NULL "
            "ORDER BY o.seq"
        ):
            answers[ref] = Answer(ref, id_, frame)
        fired = frozenset(
            OverdueKey(ref, party, Stage(stage))
            for ref, party, stage in self._db.execute("SELECT ref, party, stage FROM overdue")
        )
        path_pending, path_checkpoints, path_since = load_paths(self._db)
        path_delivered, path_first = load_arrivals(self._db)
        row = self._db.execute(
            "SELECT size, root, note FROM checkpoints WHERE consistent = 1 "
            "ORDER BY size DESC, number DESC LIMIT 1"
        ).fetchone()
        return CoreState(
            next_seq=self.next_seq(),
            since=self.since(),
            pending=self.unaccepted(),
            sent=sent,
            inbox=inbox,
            answers=tuple(answers.values()),
            fired=fired,
            checkpoint=None if row is None else HeldCheckpoint(row[0], row[1], row[2]),
            path_pending=path_pending,
            path_checkpoints=path_checkpoints,
            path_since=path_since,
            path_delivered=path_delivered,
            path_first=path_first,
        )

    # ------------------------------------------------------------------ recording events

    def record(self, events: Iterable[EndpointEvent]) -> None:
        """Write a batch of events in one transaction (all or nothing)."""
        with transaction(self._db):
            for event in events:
                self._record_one(event)

    def _count(self, key: str) -> None:
        set_state_value(self._db, key, int(state_value(self._db, key) or 0) + 1)

    def _record_one(self, event: EndpointEvent) -> None:
        db = self._db
        record_path_event(db, event)  # several relays: each path's own record
        match event:
            case MessageQueued(frame=frame, body=body, body_hash=digest):
                db.execute(
                    "INSERT INTO outbox (seq, id, t, frame, body_hash, body_json, created_ms, "
                    "recipients, precedence, status, incident) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (body.seq, body.id, body.type.value, frame, digest,
                     to_json(body_to_json(body)), event.created_ms,
                     to_json(list(event.recipients)), body.precedence.value,
                     body.status.value, body.incident),
                )
                set_state_value(db, "next_seq", body.seq + 1)
                self._note_cap_identity(body)
            case ReceiptQueued(frame=frame, body=receipt, body_hash=digest):
                db.execute(
                    "INSERT INTO outbox (seq, id, t, frame, body_hash, body_json, created_ms, "
                    "ref, stage, link_test) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (receipt.seq, receipt.id, receipt.type.value, frame, digest,
                     to_json(body_to_json(receipt)), event.created_ms, receipt.ref,
                     receipt.stage.value, int(event.link_test)),
                )
                set_state_value(db, "next_seq", receipt.seq + 1)
                if Stage.DELIVERED in implies(receipt.stage) and not event.link_test:
                    db.execute(
                        "UPDATE inbox SET delivered_ms = ? WHERE id = ? AND delivered_ms IS NULL",
                        (event.created_ms, receipt.ref),
                    )
            case MessageReceived(frame=frame, body=body, body_hash=digest):
                db.execute(
                    "INSERT INTO inbox (id, sender, t, precedence, status, incident, frame, "
                    "body_hash, body_json, sent_ts, received_ms, deliver_index) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (body.id, body.sender, body.type.value, body.precedence.value,
                     body.status.value, body.incident, frame, digest,
                     to_json(body_to_json(body)), body.ts, event.received_ms, event.index),
                )
                self._note_cap_identity(body)
            case DuplicateIgnored():
                db.execute("UPDATE inbox SET duplicates = duplicates + 1 WHERE id = ?",
                           (event.id,))
            case ReceiptStored():
                db.execute(
                    "INSERT OR IGNORE INTO stages (ref, party, stage, receipt_id, their_ts, "
                    "received_ms, relay_index, action, note, reason, operator) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (event.ref, event.party, event.stage.value, event.receipt_id,
                     event.their_ts, event.received_ms, event.index,
                     None if event.action is None else event.action.value, event.note,
                     event.reason, event.operator),
                )
                if event.index > self.since():
                    set_state_value(db, "since", event.index)
            case MessageAccepted():
                # A link test's answer, once the relay has it, is in the relay's log; here
                # only the count is kept, so the journal does not grow by a row per test.
                pruned = db.execute(
                    "DELETE FROM outbox WHERE id = ? AND link_test = 1 "
                    "AND accepted_index IS NULL",
                    (event.id,),
                ).rowcount
                if pruned:
                    self._count("test_answers_logged")
                else:
                    db.execute(
                        "UPDATE outbox SET accepted_index = ?, accepted_ts = ?, "
                        "accepted_received_ms = ? WHERE id = ? AND accepted_index IS NULL",
                        (event.index, event.accepted_ts, event.received_ms, event.id),
                    )
            case MessageRejected(relay=""):  # one relay of several: its path's record only
                db.execute(
                    "UPDATE outbox SET rejected_code = ?, rejected_sentence = ?, "
                    "rejected_path = ?, rejected_ms = ? WHERE id = ? AND accepted_index IS NULL",
                    (event.code, event.sentence, event.path, event.received_ms, event.id),
                )
            case LinkTestAnswered():
                set_state_value(db, "last_test_id", event.test_id)
                set_state_value(db, "last_test_ms", event.received_ms)
                self._count("tests_answered")
            case MessageAcknowledged():
                db.execute(
                    "UPDATE inbox SET acknowledged_ms = ?, action = ?, note = ?, "
                    "ack_operator = ? WHERE id = ?",
                    (event.acknowledged_ms,
                     None if event.action is None else event.action.value,
                     event.note, event.operator, event.id),
                )
            case CheckpointWitnessed():
                db.execute(
                    "INSERT INTO checkpoints (size, root, note, consistent, cosigned, at_ms) "
                    "VALUES (?, ?, ?, 1, 1, ?)",
                    (event.size, event.root, event.note, event.witnessed_ms),
                )
            case CheckpointInconsistent():
                db.execute(
                    "INSERT INTO checkpoints (size, root, note, consistent, cosigned, at_ms, "
                    "reason) VALUES (?, ?, ?, 0, 0, ?, ?)",
                    (event.size, event.root, event.note, event.received_ms, event.reason),
                )
            case Overdue():
                db.execute(
                    "INSERT OR IGNORE INTO overdue (ref, party, stage, role, due_ms, at_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (event.ref, event.party, event.stage.value, event.role.value,
                     event.due_ms, event.at_ms),
                )
            case (
                CheckpointRefused() | DeliveryRefused() | RelayConnected() | RelayDisconnected()
                | RelayOutage() | RelayBack() | RelaySuspected() | MessageRejected()
                | PathArrived()
            ):
                pass  # kept in the event history (and journal_paths.py) only
            case _:
                assert_never(event)
        self._history(event)

    def _note_cap_identity(self, body: RoutedBody) -> None:
        cap = getattr(body, "cap", None)
        if cap is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO cap_identities (cap_sender, identifier, party, "
                "message_id) VALUES (?, ?, ?, ?)",
                (cap.sender, cap.identifier, body.sender, body.id),
            )

    def _history(self, event: EndpointEvent) -> None:
        row = _history_row(event)
        if row is None:
            return
        at_ms, ref, party, stage, detail = row
        relay = getattr(event, "relay", "")
        if relay:
            detail = {**detail, "relay": relay}  # several relays: which one it is about
        self._db.execute(
            "INSERT INTO events (at_ms, name, alarm, ref, party, stage, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at_ms, event_name(event), int(event.alarm), ref, party, stage, to_json(detail)),
        )


_HistoryRow = tuple[int, bytes | None, str | None, str | None, dict[str, object]]


def _history_row(event: EndpointEvent) -> _HistoryRow | None:
    """What the event history keeps of an event; None for the routine ones."""
    match event:
        case MessageQueued():
            return (event.created_ms, event.body.id, ",".join(event.recipients), None,
                    {"t": event.body.type.value, "precedence": event.body.precedence.value})
        case MessageReceived():
            return (event.received_ms, event.body.id, event.body.sender, None,
                    {"t": event.body.type.value, "precedence": event.body.precedence.value,
                     "index": event.index})
        case DuplicateIgnored():
            return (event.received_ms, event.id, event.sender, None, {"index": event.index})
        case ReceiptStored():
            return (event.received_ms, event.ref, event.party, event.stage.value,
                    {"index": event.index, "their_ts": event.their_ts})
        case MessageAccepted():
            if event.receipt:
                return None
            return (event.received_ms, event.id, None, "accepted",
                    {"index": event.index, "accepted_ts": event.accepted_ts})
        case MessageRejected():
            return (event.received_ms, event.id or None, None, "rejected",
                    {"code": event.code, "sentence": event.sentence, "path": event.path,
                     "receipt": event.receipt})
        case DeliveryRefused():
            return (event.received_ms, None, event.sender or None, None,
                    {"code": event.code, "sentence": event.sentence, "path": event.path,
                     "index": event.index})
        case MessageAcknowledged():
            return (event.acknowledged_ms, event.id, event.sender, "acknowledged",
                    {"action": None if event.action is None else event.action.value,
                     "note": event.note, "operator": event.operator})
        case CheckpointWitnessed():
            return (event.witnessed_ms, None, None, None, {"size": event.size})
        case CheckpointInconsistent():
            return (event.received_ms, None, None, None,
                    {"size": event.size, "held_size": event.held_size, "reason": event.reason})
        case CheckpointRefused():
            return (event.received_ms, None, None, None, {"reason": event.reason})
        case Overdue():
            return (event.at_ms, event.ref, event.party, event.stage.value,
                    {"role": event.role.value, "precedence": event.precedence.value,
                     "due_ms": event.due_ms, "id": format_id(event.ref)})
        case RelayConnected():
            return (event.at_ms, None, None, None, {"log_size": event.log_size})
        case RelayDisconnected():
            return (event.at_ms, None, None, None, {"reason": event.reason})
        case RelayOutage():
            return (event.at_ms, None, None, None,
                    {"since_ms": event.since_ms, "waiting": event.waiting,
                     "reason": event.reason})
        case RelayBack():
            return (event.at_ms, None, None, None, {"unavailable_ms": event.unavailable_ms})
        case RelaySuspected():
            return (event.at_ms, event.ref or None, event.party or None, None,
                    {"sentence": event.sentence, "index": event.index,
                     "evidence": dict(event.evidence)})
        case ReceiptQueued() | LinkTestAnswered() | PathArrived():
            return None  # routine: kept in the outbox, the state table or journal_paths.py
        case _:
            assert_never(event)
