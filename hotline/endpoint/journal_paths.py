"""The journal's record of each relay path, in a network of several relays.

Tables (in the endpoint's journal, created in place like every later table):

=================  =============================================================
``paths``          per envelope we signed and relay it is sent over: the relay's
                   ``accepted`` index and our time of it, or its refusal; an
                   envelope is pending on a relay until one of them is written
``path_arrivals``  per message to us, or receipt for one of ours, and relay that
                   brought it: our time, the relay's log index, and whether it
                   was the first path (the figures per path are read from here)
``path_checkpoints``  every checkpoint of each relay's log we witnessed as consistent
=================  =============================================================

In the one-relay network none of these is written: the outbox and the
``checkpoints`` table hold what they always held.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from hotline.endpoint.events import (
    CheckpointWitnessed,
    EndpointEvent,
    MessageAccepted,
    MessageQueued,
    MessageRejected,
    PathArrived,
    ReceiptQueued,
)
from hotline.endpoint.state import HeldCheckpoint, PendingEnvelope
from hotline.protocol.vocab import BodyType

__all__ = ["PATHS_SCHEMA", "PathArrival", "arrivals", "last_checkpoints", "load_arrivals",
           "load_paths", "path_claims", "record_path_event"]

ARRIVALS_KEPT: Final = 1 << 16
"""How many of the latest arrivals per relay a restarted core remembers (as in memory)."""

PATHS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS paths (
    id BLOB NOT NULL,
    relay TEXT NOT NULL,
    accepted_index INTEGER,
    accepted_ms INTEGER,
    rejected_code TEXT,
    PRIMARY KEY (id, relay)
) STRICT;
CREATE TABLE IF NOT EXISTS path_arrivals (
    id BLOB NOT NULL,
    relay TEXT NOT NULL,
    ref BLOB NOT NULL,
    party TEXT NOT NULL,
    stage TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    relay_index INTEGER NOT NULL,
    first INTEGER NOT NULL,
    PRIMARY KEY (id, relay)
) STRICT;
CREATE INDEX IF NOT EXISTS path_arrivals_ref ON path_arrivals (ref);
CREATE TABLE IF NOT EXISTS path_checkpoints (
    relay TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (relay, size, root)
) STRICT;
"""

PathArrival = tuple[bytes, str, bytes, str, str, int, int, bool]
"""(id, relay, ref, party, stage, at_ms, relay_index, first) of one arrival."""


def record_path_event(db: sqlite3.Connection, event: EndpointEvent) -> None:
    """Write what ``event`` says about a relay path (nothing for a one-relay event)."""
    if isinstance(event, ReceiptQueued) and event.link_test:
        return  # a link test's answer goes to its one relay and is not kept (journal.py)
    if isinstance(event, MessageQueued | ReceiptQueued) and event.relays:
        db.executemany(
            "INSERT OR IGNORE INTO paths (id, relay) VALUES (?, ?)",
            [(event.body.id, relay) for relay in event.relays],
        )
    elif isinstance(event, MessageAccepted) and event.relay:
        db.execute(
            "UPDATE paths SET accepted_index = ?, accepted_ms = ? WHERE id = ? AND relay = ?",
            (event.index, event.received_ms, event.id, event.relay),
        )
    elif isinstance(event, MessageRejected) and event.relay:
        db.execute(
            "UPDATE paths SET rejected_code = ? WHERE id = ? AND relay = ? "
            "AND accepted_index IS NULL",
            (event.code, event.id, event.relay),
        )
    elif isinstance(event, PathArrived):
        db.execute(
            "INSERT OR IGNORE INTO path_arrivals (id, relay, ref, party, stage, at_ms, "
            "relay_index, first) VALUES (?,?,?,?,?,?,?,?)",
            (event.id, event.relay, event.ref, event.party, event.stage, event.at_ms,
             event.index, int(event.first)),
        )
    elif isinstance(event, CheckpointWitnessed) and event.relay:
        db.execute(
            "INSERT OR IGNORE INTO path_checkpoints (relay, size, root, note, at_ms) "
            "VALUES (?,?,?,?,?)",
            (event.relay, event.size, event.root, event.note, event.witnessed_ms),
        )


def load_paths(
    db: sqlite3.Connection,
) -> tuple[dict[str, tuple[PendingEnvelope, ...]], dict[str, HeldCheckpoint], dict[str, int]]:
    """What each relay still owes an answer for, in ``seq`` order, its last checkpoint, and
    the highest log index of a receipt it brought us (its ``since``)."""
    pending: dict[str, list[PendingEnvelope]] = {}
    for relay, seq, id_, frame, digest, t in db.execute(
        "SELECT p.relay, o.seq, o.id, o.frame, o.body_hash, o.t FROM paths p "
        "JOIN outbox o ON o.id = p.id "
        "WHERE p.accepted_index IS NULL AND p.rejected_code IS NULL ORDER BY o.seq"
    ):
        pending.setdefault(relay, []).append(
            PendingEnvelope(seq, id_, frame, digest, receipt=t == BodyType.RECEIPT.value)
        )
    checkpoints = {
        relay: HeldCheckpoint(size, root, note)
        for relay, size, root, note in db.execute(
            "SELECT relay, size, root, note FROM path_checkpoints p WHERE size = "
            "(SELECT max(size) FROM path_checkpoints q WHERE q.relay = p.relay)"
        )
    }
    since = {
        relay: int(top)
        for relay, top in db.execute(
            "SELECT relay, max(relay_index) FROM path_arrivals WHERE stage != 'message' "
            "GROUP BY relay"
        )
    }
    return {r: tuple(p) for r, p in pending.items()}, checkpoints, since


def load_arrivals(
    db: sqlite3.Connection,
) -> tuple[dict[str, dict[bytes, int]], dict[bytes, tuple[str, int]]]:
    """What each relay delivered to us (id → our time, oldest first, the latest
    :data:`ARRIVALS_KEPT` per relay) and, per message to us, the relay that brought it first."""
    delivered: dict[str, dict[bytes, int]] = {}
    for relay, id_, at in db.execute(
        "SELECT relay, id, at_ms FROM (SELECT relay, id, at_ms, rowid AS r, row_number() "
        "OVER (PARTITION BY relay ORDER BY at_ms DESC, rowid DESC) AS n FROM path_arrivals) "
        "WHERE n <= ? ORDER BY at_ms, r", (ARRIVALS_KEPT,)
    ):
        delivered.setdefault(relay, {})[bytes(id_)] = int(at)
    first = {
        bytes(id_): (relay, int(at))
        for id_, relay, at in db.execute(
            "SELECT id, relay, at_ms FROM path_arrivals WHERE stage = 'message' AND first = 1 "
            "ORDER BY at_ms DESC, rowid DESC LIMIT ?", (ARRIVALS_KEPT,)
        )
    }
    return delivered, dict(reversed(first.items()))


def arrivals(db: sqlite3.Connection, since_ms: int = 0) -> tuple[PathArrival, ...]:
    """Every arrival recorded since ``since_ms``, oldest first."""
    return tuple(
        (id_, relay, ref, party, stage, at, index, bool(first))
        for id_, relay, ref, party, stage, at, index, first in db.execute(
            "SELECT id, relay, ref, party, stage, at_ms, relay_index, first FROM path_arrivals "
            "WHERE at_ms >= ? ORDER BY at_ms", (since_ms,)
        )
    )


Claimed = tuple[list[tuple[int, bytes]], list[tuple[int, bytes, bytes]],
                list[tuple[int, bytes, bytes]]]


def path_claims(db: sqlite3.Connection, relay: str) -> Claimed | None:
    """What ``relay`` told us: the checkpoints we witnessed of its log, the indexes of its
    ``accepted`` receipts and of the messages it delivered (None: no record of it)."""
    checkpoints = [(int(s), bytes(r)) for s, r in db.execute(
        "SELECT size, root FROM path_checkpoints WHERE relay = ?", (relay,))]
    accepted = [(int(i), bytes(h), bytes(m)) for i, h, m in db.execute(
        "SELECT p.accepted_index, o.body_hash, o.id FROM paths p JOIN outbox o ON o.id = p.id "
        "WHERE p.relay = ? AND p.accepted_index IS NOT NULL", (relay,))]
    delivered = [(int(i), bytes(h), bytes(m)) for i, h, m in db.execute(
        "SELECT a.relay_index, i.body_hash, i.id FROM path_arrivals a JOIN inbox i "
        "ON i.id = a.id WHERE a.relay = ? AND a.stage = 'message' AND a.relay_index >= 0",
        (relay,))]
    if not (checkpoints or accepted or delivered):
        return None
    return checkpoints, accepted, delivered


def last_checkpoints(db: sqlite3.Connection) -> dict[str, tuple[int, bytes, int]]:
    """Each relay's largest checkpoint we witnessed: (size, root, our time of it)."""
    return {
        relay: (int(size), bytes(root), int(at))
        for relay, size, root, at in db.execute(
            "SELECT relay, size, root, at_ms FROM path_checkpoints p WHERE size = "
            "(SELECT max(size) FROM path_checkpoints q WHERE q.relay = p.relay)"
        )
    }
