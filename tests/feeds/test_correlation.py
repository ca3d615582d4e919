"""Track correlation: repeated reports of one sensor track become updates of one incident."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hotline.endpoint.correlation import TrackKey, continued_incident, draft_of, read_alert
from hotline.endpoint.feedconfig import Feed
from hotline.endpoint.records import IncidentHead
from hotline.endpoint.service import EndpointConfig, serve_endpoint
from hotline.errors import Rejected
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.vocab import BodyType, Status
from hotline.testing.operators import add_operator, operator_headers
from tests.factories import make_network
from tests.feeds.helpers import (
    FeedClient,
    alert_json,
    endpoint_config,
    http_session,
    radar_feed,
    write_feeds,
)

FEED = Feed("radar-1", bytes(32), 60.0, ("BY",), Status.EXERCISE)
INCIDENT = make_id(1_000, b"\x01" * 10)
LAST = make_id(2_000, b"\x02" * 10)


def head(kind: BodyType = BodyType.WARNING, expires: int | None = 10_000) -> IncidentHead:
    return IncidentHead(LAST, INCIDENT, kind, ("BY", "PL"), expires)


# ----------------------------------------------------------------------------- the pure rules


def test_the_track_is_the_feed_the_sensor_and_the_track_id() -> None:
    """An alert's track key is its feed, track.sensor_id and track_id, without track_id signed."""
    alert = read_alert({"track": {"sensor_id": "S1"}, "track_id": "T7"}, FEED)
    assert alert.track == TrackKey("radar-1", "S1", "T7")
    assert "track_id" not in alert.fields
    assert read_alert({"track": {"sensor_id": "S1"}}, FEED).track == TrackKey("radar-1", "S1", None)
    assert read_alert({"track_id": "T7"}, FEED).track == TrackKey("radar-1", None, "T7")


def test_an_alert_naming_neither_sensor_nor_track_has_no_track() -> None:
    """Without sensor_id and track_id an alert is never correlated."""
    assert read_alert({"track": {"lat": 1}}, FEED).track is None


def test_the_feed_fills_to_and_status() -> None:
    """to and status default to the feed's; given ones stay."""
    assert read_alert({}, FEED).fields == {"to": ["BY"], "status": "exercise"}
    given = read_alert({"to": "*", "status": "actual"}, FEED).fields
    assert given == {"to": "*", "status": "actual"}


def test_an_alert_must_be_an_object() -> None:
    """A JSON array is refused as schema with an empty path."""
    with pytest.raises(Rejected) as caught:
        read_alert([], FEED)
    assert (caught.value.code, caught.value.path) == ("schema", "")


def test_an_incident_is_open_until_cancelled_or_expired() -> None:
    """The last message decides: a cancel or an expiry at or before now closes the incident."""
    assert continued_incident(head(), 9_999) == head()
    assert continued_incident(head(), 10_000) is None
    assert continued_incident(head(BodyType.CANCEL, None), 0) is None
    assert continued_incident(None, 0) is None


def test_an_update_takes_ref_incident_and_to_from_the_incident() -> None:
    """The update refers to the incident's last message and keeps its recipients."""
    alert = read_alert({"to": ["LV"], "precedence": "flash", "track": {}}, FEED)
    draft = draft_of(alert, head(), INCIDENT)
    assert draft["t"] == "update"
    assert draft["ref"] == format_id(LAST)
    assert draft["incident"] == format_id(INCIDENT)
    assert draft["to"] == ["BY", "PL"]
    assert draft["precedence"] == "flash"
    new = draft_of(alert, None, INCIDENT)
    assert (new["t"], new["to"], new["incident"]) == ("warning", ["LV"], format_id(INCIDENT))
    assert "ref" not in new


# ----------------------------------------------------------------------------- on an endpoint


class Clock:
    """The wall clock, moved forward at will."""

    def __init__(self) -> None:
        self.ahead_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.ahead_ms


def lt_config(tmp_path: Path, clock: Clock | None = None) -> EndpointConfig:
    net = make_network()
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    config = endpoint_config(net, tmp_path, "LT", feeds=feeds)
    if clock is None:
        return config
    return replace(config, clock=clock)


async def post(feed: FeedClient, **changes: Any) -> dict[str, Any]:
    reply = await feed.alert(alert_json(**changes))
    assert reply.status == 202, reply.json
    answer: dict[str, Any] = reply.json
    return answer


async def test_the_same_track_twice_is_a_warning_then_its_update(tmp_path: Path) -> None:
    """The second report of a track is an update: ref = the first, same incident."""
    async with serve_endpoint(lt_config(tmp_path)) as running, http_session() as http:
        feed = FeedClient(http, running.url)
        first = await post(feed)
        second = await post(feed)
        third = await post(feed)
        outbox = await feed.get_json("/api/outbox")
    assert [first["t"], second["t"], third["t"]] == ["warning", "update", "update"]
    assert first["incident"] == second["incident"] == third["incident"]
    bodies = {m["id"]: m["body"] for m in outbox["messages"]}
    assert bodies[second["id"]]["ref"] == first["id"]
    assert bodies[third["id"]]["ref"] == second["id"]


async def test_another_track_or_sensor_is_a_new_warning(tmp_path: Path) -> None:
    """A different track_id, or the same track_id from another sensor, opens a new incident."""
    async with serve_endpoint(lt_config(tmp_path)) as running, http_session() as http:
        feed = FeedClient(http, running.url)
        first = await post(feed, track_id="T-1")
        other_track = await post(feed, track_id="T-2")
        track = {**alert_json()["track"], "sensor_id": "LT-RAD-9"}
        other_sensor = await post(feed, track_id="T-1", track=track)
    assert [other_track["t"], other_sensor["t"]] == ["warning", "warning"]
    assert len({first["incident"], other_track["incident"], other_sensor["incident"]}) == 3


async def test_a_sensor_without_track_ids_is_correlated_by_sensor(tmp_path: Path) -> None:
    """Reports with a sensor_id and no track_id are one track per sensor."""
    async with serve_endpoint(lt_config(tmp_path)) as running, http_session() as http:
        feed = FeedClient(http, running.url)
        alert = alert_json()
        del alert["track_id"]
        first = (await feed.alert(alert)).json
        second = (await feed.alert(alert)).json
    assert (first["t"], second["t"]) == ("warning", "update")
    assert second["incident"] == first["incident"]


async def test_after_a_cancel_the_track_opens_a_new_incident(tmp_path: Path) -> None:
    """Once the operator cancels the incident, the next report of its track is a new warning."""
    async with serve_endpoint(lt_config(tmp_path)) as running, http_session() as http:
        feed = FeedClient(http, running.url)
        first = await post(feed)
        update = await post(feed)
        cancel = {"t": "cancel", "to": ["BY"], "status": "exercise", "precedence": "flash",
                  "ref": update["id"], "reason": "left_area"}
        add_operator(tmp_path / "LT")
        async with http.post(running.url + "/api/messages", json=cancel,
                             headers=await operator_headers(http, running.url)) as response:
            assert response.status == 202
        again = await post(feed)
    assert again["t"] == "warning"
    assert again["incident"] != first["incident"]


async def test_after_its_expiry_the_track_opens_a_new_incident(tmp_path: Path) -> None:
    """Once the incident's last message has expired, the next report is a new warning."""
    clock = Clock()
    async with serve_endpoint(lt_config(tmp_path, clock)) as running, http_session() as http:
        feed = FeedClient(http, running.url)
        first = await post(feed, expires=clock() + 60_000)
        clock.ahead_ms = 61_000
        again = await post(feed)
    assert again["t"] == "warning"
    assert again["incident"] != first["incident"]


async def test_correlation_survives_a_restart(tmp_path: Path) -> None:
    """After a restart on the same data, the track's next report still updates its incident."""
    config = lt_config(tmp_path)
    async with serve_endpoint(config) as running, http_session() as http:
        first = await post(FeedClient(http, running.url))
    async with serve_endpoint(config) as running, http_session() as http:
        second = await post(FeedClient(http, running.url))
    assert second["t"] == "update"
    assert second["incident"] == first["incident"]
