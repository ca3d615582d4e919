"""``make faults``, network part: a fault proxy on each endpoint's link to the relay.

The relay and BY, LT, LV, EE, PL run as real processes on 127.0.0.1; each
endpoint dials the relay through its own :class:`~faults.proxy.FaultProxy`.
Under steady load a seeded plan hits the links, one fault per endpoint per
round, each kind once a round: ``delay`` and ``jitter`` for a while, ``drop``
(every open connection reset), ``half_open`` (open connections frozen: only
heartbeats notice) and a ``blackhole`` longer than the flash ``delivered``
deadline, during which flash probes are sent to the blackholed endpoint. Then
every proxy passes bytes again, and the harness waits (bounded, polling the
journals) until every message is delivered and every sender holds its
receipts, stops everything and reads the journals, the consoles' event
streams and the exported log:

- ``lost``: a message answered 202 that is missing from the sender's journal,
  the log (at its receipt's index) or a recipient's inbox;
- ``duplicates``: an id twice in an inbox, the log, ``/api/inbox`` or shown
  twice on a console (``message_received`` on ``/api/events``);
- ``out_of_order``: a message journaled in an inbox after a later one (higher
  ``seq``) from the same sender at the same precedence;
- ``deadline_missed_unreported`` / ``deadline_false_alarms``: a ``delivered``
  stage later than its deadline with no ``overdue`` (in the relay's log, or in
  the sender's journal by its own clock), or an ``overdue`` for one that was in
  time; within ``DEADLINE_MARGIN_MS`` of the deadline nothing is judged;
- ``reconnect_s_max``: the longest wait for ``relay_connected`` after a drop, a
  half-open freeze, or the end of a blackhole; ``half_open_detect_s_max``: the
  longest wait for ``relay_disconnected`` after a freeze (the heartbeat).

``python -m faults.network`` runs it alone and prints one ``network: …`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp

from faults.check import (
    Arrival,
    LogView,
    SenderDeadline,
    account,
    duplicates,
    read_arrivals,
    read_connections,
    read_journals,
    read_log,
    read_sender_deadlines,
)
from faults.load import Load
from faults.procs import ENDPOINTS, Cluster, run_in_directory
from faults.proxy import FaultProxy, Mode
from hotline.network import Network
from hotline.protocol.vocab import Precedence
from hotline.testing.operators import LoggedIn
from hotline.testing.ports import free_port

__all__ = [
    "FaultKind",
    "FaultStep",
    "NetworkResult",
    "Verdict",
    "count_out_of_order",
    "judge_deadline",
    "plan_round",
    "run_network",
]

DEADLINE_MARGIN_MS: Final = 1_000  # the endpoints tick every 0.5 s, the relay every 0.1 s
CONNECT_TIMEOUT_S: Final = 60.0
RECEIPTS_TIMEOUT_S: Final = 60.0
PROBE_AFTER_S: Final = (0.3, 1.0)  # flash probes to a blackholed endpoint, after it starts


def _say(text: str) -> None:
    print(f"network: {text}", file=sys.stderr, flush=True)  # noqa: T201 - a command's progress


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------- the plan, pure


class FaultKind(enum.StrEnum):
    DELAY = "delay"
    JITTER = "jitter"
    DROP = "drop"
    HALF_OPEN = "half_open"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True, slots=True)
class FaultStep:
    """Fault ``kind`` on ``endpoint``'s link, ``at_s`` into its round, for ``lasts_s``."""

    at_s: float
    endpoint: str
    kind: FaultKind
    lasts_s: float = 0.0  # 0: a one-shot (drop, half_open)
    ms: int = 0  # the delay, or the jitter's bound


def plan_round(
    rng: random.Random,
    endpoints: Sequence[str],
    *,
    blackhole_s: float,
    shape_s: float,
    gap_s: tuple[float, float] = (1.0, 2.0),
) -> list[FaultStep]:
    """One round: the blackhole first, then every other kind once, each on its own endpoint.

    The blackhole comes first so that its flash probes are sent while the
    other links are still healthy; the endpoint hit last is the probes' sender.
    """
    kinds = [k for k in FaultKind if k is not FaultKind.BLACKHOLE]
    rng.shuffle(kinds)
    targets = rng.sample(list(endpoints), k=len(endpoints))
    steps: list[FaultStep] = []
    at = 0.0
    for number, kind in enumerate([FaultKind.BLACKHOLE, *kinds]):
        endpoint = targets[number % len(targets)]
        if kind is FaultKind.BLACKHOLE:
            steps.append(FaultStep(at, endpoint, kind, blackhole_s))
        elif kind is FaultKind.DELAY:
            steps.append(FaultStep(at, endpoint, kind, shape_s, rng.randrange(100, 800)))
        elif kind is FaultKind.JITTER:
            steps.append(FaultStep(at, endpoint, kind, shape_s, rng.randrange(200, 1200)))
        else:
            steps.append(FaultStep(at, endpoint, kind))
        at += rng.uniform(*gap_s)
    return steps


# ---------------------------------------------------------------------- judging, pure


class Verdict(enum.StrEnum):
    OK = "ok"
    UNREPORTED = "unreported"  # later than the deadline, no overdue
    FALSE_ALARM = "false_alarm"  # overdue, yet in time
    UNJUDGED = "unjudged"  # too close to the deadline, or not reached and not yet due


def judge_deadline(
    start_ms: int, reached_ms: int | None, *, overdue: bool, limit_ms: int, end_ms: int,
    margin_ms: int = DEADLINE_MARGIN_MS,
) -> Verdict:
    """Was an ``overdue`` reported exactly when the stage came later than ``limit_ms``?

    ``end_ms`` is when watching stopped: a stage not reached by then counts as
    reached then.
    """
    took = (end_ms if reached_ms is None else reached_ms) - start_ms
    if took > limit_ms + margin_ms:
        return Verdict.OK if overdue else Verdict.UNREPORTED
    if reached_ms is not None and took < limit_ms - margin_ms:
        return Verdict.FALSE_ALARM if overdue else Verdict.OK
    return Verdict.UNJUDGED


def count_out_of_order(arrivals: Iterable[Arrival]) -> int:
    """Arrivals with a lower ``seq`` than one before them on the same link and precedence."""
    highest: dict[tuple[str, str, str], int] = {}
    wrong = 0
    for a in arrivals:
        key = (a.recipient, a.sender, a.precedence)
        if a.seq < highest.get(key, -1):
            wrong += 1
        highest[key] = max(a.seq, highest.get(key, -1))
    return wrong


@dataclass(frozen=True, slots=True)
class Applied:
    """A step as it was played: wall-clock start and end (the endpoints' clock)."""

    step: FaultStep
    started_ms: int
    ended_ms: int


def recovery_times(
    applied: Iterable[Applied], connections: dict[str, list[tuple[int, str]]]
) -> tuple[list[float], list[float], int]:
    """(seconds to reconnect, seconds to notice a half-open link, faults never recovered)."""
    reconnects: list[float] = []
    detections: list[float] = []
    never = 0
    for fault in applied:
        kind = fault.step.kind
        if kind not in (FaultKind.DROP, FaultKind.HALF_OPEN, FaultKind.BLACKHOLE):
            continue
        since = fault.ended_ms if kind is FaultKind.BLACKHOLE else fault.started_ms
        events = connections.get(fault.step.endpoint, [])
        back = next((at for at, name in events if name == "relay_connected" and at >= since),
                    None)
        if back is None:
            never += 1
            continue
        reconnects.append((back - since) / 1000)
        if kind is FaultKind.HALF_OPEN:
            gone = next((at for at, name in events
                         if name == "relay_disconnected" and at >= since), back)
            detections.append((gone - since) / 1000)
    return reconnects, detections, never


# ---------------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class NetworkResult:
    net_faults: int
    accepted: int
    lost: int
    duplicates: int
    out_of_order: int
    deadline_missed_unreported: int
    deadline_false_alarms: int
    overdue: int  # delivered-stage overdue events in the relay's log
    blackhole_probes: int
    blackhole_probes_overdue: int
    reconnect_s_max: float
    half_open_detect_s_max: float
    never_reconnected: int
    checkpoints_ok: bool
    verify_ok: bool
    seconds: float
    forged_accepted: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0 and self.duplicates == 0 and self.out_of_order == 0
            and self.deadline_missed_unreported == 0 and self.deadline_false_alarms == 0
            and self.blackhole_probes_overdue == self.blackhole_probes > 0
            and self.never_reconnected == 0 and self.checkpoints_ok and self.verify_ok
        )

    def head(self) -> list[tuple[str, str]]:
        """Fields before ``accepted=`` in the combined ``faults:`` line: none."""
        return []

    def tail(self) -> list[tuple[str, str]]:
        """This phase's own fields, after ``verify=`` in the combined line."""
        return [
            ("net_faults", str(self.net_faults)),
            ("out_of_order", str(self.out_of_order)),
            ("deadline_missed_unreported", str(self.deadline_missed_unreported)),
            ("deadline_false_alarms", str(self.deadline_false_alarms)),
            ("overdue", str(self.overdue)),
            ("blackhole_overdue", f"{self.blackhole_probes_overdue}/{self.blackhole_probes}"),
            ("reconnect_s_max", f"{self.reconnect_s_max:.1f}"),
            ("half_open_detect_s_max", f"{self.half_open_detect_s_max:.1f}"),
        ]

    def line(self) -> str:
        fields = [
            ("net_faults", str(self.net_faults)), ("accepted", str(self.accepted)),
            ("lost", str(self.lost)), ("duplicates", str(self.duplicates)),
            *self.tail()[1:],
            ("verify", "ok" if self.verify_ok else "failed"),
            ("seconds", f"{self.seconds:.0f}"),
        ]
        return "network: " + " ".join(f"{k}={v}" for k, v in fields)


# ---------------------------------------------------------------------- the edge


class _Console:
    """Counts what an endpoint's console is shown: ``message_received`` on ``/api/events``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown: Counter[str] = Counter()
        self.ended_early = False

    async def watch(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url + "/api/events") as response:
                name = ""
                async for raw in response.content:
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: ") and name == "message_received":
                        self.shown[str(json.loads(line.removeprefix("data: "))["id"])] += 1
        except (aiohttp.ClientError, OSError, ValueError):
            pass
        self.ended_early = True


async def _until_connected(cluster: Cluster, session: aiohttp.ClientSession) -> None:
    """Poll /healthz (bounded) until every endpoint is welcomed by the relay."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while (up := await cluster.connected(session)) != set(cluster.urls):
        if time.monotonic() > deadline:
            _say(f"not reconnected in {CONNECT_TIMEOUT_S:.0f}s: {sorted(set(cluster.urls) - up)}")
            return
        await asyncio.sleep(0.1)


async def _until_receipts(cluster: Cluster) -> None:
    """Poll the journals (bounded) until every sender holds a delivery receipt per recipient."""
    deadline = time.monotonic() + RECEIPTS_TIMEOUT_S
    while True:
        waiting = [d for d in read_sender_deadlines(cluster.data_dirs) if d.reached_ms is None]
        if not waiting:
            return
        if time.monotonic() > deadline:
            _say(f"{len(waiting)} delivery receipts never reached their senders")
            return
        await asyncio.sleep(0.25)


class _Player:
    """Plays rounds of steps on the proxies and sends the blackhole's flash probes."""

    def __init__(
        self, proxies: dict[str, FaultProxy], cluster: Cluster, load: Load,
        session: aiohttp.ClientSession,
    ) -> None:
        self.proxies = proxies
        self.cluster = cluster
        self.load = load
        self.session = session
        self.applied: list[Applied] = []
        self.probes: list[tuple[str, str]] = []  # (id, blackholed endpoint)

    async def play(self, steps: list[FaultStep]) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        probe_from = steps[-1].endpoint
        pending: list[asyncio.Task[Applied]] = []
        for step in steps:
            await asyncio.sleep(max(0.0, began + step.at_s - loop.time()))
            pending.append(asyncio.create_task(self._apply(step, probe_from)))
        self.applied += await asyncio.gather(*pending)

    async def _apply(self, step: FaultStep, probe_from: str) -> Applied:
        proxy = self.proxies[step.endpoint]
        started = _wall_ms()
        if step.kind is FaultKind.DROP:
            count = proxy.drop()
        elif step.kind is FaultKind.HALF_OPEN:
            count = proxy.half_open()
        else:
            mode = {FaultKind.DELAY: Mode.DELAY, FaultKind.JITTER: Mode.JITTER,
                    FaultKind.BLACKHOLE: Mode.BLACKHOLE}[step.kind]
            proxy.set_mode(mode, step.ms)
            count = proxy.open_connections
        _say(f"{step.kind} {step.endpoint}" + (f" {step.ms}ms" if step.ms else "")
             + (f" for {step.lasts_s:g}s" if step.lasts_s else "") + f" ({count} connections)")
        if step.kind is FaultKind.BLACKHOLE:
            await self._probes(step.endpoint, probe_from)
        if step.lasts_s:
            await asyncio.sleep(max(0.0, started / 1000 + step.lasts_s - time.time()))
            proxy.set_mode(Mode.PASS)
        return Applied(step, started, _wall_ms())

    async def _probes(self, target: str, sender: str) -> None:
        if sender == target or sender not in self.cluster.peers[target]:
            sender = self.cluster.peers[target][0]
        waited = 0.0
        for after in PROBE_AFTER_S:
            await asyncio.sleep(after - waited)
            waited = after
            body = {"t": "text", "to": [target], "status": "exercise", "precedence": "flash",
                    "text": f"fault harness probe to blackholed {target}", "lang": "en"}
            try:
                async with self.session.post(self.cluster.urls[sender] + "/api/messages",
                                             json=body) as r:
                    answer = await r.json(content_type=None)
                    if r.status != 202:
                        _say(f"probe refused: {r.status} {answer}")
                        continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                _say(f"probe not sent: {exc!r}")
                continue
            message_id = str(answer["id"])
            self.load.stats.sent[sender].append(message_id)
            self.probes.append((message_id, target))


async def run_network(
    root: Path,
    *,
    seed: int,
    rate: float = 8.0,
    rounds: int = 2,
    blackhole_s: float = 10.0,
    shape_s: float = 6.0,
    warmup_s: float = 2.0,
) -> NetworkResult:
    """The whole phase in ``root`` (a fresh network is created there); see the module doc."""
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311 - seeded on purpose: a run can be repeated
    _say(f"seed={seed} rounds={rounds} blackhole_s={blackhole_s:g} rate={rate:g} data={root}")
    relay_port = free_port()
    proxies = {e: FaultProxy(relay_port, seed=rng.randrange(2**31)) for e in ENDPOINTS}
    for proxy in proxies.values():
        await proxy.start()
    cluster = Cluster(root, relay_port=relay_port,
                      relay_url_of=lambda e: f"ws://127.0.0.1:{proxies[e].port}/v1/ws")
    consoles = {party: _Console(url) for party, url in cluster.urls.items()}
    streams = aiohttp.ClientTimeout(total=None, sock_read=None)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                         middlewares=(LoggedIn(),)) as session, \
                aiohttp.ClientSession(timeout=streams, middlewares=(LoggedIn(),)) as stream_session:
            try:
                await cluster.start_all(session)
                await _until_connected(cluster, session)
                watchers = [asyncio.create_task(c.watch(stream_session))
                            for c in consoles.values()]
                load = Load(cluster.urls, cluster.peers, rate,
                            random.Random(rng.random()), cluster.is_up)  # noqa: S311
                player = _Player(proxies, cluster, load, session)
                load.start(session)
                try:
                    await asyncio.sleep(warmup_s)
                    for number in range(1, rounds + 1):
                        steps = plan_round(rng, ENDPOINTS, blackhole_s=blackhole_s,
                                           shape_s=shape_s)
                        _say(f"round {number}/{rounds}: {len(steps)} faults")
                        await player.play(steps)
                        await _until_connected(cluster, session)
                finally:
                    await load.stop()
                for proxy in proxies.values():
                    proxy.set_mode(Mode.PASS)
                stats = load.stats
                _say(f"load stopped: sent={stats.total_sent} not_sent={stats.not_sent} "
                     f"refused={stats.refused} acks={stats.acks}")
                await cluster.settle()
                await _until_receipts(cluster)
                api_duplicates, api_inconsistent = await cluster.api_checks(session)
                for task in watchers:
                    task.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
                stopped_ms = _wall_ms()
            finally:
                await cluster.stop_all()
                await cluster.kill_all()
    finally:
        for proxy in proxies.values():
            await proxy.close()
    return _evaluate(
        cluster, player, consoles, stopped_ms=stopped_ms, api_duplicates=api_duplicates,
        api_inconsistent=api_inconsistent, started=started,
    )


def _deadline_verdicts(
    network: Network, log: LogView, senders: list[SenderDeadline], end_ms: int
) -> Counter[Verdict]:
    """Every (message, recipient) ``delivered`` deadline, as the relay and the sender saw it."""
    verdicts: Counter[Verdict] = Counter()
    limit: Callable[[str], int] = lambda p: network.deadlines[Precedence(p)].delivered_ms  # noqa: E731
    for message_id, message in log.messages.items():
        for to in message.recipients:
            verdicts[judge_deadline(
                message.relay_ts, log.reached_ms.get((message_id, to)),
                overdue=(message_id, to, "delivered") in log.overdue,
                limit_ms=limit(message.precedence), end_ms=end_ms,
            )] += 1
    for d in senders:
        verdicts[judge_deadline(d.accepted_ms, d.reached_ms, overdue=d.overdue,
                                limit_ms=limit(d.precedence), end_ms=end_ms)] += 1
    return verdicts


def _evaluate(
    cluster: Cluster, player: _Player, consoles: dict[str, _Console], *, stopped_ms: int,
    api_duplicates: int, api_inconsistent: int, started: float,
) -> NetworkResult:
    """Read the journals and the exported log of the stopped network and judge them."""
    root = cluster.root
    log = read_log(cluster.relay_dir, root, root / "bundle")
    view = read_journals(cluster.data_dirs)
    sent = {i for ids in player.load.stats.sent.values() for i in ids}
    losses = account(sent, view, log)
    for sentence in losses.explained():
        _say(sentence)
    shown_twice = sum(n - 1 for c in consoles.values() for n in c.shown.values() if n > 1)
    if any(c.ended_early for c in consoles.values()):
        _say("a console's event stream ended before the run did")
    verdicts = _deadline_verdicts(cluster.network, log,
                                  read_sender_deadlines(cluster.data_dirs), stopped_ms)
    _say("deadlines: " + " ".join(f"{v}={verdicts[v]}" for v in Verdict))
    reconnects, detections, never = recovery_times(player.applied,
                                                   read_connections(cluster.data_dirs))
    probes_overdue = sum((i, to, "delivered") in log.overdue for i, to in player.probes)
    checkpoints_ok = (view.inconsistent_checkpoints == 0 and view.checkpoint_alarms == 0
                      and api_inconsistent == 0)
    if not checkpoints_ok:
        _say(f"checkpoints: {view.inconsistent_checkpoints} inconsistent, "
             f"{view.checkpoint_alarms} alarms, {api_inconsistent} endpoints not consistent")
    if not log.verify_ok:
        _say(f"audit verify failed: {log.verify_output}")
    return NetworkResult(
        net_faults=len(player.applied),
        accepted=sum(m.accepted_index is not None for m in view.outbox.values()),
        lost=len(losses.ids),
        duplicates=duplicates(view, log) + api_duplicates + shown_twice,
        out_of_order=count_out_of_order(read_arrivals(cluster.data_dirs)),
        deadline_missed_unreported=verdicts[Verdict.UNREPORTED],
        deadline_false_alarms=verdicts[Verdict.FALSE_ALARM],
        overdue=sum(stage == "delivered" for _, _, stage in log.overdue),
        blackhole_probes=len(player.probes),
        blackhole_probes_overdue=probes_overdue,
        reconnect_s_max=max(reconnects, default=0.0),
        half_open_detect_s_max=max(detections, default=0.0),
        never_reconnected=never,
        checkpoints_ok=checkpoints_ok,
        verify_ok=log.verify_ok,
        seconds=time.monotonic() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.network", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--rate", type=float, default=8.0, help="messages per second, total")
    parser.add_argument("--rounds", type=int, default=2, help="each round: every kind once")
    parser.add_argument("--blackhole", type=float, default=10.0, help="seconds (> 5: flash)")
    parser.add_argument("--shape", type=float, default=6.0, help="seconds of delay, of jitter")
    parser.add_argument("--keep", type=Path, help="keep the run's data in this directory")
    args = parser.parse_args(argv)
    seed = random.SystemRandom().randrange(2**31) if args.seed is None else args.seed

    async def go(root: Path) -> NetworkResult:
        return await run_network(root, seed=seed, rate=args.rate, rounds=args.rounds,
                                 blackhole_s=args.blackhole, shape_s=args.shape)

    result = run_in_directory(args.keep, "hotline-network-", go)
    print(result.line(), flush=True)  # noqa: T201 - the summary line is the command's output
    return 0 if result.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
