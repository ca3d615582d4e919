"""The workload on hotline's high-availability configuration (``system`` = hotline-cluster).

The same round trip as :mod:`peers.hotline_peer`, on two ``hotline relay``
replicas sharing one NATS JetStream stream with three replicas on a
three-node ``nats-server`` cluster (all on loopback): A (BY) is connected to
replica r1 and B (LT) to replica r2, so every warning is published by r1,
stored on a quorum of NATS nodes, followed by r2 and delivered to LT; LT's
receipt takes the same path back. Each run starts two fresh relays on a new,
empty stream. The server CPU charged is both relays' and the three nodes'.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hotline.cluster.natsnodes import LoopbackCluster
from hotline.network_file import load_network
from hotline.testing.ports import free_port
from peers.hotline_peer import HotlinePeer, RelayProcess
from peers.servers import spawn
from peers.workload import AckHandler

__all__ = ["HotlineClusterPeer"]


class HotlineClusterPeer(HotlinePeer):
    """BY on replica r1, LT on replica r2, one stream on a three-node NATS cluster."""

    def __init__(self, config: Path, scratch: Path) -> None:
        super().__init__(config, scratch)
        self.name = "hotline-cluster"
        self.nats = LoopbackCluster(scratch / "nats")
        self.second: RelayProcess | None = None

    @property
    def server_pids(self) -> tuple[int, ...]:
        assert self.relay is not None
        assert self.second is not None
        nodes = tuple(n.process.pid for n in self.nats.nodes if n.process is not None)
        return (self.relay.server.pid, self.second.server.pid, *nodes)

    async def connect(self, on_ack: AckHandler) -> None:
        await asyncio.to_thread(self.nats.start)
        await super().connect(on_ack)

    async def fresh(self) -> None:
        """Stop both relays; start two new ones on a new, empty stream; reconnect."""
        await self._disconnect()
        for relay in (self.relay, self.second):
            if relay is not None:
                await asyncio.to_thread(relay.server.stop)
        self._runs += 1
        run = self._scratch / f"run-{self._runs}"
        run.mkdir(parents=True)
        store = run / "store.toml"
        servers = ", ".join(f'"{url}"' for url in self.nats.urls)
        store.write_text(f'[store]\nkind = "nats"\nservers = [{servers}]\nreplicas = 3\n'
                         f'stream = "BENCH{self._runs}"\nsubject = "bench{self._runs}.log"\n')
        self.relay = await asyncio.to_thread(self._start, run, "r1", store)
        self.second = await asyncio.to_thread(self._start, run, "r2", store)
        assert self._on_ack is not None
        await self._connect(self._on_ack)

    def _start(self, run: Path, name: str, store: Path) -> RelayProcess:
        port = free_port()
        state = run / f"process-{name}"
        state.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "hotline", "relay", "--network", str(self._config),
                "--data", str(run / f"log-{name}"), "--port", str(port),
                "--store", str(store), "--replica-name", name]
        server = spawn(f"hotline relay {name}", argv, port, state, 60.0)
        return RelayProcess(server, self._config, load_network(self._config))

    async def _connect(self, on_ack: AckHandler) -> None:
        """BY to r1, LT to r2: every message crosses from one replica to the other."""
        assert self.relay is not None
        assert self.second is not None
        if self._by is None or self._lt is None:
            self._by, self._lt = self.relay.client("BY"), self.second.client("LT")
        self._by.url, self._lt.url = self.relay.url, self.second.url
        for client in (self._by, self._lt):
            await client.connect()
        self._readers = [
            asyncio.create_task(self._read(self._by, on_ack), name="bench-by"),
            asyncio.create_task(self._read(self._lt, on_ack), name="bench-lt"),
        ]

    async def close(self) -> None:
        await super().close()
        if self.second is not None:
            await asyncio.to_thread(self.second.server.stop)
        await asyncio.to_thread(self.nats.stop)
