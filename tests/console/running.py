"""Endpoints (with or without a relay) for the console tests, on ports the OS picks.

Each endpoint has the officer of :mod:`hotline.testing.operators`, who logs in."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path

from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from hotline.testing.operators import add_operator
from tests.factories import TestNet, make_network


def network_with_languages(languages: Mapping[str, str]) -> TestNet:
    """A test network of the given endpoints, each configured with its language."""
    net = make_network(tuple(languages))
    endpoints = {
        party: replace(info, language=languages[party])
        for party, info in net.network.endpoints.items()
    }
    return replace(net, network=replace(net.network, endpoints=endpoints))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def lone_endpoint(net: TestNet, party: str, root: Path) -> AsyncIterator[RunningEndpoint]:
    """One endpoint whose relay is unreachable (its API and console still serve)."""
    config = EndpointConfig(
        network=net.network, endpoint_id=party, key=net.keys[party], data_dir=root / party,
        relay_url=f"ws://127.0.0.1:{closed_port()}/v1/ws",
    )
    add_operator(config.data_dir)
    async with serve_endpoint(config) as running:
        yield running


@contextlib.asynccontextmanager
async def network_running(
    net: TestNet, root: Path, parties: tuple[str, ...]
) -> AsyncIterator[tuple[RunningRelay, dict[str, RunningEndpoint]]]:
    """A real relay and real endpoints in-process on loopback."""
    relay = await start_relay(RelayConfig(
        network=net.network, network_toml=network_to_toml(net.network).encode(),
        data_dir=root / "relay", key=net.keys["relay"], port=0,
        checkpoint_every=16, checkpoint_interval_ms=200, tick_ms=50,
    ))
    try:
        async with contextlib.AsyncExitStack() as stack:
            endpoints = {}
            for party in parties:
                config = EndpointConfig(
                    network=net.network, endpoint_id=party, key=net.keys[party],
                    data_dir=root / party, relay_url=relay.ws_url, tick_s=0.1,
                )
                add_operator(config.data_dir)
                endpoints[party] = await stack.enter_async_context(serve_endpoint(config))
            yield relay, endpoints
    finally:
        await relay.stop()
