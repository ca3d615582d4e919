"""The workload on hotline: the whole relay pipeline, as in ``bench/relay.py``.

The relay runs as its own process (``hotline relay``) on a fresh two-endpoint
network whose rate limit is lifted. A is BY and B is LT, minimal endpoints
that do on the wire what an endpoint does: BY signs each warning; the relay
verifies it, appends it durably, answers ``accepted`` and forwards it; LT
verifies it and answers a signed ``delivered`` receipt (B's acknowledgement);
the relay verifies and appends that and forwards it to BY, who verifies it.
Both endpoints also answer the relay's link tests, as a real endpoint does.
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import tomli_w
from relay import Client, sealed_warning

from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.keyfile import load_signing_key
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.bodies import LinkTestBody, ReceiptBody, WarningBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.session import Deliver, RejectedNotice, decode_control
from hotline.protocol.vocab import Stage
from hotline.testing.ports import free_port
from peers.servers import Server, spawn
from peers.workload import AckHandler

__all__ = [
    "HotlinePeer",
    "RelayProcess",
    "RelayStarter",
    "client_for",
    "frame_sizes",
    "lift_rate_limit",
    "prepare_network",
    "start_relay",
]

UNLIMITED_RATE = 100_000_000


def prepare_network(directory: Path, relay_url: str) -> Path:
    """A new default network in ``directory`` whose rate limit will not throttle a benchmark."""
    create_network(directory, relay_url=relay_url)
    return lift_rate_limit(directory / NETWORK_FILE)


def lift_rate_limit(config: Path) -> Path:
    """Raise ``messages_per_minute`` in ``config`` out of a benchmark's reach."""
    doc = tomllib.loads(config.read_text())
    doc["limits"]["messages_per_minute"] = UNLIMITED_RATE
    config.write_text(tomli_w.dumps(doc))
    return config


@dataclass
class RelayProcess:
    """A running ``hotline relay`` and what its clients need to reach it."""

    server: Server
    config: Path
    network: Network
    client_type: type[Client] = Client

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def client(self, party: str) -> Client:
        return client_for(self.config, self.network, party, self.url, self.client_type)


def client_for(config: Path, network: Network, party: str, url: str,
               client_type: type[Client] = Client) -> Client:
    """A minimal endpoint for ``party`` (its key from the network's keys/ directory)."""
    return client_type(party, load_signing_key(key_path(config.parent, party)), network, url)


def start_relay(config: Path, data: Path, state: Path, port: int | None = None,
                timeout_s: float = 20.0) -> RelayProcess:
    """``hotline relay`` for the network in ``config``, its log in ``data``, on loopback.

    ``state`` receives the relay's own log lines (``server.log``). Returns once
    the relay listens, which it does after replaying its log.
    """
    port = port or free_port()
    state.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "hotline", "relay", "--network", str(config),
            "--data", str(data), "--port", str(port)]
    server = spawn("hotline relay", argv, port, state, timeout_s)
    return RelayProcess(server, config, load_network(config))


async def frame_sizes(config: Path) -> tuple[int, int]:
    """The sizes of BY's warning frame and of LT's delivered receipt for it."""
    network = load_network(config)
    by, lt = (client_for(config, network, p, "ws://127.0.0.1:9/unused") for p in ("BY", "LT"))
    try:
        frame, ident = sealed_warning(by)
        envelope = open_envelope(frame, network)
        receipt = ReceiptBody(**lt.header(), ref=ident,  # type: ignore[arg-type]
                              hash=envelope.hash, stage=Stage.DELIVERED)
        return len(frame), len(seal(receipt, lt.key))
    finally:
        await by.close()
        await lt.close()


# Starts a relay for the network in ``config``: its log in ``data``, its own files in ``state``.
RelayStarter = Callable[[Path, Path, Path], RelayProcess]


class HotlinePeer:
    """BY and LT on a relay that is started afresh, with an empty log, for every run.

    A fresh relay per run keeps runs independent: B answers ``delivered`` only,
    so every warning stays in the relay's table of messages owed an
    ``acknowledged`` receipt, which its 100 ms ticker scans in full (see
    docs/performance.md); without a restart that table would grow from one
    run to the next, and FLASH warnings would turn overdue after 60 s.

    ``start`` is what starts the relay (``hotline relay`` unless told):
    ``peers.floor_peer`` runs the same clients against another relay.
    """

    def __init__(self, config: Path, scratch: Path, *, name: str = "hotline",
                 start: RelayStarter = start_relay) -> None:
        self.name = name
        self._start_relay = start
        self._config = config
        self._scratch = scratch
        self._runs = 0
        self.relay: RelayProcess | None = None
        self._on_ack: AckHandler | None = None
        self._by: Client | None = None
        self._lt: Client | None = None
        self._tokens: dict[bytes, int] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._error: str | None = None

    @property
    def server_pids(self) -> tuple[int, ...]:
        assert self.relay is not None
        return (self.relay.server.pid,)

    async def fresh(self) -> None:
        """Stop the relay if one runs; start a new one with an empty log; reconnect."""
        await self._disconnect()
        if self.relay is not None:
            await asyncio.to_thread(self.relay.server.stop)
        self._runs += 1
        run = self._scratch / f"run-{self._runs}"
        self.relay = await asyncio.to_thread(
            self._start_relay, self._config, run / "log", run / "process"
        )
        assert self._on_ack is not None
        await self._connect(self._on_ack)

    async def connect(self, on_ack: AckHandler) -> None:
        self._on_ack = on_ack
        await self.fresh()

    async def _connect(self, on_ack: AckHandler) -> None:
        assert self.relay is not None
        if self._by is None or self._lt is None:
            self._by, self._lt = self.relay.client("BY"), self.relay.client("LT")
        for client in (self._by, self._lt):
            client.url = self.relay.url
            await client.connect()
        self._readers = [
            asyncio.create_task(self._read(self._by, on_ack), name="bench-by"),
            asyncio.create_task(self._read(self._lt, on_ack), name="bench-lt"),
        ]

    async def _disconnect(self) -> None:
        for client in (self._by, self._lt):
            if client is not None and client.ws is not None:
                await client.ws.close()
                client.ws = None
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers = []

    async def _read(self, client: Client, on_ack: AckHandler) -> None:
        """Verify what the relay delivers: answer messages and tests, match receipts."""
        assert client.ws is not None
        assert self.relay is not None
        network = self.relay.network
        async for message in client.ws:
            if message.type is not aiohttp.WSMsgType.BINARY:
                continue
            control = decode_control(message.data)
            if isinstance(control, RejectedNotice):
                self._error = f"the relay refused a message from {client.party}: {control}"
            elif isinstance(control, Deliver):
                envelope = open_envelope(control.frame, network)
                body = envelope.body
                if isinstance(body, ReceiptBody):
                    token = self._tokens.pop(body.ref, None)
                    if token is not None:
                        on_ack(token)
                elif isinstance(body, WarningBody | LinkTestBody):
                    receipt = ReceiptBody(**client.header(),  # type: ignore[arg-type]
                                          ref=body.id, hash=envelope.hash, stage=Stage.DELIVERED)
                    await client.ws.send_bytes(seal(receipt, client.key))

    def prepare(self, token: int) -> bytes:
        assert self._by is not None
        frame, ident = sealed_warning(self._by)
        self._tokens[ident] = token
        return frame

    async def send(self, message: bytes) -> None:
        assert self._by is not None
        assert self._by.ws is not None
        await self._by.ws.send_bytes(message)

    def failure(self) -> str | None:
        for reader in self._readers:
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                return f"a reader failed: {reader.exception()!r}"
        return self._error

    async def close(self) -> None:
        await self._disconnect()
        for client in (self._by, self._lt):
            if client is not None:
                await client.close()
        if self.relay is not None:
            await asyncio.to_thread(self.relay.server.stop)
