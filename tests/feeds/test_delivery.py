"""Feed alerts through a real relay: what a sensor posts to LT is what BY's operator sees."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.endpoint.events import MessageReceived
from hotline.endpoint.hub import Subscription
from hotline.endpoint.service import RunningEndpoint
from hotline.protocol.bodies import UpdateBody, WarningBody
from hotline.protocol.ids import format_id
from hotline.protocol.vocab import BodyType
from hotline.relay.server import RunningRelay
from hotline.testing.operators import operator_headers
from tests.factories import TestNet, make_network
from tests.feeds.helpers import (
    FeedClient,
    alert_json,
    endpoint_running,
    http_session,
    next_received,
    radar_feed,
    relay_running,
    write_feeds,
)


@dataclass
class Net:
    net: TestNet
    root: Path
    relay: RunningRelay
    by: RunningEndpoint
    feeds: Path
    stack: contextlib.AsyncExitStack

    async def start_lt(self) -> RunningEndpoint:
        return await self.stack.enter_async_context(
            endpoint_running(self.net, self.root, "LT", self.relay.ws_url, self.feeds)
        )


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    test_net = make_network(("BY", "LT"))
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    async with relay_running(test_net, tmp_path) as relay, contextlib.AsyncExitStack() as stack:
        by = await stack.enter_async_context(
            endpoint_running(test_net, tmp_path, "BY", relay.ws_url)
        )
        yield Net(test_net, tmp_path, relay, by, feeds, stack)


async def received(subscription: Subscription) -> MessageReceived:
    event = await next_received(subscription)
    assert event.body.sender == "LT"
    return event


async def test_an_alert_posted_to_lt_reaches_bys_inbox(net: Net) -> None:
    """LT's radar posts an alert with LT's token; BY's /api/inbox holds it, from LT."""
    lt = await net.start_lt()
    with net.by.endpoint.hub.subscribe() as by_events:
        async with http_session() as http:
            reply = await FeedClient(http, lt.url).alert(alert_json())
            assert reply.status == 202
            event = await received(by_events)
            by_officer = await operator_headers(http, net.by.url)
            inbox = await FeedClient(http, net.by.url, None, by_officer).get_json("/api/inbox")
    assert format_id(event.body.id) == reply.json["id"]
    (item,) = inbox["messages"]
    assert (item["id"], item["from"], item["t"]) == (reply.json["id"], "LT", "warning")
    assert item["incident"] == reply.json["incident"]
    assert item["body"]["track"]["sensor_id"] == "LT-RAD-4"


async def test_the_same_track_twice_reaches_by_as_a_warning_and_its_update(net: Net) -> None:
    """BY receives the second report of the track as an update: ref = the first, same incident;
    another track arrives as a new warning."""
    lt = await net.start_lt()
    with net.by.endpoint.hub.subscribe() as by_events:
        async with http_session() as http:
            feed = FeedClient(http, lt.url)
            first = (await feed.alert(alert_json())).json
            second = (await feed.alert(alert_json())).json
            other = (await feed.alert(alert_json(track_id="T-2"))).json
            warning = (await received(by_events)).body
            update = (await received(by_events)).body
            new = (await received(by_events)).body
    assert (warning.type, update.type, new.type) == (
        BodyType.WARNING, BodyType.UPDATE, BodyType.WARNING)
    assert isinstance(warning, WarningBody)
    assert isinstance(update, UpdateBody)
    assert isinstance(new, WarningBody)
    assert format_id(warning.id) == first["id"]
    assert format_id(update.id) == second["id"]
    assert format_id(update.ref) == first["id"]
    assert update.incident == warning.incident
    assert format_id(new.id) == other["id"]
    assert new.incident != warning.incident


async def test_a_replayed_key_reaches_by_once_even_across_a_restart(net: Net) -> None:
    """A retry under the same Idempotency-Key sends nothing new, before and after LT restarts.

    After each retry a marker alert is posted: links are FIFO, so if the retry had
    sent anything, BY would receive it before the marker.
    """
    alert = alert_json()
    with net.by.endpoint.hub.subscribe() as by_events:
        async with contextlib.AsyncExitStack() as lt_life:
            lt = await lt_life.enter_async_context(
                endpoint_running(net.net, net.root, "LT", net.relay.ws_url, net.feeds))
            async with http_session() as http:
                feed = FeedClient(http, lt.url)
                first = await feed.alert(alert, key="retry-me")
                assert format_id((await received(by_events)).body.id) == first.json["id"]
                again = await feed.alert(alert, key="retry-me")
                marker = await feed.alert(alert_json(track_id="marker-1"))
                assert format_id((await received(by_events)).body.id) == marker.json["id"]
        lt = await net.start_lt()
        async with http_session() as http:
            feed = FeedClient(http, lt.url)
            after = await feed.alert(alert, key="retry-me")
            marker = await feed.alert(alert_json(track_id="marker-2"))
            assert format_id((await received(by_events)).body.id) == marker.json["id"]
            by_officer = await operator_headers(http, net.by.url)
            inbox = await FeedClient(http, net.by.url, None, by_officer).get_json("/api/inbox")
    assert again.json == first.json == after.json
    assert after.headers["Idempotent-Replayed"] == "true"
    assert len(inbox["messages"]) == 3
    assert all(m["duplicates"] == 0 for m in inbox["messages"])
