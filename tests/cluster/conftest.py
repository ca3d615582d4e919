"""A real three-node ``nats-server`` cluster on loopback ports, shared by the cluster tests.

Each node has a throw-away state directory; the cluster is stopped (by PID)
when the session ends. Without ``nats-server`` these tests are skipped; CI
installs it (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.auditlog.natsstore import StreamClient, StreamSettings
from hotline.cluster.natsnodes import LoopbackCluster, find_nats_server
from tests.factories import TestNet, make_network
from tests.relay.conftest import LINKS

_streams = itertools.count()


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """Three clustered nats-server nodes with JetStream, ready for R3 streams."""
    if find_nats_server() is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    cluster = LoopbackCluster(Path(tmp_path_factory.mktemp("nats")))
    cluster.start()
    try:
        # Creating (and deleting) one R3 stream waits out the cluster's first leader election.
        settings = fresh_settings(cluster)
        asyncio.run(_warm_up(settings))
        yield cluster
    finally:
        cluster.stop()


async def _warm_up(settings: StreamSettings) -> None:
    client = StreamClient(settings)
    await client.connect()
    try:
        await client.ensure_stream()
        await client.delete_stream()
    finally:
        await client.close()


def fresh_settings(cluster: LoopbackCluster, **overrides: object) -> StreamSettings:
    """Settings for a stream no test has used yet."""
    number = next(_streams)
    values: dict[str, object] = {
        "servers": tuple(cluster.urls),
        "stream": f"T{number}",
        "subject": f"t{number}.log",
        "replicas": 3,
    }
    values.update(overrides)
    return StreamSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def net() -> TestNet:
    """The network the replica tests run: the relay tests' parties and links."""
    return make_network(links=LINKS)


@pytest.fixture
def settings(nats_cluster: LoopbackCluster) -> StreamSettings:
    """A stream of its own on the shared cluster."""
    return fresh_settings(nats_cluster)
