"""hotline beside NATS JetStream and Mosquitto: one request/acknowledge workload on each.

    python bench/compare.py [--rounds 3] [--seconds 4] [--systems hotline,nats,mosquitto]

A sends a warning (hotline's ~550-byte signed frame; opaque bytes of the same
size on the peers), it reaches B, and B's acknowledgement reaches A; with one
round trip in flight (``reqack-w1``) and with up to 100 (``reqack-w100``).
See ``bench/peers/`` for exactly what each system does. ``floor`` is hotline's
clients on a relay that does only the per-message work the protocol requires
(``peers.floor_relay``), in hotline's stack: the least CPU such a relay can
spend per round trip. ``nats-ed25519`` is
the NATS workload with hotline's Ed25519 signing and verification in its
clients; ``ceiling`` (``reqack-w100`` only) is no system but the machine's
signature ceiling: one process per core doing nothing but the Ed25519
operations of a hotline round trip (``peers.signatures``). The hotline and
floor rows carry ``sig_us_per_msg``, the relay's mandatory signature CPU per
round trip, timed right after each of their runs.

Every server runs on 127.0.0.1 on a port the OS picks, with throw-away state,
for the whole run, and is stopped by its PID at the end. Rounds are
interleaved, the order of the systems rotated by one each round; each
(system, mode) run has a warm-up that is not counted, then at most
``--messages`` round trips in at most ``--seconds``. Writes:

- ``OUT/latest.json``: one row per system, mode and round;
- ``OUT/latest.md``: medians and same-round ratios (also printed);
- the chart (``--chart``, default ``docs/bench-peers.svg``);
- with ``--profile``: ``OUT/relay-profile-MODE.txt`` (py-spy, folded stacks) and
  ``OUT/relay-profile-MODE.md``, from one more hotline run per mode after the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from peers.chart import svg_chart
from peers.floor_peer import floor_peer
from peers.hotline_peer import HotlinePeer, frame_sizes, prepare_network
from peers.mqtt_peer import MosquittoPeer
from peers.procstat import cpu_seconds
from peers.profile import read_folded, start_recording
from peers.report import markdown, medians
from peers.servers import Server, binary, ensure_installed, start_mosquitto, start_nats
from peers.signatures import SignatureOp, ceiling, relay_cpu_us, round_trip_ops
from peers.workload import MODES, Driver, Mode, Row

from hotline.logs import configure_logging

SYSTEMS: Final = ("hotline", "hotline-cluster", "floor", "nats", "nats-ed25519", "mosquitto",
                  "ceiling")
CEILING: Final = "ceiling"
CEILING_MODE: Final = "reqack-w100"
FLOOR: Final = "floor"
# The Debian packages each system needs.
PACKAGES: Final = {"hotline-cluster": ("nats-server",), "nats": ("nats-server",),
                   "nats-ed25519": ("nats-server",), "mosquitto": ("mosquitto",)}
BENCH: Final = Path(__file__).resolve().parent


@dataclass
class Bench:
    """The servers and connected clients of every system in this run."""

    servers: list[Server] = field(default_factory=list)
    drivers: dict[str, Driver] = field(default_factory=dict)
    hotline: HotlinePeer | None = None
    ops: tuple[SignatureOp, ...] = ()

    async def close(self) -> None:
        for driver in self.drivers.values():
            try:
                await asyncio.wait_for(driver.peer.close(), 15)
            except Exception as exc:  # noqa: BLE001 - closing must reach every server
                print(f"closing {driver.peer.name}: {exc!r}", file=sys.stderr)
        for server in self.servers:
            server.stop()


def signs_as_relay(system: str) -> bool:
    """Whether the system's server does the relay's signature work (its rows carry it)."""
    return system.startswith("hotline") or system == FLOOR


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine(systems: Sequence[str], sizes: tuple[int, int]) -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().split()[1]
    facts = {
        "machine": f"{os.cpu_count()} cores ({cpu}), {int(memory) / 1024 / 1024:.0f} GiB, "
                   f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "payloads": f"warning {sizes[0]} bytes, acknowledgement {sizes[1]} bytes",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    if {"nats", "nats-ed25519", "hotline-cluster"} & set(systems):
        facts["nats-server"] = _version([binary("nats-server") or "nats-server", "--version"])
    if "mosquitto" in systems:
        facts["mosquitto"] = _version([binary("mosquitto") or "mosquitto", "-h"])
    return facts


async def open_bench(systems: Sequence[str], scratch: Path, bench: Bench) -> tuple[int, int]:
    config = prepare_network(scratch / "net", "ws://127.0.0.1:8700/v1/ws")
    sizes = await frame_sizes(config)
    bench.ops = await round_trip_ops(config)
    if "hotline" in systems:
        bench.hotline = HotlinePeer(config, scratch / "hotline")
        bench.drivers["hotline"] = Driver(bench.hotline)
    if FLOOR in systems:
        bench.drivers[FLOOR] = Driver(floor_peer(config, scratch / FLOOR))
    if "hotline-cluster" in systems:
        # Imported here so that the other systems run without nats-py installed.
        from peers.cluster_peer import HotlineClusterPeer  # noqa: PLC0415

        bench.drivers["hotline-cluster"] = Driver(
            HotlineClusterPeer(config, scratch / "hotline-cluster")
        )
    if "nats" in systems:
        # Imported here so that hotline and Mosquitto run without nats-py installed.
        from peers.nats_peer import NatsPeer  # noqa: PLC0415

        server = start_nats(scratch)
        bench.servers.append(server)
        bench.drivers["nats"] = Driver(NatsPeer(server.port, server.pid, warning_size=sizes[0],
                                                ack_size=sizes[1]))
    if "nats-ed25519" in systems:
        from peers.nats_ed25519_peer import NatsEd25519Peer  # noqa: PLC0415

        server = start_nats(scratch / "nats-ed25519")
        bench.servers.append(server)
        bench.drivers["nats-ed25519"] = Driver(NatsEd25519Peer(
            server.port, server.pid, warning_size=sizes[0], ack_size=sizes[1]))
    if "mosquitto" in systems:
        server = start_mosquitto(scratch)
        bench.servers.append(server)
        bench.drivers["mosquitto"] = Driver(MosquittoPeer(
            server.port, server.pid, warning_size=sizes[0], ack_size=sizes[1]))
    for driver in bench.drivers.values():
        await driver.connect()
    return sizes


async def run_rounds(bench: Bench, systems: Sequence[str], modes: Sequence[Mode],
                     args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    print(f"{'round':>5}  {'system':<10} {'mode':<12} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'server µs':>10} {'client µs':>10}")
    for number in range(args.rounds):
        shift = number % len(systems)
        for system in [*systems[shift:], *systems[:shift]]:
            for mode in modes:
                if system == CEILING:
                    if mode.name != CEILING_MODE:
                        continue
                    found = await asyncio.to_thread(ceiling, bench.ops, args.seconds)
                    row = Row.of(system, mode.name, number, found.sample)
                else:
                    sample = await bench.drivers[system].measure(
                        mode.window, warmup=args.warmup, count=args.messages,
                        seconds=args.seconds
                    )
                    signatures = (relay_cpu_us(bench.ops) if signs_as_relay(system)
                                  else None)
                    row = Row.of(system, mode.name, number, sample, sig_us_per_msg=signatures)
                rows.append(row)
                print(f"{number:>5}  {system:<10} {mode.name:<12} {row.msgs_per_s:>9,.0f} "
                      f"{row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {row.server_cpu_us_per_msg:>10,.0f}"
                      f" {row.client_cpu_us_per_msg:>10,.0f}", flush=True)
    return rows


async def profile_relay(bench: Bench, mode: Mode, args: argparse.Namespace) -> None:
    """One more hotline run with py-spy sampling the relay; folded and summarised."""
    assert bench.hotline is not None
    args.out.mkdir(parents=True, exist_ok=True)
    folded = args.out / f"relay-profile-{mode.name}.txt"
    seconds = max(3.0, args.seconds)
    await bench.hotline.fresh()
    pid = bench.hotline.server_pids[0]
    recorder = start_recording(pid, seconds, folded)
    before = cpu_seconds(pid)
    sample = await bench.drivers["hotline"].measure(
        mode.window, warmup=0, count=1_000_000, seconds=seconds + 0.5, fresh=False
    )
    busy = (cpu_seconds(pid) - before) / sample.seconds
    _, errors = await asyncio.to_thread(recorder.communicate)
    if recorder.returncode != 0 or not folded.exists():
        print(f"py-spy failed ({recorder.returncode}): {errors.decode(errors='replace')[-500:]}",
              file=sys.stderr)
        return
    table = read_folded(folded).table()
    rate = sample.messages / sample.seconds
    summary = (f"# Relay profile under {mode.name}\n\n{rate:,.0f} round trips/s while sampled; "
               f"the relay process used {busy:.0%} of one core.\n\n")
    report = args.out / f"relay-profile-{mode.name}.md"
    report.write_text(summary + table)
    print(f"relay profile: {report}")


async def main_async(args: argparse.Namespace) -> list[Row]:
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        raise SystemExit(f"--systems takes some of {', '.join(SYSTEMS)}, not {args.systems!r}")
    modes = [m for m in MODES if m.name in args.modes.split(",")]
    if args.install:
        ensure_installed(sorted({p for s in systems for p in PACKAGES.get(s, ())}))
    bench = Bench()
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as scratch:
        try:
            sizes = await open_bench(systems, Path(scratch), bench)
            facts = machine(systems, sizes)
            rows = await run_rounds(bench, systems, modes, args)
            if args.profile and "hotline" in bench.drivers:
                for mode in modes:
                    await profile_relay(bench, mode, args)
        finally:
            await bench.close()
    report = markdown(rows, facts)
    print()
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps([r.to_json() for r in rows], indent=1) + "\n")
    (args.out / "latest.md").write_text(report)
    if args.chart is not None and args.chart.name:
        caption = (f"Log scales. Medians of {args.rounds} rounds; {facts['machine']}; "
                   f"{facts['date']}. Made by bench/compare.py.\nceiling: the Ed25519 "
                   f"operations of a round trip alone, on both cores; its server CPU is the "
                   f"relay's share of them.")
        if FLOOR in systems:
            caption += ("\nfloor: hotline's clients on a relay that does only the protocol's "
                        "mandatory per-message work, in hotline's stack "
                        "(bench/peers/floor_relay.py).")
        args.chart.write_text(svg_chart(medians(rows), caption))
        print(f"chart: {args.chart}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, from %(default)s")
    parser.add_argument("--modes", default=",".join(m.name for m in MODES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="measured time per system, mode and round (at most)")
    parser.add_argument("--messages", type=int, default=50_000,
                        help="measured round trips per system, mode and round (at most)")
    parser.add_argument("--warmup", type=int, default=200, help="uncounted round trips first")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--chart", type=Path, default=BENCH.parent / "docs" / "bench-peers.svg",
                        help="where to write the SVG chart ('' for none)")
    parser.add_argument("--install", action="store_true",
                        help="apt-get install nats-server and mosquitto if they are missing")
    parser.add_argument("--profile", action="store_true",
                        help="then sample the relay with py-spy during one more hotline w100 run")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    configure_logging(level=30)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
