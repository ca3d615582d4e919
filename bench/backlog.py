"""What the relay's core costs while a connected recipient owes more and more.

    python bench/backlog.py [--owed 20000] [--json FILE]

A hung endpoint can keep its session open and answer nothing: every message
to it stays owed, and is sent again each retry interval. This drives the
relay's sans-IO core alone (no sockets, no disk: each append is durable at
once) with ``--owed`` flash messages from BY to such an LT, one every 10 ms
of the core's clock, and prints the CPU µs the core spends per message over
the first tenth and over the rest, and per tick once all are owed (the
deadlines missed so far are logged by one tick first, not timed). The
signatures are real: the sender's, and the relay's ``accepted``. What grows
with what is owed is the resends: each owed message is sent again, and its
``redelivered`` event logged, after 1, 2, 4, 8 and then every 16 retry
intervals while the session lasts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.keyfile import load_signing_key
from hotline.network import Limits
from hotline.network_file import load_network
from hotline.protocol.bodies import TextBody
from hotline.protocol.envelope import seal
from hotline.protocol.ids import make_id
from hotline.protocol.vocab import Precedence, Status
from hotline.relay.core import Append, RelayAction, RelayCore
from hotline.testing.traffic import START_MS

STEP_MS = 10


def measure(owed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hotline-backlog-") as scratch:
        create_network(Path(scratch), relay_url="ws://127.0.0.1:9/v1/ws")
        network = load_network(Path(scratch) / NETWORK_FILE)
        keys = {p: load_signing_key(key_path(Path(scratch), p))
                for p in (network.relay.id, "BY")}
    # no rate limit in the way: the backlog is the point
    network = dataclasses.replace(
        network, limits=dataclasses.replace(network.limits, messages_per_minute=10**9)
    )
    assert isinstance(network.limits, Limits)
    frames = [
        seal(TextBody(id=make_id(START_MS + n * STEP_MS, n.to_bytes(10, "big")), sender="BY",
                         ts=START_MS + n * STEP_MS, seq=n + 1, kid=keys["BY"].public.kid,
                         to=("LT",), status=Status.EXERCISE, precedence=Precedence.FLASH,
                         text=f"message {n}", lang="en"), keys["BY"])
        for n in range(owed)
    ]
    counter = itertools.count(1)
    core = RelayCore(network, keys[network.relay.id], lambda n: next(counter).to_bytes(n, "big"))
    size = itertools.count()

    def run(actions: Iterable[RelayAction], now: int) -> None:
        for action in actions:
            if isinstance(action, Append):  # durable at once, at the next index
                run(core.appended(action.token, next(size), now), now)

    core.connected("BY", START_MS)
    core.connected("LT", START_MS)
    first = owed // 10
    spent: list[float] = []
    started = time.thread_time_ns()
    for n, frame in enumerate(frames):
        now = START_MS + n * STEP_MS
        run(core.receive("BY", frame, now), now)
        if n + 1 in (first, owed):
            spent.append((time.thread_time_ns() - started) / 1000)
            started = time.thread_time_ns()
    assert core.pending_count() == owed, "every message is owed to LT"
    end = START_MS + owed * STEP_MS
    run(core.tick(end), end)  # the deadlines missed so far are logged: not timed
    ticks = 50
    started = time.thread_time_ns()
    for k in range(1, ticks + 1):
        run(core.tick(end + k), end + k)
    tick = (time.thread_time_ns() - started) / 1000 / ticks
    return {
        "owed": owed,
        "us_per_message_first_tenth": round(spent[0] / first, 1),
        "us_per_message_rest": round(spent[1] / (owed - first), 1),
        "us_per_tick_nothing_due": round(tick, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--owed", type=int, default=20_000, help="messages owed at the end")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.owed < 10:
        parser.error("--owed must be at least 10")
    figures = measure(args.owed)
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
