"""Shared pieces of the sensor-feed tests: real relays and endpoints on loopback, feed clients.

Endpoints run in-process (``serve_endpoint``) on ports the OS picks; a relay
too (``start_relay``) when delivery matters, otherwise the endpoint points at a
closed port and keeps everything in its outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from hotline.cap.times import format_cap_time
from hotline.endpoint.events import EndpointEvent, MessageReceived
from hotline.endpoint.feedconfig import token_sha256
from hotline.endpoint.hub import Subscription
from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from hotline.testing.operators import add_operator
from tests.cap.helpers import alert_xml, info_xml
from tests.factories import TestNet

TIMEOUT = 20.0
TOKEN = "radar-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_TOKEN = "radar-token-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
T0 = 1_764_000_000_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_feeds(path: Path, *feeds: dict[str, Any]) -> Path:
    """A feeds.toml with one [[feeds]] table per dict; ``token`` is stored hashed."""
    lines: list[str] = []
    for feed in feeds:
        lines.append("[[feeds]]")
        for key, value in feed.items():
            if key == "token":
                lines.append(f'token_sha256 = "{token_sha256(value).hex()}"')
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def radar_feed(**extra: Any) -> dict[str, Any]:
    return {"name": "radar-1", "token": TOKEN, **extra}


def alert_json(**changes: Any) -> dict[str, Any]:
    """LT's radar reporting a drone to BY; ``changes`` replace top-level fields."""
    alert: dict[str, Any] = {
        "to": ["BY"],
        "status": "exercise",
        "precedence": "flash",
        "track_id": "T-1",
        "track": {"lat": 54.6, "lon": 25.3, "observed_at": now_ms(), "object": "uav",
                  "confidence": 0.9, "source": "radar", "sensor_id": "LT-RAD-4"},
    }
    alert.update(changes)
    return alert


def cap_alert(identifier: str = "LT-R7-1", *, to: str = "BY") -> bytes:
    """A CAP 1.2 Alert sent now, expiring in half an hour, for ``to``."""
    now = now_ms()
    return alert_xml(
        sent=format_cap_time(now),
        info=info_xml(
            language="lt",
            times=f"<expires>{format_cap_time(now + 1_800_000)}</expires>",
            text="<description>Bepilotis orlaivis.</description>",
            params={"hotline:to": to, "hotline:object": "uav", "hotline:source": "radar",
                    "hotline:sensor_id": "LT-R7"},
        ),
    ).replace(b"<identifier>T-1</identifier>", f"<identifier>{identifier}</identifier>".encode())


def cap_follow_up(
    msg_type: str, ref: str, identifier: str, *, ref_sent_ms: int, info: bool = True
) -> bytes:
    """A CAP Update or Cancel whose last reference is the hotline message ``ref``."""
    now = now_ms()
    references = f"hotline:LT,{ref},{format_cap_time(ref_sent_ms)}"
    body = None
    if info:
        body = info_xml(
            times=f"<expires>{format_cap_time(now + 1_800_000)}</expires>",
            params={"hotline:object": "uav"} if msg_type == "Update" else {
                "hotline:reason": "left_area"},
        )
    xml = alert_xml(msg_type=msg_type, sent=format_cap_time(now), references=references,
                    info=body)
    return xml.replace(b"<identifier>T-1</identifier>",
                       f"<identifier>{identifier}</identifier>".encode())


@dataclass
class Reply:
    status: int
    json: Any
    headers: CIMultiDictProxy[str]


@dataclass
class FeedClient:
    """A sensor talking to one endpoint's feed API."""

    http: aiohttp.ClientSession
    url: str
    token: str | None = TOKEN
    session: dict[str, str] = field(default_factory=dict)  # an operator's, for reading

    def _headers(self, token: str | None, key: str | None) -> dict[str, str]:
        headers = dict(self.session)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def alert(
        self, data: object, *, key: str | None = None, token: str | None = "",
    ) -> Reply:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        headers = self._headers(self.token if token == "" else token, key)
        headers["Content-Type"] = "application/json"
        async with self.http.post(self.url + "/api/alerts", data=raw,
                                  headers=headers) as response:
            return Reply(response.status, await response.json(), response.headers)

    async def cap(
        self, xml: bytes, *, key: str | None = None, content_type: str = "application/cap+xml",
        token: str | None = "",
    ) -> Reply:
        headers = self._headers(self.token if token == "" else token, key)
        headers["Content-Type"] = content_type
        async with self.http.post(self.url + "/api/cap", data=xml, headers=headers) as response:
            return Reply(response.status, await response.json(), response.headers)

    async def get(self, path: str) -> tuple[int, bytes, str]:
        """Status, body bytes and Content-Type of a GET (with the feed's token: feeds read
        what operators read)."""
        async with self.http.get(self.url + path, headers=self._headers(self.token, None)
                                 ) as response:
            return response.status, await response.read(), response.headers["Content-Type"]

    async def get_json(self, path: str) -> Any:
        async with self.http.get(self.url + path, headers=self._headers(self.token, None)
                                 ) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@contextlib.asynccontextmanager
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        yield session


@contextlib.asynccontextmanager
async def relay_running(net: TestNet, root: Path) -> AsyncIterator[RunningRelay]:
    relay = await start_relay(RelayConfig(
        network=net.network, network_toml=network_to_toml(net.network).encode(),
        data_dir=root / "relay", key=net.keys["relay"], port=0,
        checkpoint_every=16, checkpoint_interval_ms=200, tick_ms=50,
    ))
    try:
        yield relay
    finally:
        await relay.stop()


def endpoint_config(
    net: TestNet, root: Path, party: str, relay_url: str | None = None,
    feeds: Path | None = None,
) -> EndpointConfig:
    return EndpointConfig(
        network=net.network, endpoint_id=party, key=net.keys[party], data_dir=root / party,
        relay_url=relay_url or f"ws://127.0.0.1:{closed_port()}/v1/ws", tick_s=0.1,
        feeds=feeds,
    )


def endpoint_running(
    net: TestNet, root: Path, party: str, relay_url: str | None = None,
    feeds: Path | None = None,
) -> contextlib.AbstractAsyncContextManager[RunningEndpoint]:
    add_operator(root / party)  # the test's officer may log in
    return serve_endpoint(endpoint_config(net, root, party, relay_url, feeds))


async def next_event(
    subscription: Subscription, match: Callable[[EndpointEvent], bool], within_s: float = TIMEOUT
) -> EndpointEvent:
    """The first event published on ``subscription`` that matches, within ``within_s``."""
    async with asyncio.timeout(within_s):
        while True:
            event = await subscription.next()
            assert event is not None, "the event stream ended"
            if match(event):
                return event


async def next_received(subscription: Subscription) -> MessageReceived:
    """The next message that reached the endpoint of ``subscription``."""
    event = await next_event(subscription, lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived)
    return event
