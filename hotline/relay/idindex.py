"""The relay's id index on disk: every logged id → its log index, in SQLite.

A resend of a message, however old, is answered with its original
``accepted`` receipt, and a receipt is routed back to whoever sent the message
it names. Both need every id the log holds; kept in dicts they made the
relay's memory grow with its log. This index keeps them in
``<data>/ids.sqlite`` instead, one row per logged envelope
(``id``, ``idx``, ``origin``: the sender of a routed message or link test, NULL
for a receipt), and serves the three maps of
:class:`~hotline.relay.idmaps.IdMaps`:

- ``accepted`` reads the log entry at the indexed position and answers with
  its relay time and body hash: the receipt stays a function of the log entry,
  and an index row that names another entry is refused (StoreError);
- ``origins`` answers from the row;
- ``seen`` answers body hashes for ids being logged (held in memory until
  their row exists) and, for logged ids, from the log entry.

Rows are written in batches (``flush``, at every checkpoint); the index
records the log size it covers in the same transaction, so after a crash it is
a consistent prefix of the log, which the relay extends from the log
(``catch_up``) or cuts (``cut``) to match the state it starts from. The file
is derived data: deleting it costs one pass over the log at the next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import structlog

from hotline.auditlog.leaf import decode_entry
from hotline.errors import EntryError, Rejected, StoreError
from hotline.network import Network
from hotline.protocol.bodies import CancelBody, LinkTestBody, TextBody, WarningBody
from hotline.protocol.envelope import Envelope, read_envelope
from hotline.relay.idmaps import Accepted, IdMaps

__all__ = ["ID_INDEX_FILE", "MAX_AHEAD_IDS", "IdIndex"]

log = structlog.get_logger()

ID_INDEX_FILE: Final = "ids.sqlite"
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS ids (id BLOB PRIMARY KEY, idx INTEGER NOT NULL, origin TEXT)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_MAX_ENTRY: Final = 1 << 30
_MAX_ID_MS: Final = (1 << 48) - 1  # a UUIDv7's 48 bits of milliseconds
MAX_AHEAD_IDS: Final = 10_000
"""Ids ahead of the clock kept in memory at most; beyond, every id at most the greatest
is looked up on disk (as if the index had no shortcut)."""

ReadEntry = Callable[[int], bytes]


def routed_origin(envelope: Envelope) -> str | None:
    """Who a receipt for this envelope goes back to: the sender of a message or a test."""
    body = envelope.body
    if isinstance(body, WarningBody | CancelBody | TextBody | LinkTestBody):
        return body.sender
    return None


class IdIndex:
    """id → log index on disk, with the maps the relay core uses; see the module docstring."""

    def __init__(
        self, path: Path, network: Network, read_entry: ReadEntry, clock: Callable[[], int]
    ) -> None:
        self.path: Final = path
        self._network = network
        self._read_entry = read_entry
        self._clock = clock
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()
            highest, ahead = self._bounds_on_disk()
        except sqlite3.Error as exc:
            raise StoreError(f"the id index {path} cannot be opened: {exc}") from exc
        self.size: int = 0 if row is None else int(row[0])  # log entries covered on disk
        self._rows: dict[bytes, tuple[int, str | None]] = {}  # added since the last flush
        # the rows of the flush before: a receipt's message is found here without a query
        self._recent: dict[bytes, tuple[int, str | None]] = {}
        # Every id on disk is at most _highest or in _ahead, so a new id above _highest and
        # not in _ahead (a new UUIDv7, mostly) needs no query. _highest is taken over ids
        # whose time is not ahead of the clock by more than the allowed skew: one sender's
        # id far in the future goes into _ahead instead of raising _highest for good.
        self._highest = highest
        self._ahead = ahead
        self.disk_lookups = 0  # ids looked up in SQLite so far (the shortcut's misses)
        self._logging: dict[bytes, bytes] = {}  # ids admitted but not yet logged → body hash
        self.maps: Final = IdMaps(_Accepted(self), _Origins(self), _Seen(self))

    # ------------------------------------------------------------------ writing

    def add(self, message_id: bytes, index: int) -> None:
        self._rows[message_id] = (index, None)
        self._logging.pop(message_id, None)

    def set_origin(self, message_id: bytes, origin: str) -> None:
        found = self._row(message_id)
        if found is not None:
            self._rows[message_id] = (found[0], origin)

    def flush(self, covered: int) -> None:
        """Write the rows added since the last flush; the index now covers ``covered`` entries."""
        rows = [(key, row[0], row[1]) for key, row in self._rows.items()]
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO ids VALUES (?, ?, ?)", rows)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('size', ?)", (covered,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"the id index {self.path} cannot be written: {exc}") from exc
        if rows:
            bound = self._bound()
            keys = [key for key, _, _ in rows]
            self._highest = max(self._highest, *(key for key in keys if key <= bound), b"")
            self._ahead.update(key for key in keys if key > bound)
            if len(self._ahead) > MAX_AHEAD_IDS:  # too many to keep: the greatest of all
                self._highest = max(self._highest, *self._ahead)
                self._ahead = set()
        self._recent, self._rows = self._rows, {}
        self.size = covered

    def cut(self, size: int) -> None:
        """Forget every row for an entry at ``size`` or beyond (they will be added again)."""
        self._rows = {k: row for k, row in self._rows.items() if row[0] < size}
        self._recent = {k: row for k, row in self._recent.items() if row[0] < size}
        try:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM ids WHERE idx >= ?", (size,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('size', ?)", (size,))
            self._db.execute("COMMIT")
            self._highest, self._ahead = self._bounds_on_disk()
        except sqlite3.Error as exc:
            raise StoreError(f"the id index {self.path} cannot be written: {exc}") from exc
        self.size = size

    def catch_up(self, entries: Iterable[tuple[int, bytes]], covered: int) -> int:
        """Index logged ``(index, entry)`` pairs (no signature checks); returns how many rows."""
        added = 0
        for index, entry in entries:
            decoded = decode_entry(entry)
            if decoded.envelope is None:
                continue
            envelope = read_envelope(decoded.envelope, self._network, max_size=_MAX_ENTRY).verified(
                unsafe_signature_checked=True
            )
            self._rows[envelope.body.id] = (index, routed_origin(envelope))
            added += 1
            if len(self._rows) >= 50_000:
                self.flush(index + 1)
        self.flush(covered)
        return added

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ reading

    def _bound(self) -> bytes:
        """The greatest id a sender's clock within the allowed skew can make now."""
        ms = min(self._clock() + self._network.limits.clock_skew_ms, _MAX_ID_MS)
        return ms.to_bytes(6, "big") + b"\xff" * 10

    def _bounds_on_disk(self) -> tuple[bytes, set[bytes]]:
        """``_highest`` and ``_ahead`` for the rows on disk (see ``__init__``)."""
        bound = self._bound()
        ahead = {
            bytes(found[0]) for found in self._db.execute(
                "SELECT id FROM ids WHERE id > ? LIMIT ?", (bound, MAX_AHEAD_IDS + 1)
            )
        }
        if len(ahead) > MAX_AHEAD_IDS:
            found = self._db.execute("SELECT max(id) FROM ids").fetchone()
            return bytes(found[0]), set()
        found = self._db.execute("SELECT max(id) FROM ids WHERE id <= ?", (bound,)).fetchone()
        return (b"" if found is None or found[0] is None else bytes(found[0])), ahead

    def _row(self, message_id: bytes) -> tuple[int, str | None] | None:
        row = self._rows.get(message_id) or self._recent.get(message_id)
        if row is not None:
            return row
        if message_id > self._highest and message_id not in self._ahead:
            return None  # not on disk: every id there is at most _highest or in _ahead
        self.disk_lookups += 1
        try:
            found = self._db.execute(
                "SELECT idx, origin FROM ids WHERE id = ?", (message_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"the id index {self.path} cannot be read: {exc}") from exc
        return None if found is None else (int(found[0]), found[1])

    def accepted(self, message_id: bytes) -> Accepted | None:
        """Index, relay time and body hash of the logged envelope ``message_id``, from the log."""
        row = self._row(message_id)
        if row is None:
            return None
        index = row[0]
        try:
            decoded = decode_entry(self._read_entry(index))
            if decoded.envelope is None:
                raise StoreError(f"entry {index} is an event")
            envelope = read_envelope(decoded.envelope, self._network, max_size=_MAX_ENTRY).verified(
                unsafe_signature_checked=True
            )
        except (EntryError, Rejected, StoreError) as exc:
            raise StoreError(
                f"the id index names entry {index} for {message_id.hex()}, which does not hold "
                f"it ({exc}); delete {self.path} to rebuild it from the log"
            ) from exc
        if envelope.body.id != message_id:
            raise StoreError(
                f"the id index names entry {index} for {message_id.hex()}, which holds "
                f"{envelope.body.id.hex()}; delete {self.path} to rebuild it from the log"
            )
        return index, decoded.relay_ts, envelope.hash


class _Accepted:
    def __init__(self, index: IdIndex) -> None:
        self._index = index

    def get(self, key: bytes, /) -> Accepted | None:
        return self._index.accepted(key)

    def __getitem__(self, key: bytes, /) -> Accepted:
        found = self._index.accepted(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: bytes, value: Accepted, /) -> None:
        self._index.add(key, value[0])


class _Origins:
    def __init__(self, index: IdIndex) -> None:
        self._index = index

    def get(self, key: bytes, /) -> str | None:
        row = self._index._row(key)
        return None if row is None else row[1]

    def __setitem__(self, key: bytes, value: str, /) -> None:
        self._index.set_origin(key, value)


class _Seen:
    def __init__(self, index: IdIndex) -> None:
        self._index = index

    def get(self, key: bytes, /) -> bytes | None:
        logging = self._index._logging.get(key)
        if logging is not None:
            return logging
        accepted = self._index.accepted(key)
        return None if accepted is None else accepted[2]

    def __setitem__(self, key: bytes, value: bytes, /) -> None:
        # until add() stores its row: an id admitted (or replayed) but not yet in the index
        self._index._logging[key] = value

    def __delitem__(self, key: bytes, /) -> None:
        # an id admitted whose append failed: not logged, so not seen (a logged id stays)
        self._index._logging.pop(key, None)
