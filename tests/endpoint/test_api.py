"""The local HTTP API on a real aiohttp server (port 0), with no relay reachable."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.protocol.envelope import open_envelope
from hotline.protocol.ids import format_id
from hotline.testing.operators import add_operator, operator_headers
from tests.endpoint.builders import Author, deliver
from tests.factories import TestNet, make_network

TIMEOUT = 10.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Api:
    net: TestNet
    running: RunningEndpoint
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.running.url

    async def post(self, path: str, data: object) -> tuple[int, Any]:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        async with self.http.post(self.url + path, data=raw,
                                  headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as response:
            return response.status, await response.json()

    async def receive(self, frame: bytes, index: int = 1) -> str:
        """Hand LT a message as if the relay delivered it; its id."""
        await self.running.endpoint.received(deliver(frame, index))
        return format_id(open_envelope(frame, self.net.network).body.id)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    net = make_network()
    config = EndpointConfig(
        network=net.network,
        endpoint_id="LT",
        key=net.keys["LT"],
        data_dir=tmp_path,
        relay_url=f"ws://127.0.0.1:{closed_port()}/v1/ws",
    )
    add_operator(tmp_path)
    async with serve_endpoint(config) as running, aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT)
    ) as http:
        http.headers.update(await operator_headers(http, running.url))
        yield Api(net, running, http)


def warning_json() -> dict[str, Any]:
    return {
        "t": "warning",
        "to": ["BY"],
        "status": "exercise",
        "precedence": "flash",
        "track": {"lat": 54.6, "lon": 25.3, "observed_at": 1_764_000_000_000,
                  "object": "uav", "confidence": 0.9, "source": "radar"},
    }


async def test_port_zero_binds_a_real_port(api: Api) -> None:
    """Started on port 0, the endpoint reports the port it bound and answers health checks."""
    assert api.running.port > 0
    status, body = await api.get("/healthz")
    assert status == 200
    assert body == {"ok": True, "endpoint": "LT", "connected": False,
                    "relay_unavailable_since_ms": None}


async def test_posting_a_warning_is_accepted_for_sending(api: Api) -> None:
    """A valid warning is signed and journaled: 202 with its id, then in the outbox."""
    status, body = await api.post("/api/messages", warning_json())
    assert status == 202
    message_id = body["id"]
    status, outbox = await api.get("/api/outbox")
    assert status == 200
    (item,) = outbox["messages"]
    assert item["id"] == message_id
    assert item["accepted"] is None
    assert item["recipients"] == {"BY": {"delivered": None, "acknowledged": None,
                                         "rejected": None, "state": "queued"}}
    sent = item["body"]
    assert sent["from"] == "LT"
    assert sent["incident"]
    assert sent["expires"] > sent["ts"]


async def test_malformed_json_is_400(api: Api) -> None:
    """A body that is not JSON is refused with 400 bad_json."""
    status, body = await api.post("/api/messages", b"{not json")
    assert status == 400
    assert body["error"] == "bad_json"
    assert body["field"] == ""


async def test_schema_error_is_422_naming_the_field(api: Api) -> None:
    """A latitude out of range is refused with 422 naming track.lat."""
    data = warning_json()
    data["track"]["lat"] = 95
    status, body = await api.post("/api/messages", data)
    assert status == 422
    assert body == {"error": "schema", "field": "track.lat",
                    "detail": "must be between -90 and 90"}


async def test_header_fields_are_filled_in_not_posted(api: Api) -> None:
    """Posting a seq (or any header field) is refused with 422 naming it."""
    status, body = await api.post("/api/messages", {**warning_json(), "seq": 5})
    assert (status, body["error"], body["field"]) == (422, "schema", "seq")


async def test_unknown_message_type_is_422(api: Api) -> None:
    """Only warning, update, cancel and text can be posted."""
    status, body = await api.post("/api/messages", {"t": "receipt"})
    assert (status, body["field"]) == (422, "t")


async def test_recipient_without_a_link_is_422(api: Api) -> None:
    """A recipient that is not a linked endpoint is refused as link_forbidden."""
    status, body = await api.post("/api/messages", {**warning_json(), "to": ["XX"]})
    assert (status, body["error"], body["field"]) == (422, "link_forbidden", "to")


async def test_update_without_incident_takes_the_incident_of_its_ref(api: Api) -> None:
    """An update that names no incident gets the incident of the message it updates."""
    _, first = await api.post("/api/messages", warning_json())
    status, second = await api.post("/api/messages", {**warning_json(), "t": "update",
                                                      "ref": first["id"]})
    assert status == 202
    _, outbox = await api.get("/api/outbox")
    update, warning = outbox["messages"]
    assert update["id"] == second["id"]
    assert update["incident"] == warning["incident"]


async def test_inbox_lists_a_message_once_however_often_it_came(api: Api) -> None:
    """A message delivered twice is listed once, newest first, with our delivered time."""
    author = Author(api.net)
    older = await api.receive(api.net.seal(author.text()), 1)
    frame = api.net.seal(author.warning())
    newer = await api.receive(frame, 2)
    await api.receive(frame, 2)
    status, inbox = await api.get("/api/inbox")
    assert status == 200
    messages = inbox["messages"]
    assert [m["id"] for m in messages] == [newer, older]
    first = messages[0]
    assert first["from"] == "BY"
    assert first["duplicates"] == 1
    assert first["stages"]["delivered"] is not None
    assert not first["acknowledged"]


async def test_inbox_and_outbox_come_in_pages_that_cover_everything_once(api: Api) -> None:
    """limit and the next cursor walk every message once, newest first, then next is null."""
    author = Author(api.net)
    received = [await api.receive(api.net.seal(author.text()), i) for i in range(1, 6)]
    sent = []
    for _ in range(5):
        status, body = await api.post("/api/messages", warning_json())
        assert status == 202
        sent.append(body["id"])
    for path, expected in (("/api/inbox", received), ("/api/outbox", sent)):
        seen: list[str] = []
        query = "?limit=2"
        pages = 0
        while True:
            status, page = await api.get(path + query)
            assert status == 200
            assert len(page["messages"]) <= 2
            seen += [m["id"] for m in page["messages"]]
            pages += 1
            if page["next"] is None:
                break
            query = f"?limit=2&before={page['next']}"
        assert seen == expected[::-1]
        assert pages == 3


@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/inbox", "?limit=0", "limit"), ("/api/outbox", "?limit=501", "limit"),
    ("/api/inbox", "?limit=x", "limit"), ("/api/inbox", "?before=12", "before"),
    ("/api/outbox", "?before=1-2", "before"),
])
async def test_a_bad_page_query_is_400_naming_the_field(
    api: Api, path: str, query: str, field: str
) -> None:
    """A limit out of 1..500 or a cursor not of the page's form is refused, naming it."""
    status, body = await api.get(path + query)
    assert status == 400
    assert (body["error"], body["field"]) == ("bad_query", field)


async def test_acknowledging_is_202_then_409(api: Api) -> None:
    """Acknowledging a received message is 202; doing it again is 409."""
    message_id = await api.receive(api.net.seal(Author(api.net).warning()))
    path = f"/api/messages/{message_id}/ack"
    status, _ = await api.post(path, {"action": "monitoring", "note": "tracking it"})
    assert status == 202
    status, body = await api.post(path, {"action": "monitoring"})
    assert (status, body["error"]) == (409, "already_acknowledged")
    _, inbox = await api.get("/api/inbox")
    (item,) = inbox["messages"]
    assert (item["acknowledged"], item["action"], item["note"]) == (
        True, "monitoring", "tracking it")


async def test_acknowledging_an_unknown_id_is_404(api: Api) -> None:
    """An id that is not in the inbox (or not an id at all) is 404."""
    unknown = format_id(Author(api.net).ids(1_764_000_000_000))
    status, body = await api.post(f"/api/messages/{unknown}/ack", {})
    assert (status, body["error"]) == (404, "not_found")
    status, _ = await api.post("/api/messages/not-an-id/ack", {})
    assert status == 404


async def test_acknowledging_with_a_bad_action_is_422(api: Api) -> None:
    """An action outside the vocabulary is refused naming the field."""
    message_id = await api.receive(api.net.seal(Author(api.net).warning()))
    status, body = await api.post(f"/api/messages/{message_id}/ack", {"action": "shoot"})
    assert (status, body["field"]) == (422, "action")


async def test_acknowledging_with_malformed_json_is_400(api: Api) -> None:
    """A malformed acknowledgement body is 400 bad_json."""
    message_id = await api.receive(api.net.seal(Author(api.net).warning()))
    status, body = await api.post(f"/api/messages/{message_id}/ack", b"[")
    assert (status, body["error"]) == (400, "bad_json")


async def test_checkpoint_is_empty_before_any_witnessing(api: Api) -> None:
    """With no checkpoint witnessed yet, every field is null."""
    status, body = await api.get("/api/checkpoint")
    assert status == 200
    assert body["size"] is None
    assert body["consistent"] is None


async def test_links_report_the_connection_without_the_relay(api: Api) -> None:
    """The link view says we are offline and has no relay figures when it is unreachable."""
    status, body = await api.get("/api/links")
    assert status == 200
    assert body["endpoint"] == "LT"
    assert body["relay"]["connected"] is False
    assert body["relay_links"] is None
    assert body["link_test"]["last_answered_ms"] is None


async def test_root_serves_the_console(api: Api) -> None:
    """GET / is the operator console's page, not an API route."""
    async with api.http.get(api.url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"


async def read_sse(
    response: aiohttp.ClientResponse, skip: tuple[str, ...] = ("relay_disconnected",)
) -> tuple[str, Any]:
    """The next server-sent event not named in ``skip``: its name and JSON data."""
    name, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), TIMEOUT)).decode()
        if line.startswith("event: "):
            name = line[len("event: "):].strip()
        elif line.startswith("data: "):
            data = line[len("data: "):].strip()
        elif line == "\n" and name:
            if name not in skip:
                return name, json.loads(data)
            name, data = "", ""


async def test_event_stream_starts_with_a_snapshot_then_goes_live(api: Api) -> None:
    """The stream opens with a snapshot, then names each event as it happens."""
    async with api.http.get(api.url + "/api/events") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name, snapshot = await read_sse(response)
        assert name == "snapshot"
        assert snapshot["endpoint"] == "LT"
        assert snapshot["inbox"] == []
        message_id = await api.receive(api.net.seal(Author(api.net).warning()))
        name, event = await read_sse(response)
        assert name == "message_received"
        assert (event["id"], event["from"], event["alarm"]) == (message_id, "BY", False)
        name, event = await read_sse(response)
        assert (name, event["ref"], event["stage"]) == ("receipt_queued", message_id, "delivered")


async def test_a_quiet_event_stream_is_kept_alive_and_still_gets_the_next_event(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing to tell, the stream sends keep-alive comments; the event that comes
    after them is not lost to the wait that timed out."""
    monkeypatch.setattr("hotline.endpoint.api._SSE_KEEPALIVE_S", 0.02)
    async with api.http.get(api.url + "/api/events") as response:
        name, _ = await read_sse(response)
        assert name == "snapshot"
        for _ in range(3):
            line = await asyncio.wait_for(response.content.readline(), TIMEOUT)
            while line == b"\n":
                line = await asyncio.wait_for(response.content.readline(), TIMEOUT)
            assert line == b": keep-alive\n"
        message_id = await api.receive(api.net.seal(Author(api.net).warning()))
        name, event = await read_sse(response)
        assert (name, event["id"]) == ("message_received", message_id)


async def test_stopping_the_endpoint_ends_open_event_streams(tmp_path: Path) -> None:
    """Shutting down with a console still listening ends its stream promptly."""
    net = make_network()
    config = EndpointConfig(
        network=net.network, endpoint_id="LT", key=net.keys["LT"], data_dir=tmp_path,
        relay_url=f"ws://127.0.0.1:{closed_port()}/v1/ws",
    )
    add_operator(tmp_path)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        async with serve_endpoint(config) as running:
            headers = await operator_headers(http, running.url)
            response = await http.get(running.url + "/api/events", headers=headers)
            assert response.status == 200
            name, _ = await read_sse(response)
            assert name == "snapshot"
        async with asyncio.timeout(TIMEOUT):
            rest = await response.content.read()
        response.release()
    assert b"event: message_received" not in rest
