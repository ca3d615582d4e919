"""Real-world-style CAP through two endpoints: posted at LT, exported at BY, read back.

The documents (``tests/cap/real_world.py``) carry what hotline has no field for; the export
must give it back, validate against the OASIS schema and read back as the same body.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp
import pytest

from hotline.cap import cap_to_body_json
from hotline.endpoint.service import RunningEndpoint
from hotline.protocol.ids import parse_id
from hotline.protocol.vocab import BodyType
from hotline.testing.operators import operator_headers
from tests.cap import real_world
from tests.cap.helpers import cap_schema, q
from tests.factories import make_network
from tests.feeds.helpers import (
    TOKEN,
    FeedClient,
    endpoint_running,
    http_session,
    next_received,
    now_ms,
    radar_feed,
    relay_running,
    write_feeds,
)

HEADER = ("id", "from", "ts", "seq", "kid", "cp")  # cp: the checkpoint the author saw


@dataclass
class Pair:
    by: RunningEndpoint
    lt: RunningEndpoint
    http: aiohttp.ClientSession
    by_officer: dict[str, str]  # BY's officer's session: BY's exports are read as them

    @property
    def feed(self) -> FeedClient:
        return FeedClient(self.http, self.lt.url, TOKEN)

    @property
    def by_client(self) -> FeedClient:
        return FeedClient(self.http, self.by.url, None, self.by_officer)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = make_network(("BY", "LT"))
    feeds = write_feeds(tmp_path / "feeds.toml", radar_feed(to=["BY"]))
    async with relay_running(net, tmp_path) as relay, contextlib.AsyncExitStack() as stack:
        by = await stack.enter_async_context(endpoint_running(net, tmp_path, "BY", relay.ws_url))
        lt = await stack.enter_async_context(
            endpoint_running(net, tmp_path, "LT", relay.ws_url, feeds))
        http = await stack.enter_async_context(http_session())
        yield Pair(by, lt, http, await operator_headers(http, by.url))


async def post_and_receive(pair: Pair, xml: bytes) -> dict[str, Any]:
    """Post at LT (202), wait for BY to receive it; the 202's JSON."""
    with pair.by.endpoint.hub.subscribe() as by_events:
        reply = await pair.feed.cap(xml)
        assert reply.status == 202, reply.json
        received = await next_received(by_events)
    assert received.body.id == parse_id(reply.json["id"])
    posted: dict[str, Any] = reply.json
    return posted


async def export_at_by(pair: Pair, message_id: str) -> bytes:
    status, xml, _ = await pair.by_client.get(f"/api/messages/{message_id}.cap")
    assert status == 200, xml
    cap_schema().validate(xml)
    return xml


async def stored_body(pair: Pair, message_id: str) -> dict[str, Any]:
    stored = await pair.by.endpoint.journal.call(
        lambda j: j.reads.stored_message(parse_id(message_id)))
    assert stored is not None
    body: dict[str, Any] = json.loads(stored.body_json)
    return body


def texts(xml: bytes, path: str) -> list[str]:
    """Every text at ``path`` (CAP names joined by /, below alert)."""
    return [e.text or "" for e in ET.fromstring(xml).iterfind("/".join(q(p) for p in
                                                                        path.split("/")))]


def assert_reads_back(xml: bytes, body: dict[str, Any]) -> None:
    """The export read as CAP gives the signed body again (header and ``ref`` apart: the
    export names the earlier message by its CAP identity, which the endpoint resolves)."""
    again = cap_to_body_json(xml, now_ms=body["ts"]).body
    want = {k: v for k, v in body.items() if k not in (*HEADER, "ref")}
    again.pop("ref", None)
    assert again == want


def assert_same_content(original: bytes, exported: bytes) -> None:
    """Identity, and every info's language, event, headline and every area as sent."""
    for path in ("identifier", "sender", "sent", "info/language", "info/event",
                 "info/headline", "info/area/areaDesc", "info/area/polygon",
                 "info/area/circle", "info/area/altitude", "info/area/ceiling"):
        assert texts(exported, path) == texts(original, path), path
    assert len(texts(exported, "info")) == len(texts(original, "info"))


Doc = Callable[[int], bytes]


@pytest.mark.parametrize("make", [real_world.circle_two_languages, real_world.polygon,
                                  real_world.several_areas])
async def test_an_alert_exports_as_its_sender_wrote_it(pair: Pair, make: Doc) -> None:
    """A circle in two languages, a polygon with an altitude band, several areas: BY's
    export keeps the identity, infos and areas, is valid CAP and reads back the same."""
    xml = make(now_ms())
    posted = await post_and_receive(pair, xml)
    exported = await export_at_by(pair, posted["id"])
    assert_same_content(xml, exported)
    assert_reads_back(exported, await stored_body(pair, posted["id"]))


async def test_update_and_cancel_by_the_senders_own_references(pair: Pair) -> None:
    """An Update and a Cancel naming the alert by the CAP sender's sender,identifier,sent
    answer 202, join the alert's incident at both ends, and export with those references."""
    t0 = now_ms()
    alert = await post_and_receive(pair, real_world.circle_two_languages(t0))
    first = real_world.reference("VSAT-2025-0412", t0)
    update_xml = real_world.update(t0 + 1000, first)
    update = await post_and_receive(pair, update_xml)
    assert (update["t"], update["incident"]) == ("update", alert["incident"])
    second = real_world.reference("VSAT-2025-0412-U1", t0 + 1000)
    cancel_xml = real_world.cancel(t0 + 2000, f"{first} {second}")
    cancel = await post_and_receive(pair, cancel_xml)
    assert (cancel["t"], cancel["incident"]) == ("cancel", alert["incident"])
    for message, xml in ((update, update_xml), (cancel, cancel_xml)):
        body = await stored_body(pair, message["id"])
        assert body["t"] == message["t"]
        exported = await export_at_by(pair, message["id"])
        assert_same_content(xml, exported)
        assert texts(exported, "references") == texts(xml, "references")
        assert_reads_back(exported, body)
    assert (await stored_body(pair, update["id"]))["ref"] == alert["id"]
    assert (await stored_body(pair, cancel["id"]))["ref"] == update["id"]


async def test_an_update_exported_by_by_resolves_at_by(pair: Pair) -> None:
    """A CAP system at BY may answer with the references BY's export gave it: BY finds the
    alert by that CAP identity too (received messages are in its journal's mapping)."""
    t0 = now_ms()
    alert = await post_and_receive(pair, real_world.polygon(t0))
    exported = await export_at_by(pair, alert["id"])
    sender, identifier, sent = (texts(exported, p)[0] for p in ("sender", "identifier", "sent"))
    found = await pair.by.endpoint.journal.call(
        lambda j: j.reads.cap_message(sender, identifier, "BY")
    )
    assert found == (parse_id(alert["id"]), "LT")
    assert sent


async def test_an_unknown_sender_reference_is_422(pair: Pair) -> None:
    """An Update naming a CAP identity nobody sent is 422 at references, saying so."""
    xml = real_world.update(now_ms(), real_world.reference("NEVER-SENT", now_ms()))
    reply = await pair.feed.cap(xml)
    assert (reply.status, reply.json["field"]) == (422, "references")
    assert "NEVER-SENT" in reply.json["detail"]


async def test_reposting_the_same_document_is_one_message(pair: Pair) -> None:
    """The same CAP document posted twice without Idempotency-Key is the same message."""
    xml = real_world.several_areas(now_ms())
    first = await post_and_receive(pair, xml)
    again = await pair.feed.cap(xml)
    assert again.status == 202
    assert again.json == first
    assert again.headers["Idempotent-Replayed"] == "true"
    outbox = await pair.feed.get_json("/api/outbox")
    assert [m["id"] for m in outbox["messages"] if m["t"] == BodyType.WARNING.value] == [
        first["id"]]
