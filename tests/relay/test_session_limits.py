"""Limits on who may open a relay session: auth deadline, idle sockets, repeated failures."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import structlog.testing
from structlog.typing import EventDict

from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    Auth,
    Welcome,
    auth_signature,
    decode_control,
    encode_control,
)
from hotline.relay.guard import AuthGuard, GuardLimits, Refusal, Ticket
from hotline.relay.server import start_relay
from tests.factories import TestNet
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import now_ms, relay_config


def test_the_guard_locks_an_address_and_claimed_id_pair_after_its_failures() -> None:
    """Five failures claiming LT from one address lock that pair only, until the window
    passes; the same address claiming BY, or another address claiming LT, is not locked."""
    guard = AuthGuard(GuardLimits(max_failures=5, window_ms=60_000))
    for t in range(4):
        ticket = guard.opening()
        assert isinstance(ticket, Ticket)
        assert ticket.failed("10.0.0.9", "LT", t) is None
    ticket = guard.opening()
    assert isinstance(ticket, Ticket)
    locked = ticket.failed("10.0.0.9", "LT", 10)
    assert locked is not None
    assert locked.retry_after_ms == 60_000 - 10
    assert guard.failures("10.0.0.9", "LT", 10) == 5
    assert guard.failures("10.0.0.9", "BY", 10) == 0
    assert guard.failures("10.0.0.8", "LT", 10) == 0
    assert guard.failures("10.0.0.9", "LT", 60_011) == 0
    assert guard.pending == 0


def test_the_guard_caps_sockets_waiting_to_authenticate_across_addresses() -> None:
    """Beyond max_pending open sockets any new one is refused; a settled ticket frees its place
    once, however often it is settled."""
    guard = AuthGuard(GuardLimits(max_pending=2))
    first, second = guard.opening(), guard.opening()
    assert isinstance(first, Ticket)
    assert isinstance(second, Ticket)
    assert isinstance(guard.opening(), Refusal)
    first.succeeded()
    first.gone()
    assert guard.pending == 1
    assert isinstance(guard.opening(), Ticket)
    assert isinstance(guard.opening(), Refusal)


async def test_a_silent_client_is_closed_at_the_auth_deadline_despite_heartbeats(
    net: TestNet, tmp_path: Path
) -> None:
    """Pings and pongs do not extend the time to answer the challenge: 4401 at the deadline."""
    config = replace(relay_config(net, tmp_path / "relay"), auth_timeout_s=0.6, heartbeat_s=0.2)
    relay = await start_relay(config)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(relay.ws_url) as ws:
            await ws.receive_bytes(timeout=TIMEOUT)
            message = await ws.receive(timeout=TIMEOUT)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == AUTH_FAILED_CLOSE
            assert str(message.extra).startswith("not_authenticated")
    finally:
        await relay.stop()


async def test_an_idle_socket_that_sends_no_request_is_closed(
    net: TestNet, tmp_path: Path
) -> None:
    """A TCP connection that never sends its HTTP request is closed after the auth timeout."""
    relay = await start_relay(replace(relay_config(net, tmp_path / "relay"), auth_timeout_s=0.5))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
    finally:
        await relay.stop()


async def test_strangers_failures_never_lock_out_a_valid_answer(
    net: TestNet, tmp_path: Path
) -> None:
    """After max_failures wrong answers claiming LT from 127.0.0.1 the next wrong one is told
    rate_limited with a retry time, and LT answering with its real key from the same address
    is still welcomed (a proxy's shared address cannot be used to lock LT out)."""
    failures = 3
    limits = GuardLimits(max_failures=failures, window_ms=60_000)
    relay = await start_relay(replace(relay_config(net, tmp_path / "relay"), auth_guard=limits))
    try:
        async with aiohttp.ClientSession() as http:
            for attempt in range(failures):
                async with http.ws_connect(relay.ws_url) as ws:
                    challenge = await ws.receive_bytes(timeout=TIMEOUT)
                    wrong = auth_signature(challenge, "LT", net.keys["BY"])
                    await ws.send_bytes(encode_control(Auth("LT", wrong)))
                    closing = await ws.receive(timeout=TIMEOUT)
                    assert ws.close_code == AUTH_FAILED_CLOSE
                    locked = attempt == failures - 1
                    assert str(closing.extra).startswith("rate_limited") is locked
            async with RawClient(net, "LT", relay.ws_url) as lt:
                assert lt.welcome is not None
                assert lt.welcome.id == "LT"
        assert relay.relay.guard.pending == 0
    finally:
        await relay.stop()


async def test_a_flood_of_silent_sockets_is_capped_with_429(net: TestNet, tmp_path: Path) -> None:
    """With max_pending sockets waiting on the challenge, the next is refused with 429 and
    Retry-After; once one leaves, an endpoint authenticates."""
    limits = GuardLimits(max_pending=2)
    relay = await start_relay(replace(relay_config(net, tmp_path / "relay"), auth_guard=limits))
    try:
        async with aiohttp.ClientSession() as http:
            waiting = [await http.ws_connect(relay.ws_url) for _ in range(2)]
            challenges = [await ws.receive_bytes(timeout=TIMEOUT) for ws in waiting]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(relay.ws_url)
            assert refused.value.status == 429
            assert refused.value.headers is not None
            assert int(refused.value.headers["Retry-After"]) >= 1
            answer = auth_signature(challenges[0], "LT", net.keys["LT"])
            await waiting[0].send_bytes(encode_control(Auth("LT", answer)))
            welcome = decode_control(await waiting[0].receive_bytes(timeout=TIMEOUT))
            assert isinstance(welcome, Welcome)  # LT's place among the pending is free again
            async with RawClient(net, "BY", relay.ws_url) as by:
                assert by.welcome is not None
            for ws in waiting:
                await ws.close()
    finally:
        await relay.stop()


class _Clock:
    """The relay's clock (ms), moved by the test."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


async def test_a_flood_of_refused_sessions_writes_a_burst_of_lines_then_one_count(
    net: TestNet, tmp_path: Path
) -> None:
    """A stranger looping on the port is refused every time and counted every time, but the
    log gets only one address's share of the throttle's session_refused lines; once the
    window is over the rest are reported in one log_lines_suppressed line."""
    clock = _Clock()
    config = replace(relay_config(net, tmp_path / "relay"), clock=clock,
                     auth_guard=GuardLimits(max_pending=1))
    relay = await start_relay(config)
    burst = relay.relay.log_throttle.per_peer  # all from 127.0.0.1
    attempts = relay.relay.log_throttle.burst + 15
    reported = asyncio.Event()

    def watch(_logger: object, _name: str, event: EventDict) -> EventDict:
        if event["event"] == "log_lines_suppressed":
            reported.set()
        return event

    try:
        with structlog.testing.capture_logs(processors=[watch]) as events:
            async with aiohttp.ClientSession() as http, http.ws_connect(relay.ws_url) as holder:
                await holder.receive_bytes(timeout=TIMEOUT)  # the one pending place is taken
                for _ in range(attempts):
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await http.ws_connect(relay.ws_url)
                    assert refused.value.status == 429
                clock.now += relay.relay.log_throttle.window_ms
                await asyncio.wait_for(reported.wait(), TIMEOUT)
        assert relay.relay.core.counters.rejected["rate_limited"] == attempts
        names = [e["event"] for e in events]
        assert names.count("session_refused") == burst
        (summary,) = [e for e in events if e["event"] == "log_lines_suppressed"]
        assert (summary["of"], summary["lines"]) == ("session_refused", attempts - burst)
    finally:
        await relay.stop()


async def test_a_flood_of_malformed_http_requests_writes_a_burst_of_lines_then_one_count(
    net: TestNet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are no HTTP request, sent by anyone who reaches the port, are answered 400
    and logged as the relay's own throttled http_request_failed event: the server library's
    error lines (a traceback each, outside the JSON log) do not get through unbounded."""
    clock = _Clock()
    relay = await start_relay(replace(relay_config(net, tmp_path / "relay"), clock=clock))
    burst = relay.relay.log_throttle.burst
    attempts = burst + 5
    url = urlsplit(relay.ws_url)
    try:
        with structlog.testing.capture_logs() as events:
            for _ in range(attempts):
                reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), TIMEOUT)
                assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
                writer.close()
                await writer.wait_closed()
        leaked = [r for r in caplog.records if r.name.startswith("aiohttp")
                  and r.levelno >= logging.WARNING]
        assert leaked == []
        failed = [e for e in events if e["event"] == "http_request_failed"]
        assert len(failed) == burst
        assert "Content-Length" in str(failed[0]["error"])
    finally:
        await relay.stop()
