"""The relay core's send heaps send what the scan of the whole queue they replaced sent.

The scan is the core as of commit 914c8bd, read from git into a temporary module (skipped
where that history is not at hand). Both cores are driven through the same random
sequences of warnings, receipts, duplicates, sessions, ticks, snapshots and a follower
replica; every log entry, note and close must be the same and in the same order, and so
must what each party is sent (the core now forwards a logged envelope before it signs
the sender's ``accepted``, so sends to different parties may interleave otherwise). The
scan is given the resend backoff the core keeps now (``_with_backoff``): after 1, 2, 4,
8 and then 16 retry intervals on one session; and counting a message's sends on from the
last attempt logged (by a replica it follows) or saved in a snapshot.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hotline.protocol.bodies import Body, LinkTestBody, ReceiptBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Deliver, decode_control
from hotline.protocol.vocab import Precedence, Stage
from hotline.relay.core import RESEND_DOUBLINGS
from tests.endpoint.builders import Author
from tests.relay.test_core import NET, NOW, RETRY, receipt

SCAN_REVISION = "914c8bd"
PARTIES = ("BY", "LT", "LV", "EE", "PL")


@pytest.fixture(scope="module")
def scan_core(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = Path(__file__).resolve().parents[2]
    try:
        source = subprocess.run(
            ["git", "show", f"{SCAN_REVISION}:hotline/relay/core.py"], cwd=root,
            capture_output=True, check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"the core as of {SCAN_REVISION} is not in this checkout's history")
    path = tmp_path_factory.mktemp("scan") / "scan_core.py"
    path.write_bytes(_with_backoff(source))
    spec = importlib.util.spec_from_file_location("scan_core", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scan_core"] = module
    spec.loader.exec_module(module)
    return module


_BACKOFF = (  # the scan core given the resend backoff both must now follow, by its own means
    (b"    attempts: int = 0\n", b"    attempts: int = 0\n    session_sends: int = 0\n"),
    (b"or now - p.last_sent >= self.network.limits.retry_interval_ms\n",
     b"or now - p.last_sent >= self.network.limits.retry_interval_ms"
     b" << min(p.session_sends - 1, %d)\n" % RESEND_DOUBLINGS),
    (b"            pending.last_sent = now\n",
     b"            pending.last_sent = now\n"
     b"            pending.session_sends = 1 if force else pending.session_sends + 1\n"),
)


_ATTEMPTS_RESTORED = (  # ... and counting sends on from the last attempt logged or saved
    (b"                    message.overdue_sent.add(key)\n",
     b"                    message.overdue_sent.add(key)\n"
     b"            elif decoded.kind is EntryKind.REDELIVERED:\n"
     b"                f = decoded.event.fields\n"
     b"                p = self._queues.get(str(f.get('recipient')), {}).get(f.get('ref'))\n"
     b"                if p is not None:\n"
     b"                    p.attempts = max(p.attempts, f['attempt'])\n"),
    (b"                for party, kept in self._receipts_for.items()\n            },\n",
     b"                for party, kept in self._receipts_for.items()\n            },\n"
     b"            'attempts': [[r, i, p.attempts] for r, q in self._queues.items()\n"
     b"                         for i, p in q.items() if p.attempts],\n"),
    (b"                self._receipts_for[party].extend((int(i), bytes(f)) for i, f in kept)\n",
     b"                self._receipts_for[party].extend((int(i), bytes(f)) for i, f in kept)\n"
     b"        for r, i, n in state.get('attempts', []):\n"
     b"            p = self._queues.get(r, {}).get(i)\n"
     b"            if p is not None:\n"
     b"                p.attempts = max(p.attempts, n)\n"),
)


def _with_backoff(source: bytes) -> bytes:
    """The scan core, resending after 1, 2, 4, 8 and then 16 retry intervals on a session,
    and counting a message's sends on from the last attempt logged or saved."""
    for old, new in (*_BACKOFF, *_ATTEMPTS_RESTORED):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def _made(module: Any) -> Any:
    counter = iter(range(1, 1 << 30))
    return module.RelayCore(NET.network, NET.keys["relay"],
                            lambda n: next(counter).to_bytes(n, "big"))


class _Side:
    """One core and the log it appends to, entries durable at once and in order."""

    def __init__(self, core: Any, module: Any) -> None:
        self.core, self.m = core, module
        self.log: list[bytes] = []
        self.followed = 0

    def run(self, actions: list[Any], now: int) -> list[object]:
        out: list[object] = []
        for action in actions:
            if isinstance(action, self.m.Append):
                index = len(self.log)
                self.log.append(action.entry)
                out.append(("append", action.entry))
                out.extend(self.run(self.core.appended(action.token, index, now), now))
            elif isinstance(action, self.m.LogLine):
                out.append(("note", action.event, sorted(action.fields.items())))
            elif isinstance(action, self.m.Send):
                out.append(("send", action.party, action.data))
            elif isinstance(action, self.m.Broadcast):
                out.append(("broadcast", action.data))
            elif isinstance(action, self.m.Close):
                out.append(("close", action.party, action.code, action.reason))
            else:
                raise TypeError(f"unknown action {action!r}")
        return out


def _per_party(out: list[object]) -> tuple[list[object], dict[object, list[object]]]:
    """Everything but sends, in order; and each party's sends, in order."""
    others: list[object] = []
    sends: dict[object, list[object]] = {}
    for item in out:
        if isinstance(item, tuple) and item[0] == "send":
            sends.setdefault(item[1], []).append(item[2])
        else:
            others.append(item)
    return others, sends


def _delivered(out: list[object]) -> list[tuple[str, Body]]:
    got: list[tuple[str, Body]] = []
    for item in out:
        if isinstance(item, tuple) and item[0] == "send":
            control = decode_control(item[2])
            if isinstance(control, Deliver):
                body = open_envelope(control.frame, NET.network).body
                if not isinstance(body, ReceiptBody):
                    got.append((item[1], body))
    return got


def _scenario(scan: ModuleType, seed: int) -> None:
    rng = random.Random(seed)
    import hotline.relay.core as heap  # noqa: PLC0415 - the module under test, by name

    sides = [_Side(_made(scan), scan), _Side(_made(heap), heap)]
    followers = [_Side(_made(scan), scan), _Side(_made(heap), heap)]
    author = Author(NET)
    now = NOW
    online: set[str] = set()
    sent: list[tuple[str, bytes]] = []  # (sender, frame) for duplicates
    owed_answers: list[tuple[str, Body]] = []
    for step in range(120):
        roll = rng.random()
        frames: list[tuple[str, bytes]] = []
        if roll < 0.25:
            sender = rng.choice(PARTIES)
            others = [p for p in PARTIES if p != sender]
            to: Any = "*" if rng.random() < 0.15 else tuple(
                sorted(rng.sample(others, rng.randint(1, 3))))
            warning = author.warning(sender=sender, to=to, ts=now,
                                  precedence=rng.choice(list(Precedence)))
            frame = NET.seal(warning)
            sent.append((sender, frame))
            frames.append((sender, frame))
        elif roll < 0.32 and sent:
            frames.append(rng.choice(sent))  # a duplicate, or a resend
        elif roll < 0.5 and owed_answers:
            party, answered = owed_answers.pop(rng.randrange(len(owed_answers)))
            stage = rng.choice([Stage.DELIVERED, Stage.ACKNOWLEDGED, Stage.DELIVERED,
                                Stage.REJECTED])
            if isinstance(answered, LinkTestBody):
                stage = Stage.DELIVERED
            frames.append((party, receipt(author, party, answered, stage, now)))
        roll2 = rng.random()
        toggled = rng.choice(PARTIES)
        results = []
        for side in sides:
            out: list[object] = []
            for party, frame in frames:
                out.extend(side.run(side.core.receive(party, frame, now), now))
            if roll2 < 0.12:
                if toggled in online:
                    out.extend(side.run(side.core.disconnected(toggled, "gone", now), now))
                else:
                    out.extend(side.run(side.core.connected(toggled, now), now))
            elif roll2 < 0.6:
                out.extend(side.run(side.core.tick(now), now))
            results.append(out)
        assert _per_party(results[0]) == _per_party(results[1]), (
            f"seed {seed} step {step}: leader differs")
        if roll2 < 0.12:
            online.symmetric_difference_update({toggled})
        owed_answers.extend(_delivered(results[1]))
        # the follower replica: same parties online, applies the leader's entries
        fresults = []
        for follower, leader in zip(followers, sides, strict=True):
            out = []
            for party in sorted(online - follower.core.online):
                out.extend(follower.run(follower.core.connected(party, now), now))
            for party in sorted(follower.core.online - online):
                out.extend(follower.run(follower.core.disconnected(party, "gone", now), now))
            while follower.followed < len(leader.log):
                actions, _, _ = follower.core.follow(
                    follower.followed, leader.log[follower.followed], now)
                follower.followed += 1
                follower.log.append(b"")
                out.extend(follower.run(actions, now))
            if roll2 >= 0.6:
                out.extend(follower.run(follower.core.tick(now), now))
            fresults.append(out)
        assert _per_party(fresults[0]) == _per_party(fresults[1]), (
            f"seed {seed} step {step}: follower differs")
        for party in PARTIES:
            assert sides[0].core.queued_for(party) == sides[1].core.queued_for(party)
        if rng.random() < 0.04:  # a restart from a snapshot, the same sessions reconnecting
            for side, module in zip(sides, (scan, heap), strict=True):
                state = side.core.state()
                side.core = _made(module)
                side.core.load_state(state)
            results = [[], []]
            for side, out in zip(sides, results, strict=True):
                for party in sorted(online):
                    out.extend(side.run(side.core.connected(party, now), now))
            assert _per_party(results[0]) == _per_party(results[1]), (
                f"seed {seed} step {step}: snapshot differs")
            owed_answers.extend(_delivered(results[1]))
        now += rng.choice([0, 1, RETRY // 3, RETRY - 1, RETRY, RETRY + 1, 2 * RETRY, 7_000])
    assert sides[0].log == sides[1].log


@pytest.mark.parametrize("seed", range(12))
def test_send_heaps_send_what_the_scan_sent(scan_core: ModuleType, seed: int) -> None:
    """Random warnings, receipts, duplicates, sessions, ticks, snapshots and a follower:
    the core with send heaps acts exactly as the core that scanned each queue."""
    _scenario(scan_core, seed)

