"""The sensor feeds' idempotency ledger: the journal's ``feed_posts`` table.

Every post a feed made that became a message is kept with its feed, its
Idempotency-Key and the hash of its request (so a retry is answered again and a
reused key refused), and its sensor track (so the next report of the track
continues its incident). A post is reserved before its message is signed and
completed after; :meth:`FeedLedger.reconcile` settles what a crash in between
left. Blocking, on the journal's thread, like :class:`~hotline.endpoint.journal.Journal`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from hotline.endpoint.journal_file import to_json, transaction
from hotline.endpoint.records import FeedPost
from hotline.protocol.vocab import BodyType

__all__ = ["FeedLedger"]

_SELECT_FEED_POST: Final = (
    "SELECT number, feed, route, idempotency_key, request_hash, posted_ms, t, incident, "
    "message_id FROM feed_posts"
)


class FeedLedger:
    """The ``feed_posts`` of one journal; every method is blocking and thread-bound."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def find(self, feed: str, idempotency_key: str) -> FeedPost | None:
        """The post ``feed`` made with this Idempotency-Key, if any."""
        row = self._db.execute(
            _SELECT_FEED_POST + " WHERE feed = ? AND idempotency_key = ?",
            (feed, idempotency_key),
        ).fetchone()
        return None if row is None else _feed_post(row)

    def reserve(
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
        """Note a post before its message is signed; its number, for :meth:`complete` or
        :meth:`drop`."""
        sensor_id, track_id = track if track is not None else (None, None)
        cursor = self._db.execute(
            "INSERT INTO feed_posts (feed, route, idempotency_key, request_hash, sensor_id, "
            "track_id, draft_json, posted_ms, t, incident) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (feed, route, idempotency_key, request_hash, sensor_id, track_id, to_json(draft),
             posted_ms, kind.value, incident),
        )
        number = cursor.lastrowid
        assert number is not None  # an INSERT into a rowid table always sets it
        return number

    def complete(self, number: int, message_id: bytes) -> None:
        """The post became message ``message_id`` (its draft, in the outbox now, is dropped)."""
        self._db.execute(
            "UPDATE feed_posts SET message_id = ?, draft_json = '' WHERE number = ?",
            (message_id, number),
        )

    def drop(self, number: int) -> None:
        """Forget a reserved post whose message was refused before it was signed."""
        self._db.execute("DELETE FROM feed_posts WHERE number = ? AND message_id IS NULL",
                         (number,))

    def reconcile(self) -> tuple[int, int]:
        """Settle posts left without a message by a crash: (completed, dropped).

        The endpoint journals a message before sending a byte of it, so a post
        whose message is in the outbox (same type and incident, created after
        the post, holding every field of the draft, claimed by no other post)
        gets that message; a post with none was never sent and is dropped.
        """
        db = self._db
        completed = dropped = 0
        with transaction(db):
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
