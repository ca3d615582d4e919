"""``make faults``: SIGKILL the relay and the endpoints under load, then count what was lost.

Real ``hotline relay`` and ``hotline endpoint`` processes on 127.0.0.1, a fresh
network in a temporary directory. Prints one summary line and exits non-zero
when any accepted message was lost or duplicated, or the log does not verify.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import aiohttp

from faults.check import JournalView, missing, read_journals, read_log
from faults.load import Load, LoadStats
from faults.procs import Proc, free_port
from hotline.bootstrap import NETWORK_FILE, create_network

SETTLE_TIMEOUT_S: Final = 120.0
ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")


def _say(text: str) -> None:
    print(f"faults: {text}", file=sys.stderr, flush=True)  # noqa: T201 - a command's progress


def _raise_limits(network_dir: Path) -> None:
    """Lift the per-sender rate so the load is never rate-limited."""
    path = network_dir / NETWORK_FILE
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^messages_per_minute = \d+$", "messages_per_minute = 100000",
                          text)
    if count != 1:
        raise RuntimeError(f"no messages_per_minute line in {path}")
    path.write_text(text, encoding="utf-8")


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        relay_port = free_port()
        ws = f"ws://127.0.0.1:{relay_port}/v1/ws"
        network = create_network(root, relay_url=ws)
        _raise_limits(root)
        self.relay_dir = root / "relay"
        self.relay = Proc(
            "relay",
            ["relay", "--network", str(root), "--data", str(self.relay_dir),
             "--host", "127.0.0.1", "--port", str(relay_port)],
            f"http://127.0.0.1:{relay_port}/healthz", root / "logs" / "relay.log",
        )
        self.data_dirs = {e: root / "endpoints" / e for e in ENDPOINTS}
        self.urls: dict[str, str] = {}
        self.endpoints: dict[str, Proc] = {}
        for party in ENDPOINTS:
            port = free_port()
            self.urls[party] = f"http://127.0.0.1:{port}"
            self.endpoints[party] = Proc(
                party,
                ["endpoint", "--network", str(root), "--id", party,
                 "--data", str(self.data_dirs[party]), "--host", "127.0.0.1",
                 "--port", str(port), "--relay-url", ws],
                self.urls[party] + "/healthz", root / "logs" / f"{party}.log",
            )
        self.peers = {
            party: sorted(p for p in ENDPOINTS if p != party and network.linked(party, p))
            for party in ENDPOINTS
        }
        self.down: set[str] = set()

    def is_up(self, party: str) -> bool:
        return party not in self.down

    async def start_all(self, session: aiohttp.ClientSession) -> None:
        await self.relay.start(session)
        await asyncio.gather(*(p.start(session) for p in self.endpoints.values()))

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        await self.relay.stop()

    async def kill_all(self) -> None:
        await asyncio.gather(*(p.kill() for p in self.endpoints.values()))
        await self.relay.kill()

    async def crash(self, session: aiohttp.ClientSession, target: str) -> None:
        """SIGKILL ``target`` by PID, then start it again on the same data dir."""
        if target == "relay":
            await self.relay.kill()
            await self.relay.start(session)
            return
        self.down.add(target)
        try:
            await self.endpoints[target].kill()
            await self.endpoints[target].start(session)
        finally:
            self.down.discard(target)


async def _settle(cluster: Cluster) -> JournalView:
    """Wait (bounded) until every message is accepted and in every recipient's journal."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        view = read_journals(cluster.data_dirs)
        unaccepted, undelivered = missing(view)
        if not unaccepted and not undelivered:
            return view
        if time.monotonic() > deadline:
            _say(f"settle timed out: {len(unaccepted)} unaccepted, "
                 f"{len(undelivered)} undelivered")
            return view
        await asyncio.sleep(0.25)


async def _api_checks(session: aiohttp.ClientSession, cluster: Cluster) -> tuple[int, int]:
    """(duplicate ids in /api/inbox lists, endpoints whose /api/checkpoint is not consistent)."""
    duplicates = inconsistent = 0
    for url in cluster.urls.values():
        async with session.get(url + "/api/inbox") as r:
            ids = [m["id"] for m in (await r.json())["messages"]]
        duplicates += len(ids) - len(set(ids))
        async with session.get(url + "/api/checkpoint") as r:
            checkpoint = await r.json()
        inconsistent += checkpoint["consistent"] is False
    return duplicates, inconsistent


async def run(args: argparse.Namespace, root: Path) -> int:
    started = time.monotonic()
    rng = random.Random(args.seed)  # noqa: S311 - seeded on purpose: a run can be repeated
    _say(f"seed={args.seed} relay_kills={args.relay_kills} "
         f"endpoint_kills={args.endpoint_kills} data={root}")
    cluster = Cluster(root)
    targets = ["relay"] * args.relay_kills + [
        rng.choice(ENDPOINTS) for _ in range(args.endpoint_kills)
    ]
    rng.shuffle(targets)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            await cluster.start_all(session)
            load = Load(cluster.urls, cluster.peers, args.rate, random.Random(rng.random()),  # noqa: S311
                        cluster.is_up)
            load.start(session)
            try:
                for number, target in enumerate(targets, 1):
                    await asyncio.sleep(rng.uniform(args.min_gap, args.max_gap))
                    await cluster.crash(session, target)
                    if number % 10 == 0:
                        _say(f"{number}/{len(targets)} kills, {load.stats.total_sent} sent")
                await asyncio.sleep(args.min_gap)
            finally:
                await load.stop()
            stats = load.stats
            _say(f"load stopped: sent={stats.total_sent} not_sent={stats.not_sent} "
                 f"refused={stats.refused} acks={stats.acks}")
            for refusal in stats.refusals[:5]:
                _say(f"refused: {refusal}")
            await cluster.stop_all()  # a clean restart of everything
            await cluster.start_all(session)
            await _settle(cluster)
            api_duplicates, api_inconsistent = await _api_checks(session, cluster)
        finally:
            await cluster.stop_all()
            await cluster.kill_all()
    return _evaluate(cluster, stats, api_duplicates=api_duplicates,
                     api_inconsistent=api_inconsistent, targets=targets, started=started)


def _evaluate(
    cluster: Cluster, stats: LoadStats, *, api_duplicates: int, api_inconsistent: int,
    targets: list[str], started: float,
) -> int:
    """Stop nothing, read everything: the journals, the exported log; print the line."""
    root = cluster.root
    log = read_log(cluster.relay_dir, root, root / "bundle")
    view = read_journals(cluster.data_dirs)
    unaccepted, undelivered = missing(view)
    recorded = {i for ids in stats.sent.values() for i in ids}
    lost_at_endpoint = sorted(recorded - set(view.outbox))  # 202 but not journaled
    accepted = [m for m in view.outbox.values() if m.accepted_index is not None]
    # in the log, and at the index of the relay's signed receipt
    not_logged = sorted(m.id for m in accepted if log.index_of.get(m.id) != m.accepted_index)
    lost_ids = set(lost_at_endpoint) | set(unaccepted) | set(not_logged) | {
        i for i, _ in undelivered}
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
    checkpoints_ok = (view.inconsistent_checkpoints == 0 and view.checkpoint_alarms == 0
                      and api_inconsistent == 0)
    if not checkpoints_ok:
        _say(f"checkpoints: {view.inconsistent_checkpoints} inconsistent in journals, "
             f"{view.checkpoint_alarms} alarms, {api_inconsistent} endpoints not consistent")
    if not log.verify_ok:
        _say(f"audit verify failed: {log.verify_output}")
    _say(f"log entries={log.size}, logged messages={len(log.message_counts)}")
    forged_accepted = 0  # the hostile-input part of the suite will count these
    kills = len(targets)
    relay_kills = targets.count("relay")
    line = (
        f"faults: kills={kills} relay_kills={relay_kills} endpoint_kills={kills - relay_kills} "
        f"accepted={len(accepted)} lost={len(lost_ids)} duplicates={duplicates} "
        f"forged_accepted={forged_accepted} verify={'ok' if log.verify_ok else 'failed'} "
        f"seconds={time.monotonic() - started:.0f}"
    )
    print(line, flush=True)  # noqa: T201 - the summary line is the command's output
    failed = lost_ids or duplicates or forged_accepted or not log.verify_ok or not checkpoints_ok
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.run", description=__doc__)
    parser.add_argument("--relay-kills", type=int, default=50)
    parser.add_argument("--endpoint-kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second, total")
    parser.add_argument("--min-gap", type=float, default=0.3, help="seconds between kills, min")
    parser.add_argument("--max-gap", type=float, default=2.0, help="seconds between kills, max")
    parser.add_argument("--keep", type=Path, help="keep the run's data in this directory")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    if args.keep is not None:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        return asyncio.run(run(args, args.keep))
    with tempfile.TemporaryDirectory(prefix="hotline-faults-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
