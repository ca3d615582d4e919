"""``make failover``: kill NATS nodes and relay replicas under load, then count what was lost.

Real processes on 127.0.0.1, a fresh network in a temporary directory: three
``nats-server`` nodes clustered with JetStream (the log's stream has 3
replicas), two ``hotline relay`` replicas sharing it, and BY, LT, LV, EE, PL,
each configured with both relay URLs (BY, LV and PL try replica r1 first, LT
and EE r2). About 10 messages a second go between random linked endpoints
through their local APIs, and simulated officers acknowledge some.

Each round SIGKILLs one NATS node (chosen at random), restarts it after
``--down`` seconds, then SIGKILLs one relay replica (r1 and r2 in turn) and
restarts it likewise. For every relay kill it measures how long until every
endpoint is connected to the surviving replica; for every kill, how many
messages the endpoints accepted (202) while the process was down.

Afterwards the load stops, delivery settles, every process is stopped (r2
before r1, so r1's mirror ends with the whole stream), and the harness checks
what ``make faults`` checks: every 202 was accepted and logged at the index of
its signed receipt, reached each recipient's inbox exactly once, no id is
logged twice, every witnessed checkpoint was consistent, and the exported log
verifies; and that the two replicas' mirrors are one history. The last line
printed is ``failover: nats_kills=N relay_kills=R accepted=A lost=L duplicates=D``;
the exit status is non-zero when anything was lost or duplicated, the log did
not verify, or a checkpoint was inconsistent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from faults.check import JournalView, missing, read_journals, read_log
from faults.load import Load, LoadStats
from faults.procs import Proc, run_in_directory, settle_journals
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.log import STORE_DIR
from hotline.bootstrap import NETWORK_FILE, create_network
from hotline.cluster.natsnodes import LoopbackCluster
from hotline.logs import configure_logging
from hotline.testing.operators import LoggedIn, add_operator
from hotline.testing.ports import free_port

ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
REPLICAS: Final = ("r1", "r2")
FIRST_CHOICE: Final = {"BY": "r1", "LT": "r2", "LV": "r1", "EE": "r2", "PL": "r1"}
SETTLE_TIMEOUT_S: Final = 120.0
FAILOVER_TIMEOUT_S: Final = 30.0


def _say(text: str) -> None:
    print(f"failover: {text}", file=sys.stderr, flush=True)  # noqa: T201 - a command's progress


def _lift_rate_limit(network_dir: Path) -> None:
    path = network_dir / NETWORK_FILE
    text, count = re.subn(r"(?m)^messages_per_minute = \d+$", "messages_per_minute = 100000",
                          path.read_text(encoding="utf-8"))
    if count != 1:
        raise RuntimeError(f"no messages_per_minute line in {path}")
    path.write_text(text, encoding="utf-8")


@dataclass
class Figures:
    """What the kills cost: failover times and messages accepted while something was down."""

    relay_failover_s: list[float] = field(default_factory=list)
    sent_while_nats_down: list[int] = field(default_factory=list)
    sent_while_relay_down: list[int] = field(default_factory=list)


class HaNetwork:
    """The NATS cluster, the relay replicas and the endpoints of one run, as processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nats = LoopbackCluster(root / "nats")
        self.relay_ports = {name: free_port() for name in REPLICAS}
        self.ws = {n: f"ws://127.0.0.1:{p}/v1/ws" for n, p in self.relay_ports.items()}
        self.http = {n: f"http://127.0.0.1:{p}" for n, p in self.relay_ports.items()}
        self.network = create_network(root, relay_url=self.ws["r1"])
        _lift_rate_limit(root)
        store = root / "store.toml"
        servers = ", ".join(f'"{url}"' for url in self.nats.urls)
        store.write_text(f'[store]\nkind = "nats"\nservers = [{servers}]\nreplicas = 3\n',
                         encoding="utf-8")
        self.relay_dirs = {name: root / "relays" / name for name in REPLICAS}
        self.relays = {
            name: Proc(
                f"relay {name}",
                ["relay", "--network", str(root), "--data", str(self.relay_dirs[name]),
                 "--host", "127.0.0.1", "--port", str(port), "--store", str(store),
                 "--replica-name", name],
                self.http[name] + "/healthz", root / "logs" / f"relay-{name}.log",
            )
            for name, port in self.relay_ports.items()
        }
        self.data_dirs = {e: root / "endpoints" / e for e in ENDPOINTS}
        for data in self.data_dirs.values():
            add_operator(data)  # the harness logs in as this officer (LoggedIn)
        self.urls: dict[str, str] = {}
        self.endpoints: dict[str, Proc] = {}
        for party in ENDPOINTS:
            port = free_port()
            self.urls[party] = f"http://127.0.0.1:{port}"
            first = FIRST_CHOICE[party]
            order = [first, *(n for n in REPLICAS if n != first)]
            dial = [arg for name in order for arg in ("--relay-url", self.ws[name])]
            self.endpoints[party] = Proc(
                party,
                ["endpoint", "--network", str(root), "--id", party,
                 "--data", str(self.data_dirs[party]), "--host", "127.0.0.1",
                 "--port", str(port), *dial],
                self.urls[party] + "/healthz", root / "logs" / f"{party}.log",
            )
        self.peers = {
            party: sorted(p for p in ENDPOINTS if p != party and self.network.linked(party, p))
            for party in ENDPOINTS
        }

    async def start(self, session: aiohttp.ClientSession) -> None:
        await asyncio.to_thread(self.nats.start)
        for relay in self.relays.values():  # r1 creates the stream, then r2 follows it
            await relay.start(session)
        await asyncio.gather(*(p.start(session) for p in self.endpoints.values()))

    async def online(self, session: aiohttp.ClientSession, replica: str) -> set[str]:
        """The endpoints connected to ``replica`` (empty if it does not answer)."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            async with session.get(self.http[replica] + "/healthz") as response:
                return set((await response.json())["online"])
        return set()

    async def stop(self) -> None:
        """Endpoints, then r2, then r1 (whose mirror so ends with the whole stream), then NATS."""
        await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        for name in reversed(REPLICAS):
            await self.relays[name].stop()
        await asyncio.to_thread(self.nats.stop)

    async def kill_all(self) -> None:
        await asyncio.gather(*(p.kill() for p in self.endpoints.values()))
        for relay in self.relays.values():
            await relay.kill()
        await asyncio.to_thread(self.nats.stop)


async def _settle(ha: HaNetwork) -> JournalView:
    """Wait (bounded) until every message is accepted and in every recipient's journal."""
    return await settle_journals(ha.data_dirs, SETTLE_TIMEOUT_S)


async def _kill_nats(ha: HaNetwork, load: Load, rng: random.Random, down_s: float,
                     figures: Figures) -> None:
    node = rng.choice(ha.nats.nodes)
    before = load.stats.total_sent
    ha.nats.kill(node)
    _say(f"killed nats-server {node.name}")
    await asyncio.sleep(down_s)
    await asyncio.to_thread(ha.nats.restart, node)
    figures.sent_while_nats_down.append(load.stats.total_sent - before)
    _say(f"restarted nats-server {node.name}")


async def _kill_relay(ha: HaNetwork, session: aiohttp.ClientSession, load: Load, victim: str,
                      *, down_s: float, figures: Figures) -> None:
    survivor = next(n for n in REPLICAS if n != victim)
    before = load.stats.total_sent
    await ha.relays[victim].kill()
    killed = time.monotonic()
    _say(f"killed relay {victim}")
    while set(ENDPOINTS) - await ha.online(session, survivor):
        if time.monotonic() - killed > FAILOVER_TIMEOUT_S:
            _say(f"endpoints did not all reach {survivor} in {FAILOVER_TIMEOUT_S:.0f} s")
            break
        await asyncio.sleep(0.05)
    else:
        figures.relay_failover_s.append(time.monotonic() - killed)
        _say(f"every endpoint on {survivor} {figures.relay_failover_s[-1]:.2f} s after the kill")
    await asyncio.sleep(max(0.0, down_s - (time.monotonic() - killed)))
    await ha.relays[victim].start(session)
    figures.sent_while_relay_down.append(load.stats.total_sent - before)
    _say(f"restarted relay {victim}")


async def _inbox_duplicates(session: aiohttp.ClientSession, ha: HaNetwork) -> int:
    duplicates = 0
    for url in ha.urls.values():
        async with session.get(url + "/api/inbox") as response:
            ids = [m["id"] for m in (await response.json())["messages"]]
        duplicates += len(ids) - len(set(ids))
    return duplicates


def _mirrors_agree(ha: HaNetwork) -> bool:
    """The shorter replica mirror is a prefix of the longer one: one history."""
    entries = []
    for directory in ha.relay_dirs.values():
        with FileStore(directory / STORE_DIR) as store:
            entries.append(store.read_range(0, store.size))
    common = min(len(e) for e in entries)
    return all(e[:common] == entries[0][:common] for e in entries)


async def run(args: argparse.Namespace, root: Path) -> int:
    started = time.monotonic()
    rng = random.Random(args.seed)  # noqa: S311 - seeded on purpose: a run can be repeated
    _say(f"seed={args.seed} rounds={args.rounds} data={root}")
    ha = HaNetwork(root)
    figures = Figures()
    timeout = aiohttp.ClientTimeout(total=10)
    nats_kills = relay_kills = 0
    async with aiohttp.ClientSession(timeout=timeout, middlewares=(LoggedIn(),)) as session:
        try:
            await ha.start(session)
            load = Load(ha.urls, ha.peers, args.rate, random.Random(rng.random()),  # noqa: S311
                        lambda _: True)
            load.start(session)
            try:
                for number in range(args.rounds):
                    await asyncio.sleep(args.gap)
                    await _kill_nats(ha, load, rng, args.down, figures)
                    nats_kills += 1
                    await asyncio.sleep(args.gap)
                    victim = REPLICAS[number % len(REPLICAS)]
                    await _kill_relay(ha, session, load, victim, down_s=args.down,
                                      figures=figures)
                    relay_kills += 1
                await asyncio.sleep(args.gap)
            finally:
                await load.stop()
            stats = load.stats
            _say(f"load stopped: sent={stats.total_sent} not_sent={stats.not_sent} "
                 f"refused={stats.refused} acks={stats.acks}")
            for refusal in stats.refusals[:5]:
                _say(f"refused: {refusal}")
            await _settle(ha)
            api_duplicates = await _inbox_duplicates(session, ha)
            await ha.stop()
        finally:
            await ha.kill_all()
    return _evaluate(ha, stats, api_duplicates=api_duplicates, figures=figures,
                     kills=(nats_kills, relay_kills), started=started)


def _evaluate(
    ha: HaNetwork, stats: LoadStats, *, api_duplicates: int, figures: Figures,
    kills: tuple[int, int], started: float,
) -> int:
    """Read the journals and the exported log; print the figures and the line."""
    nats_kills, relay_kills = kills
    root = ha.root
    log = read_log(ha.relay_dirs["r1"], root, root / "bundle")
    view = read_journals(ha.data_dirs)
    unaccepted, undelivered = missing(view)
    recorded = {i for ids in stats.sent.values() for i in ids}
    lost_at_endpoint = sorted(recorded - set(view.outbox))
    accepted = [m for m in view.outbox.values() if m.accepted_index is not None]
    not_logged = sorted(m.id for m in accepted if log.index_of.get(m.id) != m.accepted_index)
    lost = set(lost_at_endpoint) | set(unaccepted) | set(not_logged) | {i for i, _ in undelivered}
    duplicates = (
        sum(n - 1 for counts in view.inbox.values() for n in counts.values() if n > 1)
        + sum(n - 1 for n in log.message_counts.values() if n > 1)
        + log.duplicate_envelopes
        + api_duplicates
    )
    for what, items in (("202 but not in the sender's journal", lost_at_endpoint),
                        ("never accepted", unaccepted), ("accepted, not in the log", not_logged),
                        ("not in a recipient's inbox", undelivered)):
        if items:
            _say(f"LOST ({what}): {len(items)}, e.g. {list(items)[:3]}")
    checkpoints_ok = view.inconsistent_checkpoints == 0 and view.checkpoint_alarms == 0
    if not checkpoints_ok:
        _say(f"checkpoints: {view.inconsistent_checkpoints} inconsistent, "
             f"{view.checkpoint_alarms} alarms")
    agree = _mirrors_agree(ha)
    if not agree:
        _say("the two replicas' mirrors disagree")
    _say(f"verify={'ok' if log.verify_ok else 'failed'} log entries={log.size} "
         f"seconds={time.monotonic() - started:.0f}")
    if not log.verify_ok:
        _say(f"audit verify failed: {log.verify_output}")
    if figures.relay_failover_s:
        times = figures.relay_failover_s
        _say(f"relay failover: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
             f"over {len(times)} kills; accepted while a replica was down: "
             f"{figures.sent_while_relay_down}; while a NATS node was down: "
             f"{figures.sent_while_nats_down}")
    print(f"failover: nats_kills={nats_kills} relay_kills={relay_kills} "  # noqa: T201
          f"accepted={len(accepted)} lost={len(lost)} duplicates={duplicates}", flush=True)
    failed = lost or duplicates or not log.verify_ok or not checkpoints_ok or not agree
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each round kills one NATS node, then one relay replica")
    parser.add_argument("--down", type=float, default=4.0,
                        help="seconds a killed process stays down")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second, total")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--keep", type=Path, help="keep the run's data in this directory")
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    return run_in_directory(args.keep, "hotline-failover-", lambda root: run(args, root))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
