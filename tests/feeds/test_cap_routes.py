"""CAP 1.2 on an endpoint: ``POST /api/cap`` in, ``GET /api/messages/{id}.cap`` out."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hotline.endpoint.events import ReceiptStored
from hotline.endpoint.service import RunningEndpoint
from hotline.protocol.bodies import UpdateBody
from hotline.protocol.ids import format_id, parse_id, uuid7_time_ms
from hotline.protocol.vocab import BodyType, Stage
from hotline.testing.operators import operator_headers
from tests.cap.helpers import (
    NUMERIC_OFFSET,
    area_xml,
    cap_schema,
    info_xml,
    parameters,
    text_of,
    times_in,
)
from tests.cap.helpers import alert_xml as build_alert
from tests.factories import make_network
from tests.feeds.helpers import (
    OTHER_TOKEN,
    TOKEN,
    FeedClient,
    cap_alert,
    cap_follow_up,
    endpoint_running,
    http_session,
    next_event,
    next_received,
    radar_feed,
    relay_running,
    write_feeds,
)

CAP_TYPE = "application/cap+xml; charset=utf-8"


def assert_valid_cap(xml: bytes) -> None:
    """Valid against the OASIS schema, every time with a numeric offset, never Z."""
    cap_schema().validate(xml)
    found = times_in(xml)
    assert found
    assert all(NUMERIC_OFFSET.fullmatch(t) for t in found), found
    assert not re.search(rb"\d\d:\d\d(\.\d+)?Z", xml)


@dataclass
class Lt:
    running: RunningEndpoint
    feed: FeedClient


@pytest.fixture
async def lt(tmp_path: Path) -> AsyncIterator[Lt]:
    net = make_network()
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed(to=["BY"]),
                        {"name": "slow", "token": OTHER_TOKEN, "rate_per_minute": 1})
    async with endpoint_running(net, tmp_path, "LT", feeds=feeds) as running, \
            http_session() as http:
        http.headers.update(await operator_headers(http, running.url))
        yield Lt(running, FeedClient(http, running.url))


# ----------------------------------------------------------------------------- refusals


async def test_cap_without_a_token_is_401(lt: Lt) -> None:
    """POST /api/cap takes the feed's bearer token like /api/alerts."""
    reply = await lt.feed.cap(cap_alert(), token=None)
    assert (reply.status, reply.json["error"], reply.json["field"]) == (
        401, "not_authenticated", "authorization")


async def test_cap_that_is_not_xml_is_415(lt: Lt) -> None:
    """A CAP post as text/plain or JSON is 415 unsupported_media_type on content-type."""
    for content_type in ("text/plain", "application/json"):
        reply = await lt.feed.cap(cap_alert(), content_type=content_type)
        assert reply.status == 415
        assert (reply.json["error"], reply.json["field"]) == (
            "unsupported_media_type", "content-type")
    assert (await lt.feed.cap(cap_alert(), content_type="application/xml")).status == 202


async def test_cap_over_256_kib_is_413(lt: Lt) -> None:
    """A CAP document over 256 KiB is 413 too_large on field alert."""
    padding = b"<!--" + b"x" * (256 * 1024) + b"-->"
    reply = await lt.feed.cap(cap_alert().replace(b"<alert ", padding + b"<alert "))
    assert reply.status == 413
    assert (reply.json["error"], reply.json["field"]) == ("too_large", "alert")


async def test_a_bad_cap_element_is_422_naming_its_cap_path(lt: Lt) -> None:
    """A latitude outside ±90 in the circle is 422 schema naming info[0].area[0].circle."""
    xml = cap_alert().replace(b"<circle>54.6872,25.2797 2.5</circle>",
                              b"<circle>95,25.2797 2.5</circle>")
    reply = await lt.feed.cap(xml)
    assert reply.status == 422
    assert (reply.json["error"], reply.json["field"]) == ("schema", "info[0].area[0].circle")
    assert reply.json["detail"]


async def test_a_dtd_is_422(lt: Lt) -> None:
    """A document with a DTD is refused as schema at alert: no entity is ever expanded."""
    xml = cap_alert().replace(b"<alert ", b'<!DOCTYPE alert [<!ENTITY x "y">]><alert ')
    reply = await lt.feed.cap(xml)
    assert (reply.status, reply.json["field"]) == (422, "alert")


async def test_an_update_of_an_unknown_message_is_422_at_references(lt: Lt) -> None:
    """An Update whose last reference is no message LT sent or received is 422 references."""
    unknown = "019ab697-e800-7000-8000-000000000001"
    xml = cap_follow_up("Update", unknown, "U-1", ref_sent_ms=uuid7_time_ms(parse_id(unknown)))
    reply = await lt.feed.cap(xml)
    assert (reply.status, reply.json["error"], reply.json["field"]) == (
        422, "schema", "references")


async def test_the_same_cap_alert_twice_is_one_message(lt: Lt) -> None:
    """Without an Idempotency-Key, the CAP identity keys the post: a resend is the same message;
    the same identity with other content, or under another key, is 409 (one message per CAP
    sender and identifier); a new identifier under a key is a new message."""
    xml = cap_alert("R7-5")
    first = await lt.feed.cap(xml)
    again = await lt.feed.cap(xml)
    assert first.status == again.status == 202
    assert again.json == first.json
    changed = await lt.feed.cap(xml.replace(b"Bepilotis", b"Du bepiloviai"))
    assert (changed.status, changed.json["error"]) == (409, "idempotency_conflict")
    keyed = await lt.feed.cap(xml, key="explicit")
    assert (keyed.status, keyed.json["error"]) == (409, "idempotency_conflict")
    assert "R7-5" in keyed.json["detail"]
    fresh = await lt.feed.cap(cap_alert("R7-6"), key="explicit")
    assert fresh.status == 202
    assert fresh.json["id"] != first.json["id"]


async def test_cap_posts_share_the_feeds_rate_limit(lt: Lt) -> None:
    """A feed of 1 a minute gets 429 with Retry-After on its second CAP alert."""
    assert (await lt.feed.cap(cap_alert("S-1"), token=OTHER_TOKEN)).status == 202
    reply = await lt.feed.cap(cap_alert("S-2"), token=OTHER_TOKEN)
    assert (reply.status, reply.json["error"]) == (429, "rate_limited")
    assert int(reply.headers["Retry-After"]) >= 1


async def test_unknown_ids_are_404_and_text_has_no_cap_form(lt: Lt) -> None:
    """Export: an unknown or malformed id is 404 not_found; a text message is 404 no_cap_form."""
    for path in ("/api/messages/019ab697-e800-7000-8000-000000000001.cap",
                 "/api/messages/nonsense.cap",
                 "/api/messages/019ab697-e800-7000-8000-000000000001/ack.cap"):
        async with lt.feed.http.get(lt.running.url + path) as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_found"
    text = {"t": "text", "to": ["BY"], "status": "exercise", "precedence": "routine",
            "text": "Line check.", "lang": "en"}
    async with lt.feed.http.post(lt.running.url + "/api/messages", json=text) as response:
        text_id = (await response.json())["id"]
    async with lt.feed.http.get(f"{lt.running.url}/api/messages/{text_id}.cap") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "no_cap_form"


async def test_an_unacknowledged_message_has_no_ack_yet(lt: Lt) -> None:
    """?ack=1 on a message nobody acknowledged is 404 not_acknowledged; the message exports."""
    posted = await lt.feed.cap(cap_alert())
    status, xml, content_type = await lt.feed.get(f"/api/messages/{posted.json['id']}.cap")
    assert (status, content_type) == (200, CAP_TYPE)
    assert_valid_cap(xml)
    async with lt.feed.http.get(
        f"{lt.running.url}/api/messages/{posted.json['id']}.cap?ack=1"
    ) as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_acknowledged"


async def test_the_ack_route_does_not_shadow_the_ack_action(lt: Lt) -> None:
    """POST /api/messages/{id}/ack still answers as the acknowledgement action (404 unknown)."""
    unknown = "019ab697-e800-7000-8000-000000000001"
    async with lt.feed.http.post(f"{lt.running.url}/api/messages/{unknown}/ack",
                                 json={}) as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"


# ----------------------------------------------------------------------------- round trip


@dataclass
class Pair:
    by: RunningEndpoint
    lt: RunningEndpoint
    http: aiohttp.ClientSession
    by_officer: dict[str, str]

    @property
    def feed(self) -> FeedClient:
        return FeedClient(self.http, self.lt.url, TOKEN)

    @property
    def by_client(self) -> FeedClient:
        return FeedClient(self.http, self.by.url, None, self.by_officer)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = make_network(("BY", "LT"))
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed())
    async with relay_running(net, tmp_path) as relay, contextlib.AsyncExitStack() as stack:
        by = await stack.enter_async_context(endpoint_running(net, tmp_path, "BY", relay.ws_url))
        lt = await stack.enter_async_context(
            endpoint_running(net, tmp_path, "LT", relay.ws_url, feeds))
        http = await stack.enter_async_context(http_session())
        yield Pair(by, lt, http, await operator_headers(http, by.url))


async def test_a_cap_alert_reaches_by_and_exports_valid_cap_on_both_sides(pair: Pair) -> None:
    """CAP Alert in at LT → a warning at BY; both export it as valid CAP under the CAP
    sender's own identity."""
    with pair.by.endpoint.hub.subscribe() as by_events:
        posted = await pair.feed.cap(cap_alert())
        assert posted.status == 202
        assert posted.json["t"] == "warning"
        received = await next_received(by_events)
    assert received.body.type is BodyType.WARNING
    message_id = posted.json["id"]
    assert format_id(received.body.id) == message_id
    assert received.body.to == ("BY",)
    exports = []
    for client in (pair.feed, pair.by_client):
        status, xml, content_type = await client.get(f"/api/messages/{message_id}.cap")
        assert (status, content_type) == (200, CAP_TYPE)
        assert_valid_cap(xml)
        assert text_of(xml, "identifier") == "LT-R7-1"
        assert text_of(xml, "sender") == "feed@test.example"
        assert text_of(xml, "msgType") == "Alert"
        assert text_of(xml, "incidents") == posted.json["incident"]
        assert parameters(xml)["hotline:sensor_id"] == "LT-R7"
        exports.append(xml)
    assert exports[0] == exports[1]  # both sides export the same signed body


async def test_the_acknowledgement_exports_as_a_cap_ack(pair: Pair) -> None:
    """Once BY acknowledges, both sides export the Ack: msgType Ack, sender hotline:BY."""
    with pair.by.endpoint.hub.subscribe() as by_events, \
            pair.lt.endpoint.hub.subscribe() as lt_events:
        posted = await pair.feed.cap(cap_alert())
        message_id = posted.json["id"]
        await next_received(by_events)
        async with pair.http.post(f"{pair.by.url}/api/messages/{message_id}/ack",
                                  json={"action": "monitoring"},
                                  headers=pair.by_officer) as response:
            assert response.status == 202
        stored = await next_event(lt_events, lambda e: isinstance(e, ReceiptStored)
                                  and e.stage is Stage.ACKNOWLEDGED)
    assert isinstance(stored, ReceiptStored)
    for client, path in ((pair.feed, f"/api/messages/{message_id}.cap?ack=1"),
                         (pair.feed, f"/api/messages/{message_id}.cap?ack=1&party=BY"),
                         (pair.by_client, f"/api/messages/{message_id}/ack.cap")):
        status, xml, content_type = await client.get(path)
        assert (status, content_type) == (200, CAP_TYPE)
        assert_valid_cap(xml)
        assert text_of(xml, "msgType") == "Ack"
        assert text_of(xml, "sender") == "hotline:BY"
        assert text_of(xml, "identifier") == format_id(stored.receipt_id)
        references = text_of(xml, "references") or ""
        assert references.split(",")[:2] == ["feed@test.example", "LT-R7-1"]
    status, _, _ = await pair.feed.get(f"/api/messages/{message_id}.cap?ack=1&party=PL")
    assert status == 404


async def test_cap_update_and_cancel_follow_the_incident(pair: Pair) -> None:
    """A CAP Update and Cancel naming LT's warning by hotline id reach BY in its incident;
    their exports reference the messages before them by their CAP identities."""
    with pair.by.endpoint.hub.subscribe() as by_events:
        warning = (await pair.feed.cap(cap_alert())).json
        ref_ms = uuid7_time_ms(parse_id(warning["id"]))
        update = await pair.feed.cap(
            cap_follow_up("Update", warning["id"], "R7-2", ref_sent_ms=ref_ms))
        assert update.status == 202, update.json
        cancel = await pair.feed.cap(
            cap_follow_up("Cancel", update.json["id"], "R7-3", ref_sent_ms=ref_ms, info=False))
        assert cancel.status == 202, cancel.json
        bodies = [(await next_received(by_events)).body for _ in range(3)]
    assert [b.type for b in bodies] == [BodyType.WARNING, BodyType.UPDATE, BodyType.CANCEL]
    assert update.json["t"] == "update"
    assert cancel.json["t"] == "cancel"
    assert update.json["incident"] == cancel.json["incident"] == warning["incident"]
    assert isinstance(bodies[1], UpdateBody)
    assert format_id(bodies[1].ref) == warning["id"]
    status, xml, _ = await pair.by_client.get(f"/api/messages/{cancel.json['id']}.cap")
    assert status == 200
    assert_valid_cap(xml)
    assert text_of(xml, "msgType") == "Cancel"
    entries = (text_of(xml, "references") or "").split()
    assert [e.split(",")[1] for e in entries] == ["LT-R7-1", "R7-2"]
    assert all(e.startswith("feed@test.example,") for e in entries)


async def test_an_update_naming_another_incident_is_422(pair: Pair) -> None:
    """A CAP Update whose incidents differ from its referenced message's is 422 incidents."""
    warning = (await pair.feed.cap(cap_alert())).json
    other = "019ab697-e800-7000-8000-0000000000aa"
    xml = build_alert(
        msg_type="Update",
        references=f"hotline:LT,{warning['id']},2025-11-24T16:00:00+00:00",
        incidents=other,
        info=info_xml(times="", area=area_xml()),
    )
    reply = await pair.feed.cap(xml)
    assert (reply.status, reply.json["field"]) == (422, "incidents")
