"""Benchmark of the audit log: durable appends, opening large logs, verifying bundles.

    python bench/auditlog.py --network NET --dir DIR --records K [--open-sizes 10000,100000]

Writes a real log of K signed envelopes (warnings from BY, delivered and
acknowledged receipts from the recipients, link tests and their receipts) into
DIR through the file store and group commit, a third at each of 1, 16 and 256
concurrent appenders, then signs a checkpoint, so that
``hotline audit export DIR --out BUNDLE --network NET`` works on it. Prints:

- durable appends/s, records per fsync and p99 append latency per concurrency;
- time and peak RSS to open logs of the --open-sizes (each opened in a fresh
  process; the growth column is what opening added to the peak);
- ``audit verify`` entries/s on the exported bundle, beside this machine's
  Ed25519 verify ceiling on two threads.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hotline.auditlog.bundle import Bundle, export_bundle
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.log import STORE_DIR, AuditLog
from hotline.auditlog.verify import verify_bundle
from hotline.bootstrap import NETWORK_FILE, key_path
from hotline.keyfile import load_signing_key
from hotline.logs import configure_logging
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.keys import SigningKey
from hotline.testing.traffic import START_MS, Traffic


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _append_phase(log: AuditLog, entries: list[bytes], concurrency: int) -> dict[str, float]:
    it = iter(entries)
    latencies: list[float] = []
    before = log.committer.stats

    async def appender() -> None:
        for entry in it:
            started = time.perf_counter()
            await log.append(entry)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    after = log.committer.stats
    batches = after.batches - before.batches
    return {
        "concurrency": concurrency,
        "records": len(entries),
        "appends_per_s": len(entries) / elapsed,
        "records_per_fsync": (after.records - before.records) / batches if batches else 0.0,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


async def write_log(directory: Path, network: Network, keys: dict[str, SigningKey],
                    records: int) -> list[dict[str, float]]:
    traffic = Traffic(network, keys, {})
    entries = [
        encode_envelope_entry(START_MS + i, frame)
        for i, frame in enumerate(traffic.frames(records))
    ]
    log = AuditLog.open_directory(directory, origin=network.relay.origin,
                                  key=keys[network.relay.id])
    phases = []
    try:
        third = len(entries) // 3
        cuts = [0, third, 2 * third, len(entries)]
        for n, concurrency in enumerate((1, 16, 256)):
            phases.append(await _append_phase(log, entries[cuts[n]:cuts[n + 1]], concurrency))
        await asyncio.to_thread(log.checkpoint)
    finally:
        await log.close()
    return phases


# Peak RSS is read from VmHWM: unlike ru_maxrss it starts afresh at exec, so the
# parent's memory does not leak into the child's figure.
_OPEN_PROBE = """
import logging, sys, time
def hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from hotline.logs import configure_logging
from hotline.auditlog.filestore import FileStore
configure_logging(level=logging.WARNING)
before = hwm_kib()
started = time.perf_counter()
store = FileStore(sys.argv[1])
root = store.frontier().root()
elapsed = time.perf_counter() - started
print(elapsed, hwm_kib(), hwm_kib() - before, store.size)
"""


def _fill(directory: Path, size: int, sample: list[bytes]) -> None:
    store = FileStore(directory)
    try:
        batch = 4096
        for start in range(store.size, size, batch):
            store.append_batch([sample[(start + i) % len(sample)]
                                for i in range(min(batch, size - start))])
    finally:
        store.close()


def open_figures(
    scratch: Path, sizes: Sequence[int], sample: list[bytes]
) -> list[dict[str, float]]:
    out = []
    for size in sizes:
        directory = scratch / f"open-{size}"
        _fill(directory, size, sample)
        probe = subprocess.run([sys.executable, "-c", _OPEN_PROBE, str(directory)],
                               capture_output=True, text=True, check=True).stdout.split()
        out.append({
            "records": size,
            "open_s": float(probe[0]),
            "peak_rss_mib": int(probe[1]) / 1024,
            "rss_growth_mib": int(probe[2]) / 1024,
        })
        shutil.rmtree(directory)
    return out


def ed25519_ceiling(key: SigningKey, threads: int = 2, count: int = 20_000) -> float:
    message = b"x" * 400
    signature = key.sign(message)
    public = key.public

    def work(n: int) -> None:
        for _ in range(n):
            public.verify(signature, message)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, [count // threads] * threads))
    return count / (time.perf_counter() - started)


def verify_figures(directory: Path, network: Network, network_toml: bytes,
                   scratch: Path) -> dict[str, float]:
    bundle_dir = scratch / "bundle"
    store = FileStore(directory / STORE_DIR)
    try:
        note = (directory / "checkpoint").read_bytes()
        export_bundle(store, note, store.size, network_toml, bundle_dir)
    finally:
        store.close()
    bundle = Bundle(bundle_dir, network)
    started = time.perf_counter()
    report = verify_bundle(bundle)
    elapsed = time.perf_counter() - started
    return {"entries": report.size, "entries_per_s": report.size / elapsed}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", required=True, type=Path, help="network.toml or its dir")
    parser.add_argument("--dir", required=True, type=Path, help="where to write the log")
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--open-sizes", default="10000,100000,1000000",
                        help="comma-separated log sizes to time opening ('' to skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)

    net_file = args.network / NETWORK_FILE if args.network.is_dir() else args.network
    network = load_network(net_file)
    keys = {p: load_signing_key(key_path(net_file.parent, p))
            for p in (network.relay.id, *network.endpoints)}
    if args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"{args.dir} is not empty")

    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    figures: dict[str, object] = {"machine": machine}
    appends = asyncio.run(write_log(args.dir, network, keys, args.records))
    figures["appends"] = appends
    print(f"log: {args.records} records in {args.dir}")
    print("concurrency  appends/s  records/fsync  p99 ms")
    for row in appends:
        print(f"{int(row['concurrency']):>11}  {row['appends_per_s']:>9.0f}  "
              f"{row['records_per_fsync']:>13.1f}  {row['p99_ms']:>6.2f}")

    with tempfile.TemporaryDirectory(dir=args.dir.parent) as scratch_name:
        scratch = Path(scratch_name)
        sizes = [int(s) for s in args.open_sizes.split(",") if s.strip()]
        if sizes:
            frames = Traffic(network, keys, {}).frames(512)
            sample = [encode_envelope_entry(START_MS, f) for f in frames]
            opens = open_figures(scratch, sizes, sample)
            figures["open"] = opens
            print("records     open s  peak RSS MiB  growth while opening MiB")
            for row in opens:
                print(f"{int(row['records']):>9}  {row['open_s']:>8.3f}  "
                      f"{row['peak_rss_mib']:>12.1f}  {row['rss_growth_mib']:>24.1f}")
        verify = verify_figures(args.dir, network, net_file.read_bytes(), scratch)
    ceiling = ed25519_ceiling(keys[network.relay.id])
    verify["ed25519_ceiling_per_s"] = ceiling
    verify["share_of_ceiling"] = verify["entries_per_s"] / ceiling
    figures["verify"] = verify
    print(f"audit verify: {verify['entries_per_s']:.0f} entries/s; Ed25519 ceiling on 2 threads "
          f"{ceiling:.0f}/s ({verify['share_of_ceiling']:.0%})")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    digest = hashlib.sha256(json.dumps(appends).encode()).hexdigest()[:8]
    print(f"figures id {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
