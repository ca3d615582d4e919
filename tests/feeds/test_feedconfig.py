"""feeds.toml: parsing, validation errors that name the table and key, hashed tokens."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hotline.endpoint.feedconfig import (
    Feed,
    append_feed,
    load_feeds,
    parse_feeds,
    token_sha256,
)
from hotline.endpoint.service import serve_endpoint
from hotline.errors import ConfigError
from hotline.protocol.vocab import Status
from tests.factories import make_network
from tests.feeds.helpers import TOKEN, endpoint_config, radar_feed, write_feeds

HASH = token_sha256(TOKEN).hex()


def feeds(*tables: dict[str, Any]) -> dict[str, Any]:
    return {"feeds": list(tables)}


def test_a_minimal_feed_takes_the_defaults() -> None:
    """name and token_sha256 suffice: 60 a minute, to "*", status actual."""
    config = parse_feeds(feeds({"name": "radar-1", "token_sha256": HASH}))
    assert config.feeds == (Feed("radar-1", bytes.fromhex(HASH), 60.0, "*", Status.ACTUAL),)


def test_every_key_is_read() -> None:
    """rate_per_minute, to and status are read as given."""
    (feed,) = parse_feeds(feeds({"name": "eo", "token_sha256": HASH, "rate_per_minute": 2.5,
                                 "to": ["BY", "PL"], "status": "exercise"})).feeds
    assert (feed.rate_per_minute, feed.to, feed.status) == (2.5, ("BY", "PL"), Status.EXERCISE)


def test_no_file_content_means_no_feeds() -> None:
    """An empty file has no feeds, and no token authenticates."""
    assert parse_feeds({}).authenticate(TOKEN) is None


def test_a_token_authenticates_by_its_hash() -> None:
    """The feed is found by the SHA-256 of its token; another token finds none."""
    config = parse_feeds(feeds({"name": "a", "token_sha256": token_sha256("other").hex()},
                               {"name": "b", "token_sha256": HASH.upper()}))
    found = config.authenticate(TOKEN)
    assert found is not None
    assert found.name == "b"
    assert config.authenticate(TOKEN[:-1]) is None


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ({"token_sha256": HASH}, "feeds[0].name"),
        ({"name": "bad name", "token_sha256": HASH}, "feeds[0].name"),
        ({"name": "r", "token_sha256": "abc"}, "feeds[0] (r).token_sha256"),
        ({"name": "r", "token_sha256": HASH, "rate_per_minute": 0}, "feeds[0] (r).rate_per_minute"),
        ({"name": "r", "token_sha256": HASH, "rate_per_minute": True},
         "feeds[0] (r).rate_per_minute"),
        ({"name": "r", "token_sha256": HASH, "status": "drill"}, "feeds[0] (r).status"),
        ({"name": "r", "token_sha256": HASH, "to": []}, "feeds[0] (r).to"),
        ({"name": "r", "token_sha256": HASH, "to": ["BY", "BY"]}, "feeds[0] (r).to[1]"),
        ({"name": "r", "token_sha256": HASH, "token": "clear"}, "feeds[0].token: unknown key"),
    ],
)
def test_validation_errors_name_the_table_and_key(table: dict[str, Any], where: str) -> None:
    """Each bad value is a ConfigError naming the file, the [[feeds]] table and the key."""
    with pytest.raises(ConfigError) as caught:
        parse_feeds(feeds(table), source="LT/feeds.toml")
    assert str(caught.value).startswith(f"LT/feeds.toml: {where}")


def test_names_and_tokens_are_unique() -> None:
    """A second feed with the same name, or the same token, is refused."""
    with pytest.raises(ConfigError, match=r"feeds\[1\].name"):
        parse_feeds(feeds({"name": "r", "token_sha256": HASH},
                          {"name": "r", "token_sha256": "00" * 32}))
    with pytest.raises(ConfigError, match=r"feeds\[1\].token_sha256"):
        parse_feeds(feeds({"name": "r", "token_sha256": HASH}, {"name": "s", "token_sha256": HASH}))


def test_recipients_must_be_linked_endpoints() -> None:
    """Given the network, to may only name endpoints linked to this one."""
    net = make_network(("BY", "LT", "PL"), links=[("LT", "BY")])
    table = {"name": "r", "token_sha256": HASH, "to": ["BY", "PL"]}
    with pytest.raises(ConfigError, match=r"to\[1\]: there is no link LT-PL"):
        parse_feeds(feeds(table), network=net.network, me="LT")
    with pytest.raises(ConfigError, match=r"to\[0\]: XX is not an endpoint"):
        parse_feeds(feeds({**table, "to": ["XX"]}), network=net.network, me="LT")


def test_a_file_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable or malformed file is a ConfigError naming it."""
    path = tmp_path / "feeds.toml"
    path.write_text("[[feeds]\nname = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_feeds(path)


def test_append_writes_only_the_hash_with_mode_0600(tmp_path: Path) -> None:
    """append_feed creates the file 0600, stores the token's SHA-256, never the token."""
    path = tmp_path / "feeds.toml"
    append_feed(path, "radar-1", TOKEN, rate_per_minute=30, to=["BY"], status=Status.TEST)
    append_feed(path, "radar-2", "second-token")
    text = path.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(text)
    assert [f["name"] for f in data["feeds"]] == ["radar-1", "radar-2"]
    assert data["feeds"][0] == {"name": "radar-1", "token_sha256": HASH, "rate_per_minute": 30,
                                "to": ["BY"], "status": "test"}
    assert load_feeds(path).authenticate("second-token") is not None


def test_append_refuses_a_name_in_use(tmp_path: Path) -> None:
    """Adding a feed under an existing name is a ConfigError; the file is unchanged."""
    path = tmp_path / "feeds.toml"
    append_feed(path, "radar-1", TOKEN)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="exists already"):
        append_feed(path, "radar-1", "another")
    assert path.read_bytes() == before


async def test_a_bad_feeds_file_stops_the_endpoint_from_starting(tmp_path: Path) -> None:
    """An endpoint given an invalid or missing --feeds file refuses to start."""
    net = make_network()
    bad = write_feeds(tmp_path / "feeds.toml", radar_feed(rate_per_minute=-1))
    with pytest.raises(ConfigError, match="rate_per_minute"):
        async with serve_endpoint(endpoint_config(net, tmp_path, "LT", feeds=bad)):
            pass
    with pytest.raises(ConfigError, match="does not exist"):
        async with serve_endpoint(endpoint_config(net, tmp_path, "LT",
                                                  feeds=tmp_path / "absent.toml")):
            pass
