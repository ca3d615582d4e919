"""A real relay process and two in-process endpoints: a flash warning end to end."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.endpoint.connection import Backoff
from hotline.endpoint.events import (
    CheckpointWitnessed,
    EndpointEvent,
    MessageAccepted,
    MessageReceived,
    ReceiptStored,
    RelayConnected,
)
from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.keyfile import load_signing_key
from hotline.network import network_to_toml
from hotline.network_file import load_network
from hotline.protocol.ids import parse_id
from hotline.protocol.vocab import Stage
from hotline.testing.operators import OPERATOR, add_operator, operator_headers
from hotline.testing.ports import free_port
from tests.feeds.helpers import next_event

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hotline.relay") is None, reason="the relay package is not here yet"
)

TIMEOUT = 20.0


@dataclass
class Relay:
    process: asyncio.subprocess.Process
    port: int
    drain: asyncio.Task[None]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@contextlib.asynccontextmanager
async def relay_process(network_dir: Path, data: Path, port: int = 0) -> AsyncIterator[Relay]:
    """``hotline relay`` in a child process; its port read from its log."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "relay", "--network", str(network_dir),
        "--data", str(data), "--host", "127.0.0.1", "--port", str(port),
        "--checkpoint-interval", "0.2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        port = await asyncio.wait_for(_listening_port(process.stderr), TIMEOUT)
        drain = asyncio.create_task(_drain(process.stderr))
        yield Relay(process, port, drain)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), TIMEOUT)
        with contextlib.suppress(NameError, asyncio.CancelledError):
            await drain


async def _listening_port(stderr: asyncio.StreamReader) -> int:
    while True:
        line = await stderr.readline()
        if not line:
            raise RuntimeError("the relay exited before listening")
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "relay_listening":
                return int(record["port"])



@pytest.fixture
def network_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "net"
    network = create_network(directory, endpoints=("BY", "LT"))
    quick = replace(network, link_test_interval_ms=500)  # checkpoints keep coming
    (directory / NETWORK_FILE).write_text(network_to_toml(quick), encoding="utf-8")
    return directory


def endpoint_config(network_dir: Path, data: Path, party: str, relay: Relay) -> EndpointConfig:
    add_operator(data / party)  # the test's officer may log in
    return EndpointConfig(
        network=load_network(network_dir / NETWORK_FILE),
        endpoint_id=party,
        key=load_signing_key(key_path(network_dir, party)),
        data_dir=data / party,
        relay_url=relay.ws_url,
        tick_s=0.1,
    )


async def test_flash_warning_is_accepted_delivered_and_acknowledged(
    network_dir: Path, tmp_path: Path
) -> None:
    """BY warns LT; LT's inbox has it and LT acknowledges; BY's outbox shows every stage."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(relay_process(network_dir, tmp_path / "relay"))
        by: RunningEndpoint = await stack.enter_async_context(
            serve_endpoint(endpoint_config(network_dir, tmp_path, "BY", relay)))
        lt: RunningEndpoint = await stack.enter_async_context(
            serve_endpoint(endpoint_config(network_dir, tmp_path, "LT", relay)))
        by_events = stack.enter_context(by.endpoint.hub.subscribe())
        lt_events = stack.enter_context(lt.endpoint.hub.subscribe())
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)))
        for running, events in ((by, by_events), (lt, lt_events)):
            if not running.endpoint.connected:
                await next_event(events, lambda e: isinstance(e, RelayConnected))
        by_officer = await operator_headers(http, by.url)
        lt_officer = await operator_headers(http, lt.url)

        warning = {
            "t": "warning", "to": ["LT"], "status": "exercise", "precedence": "flash",
            "track": {"lat": 54.1, "lon": 25.8, "observed_at": 1_764_000_000_000,
                      "object": "uav", "confidence": 0.7, "source": "radar"},
            "predicted": {"border": "BY-LT", "crossing_at": 1_764_000_600_000},
        }
        async with http.post(by.url + "/api/messages", json=warning,
                             headers=by_officer) as response:
            assert response.status == 202
            message_id = (await response.json())["id"]
        raw_id = parse_id(message_id)

        await next_event(
            lt_events, lambda e: isinstance(e, MessageReceived) and e.body.id == raw_id)
        async with http.get(lt.url + "/api/inbox", headers=lt_officer) as response:
            (item,) = (await response.json())["messages"]
        assert (item["id"], item["from"], item["precedence"]) == (message_id, "BY", "flash")
        assert item["body"]["predicted"]["border"] == "BY-LT"
        assert item["body"]["operator"] == OPERATOR  # BY's officer is named in the signed body

        ack = {"action": "monitoring", "note": "radar has it"}
        async with http.post(f"{lt.url}/api/messages/{message_id}/ack", json=ack,
                             headers=lt_officer) as response:
            assert response.status == 202

        def stage(wanted: Stage) -> Callable[[EndpointEvent], bool]:
            return lambda e: (isinstance(e, ReceiptStored) and e.ref == raw_id
                              and e.party == "LT" and e.stage is wanted)

        await next_event(by_events, stage(Stage.ACKNOWLEDGED))
        async with http.get(by.url + "/api/outbox", headers=by_officer) as response:
            (sent,) = (await response.json())["messages"]
        accepted = sent["accepted"]
        delivered = sent["recipients"]["LT"]["delivered"]
        acknowledged = sent["recipients"]["LT"]["acknowledged"]
        assert accepted is not None
        assert delivered is not None
        assert acknowledged is not None
        assert accepted["index"] < delivered["index"] < acknowledged["index"]
        assert accepted["received_ms"] <= delivered["received_ms"] <= acknowledged["received_ms"]
        assert (acknowledged["action"], acknowledged["note"]) == ("monitoring", "radar has it")
        assert acknowledged["operator"] == OPERATOR  # from LT's signed receipt


async def test_endpoints_witness_and_cosign_the_relays_checkpoints(
    network_dir: Path, tmp_path: Path
) -> None:
    """Each endpoint cosigns a first checkpoint, then a larger one proven consistent."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await stack.enter_async_context(relay_process(network_dir, tmp_path / "relay"))
        lt = await stack.enter_async_context(
            serve_endpoint(endpoint_config(network_dir, tmp_path, "LT", relay)))
        events = stack.enter_context(lt.endpoint.hub.subscribe())
        first = await next_event(events, lambda e: isinstance(e, CheckpointWitnessed))
        assert isinstance(first, CheckpointWitnessed)
        second = await next_event(
            events, lambda e: isinstance(e, CheckpointWitnessed) and e.size > first.size)
        assert isinstance(second, CheckpointWitnessed)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.get(lt.url + "/api/checkpoint",
                            headers=await operator_headers(http, lt.url)) as response:
            body = await response.json()
        assert body["consistent"] is True
        assert body["size"] >= second.size


async def test_a_message_posted_while_offline_is_sent_once_the_relay_is_up(
    network_dir: Path, tmp_path: Path
) -> None:
    """A warning posted before the relay runs is journaled, then resent and accepted."""
    port = free_port()
    offline = Relay(process=None, port=port, drain=None)  # type: ignore[arg-type]
    config = replace(endpoint_config(network_dir, tmp_path, "BY", offline),
                     backoff=Backoff(0.05, 0.2))
    async with contextlib.AsyncExitStack() as stack:
        by = await stack.enter_async_context(serve_endpoint(config))
        events = stack.enter_context(by.endpoint.hub.subscribe())
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)))
        text = {"t": "text", "to": ["LT"], "status": "test", "precedence": "routine",
                "text": "anyone there?", "lang": "en"}
        http.headers.update(await operator_headers(http, by.url))
        async with http.post(by.url + "/api/messages", json=text) as response:
            assert response.status == 202
            raw_id = parse_id((await response.json())["id"])
        async with http.get(by.url + "/api/outbox") as response:
            (held,) = (await response.json())["messages"]
        assert held["accepted"] is None
        await stack.enter_async_context(relay_process(network_dir, tmp_path / "relay", port))
        accepted = await next_event(
            events, lambda e: isinstance(e, MessageAccepted) and e.id == raw_id)
        assert isinstance(accepted, MessageAccepted)
        assert not accepted.receipt
