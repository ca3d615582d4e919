"""Endpoints and a relay over TLS: trust by CA, by pin, and mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path

import aiohttp
import structlog
from structlog.typing import EventDict

from hotline.cli.tls_cmd import write_certificates
from hotline.endpoint.events import (
    CheckpointWitnessed,
    EndpointEvent,
    MessageReceived,
    ReceiptStored,
)
from hotline.endpoint.service import RunningEndpoint, serve_endpoint
from hotline.protocol.ids import parse_id
from hotline.protocol.vocab import Stage
from hotline.relay.server import wall_clock_ms
from hotline.testing.operators import add_operator, operator_headers
from hotline.tls import ClientTls, client_context, server_context
from tests.factories import TestNet
from tests.feeds.helpers import next_event
from tests.tls.conftest import (
    HOSTS,
    TIMEOUT,
    Pki,
    endpoint_config,
    first_refusal,
    tls_relay,
    welcomed,
)

WARNING = {
    "t": "warning", "to": ["LT"], "status": "exercise", "precedence": "flash",
    "track": {"lat": 54.1, "lon": 25.8, "observed_at": 1_764_000_000_000,
              "object": "uav", "confidence": 0.7, "source": "radar"},
}



async def officer(http: aiohttp.ClientSession, running: RunningEndpoint) -> dict[str, str]:
    """The test's officer, added to the running endpoint and logged in: their headers."""
    add_operator(running.endpoint.config.data_dir)
    return await operator_headers(http, running.url)

async def test_endpoints_trusting_the_ca_are_welcomed_and_a_warning_round_trips(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """Over wss://, BY warns LT, LT acknowledges, and BY holds both receipts."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        assert relay.ws_url.startswith("wss://127.0.0.1:")
        by = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "BY", relay.ws_url, pki.client())))
        lt = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "LT", relay.ws_url, pki.client())))
        by_events = stack.enter_context(by.endpoint.hub.subscribe())
        lt_events = stack.enter_context(lt.endpoint.hub.subscribe())
        await welcomed(by, by_events)
        await welcomed(lt, lt_events)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)))

        async with http.post(by.url + "/api/messages", json=WARNING,
                             headers=await officer(http, by)) as response:
            assert response.status == 202
            message_id = (await response.json())["id"]
        raw_id = parse_id(message_id)
        await next_event(
            lt_events, lambda e: isinstance(e, MessageReceived) and e.body.id == raw_id)
        async with http.post(f"{lt.url}/api/messages/{message_id}/ack",
                             json={"action": "monitoring"},
                             headers=await officer(http, lt)) as response:
            assert response.status == 202

        def acknowledged(e: EndpointEvent) -> bool:
            return (isinstance(e, ReceiptStored) and e.ref == raw_id
                    and e.stage is Stage.ACKNOWLEDGED)

        await next_event(by_events, acknowledged)
        assert sorted(relay.relay.online) == ["BY", "LT"]


async def test_the_relays_http_routes_are_fetched_over_the_same_tls(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """An endpoint trusting the CA reads /v1/links and proves a grown checkpoint over https."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        by = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "BY", relay.ws_url, pki.client())))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        await welcomed(by, events)
        assert by.endpoint.relay_http.base.startswith("https://")
        assert isinstance(await by.endpoint.relay_http.links_json(), dict)

        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(by.url + "/api/messages", json=WARNING,
                             headers=await officer(http, by)) as response:
            assert response.status == 202
        grown = relay.relay.log.size
        # The endpoint held a checkpoint from its welcome: a larger one needs a
        # consistency proof, fetched from the relay's HTTP side.
        witnessed = await next_event(
            events, lambda e: isinstance(e, CheckpointWitnessed) and e.size >= grown)
        assert isinstance(witnessed, CheckpointWitnessed)


async def test_the_right_pin_alone_is_enough_to_connect(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """With no CA, an endpoint pinning the relay's certificate is welcomed."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        by = await stack.enter_async_context(serve_endpoint(endpoint_config(
            net, tmp_path, "BY", relay.ws_url, pki.client(ca=False, pin=pki.relay_pin))))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        await welcomed(by, events)
        assert relay.relay.online == ["BY"]


async def test_a_wrong_pin_is_refused_with_a_clear_reason_and_no_session(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """A certificate that does not match the pin ends the attempt before any request."""
    wrong = hashlib.sha256(os.urandom(16)).digest()
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        logs = stack.enter_context(structlog.testing.capture_logs())
        by = await stack.enter_async_context(serve_endpoint(endpoint_config(
            net, tmp_path, "BY", relay.ws_url, pki.client(ca=False, pin=wrong))))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        reason = await first_refusal(by, events)
        assert f"not the pinned sha256:{wrong.hex()}" in reason
        assert f"is sha256:{pki.relay_pin.hex()}" in reason
        assert not by.endpoint.connected
        assert relay.relay.online == []
        assert "endpoint_connected" not in [e["event"] for e in logs]
        assert "relay_certificate_refused" in [e["event"] for e in logs]


async def test_a_relay_certificate_from_an_unknown_ca_is_refused(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """An endpoint that trusts only the system store does not accept the throw-away CA."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        by = await stack.enter_async_context(serve_endpoint(endpoint_config(
            net, tmp_path, "BY", relay.ws_url, pki.client(ca=False))))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        reason = await first_refusal(by, events)
        assert "does not verify" in reason
        assert relay.relay.online == []


async def test_mutual_tls_refuses_an_endpoint_without_a_client_certificate(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """A relay asking for client certificates ends the handshake of one that shows none; both
    sides log it at error level with the reason."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay", mutual=True)))
        logs = stack.enter_context(structlog.testing.capture_logs())
        by = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "BY", relay.ws_url, pki.client())))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        reason = await first_refusal(by, events)
        # Under TLS 1.3 the relay's alert does not reach the client: it sees the line close.
        assert reason.startswith("cannot connect:")
        assert not by.endpoint.connected
        assert relay.relay.online == []
        assert "endpoint_connected" not in [e["event"] for e in logs]
        errors = {e["event"]: e for e in logs if e["log_level"] == "error"}
        assert errors["tls_handshake_failed"]["client_certificate_required"] is True
        assert "TLS connection was refused" in errors["relay_tls_refused"]["reason"]


async def test_mutual_tls_welcomes_an_endpoint_with_a_client_certificate(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """With its certificate from the CA, trusting the relay by CA or by pin, each is welcomed."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay", mutual=True)))
        by = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "BY", relay.ws_url, pki.client("BY"))))
        lt = await stack.enter_async_context(serve_endpoint(endpoint_config(
            net, tmp_path, "LT", relay.ws_url, pki.client("LT", ca=False, pin=pki.relay_pin))))
        for running in (by, lt):
            events = stack.enter_context(running.endpoint.hub.subscribe())
            await welcomed(running, events)
        assert sorted(relay.relay.online) == ["BY", "LT"]


async def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """A certificate issued by some other CA does not open the relay's door."""
    stranger = tmp_path / "stranger"
    write_certificates(stranger, HOSTS, ("BY",))
    foreign = ClientTls(ca=pki.ca, cert=stranger / "BY.pem", key=stranger / "BY.key")
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay", mutual=True)))
        by = await stack.enter_async_context(serve_endpoint(
            endpoint_config(net, tmp_path, "BY", relay.ws_url, foreign)))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        assert (await first_refusal(by, events)).startswith("cannot connect:")
        assert relay.relay.online == []


def test_a_ca_given_is_the_only_one_trusted(pki: Pki) -> None:
    """The relay's client CA and an endpoint's relay CA replace the system store, not add to it."""
    (ca,) = server_context(pki.serve("relay", mutual=True)).get_ca_certs()
    assert "hotline throw-away CA" in str(ca["subject"])
    assert len(client_context(pki.client()).get_ca_certs()) == 1


async def test_a_flood_of_failed_handshakes_writes_a_burst_of_lines_then_one_count(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """Anyone who reaches the port can fail a TLS handshake: the relay logs the throttle's
    burst of tls_handshake_failed lines, holds back the rest, and reports their number in one
    log_lines_suppressed line once the window is over."""
    clock = [wall_clock_ms()]
    reported = asyncio.Event()

    def watch(_logger: object, _name: str, event: EventDict) -> EventDict:
        if event["event"] == "log_lines_suppressed":
            reported.set()
        return event

    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(tls_relay(
            net, tmp_path / "relay", pki.serve("relay"), clock=lambda: clock[0]))
        throttle = relay.relay.log_throttle
        attempts = throttle.burst + 7
        logs = stack.enter_context(structlog.testing.capture_logs(processors=[watch]))
        for _ in range(attempts):  # plain HTTP to the TLS port: the handshake fails at once
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
            await asyncio.wait_for(reader.read(), TIMEOUT)  # the relay closes the connection
            writer.close()
            await writer.wait_closed()
        clock[0] += throttle.window_ms
        await asyncio.wait_for(reported.wait(), TIMEOUT)
    failed = [e for e in logs if e["event"] == "tls_handshake_failed"]
    assert len(failed) == throttle.burst
    (summary,) = [e for e in logs if e["event"] == "log_lines_suppressed"]
    assert (summary["of"], summary["lines"]) == ("tls_handshake_failed", attempts - throttle.burst)
