"""``hotline feed-token``: a new feed's token printed once, stored hashed, and accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.cli.main import main
from hotline.endpoint.feedconfig import load_feeds, token_sha256
from tests.factories import make_network
from tests.feeds.helpers import FeedClient, alert_json, endpoint_running, http_session


async def test_the_printed_token_is_accepted_and_only_its_hash_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """feed-token prints a token, writes its SHA-256 under the name, and the endpoint takes it."""
    feeds = tmp_path / "feeds.toml"
    assert main(["feed-token", "--feeds", str(feeds), "--name", "radar-1", "--rate", "30",
                 "--to", "BY,PL", "--status", "exercise"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 43
    assert token not in feeds.read_text(encoding="utf-8")
    (feed,) = load_feeds(feeds).feeds
    assert (feed.name, feed.token_sha256, feed.rate_per_minute, feed.to) == (
        "radar-1", token_sha256(token), 30.0, ("BY", "PL"))

    async with endpoint_running(make_network(), tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        reply = await FeedClient(http, running.url, token).alert(alert_json())
        wrong = await FeedClient(http, running.url, token[::-1]).alert(alert_json())
    assert reply.status == 202
    assert wrong.status == 401


def test_each_run_makes_a_new_token_and_names_stay_unique(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two feeds get two tokens; a name used before is refused with exit status 2."""
    feeds = tmp_path / "feeds.toml"
    assert main(["feed-token", "--feeds", str(feeds), "--name", "a"]) == 0
    assert main(["feed-token", "--feeds", str(feeds), "--name", "b"]) == 0
    first, second = capsys.readouterr().out.split()
    assert first != second
    assert main(["feed-token", "--feeds", str(feeds), "--name", "a"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert [f.name for f in load_feeds(feeds).feeds] == ["a", "b"]
