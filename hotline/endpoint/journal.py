"""The endpoint's durable journal: SQLite in WAL mode with ``synchronous=FULL``.

Tables (``DIR/journal.sqlite3``):

============  =================================================================
``outbox``    every envelope we signed, messages and receipts: frame bytes, body
              JSON view, created time, the relay's accepted index and time, or
              its rejection
``inbox``     every message received once: id, sender, frame, body JSON,
              received time, our delivered receipt, our acknowledgement
``stages``    receipts other endpoints wrote for our messages: per recipient
              and stage, their time, our received time, the relay's index
``checkpoints``  relay checkpoints we judged: size, root, note, consistent,
              cosigned, time
``overdue``   deadlines already reported (each is reported once)
``events``    the event and alarm history
``state``     ``next_seq`` (our next ``seq``), ``since`` (the receipts cursor),
              the last link test answered, how many were answered and how many
              answers the relay has logged (a link test's answer is deleted from
              ``outbox`` once the relay accepts it: the count is what stays)
``feed_posts``  what sensor feeds posted and the message each became: the
              feed, its Idempotency-Key and request hash (replays), the sensor
              track (``sensor_id``, ``track_id``: correlation), the draft handed
              to the endpoint until it is signed, the message's type, incident and id
``cap_identities``  the CAP identity (``sender``, ``identifier``) of every
              message sent or received with a ``cap`` field, per hotline party:
              one message per CAP sender and identifier and party, so an
              Update can name its alert by the sender's own identifier
============  =================================================================

Tables added after the first release are created with ``CREATE TABLE IF NOT
EXISTS`` when a journal is opened, so an older journal gains them in place.

:meth:`Journal.record` writes a batch of core events in one transaction; the
edge calls it before sending anything those events carry. Blocking: the edge
runs a journal on one dedicated thread (:mod:`hotline.endpoint.journal_thread`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from hotline.endpoint.events import (
    CheckpointInconsistent,
    CheckpointRefused,
    CheckpointWitnessed,
    DeliveryRefused,
    DuplicateIgnored,
    Event,
    LinkTestAnswered,
    MessageAccepted,
    MessageAcknowledged,
    MessageQueued,
    MessageReceived,
    MessageRejected,
    Overdue,
    ReceiptQueued,
    ReceiptStored,
    RelayBack,
    RelayConnected,
    RelayDisconnected,
    RelayOutage,
    RelaySuspected,
    event_name,
)
from hotline.endpoint.journal_paths import (
    PATHS_SCHEMA,
    PathArrival,
    arrivals,
    load_paths,
    record_path_event,
)
from hotline.endpoint.records import (
    Acknowledgement,
    EventRecord,
    FeedPost,
    InboxItem,
    IncidentHead,
    LinkTestStatus,
    OutboxItem,
    Rejection,
    StageTime,
    StoredMessage,
    WitnessedCheckpoint,
)
from hotline.endpoint.state import (
    Answer,
    CoreState,
    HeldCheckpoint,
    HeldMessage,
    OverdueKey,
    PendingEnvelope,
    SentMessage,
)
from hotline.errors import UsageError
from hotline.protocol.bodies import ALL_RECIPIENTS, RoutedBody
from hotline.protocol.ids import format_id
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.lifecycle import implies
from hotline.protocol.vocab import Action, BodyType, Precedence, Stage, Status

__all__ = ["JOURNAL_FILE", "Journal"]

JOURNAL_FILE: Final = "journal.sqlite3"
_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value ANY
) STRICT;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    t TEXT NOT NULL,
    frame BLOB NOT NULL,
    body_hash BLOB NOT NULL,
    body_json TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    recipients TEXT,
    precedence TEXT,
    status TEXT,
    incident BLOB,
    ref BLOB,
    stage TEXT,
    link_test INTEGER NOT NULL DEFAULT 0,
    accepted_index INTEGER,
    accepted_ts INTEGER,
    accepted_received_ms INTEGER,
    rejected_code TEXT,
    rejected_sentence TEXT,
    rejected_path TEXT,
    rejected_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_ref ON outbox (ref);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (t, created_ms);
CREATE TABLE IF NOT EXISTS inbox (
    id BLOB PRIMARY KEY,
    sender TEXT NOT NULL,
    t TEXT NOT NULL,
    precedence TEXT NOT NULL,
    status TEXT NOT NULL,
    incident BLOB,
    frame BLOB NOT NULL,
    body_hash BLOB NOT NULL,
    body_json TEXT NOT NULL,
    sent_ts INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    deliver_index INTEGER NOT NULL,
    delivered_ms INTEGER,
    duplicates INTEGER NOT NULL DEFAULT 0,
    acknowledged_ms INTEGER,
    action TEXT,
    note TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_ms);
CREATE TABLE IF NOT EXISTS stages (
    ref BLOB NOT NULL,
    party TEXT NOT NULL,
    stage TEXT NOT NULL,
    receipt_id BLOB NOT NULL,
    their_ts INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    relay_index INTEGER NOT NULL,
    action TEXT,
    note TEXT,
    reason TEXT,
    PRIMARY KEY (ref, party, stage)
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note BLOB NOT NULL,
    consistent INTEGER NOT NULL,
    cosigned INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    reason TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS overdue (
    ref BLOB NOT NULL,
    party TEXT NOT NULL,
    stage TEXT NOT NULL,
    role TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (ref, party, stage)
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    name TEXT NOT NULL,
    alarm INTEGER NOT NULL,
    ref BLOB,
    party TEXT,
    stage TEXT,
    detail TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS feed_posts (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    feed TEXT NOT NULL,
    route TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash BLOB NOT NULL,
    sensor_id TEXT,
    track_id TEXT,
    draft_json TEXT NOT NULL,
    posted_ms INTEGER NOT NULL,
    t TEXT NOT NULL,
    incident BLOB NOT NULL,
    message_id BLOB UNIQUE,
    UNIQUE (feed, idempotency_key)
) STRICT;
CREATE INDEX IF NOT EXISTS feed_posts_track ON feed_posts (feed, sensor_id, track_id);
CREATE INDEX IF NOT EXISTS outbox_incident ON outbox (incident);
CREATE TABLE IF NOT EXISTS cap_identities (
    cap_sender TEXT NOT NULL,
    identifier TEXT NOT NULL,
    party TEXT NOT NULL,
    message_id BLOB NOT NULL UNIQUE,
    PRIMARY KEY (cap_sender, identifier, party)
) STRICT;
"""

# columns added after the first release, each added in place to a journal that lacks it
_ADDED_COLUMNS: Final = (
    ("stages", "operator", "TEXT"),  # who acknowledged, from the recipient's signed receipt
    ("inbox", "ack_operator", "TEXT"),  # which of our operators acknowledged
)

_SELECT_OUTBOX: Final = (
    "SELECT id, seq, t, recipients, precedence, status, incident, created_ms, body_json, "
    "accepted_index, accepted_ts, accepted_received_ms, "
    "rejected_code, rejected_sentence, rejected_path, rejected_ms "
    "FROM outbox WHERE t IN ('warning', 'update', 'cancel', 'text')"
)
_SELECT_INBOX: Final = (
    "SELECT id, sender, t, precedence, status, incident, sent_ts, received_ms, deliver_index, "
    "body_json, delivered_ms, duplicates, acknowledged_ms, action, note, ack_operator FROM inbox"
)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _opt_action(value: str | None) -> Action | None:
    return None if value is None else Action(value)


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class Journal:
    """One endpoint's journal file; every method is blocking and thread-bound."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: Path, *, initial_seq: int = 1) -> Journal:
        """Open (or create) the journal; a new one starts its ``seq`` at ``initial_seq``."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # only this user reads the journal: created 0600 before SQLite opens it (its -wal and
        # -shm files take the same mode)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            db.executescript(PATHS_SCHEMA)  # several relays (journal_paths.py)
            _add_columns(db)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                db.execute(f"PRAGMA user_version={_VERSION}")
            elif version != _VERSION:
                db.close()
                raise UsageError(
                    f"journal {path} has version {version}; this hotline reads {_VERSION}"
                )
            db.execute(
                "INSERT OR IGNORE INTO state (key, value) VALUES ('next_seq', ?), ('since', -1)",
                (initial_seq,),
            )
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot open journal {path}: {exc}") from exc
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    def _state(self, key: str) -> int | bytes | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_state(self, key: str, value: object) -> None:
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ the core's memory

    def next_seq(self) -> int:
        """The ``seq`` of the next envelope we sign (above every one signed so far)."""
        stored = int(self._state("next_seq") or 1)
        top = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        return max(stored, 0 if top is None else top + 1)

    def since(self) -> int:
        since = self._state("since")
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
        )

    # ------------------------------------------------------------------ recording events

    def record(self, events: Iterable[Event]) -> None:
        """Write a batch of events in one transaction (all or nothing)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                self._record_one(event)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _record_one(self, event: Event) -> None:
        db = self._db
        record_path_event(db, event)
        if isinstance(event, MessageQueued):
            body = event.body
            db.execute(
                "INSERT INTO outbox (seq, id, t, frame, body_hash, body_json, created_ms, "
                "recipients, precedence, status, incident) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (body.seq, body.id, body.type.value, event.frame, event.body_hash,
                 _json(body_to_json(body)), event.created_ms, _json(list(event.recipients)),
                 body.precedence.value, body.status.value, body.incident),
            )
            self._set_state("next_seq", body.seq + 1)
            self._note_cap_identity(body)
        elif isinstance(event, ReceiptQueued):
            receipt = event.body
            db.execute(
                "INSERT INTO outbox (seq, id, t, frame, body_hash, body_json, created_ms, "
                "ref, stage, link_test) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (receipt.seq, receipt.id, receipt.type.value, event.frame, event.body_hash,
                 _json(body_to_json(receipt)), event.created_ms, receipt.ref,
                 receipt.stage.value, int(event.link_test)),
            )
            self._set_state("next_seq", receipt.seq + 1)
            if Stage.DELIVERED in implies(receipt.stage) and not event.link_test:
                db.execute(
                    "UPDATE inbox SET delivered_ms = ? WHERE id = ? AND delivered_ms IS NULL",
                    (event.created_ms, receipt.ref),
                )
        elif isinstance(event, MessageReceived):
            body = event.body
            db.execute(
                "INSERT INTO inbox (id, sender, t, precedence, status, incident, frame, "
                "body_hash, body_json, sent_ts, received_ms, deliver_index) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (body.id, body.sender, body.type.value, body.precedence.value,
                 body.status.value, body.incident, event.frame, event.body_hash,
                 _json(body_to_json(body)), body.ts, event.received_ms, event.index),
            )
            self._note_cap_identity(body)
        elif isinstance(event, DuplicateIgnored):
            db.execute("UPDATE inbox SET duplicates = duplicates + 1 WHERE id = ?", (event.id,))
        elif isinstance(event, ReceiptStored):
            db.execute(
                "INSERT OR IGNORE INTO stages (ref, party, stage, receipt_id, their_ts, "
                "received_ms, relay_index, action, note, reason, operator) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (event.ref, event.party, event.stage.value, event.receipt_id, event.their_ts,
                 event.received_ms, event.index,
                 None if event.action is None else event.action.value, event.note,
                 event.reason, event.operator),
            )
            if event.index > self.since():
                self._set_state("since", event.index)
        elif isinstance(event, MessageAccepted):
            # A link test's answer, once the relay has it, is in the relay's log; here only
            # the count is kept, so the journal does not grow by a row per test forever.
            pruned = db.execute(
                "DELETE FROM outbox WHERE id = ? AND link_test = 1 AND accepted_index IS NULL",
                (event.id,),
            ).rowcount
            if pruned:
                self._set_state("test_answers_logged",
                                int(self._state("test_answers_logged") or 0) + 1)
            else:
                db.execute(
                    "UPDATE outbox SET accepted_index = ?, accepted_ts = ?, "
                    "accepted_received_ms = ? WHERE id = ? AND accepted_index IS NULL",
                    (event.index, event.accepted_ts, event.received_ms, event.id),
                )
        elif isinstance(event, MessageRejected) and not event.relay:  # one relay's: paths
            db.execute(
                "UPDATE outbox SET rejected_code = ?, rejected_sentence = ?, rejected_path = ?, "
                "rejected_ms = ? WHERE id = ? AND accepted_index IS NULL",
                (event.code, event.sentence, event.path, event.received_ms, event.id),
            )
        elif isinstance(event, LinkTestAnswered):
            self._set_state("last_test_id", event.test_id)
            self._set_state("last_test_ms", event.received_ms)
            self._set_state("tests_answered", int(self._state("tests_answered") or 0) + 1)
        elif isinstance(event, MessageAcknowledged):
            db.execute(
                "UPDATE inbox SET acknowledged_ms = ?, action = ?, note = ?, ack_operator = ? "
                "WHERE id = ?",
                (event.acknowledged_ms, None if event.action is None else event.action.value,
                 event.note, event.operator, event.id),
            )
        elif isinstance(event, CheckpointWitnessed):
            db.execute(
                "INSERT INTO checkpoints (size, root, note, consistent, cosigned, at_ms) "
                "VALUES (?, ?, ?, 1, 1, ?)",
                (event.size, event.root, event.note, event.witnessed_ms),
            )
        elif isinstance(event, CheckpointInconsistent):
            db.execute(
                "INSERT INTO checkpoints (size, root, note, consistent, cosigned, at_ms, reason) "
                "VALUES (?, ?, ?, 0, 0, ?, ?)",
                (event.size, event.root, event.note, event.received_ms, event.reason),
            )
        elif isinstance(event, Overdue):
            db.execute(
                "INSERT OR IGNORE INTO overdue (ref, party, stage, role, due_ms, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.ref, event.party, event.stage.value, event.role.value, event.due_ms,
                 event.at_ms),
            )
        self._history(event)

    def _note_cap_identity(self, body: RoutedBody) -> None:
        cap = getattr(body, "cap", None)
        if cap is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO cap_identities (cap_sender, identifier, party, "
                "message_id) VALUES (?, ?, ?, ?)",
                (cap.sender, cap.identifier, body.sender, body.id),
            )

    def latency_history(
        self, since_ms: int, limit: int = 2000
    ) -> dict[str, list[tuple[int, int]]]:
        """Per link, ``(sent_ms, latency_ms)`` of our messages sent since ``since_ms``, oldest
        first, at most ``limit`` (the newest) per series: ``accepted`` is the relay's
        ``accepted`` receipt back at us, ``delivered/LT`` LT's ``delivered`` receipt back at
        us, both by our clock from when we journaled the message."""
        series: dict[str, list[tuple[int, int]]] = {}
        rows = self._db.execute(
            "SELECT created_ms, accepted_received_ms - created_ms FROM outbox "
            "WHERE t IN ('warning', 'update', 'cancel', 'text') AND created_ms >= ? "
            "AND accepted_received_ms IS NOT NULL ORDER BY created_ms DESC LIMIT ?",
            (since_ms, limit),
        ).fetchall()
        if rows:
            series["accepted"] = [(int(t), max(0, int(v))) for t, v in reversed(rows)]
        rows = self._db.execute(
            "SELECT s.party, o.created_ms, s.received_ms - o.created_ms FROM stages s "
            "JOIN outbox o ON o.id = s.ref WHERE s.stage = 'delivered' AND o.created_ms >= ? "
            "ORDER BY o.created_ms DESC",
            (since_ms,),
        ).fetchall()
        for party, t, v in reversed(rows):
            points = series.setdefault(f"delivered/{party}", [])
            points.append((int(t), max(0, int(v))))
        for key, points in series.items():
            series[key] = points[-limit:]
        return series

    def cap_message(
        self, cap_sender: str, identifier: str, prefer: str
    ) -> tuple[bytes, str] | None:
        """The message carrying the CAP identity (``cap_sender``, ``identifier``) and the
        party that sent it: the one party ``prefer`` sent if any, else the first that
        reached us."""
        row = self._db.execute(
            "SELECT message_id, party FROM cap_identities WHERE cap_sender = ? "
            "AND identifier = ? ORDER BY party <> ?, rowid LIMIT 1",
            (cap_sender, identifier, prefer),
        ).fetchone()
        return None if row is None else (bytes(row[0]), str(row[1]))

    def _history(self, event: Event) -> None:
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
            (at_ms, event_name(event), int(event.alarm), ref, party, stage, _json(detail)),
        )

    # ------------------------------------------------------------------ queries

    def inbox(self, limit: int = 500) -> tuple[InboxItem, ...]:
        """Received messages, newest first, each once."""
        rows = self._db.execute(
            _SELECT_INBOX + " ORDER BY received_ms DESC, rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return tuple(_inbox_item(row) for row in rows)

    def inbox_page(
        self, limit: int, before: tuple[int, int] | None = None
    ) -> tuple[tuple[InboxItem, ...], tuple[int, int] | None]:
        """Up to ``limit`` received messages, newest first, older than the cursor ``before``
        (``received_ms``, row); and the cursor of the next page, None after the last."""
        where, args = "", [limit + 1]
        if before is not None:
            where = " WHERE (received_ms, rowid) < (?, ?)"
            args = [before[0], before[1], limit + 1]
        rows = self._db.execute(
            _SELECT_INBOX.replace("SELECT ", "SELECT rowid, ", 1) + where
            + " ORDER BY received_ms DESC, rowid DESC LIMIT ?", args,
        ).fetchall()
        page = rows[:limit]
        cursor = (page[-1][8], page[-1][0]) if len(rows) > limit else None
        return tuple(_inbox_item(row[1:]) for row in page), cursor

    def outbox_page(
        self, limit: int, before: int | None = None
    ) -> tuple[tuple[OutboxItem, ...], int | None]:
        """Up to ``limit`` sent messages, newest first, with ``seq`` below ``before``; and the
        cursor (a ``seq``) of the next page, None after the last."""
        where, args = "", [limit + 1]
        if before is not None:
            where, args = " AND seq < ?", [before, limit + 1]
        rows = self._db.execute(
            _SELECT_OUTBOX + where + " ORDER BY seq DESC LIMIT ?", args
        ).fetchall()
        page = rows[:limit]
        cursor = int(page[-1][1]) if len(rows) > limit else None
        return tuple(self._outbox_item(row) for row in page), cursor

    def inbox_item(self, id_: bytes) -> InboxItem | None:
        row = self._db.execute(
            _SELECT_INBOX + " WHERE id = ?", (id_,)
        ).fetchone()
        return None if row is None else _inbox_item(row)

    def outbox(self, limit: int = 500) -> tuple[OutboxItem, ...]:
        """Messages we sent (not receipts), newest first, with accepted and stage times."""
        rows = self._db.execute(
            _SELECT_OUTBOX + " ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return tuple(self._outbox_item(row) for row in rows)

    def outbox_item(self, id_: bytes) -> OutboxItem | None:
        row = self._db.execute(_SELECT_OUTBOX + " AND id = ?", (id_,)).fetchone()
        return None if row is None else self._outbox_item(row)

    def _outbox_item(self, row: Sequence[Any]) -> OutboxItem:
        (id_, seq, t, recipients, precedence, status, incident, created_ms, body_json,
         accepted_index, accepted_ts, accepted_received_ms,
         rejected_code, rejected_sentence, rejected_path, rejected_ms) = row
        stages = tuple(
            StageTime(party, Stage(stage), their_ts, received_ms, index, _opt_action(action),
                      note, reason, operator)
            for party, stage, their_ts, received_ms, index, action, note, reason, operator
            in self._db.execute(
                "SELECT party, stage, their_ts, received_ms, relay_index, action, note, reason, "
                "operator "
                "FROM stages WHERE ref = ? ORDER BY received_ms, party",
                (id_,),
            )
        )
        return OutboxItem(
            id=id_,
            seq=seq,
            type=BodyType(t),
            recipients=tuple(json.loads(recipients)),
            precedence=Precedence(precedence),
            status=Status(status),
            incident=incident,
            created_ms=created_ms,
            body_json=body_json,
            accepted_index=accepted_index,
            accepted_ts=accepted_ts,
            accepted_received_ms=accepted_received_ms,
            rejection=None
            if rejected_code is None
            else Rejection(rejected_code, rejected_sentence, rejected_path, rejected_ms),
            stages=stages,
        )

    def incident_of(self, id_: bytes) -> bytes | None:
        """The incident of a message we sent or received, to fill an update or cancel."""
        for table in ("outbox", "inbox"):
            row = self._db.execute(
                f"SELECT incident FROM {table} WHERE id = ?",  # noqa: S608  (fixed table names)
                (id_,),
            ).fetchone()
            if row is not None and row[0] is not None:
                return bytes(row[0])
        return None

    def checkpoints(self, limit: int = 50) -> tuple[WitnessedCheckpoint, ...]:
        """Checkpoints we judged, newest first."""
        rows = self._db.execute(
            "SELECT size, root, note, consistent, cosigned, at_ms, reason FROM checkpoints "
            "ORDER BY number DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return tuple(
            WitnessedCheckpoint(size, root, note, bool(consistent), bool(cosigned), at, reason)
            for size, root, note, consistent, cosigned, at, reason in rows
        )

    def last_checkpoint(self) -> WitnessedCheckpoint | None:
        """The checkpoint we judged last (consistent or not)."""
        found = self.checkpoints(1)
        return found[0] if found else None

    def events(self, limit: int = 200, *, alarms_only: bool = False) -> tuple[EventRecord, ...]:
        """The event history, newest first."""
        rows = self._db.execute(
            "SELECT number, at_ms, name, alarm, ref, party, stage, detail FROM events "
            "WHERE alarm >= ? ORDER BY number DESC LIMIT ?",
            (int(alarms_only), limit),
        ).fetchall()
        return tuple(
            EventRecord(number, at, name, bool(alarm), ref, party, stage, detail)
            for number, at, name, alarm, ref, party, stage, detail in rows
        )

    def path_arrivals(self, since_ms: int = 0) -> tuple[PathArrival, ...]:
        """Several relays: each path's arrivals since ``since_ms`` (journal_paths.py)."""
        return arrivals(self._db, since_ms)

    def link_tests(self) -> LinkTestStatus:
        last_id = self._state("last_test_id")
        last_ms = self._state("last_test_ms")
        return LinkTestStatus(
            None if last_id is None else bytes(last_id),
            None if last_ms is None else int(last_ms),
            int(self._state("tests_answered") or 0),
        )

    # ------------------------------------------------------------------ sensor feeds

    def feed_post(self, feed: str, idempotency_key: str) -> FeedPost | None:
        """The post ``feed`` made with this Idempotency-Key, if any."""
        row = self._db.execute(
            _SELECT_FEED_POST + " WHERE feed = ? AND idempotency_key = ?",
            (feed, idempotency_key),
        ).fetchone()
        return None if row is None else _feed_post(row)

    def reserve_feed_post(
        self,
        *,
        feed: str,
        route: str,
        idempotency_key: str | None,
        request_hash: bytes,
        track: tuple[str | None, str | None] | None,
        draft: dict[str, Any],
        posted_ms: int,
        kind: BodyType,
        incident: bytes,
    ) -> int:
        """Note a post before its message is signed; its number, for
        :meth:`complete_feed_post` or :meth:`drop_feed_post`."""
        sensor_id, track_id = track if track is not None else (None, None)
        cursor = self._db.execute(
            "INSERT INTO feed_posts (feed, route, idempotency_key, request_hash, sensor_id, "
            "track_id, draft_json, posted_ms, t, incident) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (feed, route, idempotency_key, request_hash, sensor_id, track_id, _json(draft),
             posted_ms, kind.value, incident),
        )
        number = cursor.lastrowid
        assert number is not None  # an INSERT into a rowid table always sets it
        return number

    def complete_feed_post(self, number: int, message_id: bytes) -> None:
        """The post became message ``message_id`` (its draft, in the outbox now, is dropped)."""
        self._db.execute(
            "UPDATE feed_posts SET message_id = ?, draft_json = '' WHERE number = ?",
            (message_id, number),
        )

    def drop_feed_post(self, number: int) -> None:
        self._db.execute("DELETE FROM feed_posts WHERE number = ? AND message_id IS NULL",
                         (number,))

    def reconcile_feed_posts(self) -> tuple[int, int]:
        """Settle posts left without a message by a crash: (completed, dropped).

        The endpoint journals a message before sending a byte of it, so a post
        whose message is in the outbox (same type and incident, created after
        the post, holding every field of the draft, claimed by no other post)
        gets that message; a post with none was never sent and is dropped.
        """
        db = self._db
        completed = dropped = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            pending = db.execute(
                "SELECT number, t, incident, draft_json, posted_ms FROM feed_posts "
                "WHERE message_id IS NULL ORDER BY number"
            ).fetchall()
            for number, kind, incident, draft_json, posted_ms in pending:
                draft = json.loads(draft_json)
                found = None
                for id_, body_json in db.execute(
                    "SELECT id, body_json FROM outbox WHERE t = ? AND incident = ? "
                    "AND created_ms >= ? AND id NOT IN "
                    "(SELECT message_id FROM feed_posts WHERE message_id IS NOT NULL) "
                    "ORDER BY seq",
                    (kind, incident, posted_ms),
                ):
                    body = json.loads(body_json)
                    if all(key in body and body[key] == value for key, value in draft.items()):
                        found = id_
                        break
                if found is None:
                    db.execute("DELETE FROM feed_posts WHERE number = ?", (number,))
                    dropped += 1
                else:
                    db.execute("UPDATE feed_posts SET message_id = ?, draft_json = '' "
                               "WHERE number = ?", (found, number))
                    completed += 1
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return completed, dropped

    def track_incident(
        self, feed: str, sensor_id: str | None, track_id: str | None
    ) -> bytes | None:
        """The incident of the last message a feed's sensor track became."""
        row = self._db.execute(
            "SELECT incident FROM feed_posts WHERE feed = ? AND sensor_id IS ? AND track_id IS ? "
            "AND message_id IS NOT NULL ORDER BY number DESC LIMIT 1",
            (feed, sensor_id, track_id),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def incident_head(self, incident: bytes) -> IncidentHead | None:
        """The last warning, update or cancel we sent in ``incident`` that was not rejected."""
        row = self._db.execute(
            "SELECT id, t, body_json FROM outbox WHERE incident = ? "
            "AND t IN ('warning', 'update', 'cancel') AND rejected_code IS NULL "
            "ORDER BY seq DESC LIMIT 1",
            (incident,),
        ).fetchone()
        if row is None:
            return None
        id_, t, body_json = row
        body = json.loads(body_json)
        to = body["to"]
        expires = body.get("expires")
        return IncidentHead(
            id=id_,
            incident=incident,
            type=BodyType(t),
            to=ALL_RECIPIENTS if to == ALL_RECIPIENTS else tuple(to),
            expires=None if expires is None else int(expires),
        )

    def stored_message(self, id_: bytes) -> StoredMessage | None:
        """A warning, update, cancel or text we sent or received."""
        row = self._db.execute(
            "SELECT t, incident, body_json, 1 FROM outbox WHERE id = ? "
            "AND t IN ('warning', 'update', 'cancel', 'text') "
            "UNION ALL SELECT t, incident, body_json, 0 FROM inbox WHERE id = ? LIMIT 1",
            (id_, id_),
        ).fetchone()
        if row is None:
            return None
        t, incident, body_json, ours = row
        body = json.loads(body_json)
        return StoredMessage(
            id=id_,
            sender=str(body["from"]),
            type=BodyType(t),
            incident=None if incident is None else bytes(incident),
            ts=int(body["ts"]),
            body_json=body_json,
            ours=bool(ours),
        )

    def acknowledgements(self, ref: bytes) -> tuple[Acknowledgement, ...]:
        """The acknowledged receipts for message ``ref``: its recipients' (when we sent it)
        and ours (when we received it), in the order they reached us."""
        rows = self._db.execute(
            "SELECT party, receipt_id, their_ts, received_ms FROM stages "
            "WHERE ref = ? AND stage = 'acknowledged' "
            "UNION ALL SELECT json_extract(body_json, '$.from'), id, "
            "json_extract(body_json, '$.ts'), created_ms FROM outbox "
            "WHERE ref = ? AND t = 'receipt' AND stage = 'acknowledged' "
            "AND rejected_code IS NULL ORDER BY 4",
            (ref, ref),
        ).fetchall()
        return tuple(Acknowledgement(party, receipt_id, int(ts))
                     for party, receipt_id, ts, _ in rows)


_SELECT_FEED_POST: Final = (
    "SELECT number, feed, route, idempotency_key, request_hash, posted_ms, t, incident, "
    "message_id FROM feed_posts"
)


def _feed_post(row: Sequence[Any]) -> FeedPost:
    number, feed, route, key, request_hash, posted_ms, t, incident, message_id = row
    return FeedPost(
        number=number,
        feed=feed,
        route=route,
        idempotency_key=key,
        request_hash=bytes(request_hash),
        posted_ms=posted_ms,
        type=BodyType(t),
        incident=bytes(incident),
        message_id=None if message_id is None else bytes(message_id),
    )


def _inbox_item(row: Sequence[Any]) -> InboxItem:
    (id_, sender, t, precedence, status, incident, sent_ts, received_ms, index, body_json,
     delivered_ms, duplicates, acknowledged_ms, action, note, ack_operator) = row
    return InboxItem(
        id=id_,
        sender=sender,
        type=BodyType(t),
        precedence=Precedence(precedence),
        status=Status(status),
        incident=incident,
        sent_ts=sent_ts,
        received_ms=received_ms,
        index=index,
        body_json=body_json,
        delivered_ms=delivered_ms,
        duplicates=duplicates,
        acknowledged_ms=acknowledged_ms,
        action=_opt_action(action),
        note=note,
        ack_operator=ack_operator,
    )


_HistoryRow = tuple[int, bytes | None, str | None, str | None, dict[str, object]]


def _history_row(event: Event) -> _HistoryRow | None:
    """What the event history keeps of an event; None for the routine ones."""
    if isinstance(event, MessageQueued):
        return (event.created_ms, event.body.id, ",".join(event.recipients), None,
                {"t": event.body.type.value, "precedence": event.body.precedence.value})
    if isinstance(event, MessageReceived):
        return (event.received_ms, event.body.id, event.body.sender, None,
                {"t": event.body.type.value, "precedence": event.body.precedence.value,
                 "index": event.index})
    if isinstance(event, DuplicateIgnored):
        return (event.received_ms, event.id, event.sender, None, {"index": event.index})
    if isinstance(event, ReceiptStored):
        return (event.received_ms, event.ref, event.party, event.stage.value,
                {"index": event.index, "their_ts": event.their_ts})
    if isinstance(event, MessageAccepted):
        if event.receipt:
            return None
        return (event.received_ms, event.id, None, "accepted",
                {"index": event.index, "accepted_ts": event.accepted_ts})
    if isinstance(event, MessageRejected):
        return (event.received_ms, event.id or None, None, "rejected",
                {"code": event.code, "sentence": event.sentence, "path": event.path,
                 "receipt": event.receipt})
    if isinstance(event, DeliveryRefused):
        return (event.received_ms, None, event.sender or None, None,
                {"code": event.code, "sentence": event.sentence, "path": event.path,
                 "index": event.index})
    if isinstance(event, MessageAcknowledged):
        return (event.acknowledged_ms, event.id, event.sender, "acknowledged",
                {"action": None if event.action is None else event.action.value,
                 "note": event.note, "operator": event.operator})
    if isinstance(event, CheckpointWitnessed):
        return (event.witnessed_ms, None, None, None, {"size": event.size})
    if isinstance(event, CheckpointInconsistent):
        return (event.received_ms, None, None, None,
                {"size": event.size, "held_size": event.held_size, "reason": event.reason})
    if isinstance(event, CheckpointRefused):
        return (event.received_ms, None, None, None, {"reason": event.reason})
    if isinstance(event, Overdue):
        return (event.at_ms, event.ref, event.party, event.stage.value,
                {"role": event.role.value, "precedence": event.precedence.value,
                 "due_ms": event.due_ms, "id": format_id(event.ref)})
    if isinstance(event, RelayConnected):
        return (event.at_ms, None, None, None, {"log_size": event.log_size})
    if isinstance(event, RelayDisconnected):
        return (event.at_ms, None, None, None, {"reason": event.reason})
    if isinstance(event, RelayOutage):
        return (event.at_ms, None, None, None,
                {"since_ms": event.since_ms, "waiting": event.waiting, "reason": event.reason})
    if isinstance(event, RelayBack):
        return (event.at_ms, None, None, None, {"unavailable_ms": event.unavailable_ms})
    if isinstance(event, RelaySuspected):
        return (event.at_ms, event.ref or None, event.party or None, None,
                {"sentence": event.sentence, "index": event.index,
                 "evidence": dict(event.evidence)})
    return None  # ReceiptQueued, LinkTestAnswered: routine, kept in outbox and state
