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

Then the hangs, each for ``--freeze`` seconds (SIGSTOP, then SIGCONT), which is
what a partition, a stuck disk or a paused VM look like: the stream's leader
node; a node that is not the leader and that a relay replica is connected to;
relay replica r1 (how long until every endpoint is on r2, how long until the
endpoints that prefer r1 are back on it, and whether both replicas'
``/v1/links`` show every endpoint connected afterwards); and two of the three
nodes at once, a quorum loss (nothing can be logged; the endpoints must be
told ``busy`` and raise ``relay_unavailable``).

All along, every endpoint's event stream is followed (``faults.stalls``): a
stall is a time an endpoint had messages waiting and none accepted.
``max_stall_s`` is the longest, outside the quorum-loss windows and the
leaderless windows (from a kill or freeze of the stream's leader until another
node leads it: JetStream elects after its raft election timeout, 4 to 9 s, and
stores nothing meanwhile; the endpoints are told ``busy`` there too). A
window ends at the election time the new leader's own advisory reports
(``faults.leaders``), not when the harness happened to notice it;
``silent_stalls`` counts stalls longer than 5 s during which the endpoint
raised no ``relay_unavailable``.

Afterwards the load stops, delivery settles, every process is stopped (r2
before r1, so r1's mirror ends with the whole stream), and the harness checks
what ``make faults`` checks: every 202 was accepted and logged at the index of
its signed receipt, reached each recipient's inbox exactly once, no id is
logged twice, every witnessed checkpoint was consistent, and the exported log
verifies; and that the two replicas' mirrors are one history. The last line
printed is ``failover: nats_kills=N relay_kills=R nats_freezes=F relay_freezes=G
quorum_losses=Q accepted=A lost=L duplicates=D max_stall_s=S silent_stalls=Z``;
the exit status is non-zero when anything was lost or duplicated, the log did
not verify, a checkpoint was inconsistent, a stall was silent, ``max_stall_s``
exceeded ``--max-stall``, or a replica's ``/v1/links`` showed a connected
endpoint as disconnected after the relay thawed.
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
import nats.errors
import nats.js.errors

from faults.check import JournalView, missing, read_journals, read_log
from faults.leaders import LeaderWatch
from faults.load import Load, LoadStats
from faults.procs import Proc, run_in_directory, settle_journals
from faults.stalls import StallWatch, summarise
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.log import STORE_DIR
from hotline.auditlog.natsstore import StreamClient, StreamSettings
from hotline.bootstrap import NETWORK_FILE, create_network
from hotline.cluster.natsnodes import LoopbackCluster, NatsNode
from hotline.errors import StoreError
from hotline.logs import configure_logging
from hotline.testing.operators import LoggedIn, add_operator
from hotline.testing.ports import free_port

_NATS_QUERY_ERRORS: Final = (nats.errors.Error, nats.js.errors.Error, OSError)

ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
REPLICAS: Final = ("r1", "r2")
FIRST_CHOICE: Final = {"BY": "r1", "LT": "r2", "LV": "r1", "EE": "r2", "PL": "r1"}
SETTLE_TIMEOUT_S: Final = 120.0
FAILOVER_TIMEOUT_S: Final = 30.0
LINKS_TIMEOUT_S: Final = 10.0
STALLS_SHOWN: Final = 6


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_began: list[float] = []  # the run's start (monotonic), for the times in the progress lines


def _say(text: str) -> None:
    at = f"[{time.monotonic() - _began[0]:6.1f} s] " if _began else ""
    print(f"failover: {at}{text}", file=sys.stderr, flush=True)  # noqa: T201 - progress


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
    hung_relay_left_s: list[float] = field(default_factory=list)  # until all on the other
    spread_back_s: list[float] = field(default_factory=list)  # after the thaw
    links_ok: list[bool] = field(default_factory=list)  # /v1/links after a relay thaw
    leader_elected_s: list[float] = field(default_factory=list)  # after the leader froze
    quorum_windows: list[tuple[int, int]] = field(default_factory=list)  # wall ms
    # from a kill or freeze of the stream leader until another node leads (wall ms): the
    # stream can store nothing meanwhile, as in a quorum loss
    leaderless: list[tuple[int, int]] = field(default_factory=list)
    elections: LeaderWatch | None = None  # the stream's leader-elected advisories
    freezes: dict[str, int] = field(default_factory=lambda: {"nats": 0, "relay": 0, "quorum": 0})


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

    async def health(self, session: aiohttp.ClientSession, replica: str) -> dict[str, object]:
        """The replica's /healthz body ({} if it does not answer)."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            timeout = aiohttp.ClientTimeout(total=2)
            async with session.get(self.http[replica] + "/healthz", timeout=timeout) as answer:
                body = await answer.json()
                return body if isinstance(body, dict) else {}
        return {}

    async def links_connected(self, session: aiohttp.ClientSession, replica: str) -> set[str]:
        """The endpoints the replica's /v1/links shows as connected."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            async with session.get(self.http[replica] + "/v1/links") as answer:
                hops = (await answer.json())["hops"]
                return {hop["endpoint"] for hop in hops if hop.get("connected")}
        return set()

    def node_on_port(self, port: int) -> NatsNode | None:
        return next((n for n in self.nats.nodes if n.port == port), None)

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


async def _kill_nats(ha: HaNetwork, client: StreamClient, load: Load, rng: random.Random, *,
                     down_s: float, figures: Figures) -> None:
    node = rng.choice(ha.nats.nodes)
    before = load.stats.total_sent
    leader = await _stream_leader(client)
    began = _now_ms()
    ha.nats.kill(node)
    _say(f"killed nats-server {node.name}{' (the stream leader)' if leader == node.name else ''}")
    if leader == node.name:
        await _leaderless(client, node.name, began, figures)
    await asyncio.sleep(max(0.0, down_s - (_now_ms() - began) / 1000))
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


async def _stream_leader(client: StreamClient) -> str | None:
    """The name of the node leading the log's stream (None while there is none)."""
    with contextlib.suppress(StoreError, TimeoutError, *_NATS_QUERY_ERRORS):
        async with asyncio.timeout(1.5):
            info = await client.js.stream_info(client.settings.stream)
        cluster = info.cluster
        return None if cluster is None else cluster.leader
    return None


async def _wait_leader(client: StreamClient, other_than: str, timeout_s: float) -> float | None:
    """Seconds until a node other than ``other_than`` leads the stream (None: not in time)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        leader = await _stream_leader(client)
        if leader is not None and leader != other_than:
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    return None


async def _leaderless(client: StreamClient, gone: str, began_ms: int, figures: Figures) -> None:
    """Record the window until a node other than ``gone`` leads the stream.

    It ends at the election JetStream's own advisory reports; only without one, at the
    time the harness saw the new leader in ``stream_info``.
    """
    elected = await _wait_leader(client, gone, FAILOVER_TIMEOUT_S)
    if elected is None:
        return
    noticed = _now_ms()
    advised = _advised(figures, gone, began_ms, noticed)
    end = noticed if advised is None else advised
    figures.leader_elected_s.append((end - began_ms) / 1000)
    figures.leaderless.append((began_ms, end))
    source = ("its advisory" if advised is not None
              else "seen in stream_info, no advisory arrived")
    _say(f"new stream leader {figures.leader_elected_s[-1]:.2f} s after {gone} went "
         f"({source}; noticed {(noticed - began_ms) / 1000:.2f} s after)")


def _advised(figures: Figures, other_than: str, after_ms: int, noticed_ms: int) -> int | None:
    """The election time of a leader other than ``other_than`` (advisories may lag a little)."""
    if figures.elections is None:
        return None
    return figures.elections.elected(other_than, after_ms, noticed_ms + 1000)


async def _freeze_leader(ha: HaNetwork, client: StreamClient, freeze_s: float,
                         figures: Figures) -> None:
    leader = await _stream_leader(client)
    node = next((n for n in ha.nats.nodes if n.name == leader), None)
    if node is None:
        _say("no stream leader found: leader freeze skipped")
        return
    began = _now_ms()
    ha.nats.freeze(node)
    frozen = time.monotonic()
    _say(f"froze nats-server {node.name} (the stream leader)")
    await _leaderless(client, node.name, began, figures)
    await asyncio.sleep(max(0.0, freeze_s - (time.monotonic() - frozen)))
    ha.nats.thaw(node)
    figures.freezes["nats"] += 1
    _say(f"thawed nats-server {node.name}")


async def _freeze_follower(ha: HaNetwork, session: aiohttp.ClientSession,
                           client: StreamClient, freeze_s: float, figures: Figures) -> None:
    """Freeze a node that does not lead the stream and that a replica is connected to."""
    leader = await _stream_leader(client)
    used: list[NatsNode] = []
    for replica in REPLICAS:
        server = str((await ha.health(session, replica)).get("nats_server", ""))
        port = server.rpartition(":")[2]
        node = ha.node_on_port(int(port)) if port.isdigit() else None
        if node is not None and node.name != leader and node not in used:
            used.append(node)
    what = "not the leader; a replica's node"
    if not used:
        what = "not the leader; every replica was on the leader"
        used = [n for n in ha.nats.nodes if n.name != leader]
    node = used[0]
    ha.nats.freeze(node)
    _say(f"froze nats-server {node.name} ({what})")
    await asyncio.sleep(freeze_s)
    ha.nats.thaw(node)
    figures.freezes["nats"] += 1
    _say(f"thawed nats-server {node.name}")


async def _wait_home(ha: HaNetwork, session: aiohttp.ClientSession, replica: str) -> float | None:
    """Seconds until the endpoints that prefer ``replica`` are on it (None: not in time)."""
    began = time.monotonic()
    home = {e for e, first in FIRST_CHOICE.items() if first == replica}
    while home - await ha.online(session, replica):
        if time.monotonic() - began > FAILOVER_TIMEOUT_S:
            _say(f"{', '.join(sorted(home))} did not return to {replica}")
            return None
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def _freeze_relay(ha: HaNetwork, session: aiohttp.ClientSession, victim: str,
                        freeze_s: float, figures: Figures) -> None:
    survivor = next(n for n in REPLICAS if n != victim)
    await _wait_home(ha, session, victim)  # so that the freeze strands someone
    ha.relays[victim].freeze()
    frozen = time.monotonic()
    _say(f"froze relay {victim}")
    while set(ENDPOINTS) - await ha.online(session, survivor):
        if time.monotonic() - frozen > freeze_s + FAILOVER_TIMEOUT_S:
            _say(f"endpoints did not all leave the hung {victim}")
            break
        await asyncio.sleep(0.05)
    else:
        figures.hung_relay_left_s.append(time.monotonic() - frozen)
        _say(f"every endpoint on {survivor} {figures.hung_relay_left_s[-1]:.2f} s "
             f"after {victim} hung")
    await asyncio.sleep(max(0.0, freeze_s - (time.monotonic() - frozen)))
    ha.relays[victim].thaw()
    figures.freezes["relay"] += 1
    _say(f"thawed relay {victim}")
    back = await _wait_home(ha, session, victim)
    if back is not None:
        figures.spread_back_s.append(back)
        _say(f"the endpoints that prefer {victim} are back on it {back:.2f} s after the thaw")
    await _check_links(ha, session, figures)


async def _check_links(ha: HaNetwork, session: aiohttp.ClientSession, figures: Figures) -> None:
    """Both replicas' /v1/links show every endpoint connected (bounded wait)."""
    began = time.monotonic()
    while True:
        shown = {r: await ha.links_connected(session, r) for r in REPLICAS}
        if all(s == set(ENDPOINTS) for s in shown.values()):
            figures.links_ok.append(True)
            _say(f"/v1/links of both replicas: every endpoint connected "
                 f"({time.monotonic() - began:.1f} s)")
            return
        if time.monotonic() - began > LINKS_TIMEOUT_S:
            figures.links_ok.append(False)
            _say("/v1/links shows connected endpoints as disconnected: "
                 + "; ".join(f"{r}: {sorted(set(ENDPOINTS) - s)}" for r, s in shown.items()))
            return
        await asyncio.sleep(0.25)


async def _lose_quorum(ha: HaNetwork, client: StreamClient, freeze_s: float,
                       figures: Figures) -> None:
    """Freeze two of the three nodes; the window lasts until the stream has a leader again."""
    nodes = ha.nats.nodes[:2]
    began = _now_ms()
    for node in nodes:
        ha.nats.freeze(node)
    _say(f"froze nats-server {' and '.join(n.name for n in nodes)}: the quorum is lost")
    await asyncio.sleep(freeze_s)
    for node in nodes:
        ha.nats.thaw(node)
    thawed = time.monotonic()
    thawed_ms = _now_ms()
    elected = await _wait_leader(client, "", FAILOVER_TIMEOUT_S)
    noticed = _now_ms()
    # An election after the thaw ends the window when it happened; without one (the
    # leader kept its place) the quorum is back once the thawed nodes answer: when
    # stream_info found the leader again.
    advised = _advised(figures, "", thawed_ms, noticed)
    end = noticed if advised is None else advised
    figures.quorum_windows.append((began, end))
    figures.freezes["quorum"] += 1
    _say(f"thawed them; the stream has a leader {time.monotonic() - thawed:.2f} s later"
         + (f" (elected {(advised - thawed_ms) / 1000:.2f} s after the thaw, its advisory)"
            if advised is not None else "")
         if elected is not None else "thawed them; the stream has no leader yet")


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


async def _faults(
    ha: HaNetwork, session: aiohttp.ClientSession, client: StreamClient, load: Load, *,
    rng: random.Random, args: argparse.Namespace, figures: Figures,
) -> tuple[int, int]:
    """The kills, then the hangs; (NATS kills, relay kills)."""
    nats_kills = relay_kills = 0
    for number in range(args.rounds):
        await asyncio.sleep(args.gap)
        await _kill_nats(ha, client, load, rng, down_s=args.down, figures=figures)
        nats_kills += 1
        await asyncio.sleep(args.gap)
        victim = REPLICAS[number % len(REPLICAS)]
        await _kill_relay(ha, session, load, victim, down_s=args.down, figures=figures)
        relay_kills += 1
    if args.freeze > 0:
        await asyncio.sleep(args.gap)
        await _freeze_leader(ha, client, args.freeze, figures)
        await asyncio.sleep(args.gap)
        await _freeze_follower(ha, session, client, args.freeze, figures)
        await asyncio.sleep(args.gap)
        await _freeze_relay(ha, session, "r1", args.freeze, figures)
        await asyncio.sleep(args.gap)
        await _lose_quorum(ha, client, args.freeze, figures)
    await asyncio.sleep(args.gap)
    return nats_kills, relay_kills


async def run(args: argparse.Namespace, root: Path) -> int:
    started = time.monotonic()
    started_ms = _now_ms()
    _began[:] = [started]
    rng = random.Random(args.seed)  # noqa: S311 - seeded on purpose: a run can be repeated
    _say(f"seed={args.seed} rounds={args.rounds} data={root}")
    ha = HaNetwork(root)
    figures = Figures()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, middlewares=(LoggedIn(),)) as session:
        try:
            await ha.start(session)
            watch = StallWatch(ha.urls)
            watch.start(session)
            client = StreamClient(StreamSettings(tuple(ha.nats.urls)), name="failover-harness")
            await client.connect()
            figures.elections = LeaderWatch(ha.nats.urls, client.settings.stream)
            await figures.elections.start()
            load = Load(ha.urls, ha.peers, args.rate, random.Random(rng.random()),  # noqa: S311
                        lambda _: True)
            load.start(session)
            try:
                nats_kills, relay_kills = await _faults(ha, session, client, load, rng=rng,
                                                        args=args, figures=figures)
            finally:
                await load.stop()
                await client.close()
                await figures.elections.stop()
            stats = load.stats
            _say(f"load stopped: sent={stats.total_sent} not_sent={stats.not_sent} "
                 f"refused={stats.refused} acks={stats.acks}")
            for refusal in stats.refusals[:5]:
                _say(f"refused: {refusal}")
            await _settle(ha)
            await watch.stop()
            api_duplicates = await _inbox_duplicates(session, ha)
            await ha.stop()
        finally:
            await ha.kill_all()
    return _evaluate(ha, stats, api_duplicates=api_duplicates, figures=figures,
                     kills=(nats_kills, relay_kills), started=started,
                     stall=_stalls(watch, figures, started_ms), max_stall_s=args.max_stall)


def _stalls(watch: StallWatch, figures: Figures, started_ms: int) -> tuple[float, int]:
    """(max_stall_s, silent_stalls); the windows and the longest stalls are printed."""
    excluded = [*figures.quorum_windows, *figures.leaderless]

    def at(ms: int) -> str:
        return f"{(ms - started_ms) / 1000:.1f}"

    for what, windows in (("quorum-loss", figures.quorum_windows),
                          ("leaderless", figures.leaderless)):
        for start, end in windows:
            _say(f"{what} window: {at(start)}-{at(end)} s into the run")
    longest, silent, every = summarise(watch.timelines, end_ms=_now_ms(), excluded=excluded)
    for item in sorted(every, key=lambda s: s.outside_ms, reverse=True)[:STALLS_SHOWN]:
        _say(f"stall: {item.party} {(item.end_ms - item.start_ms) / 1000:.1f} s, "
             f"{at(item.start_ms)}-{at(item.end_ms)} s into the run, "
             f"{item.outside_ms / 1000:.1f} s of it outside quorum-loss and leaderless windows, "
             f"{'alarm raised' if item.alarmed else 'no alarm'}")
    return longest, silent


def _evaluate(
    ha: HaNetwork, stats: LoadStats, *, api_duplicates: int, figures: Figures,
    kills: tuple[int, int], started: float, stall: tuple[float, int], max_stall_s: float,
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
    _say(f"hung relay left after {_seconds(figures.hung_relay_left_s)}; endpoints back on it "
         f"after {_seconds(figures.spread_back_s)}; new stream leader after a leader froze: "
         f"{_seconds(figures.leader_elected_s)}; /v1/links after the thaw: "
         f"{'ok' if all(figures.links_ok) else 'WRONG'}")
    longest, silent = stall
    freezes = figures.freezes
    print(f"failover: nats_kills={nats_kills} relay_kills={relay_kills} "  # noqa: T201
          f"nats_freezes={freezes['nats']} relay_freezes={freezes['relay']} "
          f"quorum_losses={freezes['quorum']} "
          f"accepted={len(accepted)} lost={len(lost)} duplicates={duplicates} "
          f"max_stall_s={longest:.1f} silent_stalls={silent}", flush=True)
    failed = (lost or duplicates or not log.verify_ok or not checkpoints_ok or not agree
              or silent or longest > max_stall_s or not all(figures.links_ok))
    return 1 if failed else 0


def _seconds(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f} s" for v in values) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each round kills one NATS node, then one relay replica")
    parser.add_argument("--down", type=float, default=4.0,
                        help="seconds a killed process stays down")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--freeze", type=float, default=10.0,
                        help="seconds a hung process stays stopped (0: no hangs)")
    parser.add_argument("--max-stall", type=float, default=3.0,
                        help="fail when an endpoint stalls longer, outside quorum losses")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second, total")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--keep", type=Path, help="keep the run's data in this directory")
    args = parser.parse_args(argv)
    configure_logging(level=logging.ERROR)  # the harness speaks through _say
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    return run_in_directory(args.keep, "hotline-failover-", lambda root: run(args, root))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
