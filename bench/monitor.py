"""What an endpoint's log monitor costs: CPU per log entry it reads and checks.

    python bench/monitor.py [--entries 6000] [--json FILE]

Since the hostile-relay work every endpoint reads every log entry under each
checkpoint it witnessed and hands it to its guard
(:meth:`hotline.endpoint.guard.Guard.logged`), which checks the log's rules
(:class:`hotline.auditlog.rules.LogRules`: decode, signature, schema, ids,
``seq``, receipts) and matches the entry against what the relay claimed. This
times that call, in CPU of this thread, over real signed entries of a
plausible exchange (:class:`hotline.testing.traffic.Traffic`: warnings, their
receipts, link tests), and beside it the Ed25519 verification alone of the
same envelopes, so that the Python share is visible. Also timed: an
endpoint's check of one relay-signed ``accepted`` (``open_envelope``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import TypeVar

from hotline.auditlog.leaf import encode_envelope_entry
from hotline.bootstrap import NETWORK_FILE, create_network, key_path
from hotline.endpoint.guard import Guard
from hotline.keyfile import load_signing_key
from hotline.network_file import load_network
from hotline.protocol.bodies import AcceptedBody
from hotline.protocol.envelope import open_envelope, read_envelope, seal
from hotline.protocol.ids import make_id
from hotline.testing.traffic import START_MS, Traffic

T = TypeVar("T")


def _cpu_us_each(items: Sequence[T], work: Callable[[T], object]) -> float:
    """CPU µs of this thread per item for ``work(item)`` over all ``items``."""
    started = time.thread_time_ns()
    for item in items:
        work(item)
    return (time.thread_time_ns() - started) / len(items) / 1000


def measure(entries: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hotline-monitor-") as scratch:
        create_network(Path(scratch), relay_url="ws://127.0.0.1:9/v1/ws")
        network = load_network(Path(scratch) / NETWORK_FILE)
        parties = (network.relay.id, *network.endpoints)
        keys = {p: load_signing_key(key_path(Path(scratch), p)) for p in parties}
    frames = list(islice(Traffic(network, keys).frames(entries), entries))
    logged = [encode_envelope_entry(START_MS + n, frame) for n, frame in enumerate(frames)]
    me = sorted(network.endpoints)[0]

    guard = Guard(network, me, received=lambda _ident: True)
    index = iter(range(len(logged)))
    per_entry = _cpu_us_each(logged, lambda entry: guard.logged(next(index), entry, START_MS))
    assert guard.covered == len(logged)

    signed = [read_envelope(frame, network) for frame in frames]
    verify = _cpu_us_each(signed, lambda s: s.signature_valid())

    relay = network.relay.id
    accepted = [seal(AcceptedBody(id=make_id(START_MS, n.to_bytes(10, "big")), sender=relay,
                                  ts=START_MS, seq=n, kid=keys[relay].public.kid,
                                  ref=make_id(START_MS, b"\x01" * 10), hash=b"\x02" * 32,
                                  index=n), keys[relay]) for n in range(1, 2001)]
    check_accepted = _cpu_us_each(accepted, lambda frame: open_envelope(frame, network))
    return {
        "entries": len(logged),
        "monitor_us_per_entry": round(per_entry, 1),
        "verify_us_per_entry": round(verify, 1),
        "accepted_check_us": round(check_accepted, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=6000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.entries < 1:
        parser.error("--entries must be at least 1")
    figures = measure(args.entries)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
