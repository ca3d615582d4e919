"""``POST /api/alerts`` on a real endpoint (port 0), every answer it gives; no relay reachable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.endpoint.feedconfig import append_feed
from hotline.endpoint.service import RunningEndpoint
from tests.factories import TestNet, make_network
from tests.feeds.helpers import (
    OTHER_TOKEN,
    TOKEN,
    FeedClient,
    alert_json,
    endpoint_running,
    http_session,
    radar_feed,
    write_feeds,
)


@dataclass
class Lt:
    net: TestNet
    running: RunningEndpoint
    feed: FeedClient

    async def outbox(self) -> list[dict[str, Any]]:
        outbox = await self.feed.get_json("/api/outbox")
        messages: list[dict[str, Any]] = outbox["messages"]
        return messages


@pytest.fixture
async def lt(tmp_path: Path) -> AsyncIterator[Lt]:
    net = make_network()
    feeds = write_feeds(
        tmp_path / "feeds.toml",
        radar_feed(),
        {"name": "slow-eo", "token": OTHER_TOKEN, "rate_per_minute": 1, "to": ["PL"],
         "status": "test"},
    )
    async with endpoint_running(net, tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        yield Lt(net, running, FeedClient(http, running.url))


async def test_an_alert_is_202_with_its_id_incident_and_type(lt: Lt) -> None:
    """A valid alert is signed as LT's warning: 202 {id, incident, t}, then in the outbox."""
    reply = await lt.feed.alert(alert_json())
    assert reply.status == 202
    assert set(reply.json) == {"id", "incident", "t"}
    assert reply.json["t"] == "warning"
    (sent,) = await lt.outbox()
    assert sent["id"] == reply.json["id"]
    assert sent["incident"] == reply.json["incident"]
    assert sent["body"]["track"]["sensor_id"] == "LT-RAD-4"
    assert "track_id" not in sent["body"]  # the feed's own field is never signed


async def test_the_feed_gives_to_and_status_when_the_alert_does_not(lt: Lt) -> None:
    """An alert without to and status goes to the feed's recipients with the feed's status."""
    alert = alert_json()
    del alert["to"], alert["status"]
    lt.feed.token = OTHER_TOKEN
    reply = await lt.feed.alert(alert)
    assert reply.status == 202
    (sent,) = await lt.outbox()
    assert sent["to"] == ["PL"]
    assert sent["status"] == "test"


async def test_no_token_is_401_with_www_authenticate(lt: Lt) -> None:
    """Without Authorization the answer is 401 not_authenticated on field authorization."""
    reply = await lt.feed.alert(alert_json(), token=None)
    assert reply.status == 401
    assert reply.json["error"] == "not_authenticated"
    assert reply.json["field"] == "authorization"
    assert reply.json["detail"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert await lt.outbox() == []


async def test_a_wrong_token_is_401_invalid_token(lt: Lt) -> None:
    """A token that is no feed's is 401 with error="invalid_token" in WWW-Authenticate."""
    reply = await lt.feed.alert(alert_json(), token=TOKEN + "x")
    assert reply.status == 401
    assert reply.json["error"] == "not_authenticated"
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert await lt.outbox() == []


async def test_malformed_json_is_400_bad_json(lt: Lt) -> None:
    """A body that is not JSON is refused with 400 bad_json."""
    reply = await lt.feed.alert(b"{not json")
    assert reply.status == 400
    assert reply.json["error"] == "bad_json"
    assert reply.json["field"] == ""


async def test_a_body_over_64_kib_is_413_too_large(lt: Lt) -> None:
    """An alert longer than 64 KiB is refused with 413 too_large before it is parsed, as CAP is."""
    reply = await lt.feed.alert(alert_json(text="x" * 70_000, lang="en"))
    assert reply.status == 413
    assert (reply.json["error"], reply.json["field"]) == ("too_large", "alert")
    assert "65536" in reply.json["detail"]


async def test_json_nested_too_deep_is_400_bad_json(lt: Lt) -> None:
    """JSON nested deeper than 8 levels is refused with 400 bad_json, brackets in strings aside."""
    deep = b'{"a":' * 9 + b"1" + b"}" * 9
    reply = await lt.feed.alert(deep)
    assert reply.status == 400
    assert reply.json["error"] == "bad_json"
    assert "deep" in reply.json["detail"]
    shallow_with_brackets = alert_json(text="[[[[[[[[[[{{{{{{{{{{", lang="en")
    assert (await lt.feed.alert(shallow_with_brackets)).status == 202


async def test_a_repeated_key_or_nan_is_400_bad_json(lt: Lt) -> None:
    """JSON with a key given twice, or NaN, is refused as bad_json rather than guessed at."""
    repeated = b'{"precedence": "flash", "precedence": "routine"}'
    assert (await lt.feed.alert(repeated)).json["error"] == "bad_json"
    nan = json.dumps(alert_json()).replace('"confidence": 0.9', '"confidence": NaN')
    reply = await lt.feed.alert(nan.encode())
    assert (reply.status, reply.json["error"]) == (400, "bad_json")


async def test_a_schema_error_is_422_naming_the_field(lt: Lt) -> None:
    """A latitude out of range is 422 schema with field track.lat and the schema's sentence."""
    alert = alert_json()
    alert["track"]["lat"] = 95
    reply = await lt.feed.alert(alert)
    assert reply.status == 422
    assert reply.json == {"error": "schema", "field": "track.lat",
                          "detail": "must be between -90 and 90"}
    assert await lt.outbox() == []


async def test_an_observation_time_in_seconds_is_422_naming_the_unit(lt: Lt) -> None:
    """observed_at in seconds (it would land in 1970) is 422 on track.observed_at, nothing sent."""
    alert = alert_json()
    alert["track"]["observed_at"] //= 1000
    reply = await lt.feed.alert(alert)
    assert (reply.status, reply.json["error"], reply.json["field"]) == (
        422, "schema", "track.observed_at")
    assert "milliseconds since the epoch; this looks like seconds" in reply.json["detail"]
    assert await lt.outbox() == []


async def test_an_observation_in_the_future_is_422(lt: Lt) -> None:
    """observed_at past now plus the network's clock skew is 422 on track.observed_at."""
    alert = alert_json()
    alert["track"]["observed_at"] += 10 * 60_000
    reply = await lt.feed.alert(alert)
    assert (reply.status, reply.json["field"]) == (422, "track.observed_at")
    assert "clock skew" in reply.json["detail"]
    assert await lt.outbox() == []


@pytest.mark.parametrize(("where", "field"), [
    (("predicted", "crossing_at"), "predicted.crossing_at"), (("expires",), "expires")])
async def test_other_times_before_2000_are_422(
    lt: Lt, where: tuple[str, ...], field: str
) -> None:
    """A crossing time or expiry before 2000-01-01 is 422 naming its field."""
    alert = alert_json(predicted={"border": "BY-LT", "crossing_at": 1_764_000_000})
    if where == ("expires",):
        alert["predicted"]["crossing_at"] *= 1000
        alert["expires"] = 12
    reply = await lt.feed.alert(alert)
    assert (reply.status, reply.json["field"]) == (422, field)
    assert await lt.outbox() == []


@pytest.mark.parametrize("field", ["t", "incident", "ref"])
async def test_fields_the_endpoint_chooses_are_422(lt: Lt, field: str) -> None:
    """t, incident and ref are the endpoint's to choose: posting one is 422 naming it."""
    reply = await lt.feed.alert(alert_json(**{field: "warning"}))
    assert (reply.status, reply.json["error"], reply.json["field"]) == (422, "schema", field)


async def test_a_bad_track_id_is_422(lt: Lt) -> None:
    """track_id must be short text: a number is 422 naming track_id."""
    reply = await lt.feed.alert(alert_json(track_id=17))
    assert (reply.status, reply.json["field"]) == (422, "track_id")


async def test_an_unlinked_recipient_is_422_link_forbidden(tmp_path: Path) -> None:
    """An alert to an endpoint LT has no link to is 422 link_forbidden on field to."""
    net = make_network(links=[("LT", "BY")])
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    async with endpoint_running(net, tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        reply = await FeedClient(http, running.url).alert(alert_json(to=["PL"]))
    assert reply.status == 422
    assert (reply.json["error"], reply.json["field"]) == ("link_forbidden", "to")


async def test_a_malformed_idempotency_key_is_400(lt: Lt) -> None:
    """An Idempotency-Key over 200 characters is 400 bad_header on field idempotency-key."""
    reply = await lt.feed.alert(alert_json(), key="k" * 201)
    assert reply.status == 400
    assert (reply.json["error"], reply.json["field"]) == ("bad_header", "idempotency-key")
    assert (await lt.feed.alert(alert_json(), key="k" * 200)).status == 202


async def test_a_retry_with_the_same_key_is_the_same_message(lt: Lt) -> None:
    """The same request under the same Idempotency-Key answers the same id and signs nothing."""
    alert = alert_json()
    first = await lt.feed.alert(alert, key="sensor-42")
    again = await lt.feed.alert(alert, key="sensor-42")
    assert first.status == again.status == 202
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [m["id"] for m in await lt.outbox()] == [first.json["id"]]


async def test_the_same_key_with_another_body_is_409(lt: Lt) -> None:
    """Reusing an Idempotency-Key for a different alert is 409 idempotency_conflict."""
    assert (await lt.feed.alert(alert_json(), key="k1")).status == 202
    other = alert_json(precedence="routine")
    reply = await lt.feed.alert(other, key="k1")
    assert reply.status == 409
    assert reply.json["error"] == "idempotency_conflict"
    assert reply.json["field"] == "idempotency-key"
    assert len(await lt.outbox()) == 1


async def test_keys_are_per_feed(lt: Lt) -> None:
    """Two feeds using the same Idempotency-Key get two messages."""
    alert = alert_json()
    first = await lt.feed.alert(alert, key="shared")
    second = await lt.feed.alert(alert, key="shared", token=OTHER_TOKEN)
    assert first.status == second.status == 202
    assert first.json["id"] != second.json["id"]


async def test_over_the_rate_is_429_with_retry_after(lt: Lt) -> None:
    """A feed of 1 alert a minute gets 429 rate_limited with an integer Retry-After ≥ 1."""
    lt.feed.token = OTHER_TOKEN
    assert (await lt.feed.alert(alert_json())).status == 202
    reply = await lt.feed.alert(alert_json(track_id="T-2"))
    assert reply.status == 429
    assert reply.json["error"] == "rate_limited"
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert len(await lt.outbox()) == 1


async def test_refusals_and_replays_cost_no_token(lt: Lt) -> None:
    """A refused alert and an idempotent replay do not use up the feed's rate."""
    lt.feed.token = OTHER_TOKEN
    bad = alert_json()
    bad["track"]["lat"] = 95
    assert (await lt.feed.alert(bad)).status == 422
    alert = alert_json()
    assert (await lt.feed.alert(alert, key="once")).status == 202
    assert (await lt.feed.alert(alert, key="once")).status == 202
    assert (await lt.feed.alert(alert_json(track_id="T-9"))).status == 429


async def test_a_feed_added_while_running_is_accepted(tmp_path: Path) -> None:
    """DATA/feeds.toml written after the start is read on the next request."""
    net = make_network()
    async with endpoint_running(net, tmp_path, "LT") as running, http_session() as http:
        feed = FeedClient(http, running.url)
        assert (await feed.alert(alert_json())).status == 401
        append_feed(tmp_path / "LT" / "feeds.toml", "radar-1", TOKEN)
        assert (await feed.alert(alert_json())).status == 202


async def test_a_key_survives_a_restart(tmp_path: Path) -> None:
    """After a restart on the same data, a retried key still answers the first message."""
    net = make_network()
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    alert = alert_json()
    async with endpoint_running(net, tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        first = await FeedClient(http, running.url).alert(alert, key="before-restart")
    async with endpoint_running(net, tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        feed = FeedClient(http, running.url)
        again = await feed.alert(alert, key="before-restart")
        outbox = await feed.get_json("/api/outbox")
    assert first.status == again.status == 202
    assert again.json == first.json
    assert [m["id"] for m in outbox["messages"]] == [first.json["id"]]
