"""``[store]`` of a relay's configuration: the file store by default, or a JetStream stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.auditlog.streamconfig import load_store_file, parse_store_table
from hotline.errors import ConfigError

DAY_MS = 86_400_000


def test_no_store_table_means_the_file_store(tmp_path: Path) -> None:
    """A configuration without [store], or with kind = "file", keeps the log on local files."""
    path = tmp_path / "relay.toml"
    path.write_text("")
    assert load_store_file(path, max_age_ms=DAY_MS) is None
    assert parse_store_table({"kind": "file"}, "[store]", max_age_ms=DAY_MS) is None


def test_a_nats_store_takes_its_servers_and_defaults_to_three_replicas() -> None:
    """kind = "nats" gives the servers, stream HOTLINE_LOG and 3 replicas by default."""
    settings = parse_store_table(
        {"kind": "nats", "servers": ["nats://127.0.0.1:4222"]}, "[store]", max_age_ms=DAY_MS
    )
    assert settings is not None
    assert settings.servers == ("nats://127.0.0.1:4222",)
    assert (settings.stream, settings.replicas) == ("HOTLINE_LOG", 3)
    assert settings.entry_subject == "hotline.log.entry"


def test_the_duplicate_window_is_never_shorter_than_the_oldest_acceptable_message() -> None:
    """A duplicate window below the network's max_age is raised to it."""
    settings = parse_store_table(
        {"kind": "nats", "servers": ["nats://a:1"], "duplicate_window_s": 60},
        "[store]", max_age_ms=DAY_MS,
    )
    assert settings is not None
    assert settings.duplicate_window_ms == DAY_MS


@pytest.mark.parametrize(
    ("table", "fault"),
    [
        ({"kind": "s3"}, "kind must be"),
        ({"kind": "nats"}, "servers must be"),
        ({"kind": "nats", "servers": ["nats://a:1"], "replicas": 7}, "replicas must be"),
        ({"kind": "nats", "servers": ["nats://a:1"], "subject": "a.*"}, "subject must be"),
        ({"kind": "nats", "servers": ["nats://a:1"], "colour": "red"}, "unknown key"),
    ],
)
def test_a_malformed_store_table_is_refused_with_its_fault(
    table: dict[str, object], fault: str
) -> None:
    """Each mistake in [store] raises ConfigError naming what is wrong."""
    with pytest.raises(ConfigError, match=fault):
        parse_store_table(table, "[store]", max_age_ms=DAY_MS)
