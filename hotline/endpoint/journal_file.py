"""The endpoint's journal file: its tables, opened in WAL mode with ``synchronous=FULL``.

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

Three modules read and write it, one job each, over the one connection opened
here: :mod:`hotline.endpoint.journal` (the core's state and the events it
records), :mod:`hotline.endpoint.journal_reads` (what the console and the local
API read) and :mod:`hotline.endpoint.feed_ledger` (the sensor feeds'
idempotency ledger).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from hotline.errors import UsageError

__all__ = [
    "JOURNAL_FILE",
    "open_journal_db",
    "set_state_value",
    "state_value",
    "to_json",
    "transaction",
]

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



def to_json(value: object) -> str:
    """Compact JSON text, as the journal keeps bodies and details."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def open_journal_db(path: Path, *, initial_seq: int = 1) -> sqlite3.Connection:
    """Open (or create) the journal file; a new one starts its ``seq`` at ``initial_seq``."""
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
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def state_value(db: sqlite3.Connection, key: str) -> int | bytes | None:
    """A value of the ``state`` table, or None."""
    row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def set_state_value(db: sqlite3.Connection, key: str, value: object) -> None:
    db.execute(
        "INSERT INTO state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
