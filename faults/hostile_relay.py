"""``make hostile-relay``: a relay holding the real key cheats; honest endpoints must catch it.

Each attack of :mod:`faults.evil_relay` runs on its own fresh network in a
temporary directory: the hostile relay and BY, LT, LV, EE, PL as real endpoints
(real WebSocket sessions, journals and APIs on 127.0.0.1, in this process).
Once every endpoint is connected and has witnessed a checkpoint, the attack is
armed and BY sends a few messages to LT and the others. The attack counts as
**detected** when an alarm naming it (its event kind, with its evidence)
reaches, at the endpoint(s) the attack touched, all three places a duty
officer or an auditor would look — the journal's alarm history, the local API
(``GET /api/alarms``) and the console's alarm list (the ``alarms`` of the
``/api/events`` snapshot the console draws) — within the bound stated for it.
For the two attacks that log a receipt an honest relay refuses, every endpoint
must raise it, and ``hotline audit verify`` on the exported log must name the
entry as a finding against the relay.

One more run has no attack: every alarm raised there is a false alarm. The
last line printed is

    hostile-relay: attacks=N detected=D undetected=U false_alarms=F seconds=S

and the exit status is non-zero unless every attack was detected and the clean
run raised nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from faults.evil_relay import HOLD_S, SPLIT_GROUP, Attack, EvilRelay, evil_app
from faults.procs import run_in_directory
from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.endpoint.connection import Backoff
from hotline.endpoint.journal import JOURNAL_FILE
from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.keyfile import load_signing_key
from hotline.logs import configure_logging
from hotline.network import Network, network_to_toml
from hotline.network_file import load_network
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import body_hash, open_envelope, seal
from hotline.protocol.ids import make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.vocab import Stage
from hotline.relay.server import RelayConfig, open_relay
from hotline.testing.operators import LoggedIn, add_operator

ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
READY_TIMEOUT_S: Final = 30.0
CLEAN_RUN_S: Final = 25.0
"""How long the run without an attack watches for (false) alarms: past every bound."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """Which alarm names the attack, where it must show, and how soon."""

    kinds: frozenset[str]
    where: tuple[str, ...]
    every: bool  # all of ``where`` must raise it (else: at least one)
    bound_s: float


def _at(*kinds: str, where: Sequence[str] = ("BY",), every: bool = False,
        bound_s: float) -> Expectation:
    return Expectation(frozenset(kinds), tuple(where), every, bound_s)


EXPECT: Final[dict[Attack, Expectation]] = {
    Attack.WITHHOLD_ACCEPTED: _at("not_accepted", bound_s=12.0),
    Attack.UNSIGNED_REFUSAL: _at("refusal_unsigned", bound_s=3.0),
    Attack.UNFOUNDED_REFUSAL: _at("refusal_unfounded", bound_s=3.0),
    Attack.NEVER_FORWARD: _at("withheld", where=("LT",), bound_s=20.0),
    Attack.HOLD_BACK: _at("delivery_late", where=("LT",), bound_s=HOLD_S + 5.0),
    Attack.REORDER: _at("delivery_reordered", where=("LT",), bound_s=5.0),
    Attack.REPLAY: _at("delivery_stale", where=("LT",), bound_s=5.0),
    Attack.OMIT_FROM_LOG: _at("not_in_log", bound_s=5.0),
    Attack.BEYOND_TREE: _at("inclusion_unproven", bound_s=18.0),
    Attack.SPLIT_VIEW: _at("split_view", where=tuple(sorted(SPLIT_GROUP)), bound_s=10.0),
    Attack.REFUSE_CONSISTENCY: _at("consistency_unproven", where=ENDPOINTS, bound_s=18.0),
    Attack.REFUSE_ENTRIES: _at("inclusion_unproven", where=ENDPOINTS, bound_s=18.0),
    Attack.FREEZE_CHECKPOINT: _at("inclusion_unproven", where=ENDPOINTS, bound_s=18.0),
    Attack.RECEIPT_NON_RECIPIENT: _at("log_rule_broken", where=ENDPOINTS, every=True,
                                      bound_s=5.0),
    Attack.RECEIPT_WRONG_HASH: _at("log_rule_broken", where=ENDPOINTS, every=True,
                                   bound_s=5.0),
}


@dataclass(slots=True)
class Outcome:
    """One run: what was expected, where it showed and how soon (seconds after arming)."""

    name: str
    detected: bool = False
    seen_at: dict[str, float] = dataclasses.field(default_factory=dict)
    alarms: list[str] = dataclasses.field(default_factory=list)  # "party:kind" of every alarm
    verify: str = ""  # what audit verify said, for the receipt attacks
    touched: list[str] = dataclasses.field(default_factory=list)

    def line(self, expect: Expectation | None) -> str:
        where = " ".join(f"{p}@{s:.1f}s" for p, s in sorted(self.seen_at.items()))
        if expect is None:
            return f"clean: alarms={len(self.alarms)} {' '.join(self.alarms)}"
        kinds = ",".join(sorted(expect.kinds))
        state = "detected" if self.detected else "UNDETECTED"
        extra = f" verify={self.verify}" if self.verify else ""
        return (f"{self.name}: {state} alarm={kinds} bound={expect.bound_s:.0f}s "
                f"at={where or '-'}{extra}")


def _say(text: str) -> None:
    print(f"hostile-relay: {text}", file=sys.stderr, flush=True)  # noqa: T201 - progress


# ---------------------------------------------------------------------- one network


@dataclass(slots=True)
class Net:
    directory: Path
    network: Network
    relay: EvilRelay
    relay_url: str
    http: str
    endpoints: dict[str, RunningEndpoint]
    keys: dict[str, SigningKey]


def _make_network(directory: Path) -> Network:
    net_dir = directory / "net"
    base = create_network(net_dir, endpoints=ENDPOINTS)
    quick = dataclasses.replace(base, link_test_interval_ms=1_000, link_test_timeout_ms=1_000)
    (net_dir / NETWORK_FILE).write_text(network_to_toml(quick), encoding="utf-8")
    return load_network(net_dir / NETWORK_FILE)


@contextlib.asynccontextmanager
async def running(directory: Path, attack: Attack | None) -> AsyncIterator[Net]:
    """The hostile relay and five endpoints on 127.0.0.1, stopped when the block ends."""
    network = _make_network(directory)
    net_dir = directory / "net"
    keys = {p: load_signing_key(key_path(net_dir, p)) for p in (*ENDPOINTS, "relay")}
    config = RelayConfig(
        network=network, network_toml=(net_dir / NETWORK_FILE).read_bytes(),
        data_dir=directory / "relay", key=keys["relay"], port=0,
        checkpoint_interval_ms=300, tick_ms=50,
    )
    relay = await open_relay(config, lambda audit_log: EvilRelay(config, audit_log, attack))
    runner = web.AppRunner(evil_app(relay), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    url = f"ws://127.0.0.1:{port}/v1/ws"
    try:
        async with contextlib.AsyncExitStack() as stack:
            endpoints: dict[str, RunningEndpoint] = {}
            for party in ENDPOINTS:
                add_operator(directory / party)  # the run reads each API as this officer
                endpoints[party] = await stack.enter_async_context(serve_endpoint(EndpointConfig(
                    network=network, endpoint_id=party, key=keys[party],
                    data_dir=directory / party, relay_url=url, tick_s=0.1, monitor_s=0.2,
                    backoff=Backoff(initial_s=0.1, max_s=1.0),
                )))
            yield Net(directory, network, relay, url, f"http://127.0.0.1:{port}", endpoints,
                      keys)
    finally:
        await relay.stop()
        await runner.cleanup()


async def _ready(net: Net) -> None:
    """Every endpoint connected, holding a witnessed checkpoint, its log read up to it."""
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            ok = all(
                r.endpoint.connected
                and (held := r.endpoint.core.witness.held) is not None
                and held.size > 0
                and r.endpoint.core.guard.covered >= held.size
                for r in net.endpoints.values()
            )
            if ok:
                return
            await asyncio.sleep(0.1)


def _text(to: Sequence[str] | str, words: str, precedence: str = "flash") -> dict[str, object]:
    recipients = to if isinstance(to, str) else list(to)
    return {"t": "text", "to": recipients, "status": "exercise", "precedence": precedence,
            "text": words, "lang": "en"}


async def _traffic(net: Net, attack: Attack | None) -> list[bytes]:
    """BY's messages: to LT alone (the target), then to everyone."""
    by = net.endpoints["BY"].endpoint
    sent = [await by.post_message(_text(["LT"], "Drone heading west, BY to LT."))]
    if attack in (Attack.REORDER, Attack.HOLD_BACK):
        await asyncio.sleep(0.3)
        sent.append(await by.post_message(_text(["LT"], "Second report, BY to LT.")))
    await asyncio.sleep(0.3)
    sent.append(await by.post_message(_text("*", "All stations: balloon drifting north.",
                                            "routine")))
    return sent


async def _later_traffic(net: Net) -> None:
    """Traffic goes on: a message to everyone, then each one's answers, a few seconds on."""
    await asyncio.sleep(2.5)
    await net.endpoints["BY"].endpoint.post_message(
        _text("*", "All stations: balloon over the border.", "routine")
    )
    await asyncio.sleep(1.0)
    await net.endpoints["PL"].endpoint.post_message(
        _text("*", "PL to all: radar confirms the balloon.", "routine")
    )


async def _bad_receipt(net: Net, attack: Attack, message: bytes) -> None:
    """A compromised endpoint's receipt an honest relay refuses; the hostile one logs it."""
    async with asyncio.timeout(10):
        frame = await net.relay.frame_of(message)
    digest = body_hash(open_envelope(frame, net.network).body_bytes)
    signer = "EE" if attack is Attack.RECEIPT_NON_RECIPIENT else "LT"
    if attack is Attack.RECEIPT_WRONG_HASH:
        digest = body_hash(b"another body")
    now = int(time.time() * 1000)
    key = net.keys[signer]
    receipt = ReceiptBody(
        id=make_id(now, bytes(10)), sender=signer, ts=now, seq=1, kid=key.public.kid,
        ref=message, hash=digest, stage=Stage.ACKNOWLEDGED,
    )
    await net.relay.inject(seal(receipt, key), deliver_to="BY")


# ---------------------------------------------------------------------- where alarms show


def _journal_alarms(directory: Path, party: str) -> list[str]:
    """Alarm names in the journal's history (read-only, beside the running endpoint)."""
    path = directory / party / JOURNAL_FILE
    uri = f"file:{path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        rows = db.execute("SELECT name FROM events WHERE alarm = 1").fetchall()
    return [str(name) for (name,) in rows]


async def _api_alarms(session: aiohttp.ClientSession, running: RunningEndpoint) -> list[str]:
    async with session.get(running.url + "/api/alarms") as response:
        response.raise_for_status()
        data = await response.json()
    return [str(a["event"]) for a in data["alarms"]]


async def _console_alarms(session: aiohttp.ClientSession, running: RunningEndpoint) -> list[str]:
    """The alarms in the snapshot the console draws its alarm list from."""
    async with session.get(running.url + "/api/events") as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                snapshot = json.loads(line.removeprefix("data:"))
                return [str(a["event"]) for a in snapshot["alarms"]]
    return []


async def _shows(
    session: aiohttp.ClientSession, net: Net, party: str, kinds: frozenset[str]
) -> bool:
    """The alarm is in the journal, the local API and the console's list of ``party``."""
    running = net.endpoints[party]
    places = (
        _journal_alarms(net.directory, party),
        await _api_alarms(session, running),
        await _console_alarms(session, running),
    )
    return all(kinds & set(names) for names in places)


# ---------------------------------------------------------------------- runs


async def run_attack(
    directory: Path, attack: Attack | None, clean_s: float = CLEAN_RUN_S
) -> Outcome:
    outcome = Outcome(attack.value if attack is not None else "clean")
    expect = EXPECT.get(attack) if attack is not None else None
    async with running(directory, attack) as net, aiohttp.ClientSession(
            middlewares=(LoggedIn(),)) as session:
        await _ready(net)
        for party in ENDPOINTS:  # log in everywhere now, so no login delays the watch
            async with session.get(net.endpoints[party].url + "/api/session") as response:
                response.raise_for_status()
        net.relay.armed = True
        armed = time.monotonic()
        sent = await _traffic(net, attack)
        later = asyncio.create_task(_later_traffic(net))
        if attack in (Attack.RECEIPT_NON_RECIPIENT, Attack.RECEIPT_WRONG_HASH):
            await _bad_receipt(net, attack, sent[0])
        if expect is None:
            await asyncio.sleep(clean_s)  # the clean run watches for alarms this long
        else:
            await _watch(session, net, expect, outcome, armed)
        with contextlib.suppress(asyncio.CancelledError):
            later.cancel()
            await later
        for party in ENDPOINTS:
            outcome.alarms.extend(f"{party}:{n}" for n in _journal_alarms(directory, party))
        outcome.touched = list(net.relay.touched)
    if attack in (Attack.RECEIPT_NON_RECIPIENT, Attack.RECEIPT_WRONG_HASH):
        outcome.verify = _verify(directory)
        outcome.detected = outcome.detected and outcome.verify == "finding_against_relay"
    if attack is Attack.SPLIT_VIEW:
        outcome.verify = _compare(directory)
        outcome.detected = outcome.detected and outcome.verify.startswith("disagreements=")
    return outcome


async def _watch(session: aiohttp.ClientSession, net: Net, expect: Expectation,
                 outcome: Outcome, armed: float) -> None:
    deadline = armed + expect.bound_s
    while time.monotonic() < deadline:
        for party in expect.where:
            if party not in outcome.seen_at and await _shows(session, net, party, expect.kinds):
                outcome.seen_at[party] = time.monotonic() - armed
        needed = len(expect.where) if expect.every else 1
        if len(outcome.seen_at) >= needed:
            outcome.detected = True
            return
        await asyncio.sleep(0.2)


_AUDIT: Final = (sys.executable, "-m", "hotline", "audit")


def _export(directory: Path) -> Path:
    """The stopped relay's log as a bundle."""
    bundle = directory / "bundle"
    subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*_AUDIT, "export", str(directory / "relay"), "--out", str(bundle),
         "--network", str(directory / "net")],
        check=True, capture_output=True,
    )
    return bundle


def _compare(directory: Path) -> str:
    """``audit compare`` of every journal with the log: the other history must show."""
    bundle = _export(directory)
    journals = [str(directory / party) for party in ENDPOINTS]
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*_AUDIT, "compare", str(bundle), *journals],
        capture_output=True, text=True, check=False,
    )
    disagreeing = {line.split(":")[0] for line in result.stdout.splitlines()
                   if "checkpoint_disagrees" in line}
    if result.returncode == 1 and disagreeing and disagreeing <= SPLIT_GROUP:
        return f"disagreements={','.join(sorted(disagreeing))}"
    return f"compare_missed(exit={result.returncode},{','.join(sorted(disagreeing))})"


def _verify(directory: Path) -> str:
    """Export the stopped relay's log and verify it: does it name the bad entry?"""
    bundle = _export(directory)
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*_AUDIT, "verify", str(bundle)], capture_output=True, text=True, check=False,
    )
    text = result.stdout + result.stderr
    if result.returncode == 0:
        return "verified_clean"
    if "receipt_not_from_recipient" in text or "receipt_hash_mismatch" in text:
        return "finding_against_relay"
    return "failed_otherwise"


async def run_all(root: Path, attacks: Sequence[Attack]) -> int:
    started = time.monotonic()
    outcomes: list[tuple[Outcome, Expectation | None]] = []
    for attack in [None, *attacks]:
        name = attack.value if attack is not None else "clean"
        directory = root / name
        directory.mkdir()
        outcome = await run_attack(directory, attack)
        expect = EXPECT.get(attack) if attack is not None else None
        outcomes.append((outcome, expect))
        _say(outcome.line(expect))
    clean = outcomes[0][0]
    attacked = [o for o, e in outcomes if e is not None]
    detected = sum(o.detected for o in attacked)
    seconds = time.monotonic() - started
    print(  # noqa: T201 - the command's result
        f"hostile-relay: attacks={len(attacked)} detected={detected} "
        f"undetected={len(attacked) - detected} false_alarms={len(clean.alarms)} "
        f"seconds={seconds:.0f}",
        flush=True,
    )
    return 0 if detected == len(attacked) and not clean.alarms else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.hostile_relay", description=__doc__)
    parser.add_argument("--attack", action="append", choices=[a.value for a in Attack],
                        help="run only this attack (repeatable); default: every attack")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this directory (emptied first) and keep it")
    args = parser.parse_args(argv)
    configure_logging(level=40)  # errors only: the harness prints its own lines
    attacks = [Attack(a) for a in args.attack] if args.attack else list(Attack)
    return run_in_directory(args.keep, "hotline-hostile-relay-",
                            lambda root: run_all(root, attacks))


if __name__ == "__main__":
    sys.exit(main())
