"""Two independent relays on loopback and three endpoints using both: one signature, two paths."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
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
    PathArrived,
    ReceiptStored,
    RelayConnected,
    RelayDisconnected,
)
from hotline.endpoint.service import Endpoint, EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.errors import ConfigError
from hotline.keyfile import load_signing_key
from hotline.network import Network, network_to_toml
from hotline.network_file import load_network
from hotline.protocol.vocab import Stage
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from hotline.testing.operators import add_operator, operator_headers
from hotline.testing.ports import free_port
from tests.feeds.helpers import next_event

TIMEOUT = 20.0
RELAYS = ("by", "osce")



@pytest.fixture
def network_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "net"
    network = create_network(directory, endpoints=("BY", "LT", "PL"), relays=RELAYS)
    relays = {
        rid: replace(r, url=f"ws://127.0.0.1:{free_port()}/v1/ws")
        for rid, r in network.relays.items()
    }
    quick = replace(network, relays=relays, relay=relays["by"], link_test_interval_ms=500)
    (directory / NETWORK_FILE).write_text(network_to_toml(quick), encoding="utf-8")
    return directory


def _port(network: Network, relay: str) -> int:
    return int(network.relays[relay].url.split(":")[2].split("/")[0])


async def run_relay(network_dir: Path, data: Path, relay: str) -> RunningRelay:
    whole = load_network(network_dir / NETWORK_FILE)
    view = whole.for_relay(relay)
    return await start_relay(RelayConfig(
        network=view, network_toml=network_to_toml(view).encode(), data_dir=data / relay,
        key=load_signing_key(key_path(network_dir, relay)), port=_port(whole, relay),
        checkpoint_interval_ms=200,
    ))


@contextlib.asynccontextmanager
async def endpoints(network_dir: Path, data: Path, *parties: str,
                    ) -> AsyncIterator[dict[str, RunningEndpoint]]:
    async with contextlib.AsyncExitStack() as stack:
        running = {}
        for party in parties:
            add_operator(data / party)  # the test's officer may log in
            config = EndpointConfig(
                network=load_network(network_dir / NETWORK_FILE), endpoint_id=party,
                key=load_signing_key(key_path(network_dir, party)), data_dir=data / party,
                backoff=Backoff(0.05, 0.2), tick_s=0.05, monitor_s=0.1,
            )
            running[party] = await stack.enter_async_context(serve_endpoint(config))
        yield running


def _about(event: EndpointEvent, message_id: bytes) -> bool:
    if isinstance(event, MessageReceived):
        return event.body.id == message_id
    return isinstance(event, PathArrived) and event.id == message_id


def _other(relay: str) -> str:
    return next(r for r in RELAYS if r != relay)


def _warning(to: str) -> dict[str, object]:
    return {"t": "warning", "to": [to], "status": "exercise", "precedence": "flash",
            "track": {"lat": 54.1, "lon": 25.8, "observed_at": 1_764_000_000_000,
                      "object": "uav", "confidence": 0.7, "source": "radar"}}


async def test_one_signature_travels_both_relays_and_is_shown_once(
    network_dir: Path, tmp_path: Path
) -> None:
    """A warning is signed once, accepted by each relay, shown once; each path is recorded."""
    data = tmp_path / "data"
    relays = [await run_relay(network_dir, data, r) for r in RELAYS]
    try:
        async with endpoints(network_dir, data, "BY", "LT") as eps:
            by, lt = eps["BY"].endpoint, eps["LT"].endpoint
            by_events, lt_events = by.hub.subscribe(), lt.hub.subscribe()
            for sub in (by_events, lt_events):
                seen: set[str] = set()
                while seen != set(RELAYS):
                    event = await next_event(sub, lambda e: isinstance(
                        e, RelayConnected | CheckpointWitnessed))
                    if isinstance(event, CheckpointWitnessed):
                        seen.add(event.relay)
            message_id = await by.post_message(_warning("LT"), "duty")
            accepted: set[str] = set()
            stored = False
            while accepted != set(RELAYS) or not stored:
                event = await next_event(by_events, lambda e: (isinstance(
                    e, MessageAccepted) and e.id == message_id) or (isinstance(
                    e, ReceiptStored) and e.ref == message_id))
                if isinstance(event, MessageAccepted):
                    accepted.add(event.relay)
                else:
                    assert isinstance(event, ReceiptStored)
                    assert event.stage is Stage.DELIVERED
                    stored = True
            shown = await next_event(lt_events, lambda e: isinstance(
                e, MessageReceived) and e.body.id == message_id)
            assert isinstance(shown, MessageReceived)
            arrivals: set[tuple[str, bool]] = set()
            while len(arrivals) < 2:
                event = await next_event(lt_events, lambda e: isinstance(
                    e, PathArrived | MessageReceived) and _about(e, message_id))
                assert isinstance(event, PathArrived), "the message was shown twice"
                arrivals.add((event.relay, event.first))
            assert arrivals == {(shown.relay, True), (_other(shown.relay), False)}
            assert shown.body.cps is not None
            assert {c.relay for c in shown.body.cps} == set(RELAYS)
            inbox = await lt.journal.call(lambda j: j.reads.inbox())
            assert [item.id for item in inbox] == [message_id]
            async with aiohttp.ClientSession() as http:
                headers = await operator_headers(http, eps["LT"].url)
                async with http.get(eps["LT"].url + "/api/links", headers=headers) as response:
                    links = await response.json()
                async with http.get(eps["LT"].url + "/api/checkpoint",
                                    headers=headers) as response:
                    held = (await response.json())["relays"]
            assert set(held) == set(RELAYS)
            assert all(held[r]["size"] > 0 for r in RELAYS)
            assert [r["id"] for r in links["relays"]] == list(RELAYS)
            assert all(r["connected"] for r in links["relays"])
            rows = {(p["peer"], p["direction"], p["relay"]): p for p in links["paths"]}
            assert rows[("BY", "in", shown.relay)]["first"] == 1
            assert rows[("BY", "in", _other(shown.relay))]["first"] == 0
            assert rows[("BY", "in", _other(shown.relay))]["behind_ms"]["count"] == 1
    finally:
        for r in relays:
            await r.stop()


async def test_losing_one_relay_leaves_the_other_working_and_a_restart_catches_up(
    network_dir: Path, tmp_path: Path
) -> None:
    """With relay osce down a warning still reaches LT over by; osce logs it once it is back."""
    data = tmp_path / "data"
    by_relay = await run_relay(network_dir, data, "by")
    osce = await run_relay(network_dir, data, "osce")
    try:
        async with endpoints(network_dir, data, "BY", "LT") as eps:
            by, lt = eps["BY"].endpoint, eps["LT"].endpoint
            by_events, lt_events = by.hub.subscribe(), lt.hub.subscribe()
            for sub in (by_events, lt_events):
                await next_event(sub, lambda e: isinstance(e, CheckpointWitnessed)
                                    and e.relay == "osce")
            await osce.stop()
            await next_event(by_events, lambda e: isinstance(e, RelayDisconnected)
                                and e.relay == "osce")
            message_id = await by.post_message(_warning("LT"), "duty")
            shown = await next_event(lt_events, lambda e: _about(e, message_id))
            assert isinstance(shown, MessageReceived)
            assert shown.relay == "by"
            assert by.core.pending_on("osce") >= 1  # osce's outbox still holds it
            async with aiohttp.ClientSession() as http, http.get(
                eps["BY"].url + "/healthz"
            ) as response:
                health = await response.json()
            assert health["connected"] is True
            assert health["relays"]["by"]["connected"] is True
            assert health["relays"]["osce"]["connected"] is False
            osce = await run_relay(network_dir, data, "osce")
            accepted = await next_event(by_events, lambda e: isinstance(
                e, MessageAccepted) and e.id == message_id and e.relay == "osce")
            assert isinstance(accepted, MessageAccepted)
            late = await next_event(lt_events, lambda e: _about(e, message_id) and isinstance(
                e, PathArrived) and not e.first)
            assert isinstance(late, PathArrived)
            assert late.relay == "osce"
            inbox = await lt.journal.call(lambda j: j.reads.inbox())
            assert [item.id for item in inbox] == [message_id]
    finally:
        await by_relay.stop()
        await osce.stop()


async def test_a_relay_url_flag_is_refused_for_a_network_of_several_relays(
    network_dir: Path, tmp_path: Path
) -> None:
    """Each relay's url is in network.toml: a --relay-url is refused, not silently dropped."""
    config = EndpointConfig(
        network=load_network(network_dir / NETWORK_FILE), endpoint_id="LT",
        key=load_signing_key(key_path(network_dir, "LT")), data_dir=tmp_path / "LT",
        relay_url="ws://127.0.0.1:1/v1/ws",
    )
    with pytest.raises(ConfigError, match="lists several"):
        await Endpoint.open(config)
    assert not (tmp_path / "LT").exists()


@pytest.mark.slow
async def test_no_channel_alarm_when_the_sender_cannot_reach_a_relay(
    network_dir: Path, tmp_path: Path
) -> None:
    """BY never reaches osce, so osce never logs BY's warning: LT, connected to both and
    answering osce's link tests, shows it once from by and raises nothing past the bound."""
    data = tmp_path / "data"
    relays = [await run_relay(network_dir, data, r) for r in RELAYS]
    whole = load_network(network_dir / NETWORK_FILE)
    cut = replace(whole.relays["osce"], url="ws://127.0.0.1:1/v1/ws")  # BY's way to osce fails
    by_network = replace(whole, relays={**whole.relays, "osce": cut})
    try:
        async with endpoints(network_dir, data, "LT") as eps, serve_endpoint(EndpointConfig(
            network=by_network, endpoint_id="BY", key=load_signing_key(key_path(network_dir, "BY")),
            data_dir=data / "BY", backoff=Backoff(0.05, 0.2), tick_s=0.05, monitor_s=0.1,
        )) as by_running:
            lt = eps["LT"].endpoint
            lt_events = lt.hub.subscribe()
            await next_event(lt_events, lambda e: isinstance(e, CheckpointWitnessed)
                                and e.relay == "osce")
            message_id = await by_running.endpoint.post_message(_warning("LT"), "duty")
            shown = await next_event(lt_events, lambda e: _about(e, message_id))
            assert isinstance(shown, MessageReceived)
            assert shown.relay == "by"
            with pytest.raises(TimeoutError):  # past the 15 s bound: no alarm of any kind
                await next_event(lt_events, lambda e: e.alarm, within_s=18.0)
            assert lt.core.paths["osce"].answering(lt.config.clock())
    finally:
        for r in relays:
            await r.stop()
