"""The journal's feed_posts: added to older journals in place, settled after a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hotline.endpoint.journal import JOURNAL_FILE, Journal
from hotline.endpoint.service import serve_endpoint
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.vocab import BodyType
from tests.factories import make_network
from tests.feeds.helpers import (
    FeedClient,
    alert_json,
    endpoint_config,
    http_session,
    now_ms,
    radar_feed,
    write_feeds,
)


def test_an_older_journal_gains_the_feed_table_in_place(tmp_path: Path) -> None:
    """A journal written before feeds existed opens with feed_posts added and its rows kept."""
    path = tmp_path / JOURNAL_FILE
    Journal.open(path, initial_seq=5).close()
    with sqlite3.connect(path) as db:  # as the first release left it
        db.execute("DROP TABLE feed_posts")
        db.execute("DROP INDEX outbox_incident")
    db.close()
    journal = Journal.open(path)
    try:
        assert journal.next_seq() == 5
        incident = make_id(1, bytes(10))
        number = journal.feed_posts.reserve(
            feed="radar-1", route="alerts", idempotency_key="k", request_hash=bytes(32),
            track=("S", None), draft={}, posted_ms=1, kind=BodyType.WARNING, incident=incident,
        )
        journal.feed_posts.complete(number, make_id(2, bytes(10)))
        assert journal.feed_posts.track_incident("radar-1", "S", None) == incident
    finally:
        journal.close()


async def test_a_post_cut_short_by_a_crash_is_settled_at_start(tmp_path: Path) -> None:
    """A post noted whose message was journaled gets that message at the next start (its key
    replays it, its track follows it); a post noted with no message is forgotten."""
    config = endpoint_config(make_network(), tmp_path, "LT",
                             feeds=write_feeds(tmp_path / "feeds.toml", radar_feed()))
    incident = make_id(now_ms(), b"\x07" * 10)
    alert = alert_json()
    del alert["track_id"]
    draft = {"t": "warning", **alert, "incident": format_id(incident)}
    async with serve_endpoint(config) as running:
        journal = running.endpoint.journal
        posted_ms = now_ms()
        await journal.call(lambda j: j.feed_posts.reserve(
            feed="radar-1", route="alerts", idempotency_key="sent", request_hash=bytes(32),
            track=("LT-RAD-4", None), draft=draft, posted_ms=posted_ms,
            kind=BodyType.WARNING, incident=incident,
        ))
        message_id = await running.endpoint.post_message(draft)
        await journal.call(lambda j: j.feed_posts.reserve(
            feed="radar-1", route="alerts", idempotency_key="never-sent",
            request_hash=bytes(32), track=None, draft={**draft, "precedence": "routine"},
            posted_ms=posted_ms, kind=BodyType.WARNING, incident=make_id(posted_ms, bytes(10)),
        ))
    async with serve_endpoint(config) as running, http_session() as http:
        journal = running.endpoint.journal
        settled = await journal.call(lambda j: j.feed_posts.find("radar-1", "sent"))
        forgotten = await journal.call(lambda j: j.feed_posts.find("radar-1", "never-sent"))
        reply = await FeedClient(http, running.url).alert(alert)
    assert settled is not None
    assert settled.message_id == message_id
    assert forgotten is None
    assert reply.json["t"] == "update"
    assert reply.json["incident"] == format_id(incident)
