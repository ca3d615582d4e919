"""``make cluster-demo``: the demo scenario on relay replicas sharing a NATS JetStream cluster.

    python -m hotline.cluster.demo [--data DIR] [--base-port 8700] [--duration S]

Three ``nats-server`` nodes on loopback (each with its own ports and state
directory under ``DIR/nats``), two ``hotline relay`` replicas on one stream
with three replicas (r1 on the base port, its mirror in ``DIR/relay``; r2 on
the base port + 6, its mirror in ``DIR/relay-r2``) and BY, LT, LV, EE, PL on
the next five ports, each configured with both relay URLs (BY, LV and PL try
r1 first, LT and EE r2). The scenario is the one ``hotline demo`` plays.
It prints which replica each endpoint is connected to once all are, and at
the end the per-link report recomputed from r1's mirror (r2 is stopped first,
so r1's mirror ends with the whole stream).

Every run starts afresh: ``DIR`` is emptied first (a new network, new keys,
a new stream), since endpoints remember the checkpoints of the log they
witnessed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import aiohttp

from hotline.cli.demo_cmd import report_from_log
from hotline.cluster.natsnodes import LoopbackCluster
from hotline.demo.runner import Demo, DemoResult, _Process, run_until_stopped
from hotline.demo.scenario import Scenario, builtin_scenario, load_scenario, scaled
from hotline.errors import HotlineError
from hotline.logs import configure_logging
from hotline.testing.ports import reserve

__all__ = ["ClusterDemo", "main"]

REPLICA_OFFSET: Final = 6  # r2's port: after the five endpoints'
FIRST_CHOICE: Final = {"BY": "r1", "LT": "r2", "LV": "r1", "EE": "r2", "PL": "r1"}
PLACED_TIMEOUT_S: Final = 30.0


class ClusterDemo(Demo):
    """The demo with two relay replicas on a three-node NATS cluster."""

    def __init__(self, data: Path, base_port: int, scenario: Scenario) -> None:
        super().__init__(data, base_port, scenario)
        # The NATS nodes' ports are drawn at random: keep them off r1, the endpoints and r2.
        reserve(range(base_port, base_port + REPLICA_OFFSET + 1))
        self.nats = LoopbackCluster(data / "nats")
        store = data / "store.toml"
        servers = ", ".join(f'"{url}"' for url in self.nats.urls)
        store.write_text(f'[store]\nkind = "nats"\nservers = [{servers}]\nreplicas = 3\n',
                         encoding="utf-8")
        host = self.host
        ports = {"r1": base_port, "r2": base_port + REPLICA_OFFSET}
        self.replica_http = {name: f"http://{host}:{port}" for name, port in ports.items()}
        ws = {name: f"ws://{host}:{port}/v1/ws" for name, port in ports.items()}
        dirs = {"r1": data / "relay", "r2": data / "relay-r2"}
        self.replicas = {
            name: _Process(
                f"relay {name}",
                ["relay", "--network", str(data), "--data", str(dirs[name]), "--host", host,
                 "--port", str(port), "--store", str(store), "--replica-name", name],
                data / "logs" / f"relay-{name}.log",
            )
            for name, port in ports.items()
        }
        self.relay = self.replicas["r1"]
        for party, process in self.endpoints.items():
            first = FIRST_CHOICE.get(party, "r1")
            order = [first, *(n for n in ws if n != first)]
            at = process.args.index("--relay-url")
            del process.args[at:at + 2]
            process.args += [arg for name in order for arg in ("--relay-url", ws[name])]
        self.placement: dict[str, str] = {}

    async def run(self, duration_s: float | None) -> DemoResult:
        self.run_forever = duration_s is None
        await asyncio.to_thread(self.nats.start)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                try:
                    for name, process in self.replicas.items():  # r1 creates the stream
                        await process.start()
                        await self._ready(session, self.replica_http[name], process)
                    await asyncio.gather(
                        *(self._start_endpoint(session, e) for e in self.endpoints)
                    )
                    await self._show_placement(session)
                    await self._play_with_officers(session, duration_s)
                finally:
                    # The replicas first, so the endpoints' own shutdown fails no link test.
                    await self.replicas["r2"].stop()
                    await self.replicas["r1"].stop()
                    await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        finally:
            await asyncio.to_thread(self.nats.stop)
        return self.result

    async def _show_placement(self, session: aiohttp.ClientSession) -> None:
        """Print which replica each endpoint uses, once every endpoint is connected."""
        deadline = time.monotonic() + PLACED_TIMEOUT_S
        while True:
            placement: dict[str, str] = {}
            for name, url in self.replica_http.items():
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                    async with session.get(url + "/healthz") as response:
                        for party in (await response.json())["online"]:
                            placement[party] = name
            if set(placement) >= set(self.endpoints) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        self.placement = placement
        for party in self.endpoints:
            replica = placement.get(party)
            where = f"{replica} ({self.replica_http[replica]})" if replica else "not connected"
            sys.stdout.write(f"  {party:<9} uses relay replica {where}\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.cluster.demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("cluster-demo-data"))
    parser.add_argument("--base-port", type=int, default=8700,
                        help="replica r1's port; endpoints take the next five, r2 the sixth")
    parser.add_argument("--duration", type=float,
                        help="compress the scenario into this many seconds and stop "
                             "(default: play it, then run until Ctrl-C)")
    parser.add_argument("--scenario", type=Path, help="a scenario JSON file (default: built in)")
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)
    shutil.rmtree(args.data, ignore_errors=True)
    args.data.mkdir(parents=True)
    scenario = builtin_scenario() if args.scenario is None else load_scenario(args.scenario)
    if args.duration is not None:
        scenario = scaled(scenario, args.duration * 0.75)
    demo = ClusterDemo(args.data, args.base_port, scenario)
    out = sys.stdout
    out.write(f"hotline cluster demo: {scenario.name}\n")
    for node in demo.nats.nodes:
        out.write(f"  nats {node.name}   {node.url}  (state {node.directory})\n")
    for name, url in demo.replica_http.items():
        out.write(f"  relay {name}  {url}\n")
    for party, port in demo.ports.items():
        out.write(f"  {party:<9} http://127.0.0.1:{port}/\n")
    out.flush()
    try:
        result = asyncio.run(run_until_stopped(demo, args.duration))
    except HotlineError as exc:
        sys.stderr.write(exc.describe() + "\n")
        return 1
    out.write("\n" + report_from_log(args.data, demo.network) + "\n\n")
    out.write(f"messages sent {result.sent}, acknowledged by officers {result.acknowledged}\n")
    for path, status in result.checks.items():
        out.write(f"  relay {path}: {status}\n")
    for failure in result.failures:
        out.write(f"  failed: {failure}\n")
    out.write(f"log: {args.data / 'relay'}  (hotline audit export {args.data / 'relay'} "
              "--out BUNDLE)\n")
    return 0 if result.ok else 1



if __name__ == "__main__":
    sys.exit(main())
