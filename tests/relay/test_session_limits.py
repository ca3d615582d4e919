"""Limits on who may open a relay session: auth deadline, idle sockets, repeated failures."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hotline.protocol.session import AUTH_FAILED_CLOSE, Auth, auth_signature, encode_control
from hotline.relay.guard import AuthGuard, GuardLimits
from hotline.relay.server import start_relay
from tests.factories import TestNet
from tests.relay.client import TIMEOUT
from tests.relay.conftest import relay_config


def test_the_guard_refuses_an_address_after_its_failures_until_the_window_passes() -> None:
    """Five failures inside the window refuse the address; it may retry once they age out."""
    guard = AuthGuard(GuardLimits(max_failures=5, window_ms=60_000))
    for t in range(5):
        assert guard.opening("10.0.0.9", t) is None
        guard.failed("10.0.0.9", t)
    refusal = guard.opening("10.0.0.9", 10)
    assert refusal is not None
    assert refusal.retry_after_ms == 60_000 - 10
    assert guard.opening("10.0.0.8", 10) is None  # another address is not affected
    assert guard.opening("10.0.0.9", 60_001) is None


def test_the_guard_caps_sockets_waiting_to_authenticate_per_address() -> None:
    """Beyond max_pending open sockets an address is refused; a success frees a place."""
    guard = AuthGuard(GuardLimits(max_pending=2))
    assert guard.opening("a", 0) is None
    assert guard.opening("a", 0) is None
    assert guard.opening("a", 0) is not None
    guard.succeeded("a")
    assert guard.opening("a", 0) is None


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


@pytest.mark.parametrize("failures", [3])
async def test_repeated_bad_authentication_is_refused_with_429(
    net: TestNet, tmp_path: Path, failures: int
) -> None:
    """After max_failures wrong answers the address gets 429 and Retry-After, no challenge."""
    limits = GuardLimits(max_failures=failures, window_ms=60_000)
    relay = await start_relay(replace(relay_config(net, tmp_path / "relay"), auth_guard=limits))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(failures):
                async with http.ws_connect(relay.ws_url) as ws:
                    challenge = await ws.receive_bytes(timeout=TIMEOUT)
                    wrong = auth_signature(challenge, "LT", net.keys["BY"])
                    await ws.send_bytes(encode_control(Auth("LT", wrong)))
                    await ws.receive(timeout=TIMEOUT)
                    assert ws.close_code == AUTH_FAILED_CLOSE
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(relay.ws_url)
            assert refused.value.status == 429
            assert refused.value.headers is not None
            assert int(refused.value.headers["Retry-After"]) >= 1
    finally:
        await relay.stop()
