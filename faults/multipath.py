"""``make multipath``: two independent relays carry one network; one dies, one filters.

A fresh network of several relays (``[relays.by]`` and ``[relays.osce]``) in
a temporary directory, all on 127.0.0.1: relay ``by`` as a real
``hotline relay --relay by`` process, relay ``osce`` as the real relay in this
process with one switch (:class:`WithholdingRelay`), and BY, LT, LV, EE, PL as
real endpoints (real WebSocket sessions to both relays, journals, APIs) in this
process. Every endpoint signs each message once and sends it over both relays.

For ``--duration`` seconds (default 150) random linked endpoints send each
other messages (about ``--rate`` a second). A third of the way in, relay ``by``
is SIGKILLed and started again ``--down`` seconds later (the endpoints must
carry on over ``osce`` and resend to ``by`` when it is back). Two thirds of the
way in, ``osce`` starts withholding ``--share`` of BY's messages: it logs and
accepts them, answers every link test, and never delivers them. Then the load
stops and delivery settles (bounded).

Counted from the endpoints' own events: ``accepted`` messages (accepted by
either relay), ``shown_once`` (message, recipient) pairs shown exactly once,
``lost`` pairs never shown, ``duplicates`` (a message shown twice to one
recipient), ``withheld`` messages ``osce`` held back, ``withheld_detected``
those every recipient it held them from flagged with a ``channel_withheld``
alarm naming ``osce`` and the message, and ``false_alarms``: any
``channel_withheld`` or ``withheld`` alarm about anything else (relay ``by``'s
kill included). Both relays' logs are exported as bundles and ``hotline audit
report`` runs over them. The last line printed is

    multipath: relays=2 accepted=A shown_once=S lost=L duplicates=D withheld=W
    withheld_detected=X false_alarms=F                        (one line)

and the exit status is non-zero unless lost=0, duplicates=0,
withheld_detected == withheld > 0 and false_alarms=0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from faults.procs import Proc, run_in_directory
from hotline.auditlog.log import AuditLog
from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.connection import Backoff
from hotline.endpoint.events import (
    EndpointEvent,
    MessageAccepted,
    MessageQueued,
    MessageReceived,
    event_name,
)
from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.keyfile import load_signing_key
from hotline.logs import configure_logging
from hotline.network import Network, network_to_toml
from hotline.network_file import load_network
from hotline.protocol.bodies import CancelBody, TextBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Deliver, decode_control
from hotline.relay.core import RelayAction, Send
from hotline.relay.server import Relay, RelayConfig, RunningRelay, create_app, open_relay
from hotline.testing.operators import add_operator
from hotline.testing.ports import free_port

ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
RELAYS: Final = ("by", "osce")
VICTIM: Final = "BY"
READY_TIMEOUT_S: Final = 60.0
SETTLE_S: Final = 60.0
DETECT_S: Final = 45.0  # withheld bound (15 s after reading the log) with room for the monitor


def _say(text: str) -> None:
    print(f"multipath: {text}", file=sys.stderr, flush=True)  # noqa: T201 - progress


class WithholdingRelay(Relay):
    """The real relay; once :attr:`share` is set it withholds that share of BY's messages.

    It logs and accepts them (the sender gets ``accepted``), answers link tests
    and delivers everything else; the withheld messages never reach a recipient.
    """

    def __init__(self, config: RelayConfig, audit_log: AuditLog) -> None:
        super().__init__(config, audit_log)
        self.share = 0.0
        self.armed_at_ms = 0
        self.withheld: dict[bytes, set[str]] = {}  # message id → recipients it was kept from

    def _chosen(self, ident: bytes) -> bool:
        digest = hashlib.sha256(ident).digest()
        return int.from_bytes(digest[:4], "big") < self.share * 2**32

    def perform(self, actions: Iterable[RelayAction]) -> None:
        if not self.share:
            super().perform(actions)
            return
        kept: list[RelayAction] = []
        for action in actions:
            if isinstance(action, Send) and self._withholds(action):
                continue
            kept.append(action)
        super().perform(kept)

    def _withholds(self, action: Send) -> bool:
        try:
            control = decode_control(action.data)
        except Exception:  # noqa: BLE001 - not a control map: not ours to judge
            return False
        if not isinstance(control, Deliver):
            return False
        try:
            body = open_envelope(control.frame, self.network, max_size=1 << 30).body
        except Exception:  # noqa: BLE001
            return False
        if not isinstance(body, WarningBody | CancelBody | TextBody) or body.sender != VICTIM:
            return False
        if body.id not in self.withheld and not self._chosen(body.id):
            return False
        if body.ts < self.armed_at_ms:
            return False  # written before the switch: delivered as usual
        self.withheld.setdefault(body.id, set()).add(action.party)
        return True


@dataclass
class Tally:
    """What the endpoints' own events say happened."""

    sent: dict[bytes, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # id → from, to
    accepted: dict[bytes, set[str]] = field(default_factory=dict)  # id → relays
    shown: Counter[tuple[bytes, str]] = field(default_factory=Counter)  # (id, recipient)
    alarms: list[tuple[str, RelaySuspected]] = field(default_factory=list)
    other_alarms: Counter[str] = field(default_factory=Counter)  # name@relay, informational

    def see(self, party: str, event: EndpointEvent) -> None:
        if isinstance(event, MessageQueued):
            self.sent[event.body.id] = (party, event.recipients)
        elif isinstance(event, MessageAccepted) and not event.receipt:
            self.accepted.setdefault(event.id, set()).add(event.relay)
        elif isinstance(event, MessageReceived):
            self.shown[(event.body.id, party)] += 1
        elif isinstance(event, RelaySuspected):
            self.alarms.append((party, event))
        if event.alarm and not isinstance(event, RelaySuspected):
            self.other_alarms[f"{event_name(event)}@{getattr(event, 'relay', '') or '-'}"] += 1


async def _follow(party: str, running: RunningEndpoint, tally: Tally) -> None:
    subscription = running.endpoint.hub.subscribe()
    while True:
        event = await subscription.next()
        if event is None:
            return
        tally.see(party, event)


def _make_network(root: Path) -> Network:
    net_dir = root / "net"
    base = create_network(net_dir, endpoints=ENDPOINTS, relays=RELAYS)
    relays = {
        rid: dataclasses.replace(r, url=f"ws://127.0.0.1:{free_port()}/v1/ws")
        for rid, r in base.relays.items()
    }
    quick = dataclasses.replace(
        base, relays=relays, relay=relays[RELAYS[0]], link_test_interval_ms=2_000,
        limits=dataclasses.replace(base.limits, messages_per_minute=100_000),
    )
    (net_dir / NETWORK_FILE).write_text(network_to_toml(quick), encoding="utf-8")
    return load_network(net_dir / NETWORK_FILE)


def _port(network: Network, relay: str) -> int:
    return int(network.relays[relay].url.rsplit(":", 1)[1].split("/")[0])


@dataclass
class Net:
    root: Path
    network: Network
    by: Proc
    osce: WithholdingRelay
    endpoints: dict[str, RunningEndpoint]


@contextlib.asynccontextmanager
async def running(root: Path, session: aiohttp.ClientSession) -> AsyncIterator[Net]:
    network = _make_network(root)
    net_dir = root / "net"
    by_port = _port(network, "by")
    by = Proc("relay-by", ["relay", "--network", str(net_dir), "--relay", "by",
                           "--data", str(root / "relay-by"), "--host", "127.0.0.1",
                           "--port", str(by_port), "--checkpoint-interval", "0.3"],
              f"http://127.0.0.1:{by_port}/healthz", root / "logs" / "relay-by.log")
    await by.start(session)
    view = network.for_relay("osce")
    osce_config = RelayConfig(
        network=view, network_toml=network_to_toml(view).encode(), data_dir=root / "relay-osce",
        key=load_signing_key(key_path(net_dir, "osce")), port=_port(network, "osce"),
        checkpoint_interval_ms=300,
    )
    osce = await open_relay(osce_config, lambda log: WithholdingRelay(osce_config, log))
    runner = await _serve(osce)
    try:
        async with contextlib.AsyncExitStack() as stack:
            endpoints: dict[str, RunningEndpoint] = {}
            for party in ENDPOINTS:
                add_operator(root / party)  # an officer may read each API and console
                endpoints[party] = await stack.enter_async_context(serve_endpoint(EndpointConfig(
                    network=network, endpoint_id=party,
                    key=load_signing_key(key_path(net_dir, party)), data_dir=root / party,
                    tick_s=0.2, monitor_s=0.3, backoff=Backoff(initial_s=0.1, max_s=1.0),
                )))
            yield Net(root, network, by, osce, endpoints)
    finally:
        await runner.stop()
        await by.stop()


async def _serve(relay: WithholdingRelay) -> RunningRelay:
    """Serve a started ``relay`` as :func:`~hotline.relay.server.start_relay` does."""
    app_runner = web.AppRunner(create_app(relay), handle_signals=False, access_log=None)
    await app_runner.setup()
    site = web.TCPSite(app_runner, relay.config.host, relay.config.port)
    await site.start()
    return RunningRelay(relay, app_runner, relay.config.port)


async def _ready(net: Net) -> None:
    """Every endpoint welcomed by both relays, each relay's checkpoint witnessed."""
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            if all(
                all(link.welcomed for link in r.endpoint.links.values())
                and all((p.witness.held is not None and p.witness.held.size > 0)
                        for p in r.endpoint.core.paths.values())
                for r in net.endpoints.values()
            ):
                return
            await asyncio.sleep(0.2)


def _text(to: str, n: int) -> dict[str, object]:
    return {"t": "text", "to": [to], "status": "exercise", "precedence": "priority",
            "text": f"multipath message {n}", "lang": "en"}


async def _load(net: Net, rate: float, stop: asyncio.Event, rng: random.Random) -> int:
    """Messages on every directed link in turn (shuffled each round), about ``rate`` a second."""
    links = [(a, b) for a in ENDPOINTS for b in net.network.peers(a)]
    n = 0
    while not stop.is_set():
        if n % len(links) == 0:
            rng.shuffle(links)
        sender, recipient = links[n % len(links)]
        await net.endpoints[sender].endpoint.post_message(_text(recipient, n), "duty")
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.expovariate(rate))
    return n


async def _settle(net: Net, tally: Tally, deadline: float) -> None:
    """Until every message accepted by a relay is shown to each recipient (bounded)."""
    while time.monotonic() < deadline:
        if not _lost(net, tally):
            return
        await asyncio.sleep(0.5)


def _lost(net: Net, tally: Tally) -> list[tuple[bytes, str]]:
    return [
        (ident, party)
        for ident in tally.accepted
        for party in tally.sent.get(ident, ("", ()))[1]
        if tally.shown[(ident, party)] == 0
    ]


def _detected(net: Net, tally: Tally) -> tuple[int, int]:
    """(withheld messages flagged at every recipient kept from them, false alarms)."""
    flagged: set[tuple[bytes, str]] = set()
    false = 0
    for party, alarm in tally.alarms:
        if alarm.kind not in (AlarmKind.CHANNEL_WITHHELD, AlarmKind.WITHHELD):
            continue
        kept = net.osce.withheld.get(alarm.ref, set())
        if alarm.kind is AlarmKind.CHANNEL_WITHHELD and alarm.relay == "osce" and party in kept:
            flagged.add((alarm.ref, party))
        else:
            false += 1
            _say(f"false alarm at {party}: {alarm.kind} {alarm.relay} {alarm.sentence}")
    detected = sum(
        all((ident, party) in flagged for party in parties)
        for ident, parties in net.osce.withheld.items()
    )
    return detected, false


def _export_and_report(net: Net) -> bool:
    """Export both relays' logs and run ``hotline audit report`` over the two bundles."""
    bundles = []
    for relay, logdir in (("by", net.root / "relay-by"), ("osce", net.root / "relay-osce")):
        out = net.root / "bundles" / relay
        done = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "hotline", "audit", "export", str(logdir), "--out", str(out),
             "--network", str(net.root / "net")],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            _say(f"export of {relay} failed: {done.stderr.strip()}")
            return False
        bundles.append(str(out))
    report = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "hotline", "audit", "report", *bundles,
         "--network", str(net.root / "net")],
        capture_output=True, text=True, check=False,
    )
    sys.stderr.write(report.stdout)
    if report.returncode != 0:
        _say(f"audit report failed: {report.stderr.strip()}")
        return False
    ok = True
    # the two logs hold the same messages; each endpoint's journal agrees with each log
    checks = [["compare", *bundles]] + [
        ["compare", bundle, *(str(net.root / party) for party in ENDPOINTS)]
        for bundle in bundles
    ]
    for check in checks:
        done = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "hotline", "audit", *check, "--network",
             str(net.root / "net")],
            capture_output=True, text=True, check=False,
        )
        last = (done.stdout.strip().splitlines() or [""])[-1]
        _say(f"audit {' '.join(Path(a).name for a in check)}: {last}")
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            ok = False
    return ok


async def run(root: Path, args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)  # noqa: S311 - the load's shape, not a secret
    tally = Tally()
    async with aiohttp.ClientSession() as session, running(root, session) as net:
        followers = [asyncio.create_task(_follow(p, r, tally))
                     for p, r in net.endpoints.items()]
        await _ready(net)
        _say(f"ready; load for {args.duration:.0f} s at about {args.rate}/s")
        stop = asyncio.Event()
        load = asyncio.create_task(_load(net, args.rate, stop, rng))
        await asyncio.sleep(args.duration / 3)
        _say("SIGKILL relay by")
        await net.by.kill()
        await asyncio.sleep(args.down)
        await net.by.start(session)
        _say("relay by is back")
        await asyncio.sleep(args.duration / 3 - args.down)
        _say(f"relay osce withholds {args.share:.0%} of {VICTIM}'s messages from now on")
        net.osce.armed_at_ms = int(time.time() * 1000)
        net.osce.share = args.share
        await asyncio.sleep(args.duration / 3)
        stop.set()
        sent = await load
        _say(f"load stopped after {sent} messages; settling")
        await _settle(net, tally, time.monotonic() + SETTLE_S)
        await asyncio.sleep(DETECT_S)  # past the withheld bound for the last ones
        lost = _lost(net, tally)
        duplicates = sum(1 for count in tally.shown.values() if count > 1)
        shown_once = sum(1 for count in tally.shown.values() if count == 1)
        withheld = len(net.osce.withheld)
        detected, false_alarms = _detected(net, tally)
        kinds = Counter(f"{alarm.kind}@{alarm.relay or '-'}" for _p, alarm in tally.alarms)
        _say("alarms raised: " + (", ".join(f"{k}={n}" for k, n in sorted(kinds.items()))
                                  or "none"))
        _say("other alarms (the kill of relay by, expected): " + (", ".join(
            f"{k}={n}" for k, n in sorted(tally.other_alarms.items())) or "none"))
        for follower in followers:
            follower.cancel()
    reported = _export_and_report(net)
    print(  # noqa: T201 - the run's result line
        f"multipath: relays={len(RELAYS)} accepted={len(tally.accepted)} "
        f"shown_once={shown_once} lost={len(lost)} duplicates={duplicates} "
        f"withheld={withheld} withheld_detected={detected} false_alarms={false_alarms}",
        flush=True,
    )
    ok = (not lost and not duplicates and withheld > 0 and detected == withheld
          and not false_alarms and reported)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.multipath", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=1.5, help="messages a second, about")
    parser.add_argument("--down", type=float, default=6.0, help="seconds relay by stays dead")
    parser.add_argument("--share", type=float, default=0.5,
                        help="share of BY's messages osce withholds once armed")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args(argv)
    if not 0 < args.share <= 1:
        parser.error("--share must be in (0, 1]")
    if args.duration < 3 * args.down + 15:
        parser.error("--duration must leave room for the kill and the withholding")
    configure_logging(level=40)  # errors only: the harness prints its own lines
    return run_in_directory(args.keep, "hotline-multipath-", lambda root: run(root, args))


if __name__ == "__main__":
    sys.exit(main())
