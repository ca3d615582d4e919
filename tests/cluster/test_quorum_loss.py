"""A quorum loss is visible: the replica answers busy and reports not ready, the endpoint
raises relay_unavailable and keeps its outbox, and all is accepted once the quorum is back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hotline.auditlog.streamconfig import StreamSettings
from hotline.cluster.natsnodes import LoopbackCluster
from hotline.endpoint.events import MessageAccepted, RelayBack, RelayConnected, RelayOutage
from hotline.endpoint.hub import Subscription
from hotline.endpoint.service import EndpointConfig, serve_endpoint
from hotline.protocol.session import RejectedNotice
from hotline.relay.server import start_relay
from tests.cluster.test_replicas import _warning_to
from tests.factories import TestNet
from tests.feeds.helpers import next_event
from tests.relay.client import RawClient
from tests.relay.conftest import Author, relay_config

pytestmark = pytest.mark.slow

TIMEOUT = 30.0



async def _health(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url + "/healthz") as response:
        return response.status


async def _sessions_opened(subscription: Subscription) -> int:
    """How many sessions the events already published on ``subscription`` show opened."""
    opened = 0
    with subscription, contextlib.suppress(TimeoutError):
        while True:
            async with asyncio.timeout(0.05):  # what was published is there already
                opened += isinstance(await subscription.next(), RelayConnected)
    return opened


# nats-py abandons a connect to a hung server without closing its socket (a ResourceWarning
# when that socket is collected); that is the client library's, not ours to assert on.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_quorum_loss_is_busy_alarmed_and_recovered_without_loss(
    net: TestNet, settings: StreamSettings, nats_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """Two of three nodes hung: /healthz 503, relay_unavailable within 5 s of the message,
    the message stays in the outbox, no session is opened while /healthz says 503 (the
    endpoint's session budget is kept); after the thaw it is accepted and the alarm clears."""
    relay = await start_relay(replace(relay_config(net, tmp_path / "r1"), stream=settings,
                                      replica_name="r1"))
    frozen = nats_cluster.nodes[:2]
    try:
        config = EndpointConfig(network=net.network, endpoint_id="BY", key=net.keys["BY"],
                                data_dir=tmp_path / "BY", relay_urls=(relay.ws_url,),
                                tick_s=0.1)
        async with serve_endpoint(config) as by, aiohttp.ClientSession() as http:
            events = by.endpoint.hub.subscribe()
            if not by.endpoint.connected:
                await next_event(events, lambda e: isinstance(e, RelayConnected), TIMEOUT)
            assert await _health(http, relay.http_url) == 200
            sessions = by.endpoint.hub.subscribe()
            for node in frozen:
                nats_cluster.freeze(node)
            sent = await by.endpoint.post_message(_warning_to("LT"))
            queued = time.monotonic()
            outage = await next_event(events, lambda e: isinstance(e, RelayOutage), TIMEOUT)
            assert isinstance(outage, RelayOutage)
            assert time.monotonic() - queued < 5.0
            assert by.endpoint.core.pending_count >= 1  # kept in the outbox
            assert await _health(http, relay.http_url) == 503
            async with RawClient(net, "LT", relay.ws_url) as lt:  # a session all the same
                await lt.send(lt.seal(Author("LT").warning(to=("BY",))))
                refused = await lt.accepted()
                assert isinstance(refused, RejectedNotice)
                assert refused.code == "busy"
                assert refused.frame  # relay-signed
            assert await _sessions_opened(sessions) <= 1  # at 0.5 s each, 4 s would take 8
            for node in frozen:
                nats_cluster.thaw(node)
            accepted = await next_event(
                events, lambda e: isinstance(e, MessageAccepted) and e.id == sent, TIMEOUT)
            assert isinstance(accepted, MessageAccepted)
            back = await next_event(events, lambda e: isinstance(e, RelayBack), TIMEOUT)
            assert isinstance(back, RelayBack)
            for _ in range(50):
                if await _health(http, relay.http_url) == 200:
                    break
                await asyncio.sleep(0.1)
            assert await _health(http, relay.http_url) == 200
    finally:
        for node in frozen:
            nats_cluster.thaw(node)
        await relay.stop()
