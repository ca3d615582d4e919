"""A relay session that stops reading is closed with 4408 and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from hotline.network import Limits
from hotline.protocol.bodies import WarningBody
from hotline.protocol.session import (
    SLOW_READER_CLOSE,
    Accepted,
    Auth,
    Welcome,
    auth_signature,
    decode_control,
    encode_control,
)
from hotline.relay.server import RunningRelay, start_relay
from tests.factories import TestNet, make_network
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import LINKS, Author, relay_config

BIG_TEXT = "\U0001f6a8" * 4000
STOP_S = 15.0
"""A stop closes each session within ``_SLOW_CLOSE_S`` (5 s), all at once, then aborts it."""


class Events:
    """structlog events as they happen, so a test can wait for one by name."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> Mapping[str, Any]:
        self.seen.append(dict(event))
        self.changed.set()
        raise structlog.DropEvent

    async def wait_for(self, name: str) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                for event in self.seen:
                    if event.get("event") == name:
                        return event
                self.changed.clear()
                await self.changed.wait()


@contextlib.contextmanager
def captured_events() -> Iterator[Events]:
    events = Events()
    structlog.configure(processors=[events])
    try:
        yield events
    finally:
        structlog.reset_defaults()


async def _lt_that_will_not_read(
    http: aiohttp.ClientSession, relay: RunningRelay, net: TestNet
) -> aiohttp.ClientWebSocketResponse:
    """LT's session, authenticated and welcomed, on a socket the test then leaves unread."""
    ws = await http.ws_connect(relay.ws_url, autoping=False)
    challenge = await ws.receive_bytes(timeout=TIMEOUT)
    await ws.send_bytes(encode_control(
        Auth("LT", auth_signature(challenge, "LT", net.keys["LT"]))))
    assert isinstance(decode_control(await ws.receive_bytes(timeout=TIMEOUT)), Welcome)
    return ws


async def test_a_client_that_stops_reading_is_closed_and_gets_everything_on_reconnect(
    tmp_path: Path,
) -> None:
    """A stalled queue closes the session (4408, an event); reconnected, every message arrives."""
    net: TestNet = make_network(
        links=LINKS, limits=Limits(retry_interval_ms=60_000, messages_per_minute=60_000)
    )
    config = replace(relay_config(net, tmp_path / "relay"), send_stall_s=0.5, heartbeat_s=60.0)
    with captured_events() as events:
        relay = await start_relay(config)
        try:
            by = Author("BY")
            async with RawClient(net, "BY", relay.ws_url) as sender, \
                    aiohttp.ClientSession() as http:
                ws = await _lt_that_will_not_read(http, relay, net)
                sent: list[WarningBody] = []
                dropped = asyncio.ensure_future(events.wait_for("slow_reader_disconnected"))
                while not dropped.done() and len(sent) < 2000:
                    body = replace(by.warning(), text=BIG_TEXT, lang="en")
                    await sender.send(sender.seal(body))
                    assert isinstance(await sender.accepted(), Accepted)
                    sent.append(body)
                event = await dropped
                assert event["party"] == "LT"
                while True:  # the buffered frames, then the close frame
                    message = await ws.receive(timeout=TIMEOUT)
                    if message.type is not aiohttp.WSMsgType.BINARY:
                        break
                assert message.type is aiohttp.WSMsgType.CLOSE
                assert ws.close_code == SLOW_READER_CLOSE
                assert str(message.extra).startswith("slow_reader:")
                await ws.close()
                async with RawClient(net, "LT", relay.ws_url) as again:
                    got: set[bytes] = set()
                    while len(got) < len(sent):
                        deliver = await again.delivered()
                        got.add(deliver.frame)
                    wanted = {sender.seal(b) for b in sent}
                    assert wanted <= got
        finally:
            await relay.stop()


async def test_a_relay_stops_in_bounded_time_while_a_session_has_stopped_reading(
    tmp_path: Path,
) -> None:
    """Stopping, the relay gives a session that reads nothing a bounded close, then aborts it.

    Its socket buffers are full (not yet judged slow), so the close frame cannot go out;
    the stop must still end, not wait for the endpoint to read again.
    """
    net: TestNet = make_network(
        links=LINKS, limits=Limits(retry_interval_ms=60_000, messages_per_minute=60_000)
    )
    config = replace(relay_config(net, tmp_path / "relay"), send_stall_s=600.0, heartbeat_s=60.0)
    relay = await start_relay(config)
    stopping: asyncio.Future[None] | None = None
    transport: asyncio.Transport | None = None
    try:
        by = Author("BY")
        async with RawClient(net, "BY", relay.ws_url) as sender, \
                aiohttp.ClientSession() as http:
            _lt = await _lt_that_will_not_read(http, relay, net)
            transport = relay.relay._connections["LT"].transport
            assert transport is not None
            high = transport.get_write_buffer_limits()[1]
            for _ in range(2000):  # until the relay's socket to LT is full and its writer waits
                if transport.get_write_buffer_size() > high:
                    break
                body = replace(by.warning(), text=BIG_TEXT, lang="en")
                await sender.send(sender.seal(body))
                assert isinstance(await sender.accepted(), Accepted)
            assert transport.get_write_buffer_size() > high, "LT's socket never filled up"
            stopping = asyncio.ensure_future(relay.stop())
            await asyncio.wait({stopping}, timeout=STOP_S)
            assert stopping.done(), f"the relay did not stop within {STOP_S:.0f} s"
            stopping.result()
    finally:
        if stopping is None:
            await relay.stop()
        elif not stopping.done():
            if transport is not None:
                transport.abort()  # what the stop should have done: let it end
            await asyncio.wait({stopping}, timeout=STOP_S)
