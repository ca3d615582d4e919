"""The workload on the floor relay (``peers.floor_relay``): hotline's clients, another relay.

BY and LT are :class:`peers.hotline_peer.HotlinePeer`'s clients and do
exactly what they do against hotline (BY signs each warning; LT verifies it
and answers a signed ``delivered`` receipt; BY verifies that), so the only
difference between the ``hotline`` and ``floor`` rows is the relay. The one
change is the greeting: the floor relay has no challenge/response, and a
client names its party in its first (text) frame instead.

The floor relay is started afresh for every run, as hotline's is: it keeps
every message's sender by id and appends every frame to its file, and
neither should grow from one run to the next.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from relay import Client

from hotline.network_file import load_network
from hotline.testing.ports import free_port
from peers.hotline_peer import HotlinePeer, RelayProcess
from peers.servers import START_TIMEOUT_S, spawn

__all__ = ["FLOOR_RELAY", "FloorClient", "floor_peer", "start_floor_relay"]

FLOOR_RELAY: Final = Path(__file__).resolve().parent / "floor_relay.py"


class FloorClient(Client):
    """A minimal endpoint that greets the floor relay by naming its party."""

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url, max_msg_size=1 << 20)
        await self.ws.send_str(self.party)


def start_floor_relay(config: Path, data: Path, state: Path, port: int | None = None,
                      timeout_s: float = START_TIMEOUT_S) -> RelayProcess:
    """The floor relay for the network in ``config``, its file in ``data``, on loopback.

    ``state`` receives the process's output (``server.log``). Returns once it listens.
    """
    port = port or free_port()
    state.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(FLOOR_RELAY), "--network", str(config), "--data", str(data),
            "--port", str(port)]
    server = spawn("floor relay", argv, port, state, timeout_s)
    return RelayProcess(server, config, load_network(config), FloorClient)


def floor_peer(config: Path, scratch: Path) -> HotlinePeer:
    """BY and LT, as on hotline, on a floor relay started afresh for every run."""
    return HotlinePeer(config, scratch, name="floor", start=start_floor_relay)
