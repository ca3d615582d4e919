"""The demo's sensors: a token per endpoint on disk, and ``alert`` steps in the scenario."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hotline.demo.runner import Demo
from hotline.demo.scenario import builtin_scenario, load_scenario
from hotline.endpoint.feedconfig import load_feeds
from hotline.errors import ConfigError


def test_the_demo_writes_a_token_and_its_hash_for_each_endpoint(tmp_path: Path) -> None:
    """DATA/feeds/<ID>.token (0600) holds a token that DATA/feeds/<ID>.toml accepts, hashed."""
    demo = Demo(tmp_path, 18_000, builtin_scenario())
    for party in demo.network.endpoints:
        token_file = tmp_path / "feeds" / f"{party}.token"
        token = token_file.read_text(encoding="utf-8").strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token not in demo.feeds_file(party).read_text(encoding="utf-8")
        assert load_feeds(demo.feeds_file(party)).authenticate(token) is not None
        assert "--feeds" in demo.endpoints[party].args
    again = Demo(tmp_path, 18_000, builtin_scenario())
    assert again.feed_tokens == demo.feed_tokens  # a second run keeps working tokens


def test_the_builtin_scenario_reports_one_radar_track_twice() -> None:
    """Two alert steps from LT name the same sensor track, so the second becomes an update."""
    alerts = [s for s in builtin_scenario().steps if s.do == "alert"]
    assert len(alerts) == 2
    assert {s.fields["from"] for s in alerts} == {"LT"}
    tracks = {(s.fields["track"]["sensor_id"], s.fields["track_id"]) for s in alerts}
    assert len(tracks) == 1


def test_an_alert_step_needs_a_track(tmp_path: Path) -> None:
    """A scenario alert without a track is refused when the scenario is read."""
    path = tmp_path / "s.json"
    path.write_text('{"steps": [{"at": 1, "do": "alert", "from": "LT"}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="an alert needs a track"):
        load_scenario(path)
