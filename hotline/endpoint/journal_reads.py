"""What the console and the local API read from the journal: frozen rows, newest first.

Inbox and outbox pages, a message's stages and acknowledgements, the incident
a message belongs to, checkpoints, the event and alarm history, link tests and
latency series. Nothing here writes. Blocking, on the journal's thread, like
:class:`~hotline.endpoint.journal.Journal`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from hotline.endpoint.journal_file import state_value
from hotline.endpoint.records import (
    Acknowledgement,
    EventRecord,
    InboxItem,
    IncidentHead,
    LinkTestStatus,
    OutboxItem,
    Rejection,
    StageTime,
    StoredMessage,
    WitnessedCheckpoint,
)
from hotline.protocol.bodies import ALL_RECIPIENTS
from hotline.protocol.vocab import AckAction, BodyType, Precedence, Stage, Status

__all__ = ["JournalReads"]

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


def _opt_action(value: str | None) -> AckAction | None:
    return None if value is None else AckAction(value)


class JournalReads:
    """The read queries of one journal; every method is blocking and thread-bound."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

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

    def link_tests(self) -> LinkTestStatus:
        """The last link test we answered, how many we answered, and where the answers are."""
        last_id = state_value(self._db, "last_test_id")
        last_ms = state_value(self._db, "last_test_ms")
        waiting = self._db.execute("SELECT COUNT(*) FROM outbox WHERE link_test = 1").fetchone()
        return LinkTestStatus(
            None if last_id is None else bytes(last_id),
            None if last_ms is None else int(last_ms),
            int(state_value(self._db, "tests_answered") or 0),
            answers_logged=int(state_value(self._db, "test_answers_logged") or 0),
            answers_waiting=int(waiting[0]),
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
