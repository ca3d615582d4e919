"""A throw-away CA with certificates for the relay, BY and LT, and helpers to run them over TLS.

Certificates are made with ``cryptography``'s x509 by ``hotline tls-certs``'s
functions, for 127.0.0.1 and localhost; servers listen on loopback ports the OS
picks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.cli.tls_cmd import write_certificates
from hotline.endpoint.events import RelayConnected, RelayDisconnected
from hotline.endpoint.hub import Subscription
from hotline.endpoint.service import EndpointConfig, RunningEndpoint
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, RunningRelay, start_relay, wall_clock_ms
from hotline.tls import ClientTls, ServerTls, TlsSettings, parse_pin
from tests.factories import TestNet, make_network
from tests.feeds.helpers import next_event

TIMEOUT = 20.0
HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Pki:
    """Where the throw-away certificates are, and the relay's pin."""

    directory: Path
    relay_pin: bytes

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, party: str) -> Path:
        return self.directory / f"{party}.pem"

    def key(self, party: str) -> Path:
        return self.directory / f"{party}.key"

    def serve(self, party: str, *, mutual: bool = False) -> ServerTls:
        return ServerTls(self.cert(party), self.key(party), self.ca if mutual else None)

    def client(self, party: str | None = None, *, ca: bool = True,
               pin: bytes | None = None) -> ClientTls:
        """Trust by the CA (and/or a pin); with ``party``, show its certificate."""
        return ClientTls(
            ca=self.ca if ca else None,
            pin=pin,
            cert=self.cert(party) if party else None,
            key=self.key(party) if party else None,
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "certs"
    pin = write_certificates(directory, HOSTS, ("BY", "LT"))
    return Pki(directory, parse_pin(pin))


@pytest.fixture
def net() -> TestNet:
    return make_network(endpoints=("BY", "LT"), links=[("BY", "LT")])


@contextlib.asynccontextmanager
async def tls_relay(
    net: TestNet, data: Path, serve: ServerTls, clock: Callable[[], int] = wall_clock_ms
) -> AsyncIterator[RunningRelay]:
    """An in-process relay serving TLS on a loopback port the OS picks."""
    config = RelayConfig(
        network=net.network,
        network_toml=network_to_toml(net.network).encode(),
        data_dir=data,
        key=net.keys["relay"],
        port=0,
        checkpoint_every=4,
        checkpoint_interval_ms=200,
        tick_ms=50,
        tls=TlsSettings(serve=serve),
        clock=clock,
    )
    running = await start_relay(config)
    try:
        yield running
    finally:
        await running.stop()


def endpoint_config(
    net: TestNet, data: Path, party: str, relay_url: str, client: ClientTls,
    serve: ServerTls | None = None,
) -> EndpointConfig:
    return EndpointConfig(
        network=net.network,
        endpoint_id=party,
        key=net.keys[party],
        data_dir=data / party,
        relay_url=relay_url,
        tick_s=0.1,
        tls=TlsSettings(serve=serve, client=client),
    )



async def welcomed(running: RunningEndpoint, events: Subscription) -> None:
    """Return once the relay has welcomed the endpoint."""
    if not running.endpoint.connected:
        await next_event(events, lambda e: isinstance(e, RelayConnected))


async def first_refusal(running: RunningEndpoint, events: Subscription) -> str:
    """Why the first connection to the relay failed (repeats of one reason publish nothing)."""
    reason = running.endpoint.last_disconnect
    if reason is not None:
        return reason
    event = await next_event(events, lambda e: isinstance(e, RelayDisconnected))
    assert isinstance(event, RelayDisconnected)
    return event.reason
