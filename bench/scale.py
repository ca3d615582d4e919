"""How hotline behaves as it grows: endpoints connected, and records in the log.

    python bench/scale.py [--endpoints 5,50,200] [--sizes 10000,100000,1000000]

Two curves, each on relays run as their own process (``hotline relay``) on
127.0.0.1:

- **Endpoints.** A network made with ``hotline init --endpoints E001,...,SINK
  --links E001-SINK,...``: N-1 endpoints each linked to one sink endpoint (a
  star, not the N²/2 links of a full mesh). All N connect; each but SINK sends a
  FLASH warning to SINK every 1/RATE s, at its own phase; SINK verifies each
  and answers a signed ``delivered`` receipt and then a signed ``acknowledged``
  one (as an operator would, but at once, so that the relay's table of
  messages owed a receipt stays at its steady size); senders verify both;
  every endpoint answers the relay's link tests. Reported: delivery latency
  (sent to verified at SINK) and round trip (sent to the ``delivered`` receipt
  verified back at the sender), p50 and p99; the CPU share of the relay and of
  this process (all the endpoints), and the relay's peak RSS.
- **Log size.** A log of K real signed entries spanning days (a network in
  steady operation: link tests and their answers every round, a warning with
  its receipts every 90 minutes; made by ``bench/yearlog.py``, 3,000,000
  records span 31 days), grown from one size to the next and kept in
  ``bench/results/scale-cache/`` between runs. At each size ``hotline relay``
  is started once to bring its snapshot up to date (reported as the first
  start), stopped, and then started again and measured: the time from exec
  until ``/healthz`` answers, the relay's peak RSS (``VmHWM``) after it has
  then idled 3 s (so the background re-hash of the entries under the snapshot
  is counted too), the time of inclusion and consistency proofs over HTTP at
  that size, and its CPU share while idle.

Writes ``OUT/scale.json`` and ``OUT/scale.md`` (also printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
from endpoint_journal import endpoint_point
from peers.hotline_peer import RelayProcess, client_for, lift_rate_limit, start_relay
from peers.procstat import cpu_seconds, peak_rss_mib
from peers.workload import percentile
from relay import Client, sealed_warning
from yearlog import grow, span_days

from hotline.bootstrap import NETWORK_FILE
from hotline.logs import configure_logging
from hotline.network_file import load_network
from hotline.protocol.bodies import LinkTestBody, ReceiptBody, WarningBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.session import Deliver, RejectedNotice, decode_control
from hotline.protocol.vocab import AckAction, Stage

BENCH: Final = Path(__file__).resolve().parent
SINK: Final = "SINK"
CACHE: Final = BENCH / "results" / "scale-cache" / "yearlog-1"
HEALTH_TIMEOUT_S: Final = 900.0
IDLE_S: Final = 3.0
_IDLE: dict[str, float] = {"s": IDLE_S}  # --idle

# ---------------------------------------------------------------------------- endpoints


def star_network(directory: Path, senders: int) -> Path:
    """``hotline init`` with E001..E<senders> each linked to SINK; rate limit lifted."""
    names = [f"E{n:03d}" for n in range(1, senders + 1)]
    subprocess.run(
        [sys.executable, "-m", "hotline", "init", str(directory),
         "--endpoints", ",".join([*names, SINK]),
         "--links", ",".join(f"{name}-{SINK}" for name in names)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return lift_rate_limit(directory / NETWORK_FILE)


@dataclass
class _Traffic:
    sent_at: dict[bytes, float] = field(default_factory=dict)
    delivery: list[float] = field(default_factory=list)
    round_trip: list[float] = field(default_factory=list)
    counting: bool = False
    sending: bool = True
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)


async def _endpoint(client: Client, traffic: _Traffic) -> None:
    """Verify what arrives: answer warnings and link tests, time receipts and deliveries."""
    assert client.ws is not None
    async for message in client.ws:
        if message.type is not aiohttp.WSMsgType.BINARY:
            continue
        control = decode_control(message.data)
        if isinstance(control, RejectedNotice):
            traffic.errors.append(f"{client.party}: {control}")
        if not isinstance(control, Deliver):
            continue
        envelope = open_envelope(control.frame, client.network)
        body = envelope.body
        now = time.perf_counter()
        if isinstance(body, ReceiptBody):
            sent = traffic.sent_at.pop(body.ref, None)
            if sent is not None and traffic.counting:
                traffic.round_trip.append(now - sent)
            if not traffic.sending and not traffic.sent_at:
                traffic.drained.set()
            continue
        if isinstance(body, WarningBody):
            sent = traffic.sent_at.get(body.id)
            if sent is not None and traffic.counting:
                traffic.delivery.append(now - sent)
        if isinstance(body, WarningBody | LinkTestBody):
            receipt = ReceiptBody(**client.header(),  # type: ignore[arg-type]
                                  ref=body.id, hash=envelope.hash, stage=Stage.DELIVERED)
            await client.ws.send_bytes(seal(receipt, client.key))
        if isinstance(body, WarningBody):
            ack = ReceiptBody(**client.header(),  # type: ignore[arg-type]
                              ref=body.id, hash=envelope.hash, stage=Stage.ACKNOWLEDGED,
                              action=AckAction.MONITORING)
            await client.ws.send_bytes(seal(ack, client.key))


async def _sender(client: Client, traffic: _Traffic, interval: float, phase: float,
                  until: float) -> None:
    assert client.ws is not None
    due = time.perf_counter() + phase
    while due < until:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        frame, ident = sealed_warning(client, to=(SINK,))
        traffic.sent_at[ident] = time.perf_counter()
        await client.ws.send_bytes(frame)
        due += interval


async def endpoints_point(scratch: Path, connected: int, rate: float, seconds: float,
                          warmup: float) -> dict[str, float]:
    """``connected`` endpoints: ``connected - 1`` senders and SINK."""
    senders = connected - 1
    config = star_network(scratch / f"net-{connected}", senders)
    relay = await asyncio.to_thread(
        start_relay, config, scratch / f"log-{connected}", scratch / f"relay-{connected}"
    )
    network = relay.network
    clients = [client_for(config, network, party, relay.url) for party in network.endpoints]
    traffic = _Traffic()
    readers: list[asyncio.Task[None]] = []
    try:
        for client in clients:
            await client.connect()
            readers.append(asyncio.create_task(_endpoint(client, traffic)))
        pid = relay.server.pid
        started = time.perf_counter()
        until = started + warmup + seconds
        interval = 1 / rate
        spread = random.Random(senders)
        tasks = [
            asyncio.create_task(_sender(c, traffic, interval, spread.uniform(0, interval), until))
            for c in clients if c.party != SINK
        ]
        await asyncio.sleep(warmup)
        traffic.counting = True
        cpu_before, measured_from = cpu_seconds(pid), time.perf_counter()
        own_before = cpu_seconds(os.getpid())
        await asyncio.gather(*tasks)
        measured = time.perf_counter() - measured_from
        cpu_share = (cpu_seconds(pid) - cpu_before) / measured
        own_share = (cpu_seconds(os.getpid()) - own_before) / measured
        traffic.sending = False
        if traffic.sent_at:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(traffic.drained.wait(), 20)
        if traffic.errors:
            raise RuntimeError(f"the relay refused messages: {traffic.errors[:3]}")
        return {
            "endpoints": connected,
            "senders": senders,
            "offered_msgs_per_s": senders * rate,
            "delivered": len(traffic.delivery),
            "unanswered": len(traffic.sent_at),
            "delivery_p50_ms": percentile(traffic.delivery, 0.5) * 1000,
            "delivery_p99_ms": percentile(traffic.delivery, 0.99) * 1000,
            "round_trip_p50_ms": percentile(traffic.round_trip, 0.5) * 1000,
            "round_trip_p99_ms": percentile(traffic.round_trip, 0.99) * 1000,
            "relay_cpu_share": cpu_share,
            "endpoints_cpu_share": own_share,
            "relay_peak_rss_mib": peak_rss_mib(pid),
        }
    finally:
        for reader in readers:
            reader.cancel()
        for client in clients:
            await client.close()
        await asyncio.to_thread(relay.server.stop)


# ---------------------------------------------------------------------------- log size

async def _wait_healthy(relay: RelayProcess, session: aiohttp.ClientSession) -> dict[str, int]:
    deadline = time.perf_counter() + HEALTH_TIMEOUT_S
    while time.perf_counter() < deadline:
        if relay.server.process.poll() is not None:
            raise RuntimeError(f"the relay exited:\n{relay.server.log_tail()}")
        try:
            async with session.get(f"{relay.http}/healthz") as response:
                if response.status == 200:
                    health: dict[str, int] = await response.json()
                    return health
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.01)
    raise RuntimeError(f"the relay did not answer /healthz within {HEALTH_TIMEOUT_S:.0f} s")


async def _proof_times(session: aiohttp.ClientSession, relay: RelayProcess, size: int,
                       samples: int) -> dict[str, float]:
    pick = random.Random(size)
    out: dict[str, float] = {}
    for kind in ("inclusion", "consistency"):
        times = []
        for _ in range(samples):
            if kind == "inclusion":
                query = f"index={pick.randrange(size)}&size={size}"
            else:
                query = f"old={pick.randrange(1, size)}&new={size}"
            started = time.perf_counter()
            async with session.get(f"{relay.http}/v1/proof/{kind}?{query}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{kind} proof: HTTP {response.status}")
            times.append(time.perf_counter() - started)
        out[f"{kind}_p50_ms"] = percentile(times, 0.5) * 1000
        out[f"{kind}_p99_ms"] = percentile(times, 0.99) * 1000
    return out


async def restart_point(config: Path, data: Path, state: Path, size: int,
                        proofs: int) -> dict[str, float]:
    """Start ``hotline relay`` on the log in ``data``; time it until /healthz answers."""
    started = time.perf_counter()
    relay = await asyncio.to_thread(start_relay, config, data, state, None, HEALTH_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession() as session:
            health = await _wait_healthy(relay, session)
            ready = time.perf_counter() - started
            rss_ready = peak_rss_mib(relay.server.pid)
            published = int(health["checkpoint_size"])
            figures: dict[str, float] = {
                "records": int(health["log_size"]), "restart_s": ready,
                "rss_at_ready_mib": rss_ready,
            }
            if published > 1 and proofs:
                figures.update(await _proof_times(session, relay, published, proofs))
            # The relay idle, no endpoint connected: what its 100 ms tick costs at this size.
            before, idle_from = cpu_seconds(relay.server.pid), time.perf_counter()
            await asyncio.sleep(_IDLE["s"])
            figures["idle_cpu_share"] = (
                (cpu_seconds(relay.server.pid) - before) / (time.perf_counter() - idle_from)
            )
            figures["peak_rss_mib"] = peak_rss_mib(relay.server.pid)
            figures["asked_records"] = size
            return figures
    finally:
        await asyncio.to_thread(relay.server.stop, 120.0)


def _disk_mib(data: Path) -> float:
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / (1 << 20)


async def size_point(config: Path, cache: Path, size: int, *, scratch: Path,
                     args: argparse.Namespace) -> dict[str, float]:
    """The log of ``size`` records (made, or taken from the cache), started once, then measured.

    The logs are grown in ``cache/master``, which no relay ever runs on, and copied at each
    size: a relay's own entries (relay_started, its link tests, dated now) would otherwise
    sit before older synthetic ones, and the log would no longer pass ``audit verify``.
    """
    data = cache / f"log-{size}"
    prepared = data / "prepared.json"
    if not prepared.exists():
        if data.exists():
            shutil.rmtree(data)  # a run stopped half-way through making it
        master = cache / "master"
        wrote = await asyncio.to_thread(grow, config, master, size, args.workers)
        await asyncio.to_thread(shutil.copytree, master, data)
        first = await restart_point(config, data, scratch / f"first-{size}", size, 0)
        prepared.write_text(json.dumps({
            "write_s": wrote, "first_start_s": first["restart_s"],
            "first_start_peak_rss_mib": first["peak_rss_mib"],
        }) + "\n")
    row = await restart_point(config, data, scratch / f"relay-{size}", size, args.proofs)
    row.update(json.loads(prepared.read_text()))
    row["span_days"] = span_days(int(row["records"]), len(load_network(config).endpoints))
    row["disk_mib"] = _disk_mib(data)
    return row


# ---------------------------------------------------------------------------- report


async def journal_points(config: Path, cache: Path, scratch: Path,
                         counts: Sequence[int]) -> list[dict[str, float]]:
    """An endpoint's journal after each number of answered link tests, restarted and measured.

    Each size starts from a copy of the one before (the journals are small: answers are
    pruned once the relay has them), kept in the cache between runs.
    """
    rows: list[dict[str, float]] = []
    previous: Path | None = None
    for count in counts:
        data = cache / f"journal-{count}"
        if not (data / "complete").exists():
            if data.exists():
                await asyncio.to_thread(shutil.rmtree, data)
            if previous is not None:
                await asyncio.to_thread(shutil.copytree, previous, data,
                                        ignore=shutil.ignore_patterns("complete"))
        row = await endpoint_point(config, data, scratch / f"endpoint-{count}", count)
        await asyncio.to_thread((data / "complete").write_text, "1\n")
        rows.append(row)
        previous = data
        print(f"journal {count:>9,} link tests ({row['days_at_5s']:.0f} days): "
              f"{row['journal_rows']:,.0f} rows, {row['journal_mib']:.1f} MiB, endpoint "
              f"restart {row['restart_s']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB",
              flush=True)
    return rows


def markdown(endpoints: Sequence[dict[str, float]], sizes: Sequence[dict[str, float]],
             rate: float, journals: Sequence[dict[str, float]] = ()) -> str:
    lines = ["# hotline as it grows", ""]
    if endpoints:
        repeats = int(endpoints[0].get("repeats", 1))
        lines += [f"Endpoints connected, each sender at {rate:g} warnings/s to one sink "
                  f"(medians of {repeats} runs):", "",
                  "| endpoints | offered msgs/s | delivery p50 | delivery p99 | round trip p50 "
                  "| round trip p99 | relay CPU | endpoints' CPU | relay peak RSS |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in endpoints:
            lines.append(
                f"| {r['endpoints']:.0f} | {r['offered_msgs_per_s']:,.0f} "
                f"| {r['delivery_p50_ms']:.2f} ms | {r['delivery_p99_ms']:.2f} ms "
                f"| {r['round_trip_p50_ms']:.2f} ms | {r['round_trip_p99_ms']:.2f} ms "
                f"| {r['relay_cpu_share']:.0%} | {r['endpoints_cpu_share']:.0%} "
                f"| {r['relay_peak_rss_mib']:.0f} MiB |")
        lines.append("")
    if sizes:
        lines += ["Log size: restart until /healthz answers, peak RSS, proofs over HTTP:", "",
                  "| records | restart | peak RSS | idle CPU | inclusion p50 | inclusion p99 "
                  "| consistency p50 | consistency p99 |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in sizes:
            proofs = (f"| {r['inclusion_p50_ms']:.2f} ms | {r['inclusion_p99_ms']:.2f} ms "
                      f"| {r['consistency_p50_ms']:.2f} ms | {r['consistency_p99_ms']:.2f} ms |"
                      if "inclusion_p50_ms" in r else "| n/a | n/a | n/a | n/a |")
            lines.append(f"| {r['records']:,.0f} | {r['restart_s']:.2f} s "
                         f"| {r['peak_rss_mib']:.0f} MiB | {r['idle_cpu_share']:.1%} " + proofs)
        lines += ["", "The same logs: days spanned, first start (snapshot made), disk:", "",
                  "| records | days | first start | its peak RSS | disk |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for r in sizes:
            if "span_days" in r:
                lines.append(f"| {r['records']:,.0f} | {r['span_days']:.1f} "
                             f"| {r['first_start_s']:.1f} s "
                             f"| {r['first_start_peak_rss_mib']:.0f} MiB "
                             f"| {r['disk_mib']:,.0f} MiB |")
        lines.append("")
    if journals:
        lines += ["An endpoint's journal after answering link tests (5 s apart):", "",
                  "| link tests | days | journal rows | journal size | endpoint restart "
                  "| endpoint peak RSS |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in journals:
            lines.append(f"| {r['tests_answered']:,.0f} | {r['days_at_5s']:.0f} "
                         f"| {r['journal_rows']:,.0f} | {r['journal_mib']:.1f} MiB "
                         f"| {r['restart_s']:.2f} s | {r['peak_rss_mib']:.0f} MiB |")
        lines.append("")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    endpoint_counts = [int(n) for n in args.endpoints.split(",") if n.strip()]
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(),
                                              "python": sys.version.split()[0]}}
    endpoint_rows: list[dict[str, float]] = []
    size_rows: list[dict[str, float]] = []
    journal_rows: list[dict[str, float]] = []
    journal_counts = [int(n) for n in args.journal_tests.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="hotline-scale-") as scratch_name:
        scratch = Path(scratch_name)
        runs: dict[int, list[dict[str, float]]] = {count: [] for count in endpoint_counts}
        for repeat in range(args.repeats):
            for count in endpoint_counts:
                row = await endpoints_point(scratch / f"repeat-{repeat}", count, args.rate,
                                            args.seconds, args.warmup)
                runs[count].append(row)
                print(f"endpoints {count:>4}: delivery p50 {row['delivery_p50_ms']:.2f} p99 "
                      f"{row['delivery_p99_ms']:.2f} ms, round trip p50 "
                      f"{row['round_trip_p50_ms']:.2f} p99 {row['round_trip_p99_ms']:.2f} ms, "
                      f"relay {row['relay_cpu_share']:.0%} CPU (endpoints "
                      f"{row['endpoints_cpu_share']:.0%}), {row['relay_peak_rss_mib']:.0f} MiB",
                      flush=True)
        endpoint_rows = [
            {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            | {"repeats": len(rows)}
            for rows in runs.values() if rows
        ]
        results["endpoint_runs"] = [row for rows in runs.values() for row in rows]
        if sizes:
            cache = args.cache
            cache.mkdir(parents=True, exist_ok=True)
            config = cache / "net" / NETWORK_FILE
            if not config.exists():
                _default_network(cache / "net")
            baseline = await restart_point(config, scratch / "empty-log", scratch / "relay-0", 0,
                                           args.proofs)
            size_rows.append(baseline)
            print(f"records {0:>9,}: restart {baseline['restart_s']:.2f} s, "
                  f"peak RSS {baseline['peak_rss_mib']:.0f} MiB", flush=True)
            for size in sizes:
                row = await size_point(config, cache, size, scratch=scratch, args=args)
                size_rows.append(row)
                print(f"records {row['records']:>9,.0f} ({row['span_days']:.1f} days): restart "
                      f"{row['restart_s']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB, idle "
                      f"CPU {row['idle_cpu_share']:.1%}, inclusion p50 "
                      f"{row.get('inclusion_p50_ms', 0):.2f} ms (first start "
                      f"{row['first_start_s']:.1f} s, {row['first_start_peak_rss_mib']:.0f} MiB; "
                      f"log written in {row['write_s']:.0f} s)", flush=True)
        if journal_counts:
            args.cache.mkdir(parents=True, exist_ok=True)
            net = args.cache / "net" / NETWORK_FILE
            if not net.exists():
                _default_network(args.cache / "net")
            journal_rows = await journal_points(net, args.cache, scratch, journal_counts)
    results["endpoints"] = endpoint_rows
    results["log_sizes"] = size_rows
    results["endpoint_journal"] = journal_rows
    report = markdown(endpoint_rows, size_rows, args.rate, journal_rows)
    print()
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "scale.md").write_text(report)
    return results


def _default_network(directory: Path) -> Path:
    subprocess.run([sys.executable, "-m", "hotline", "init", str(directory)], check=True,
                   stdout=subprocess.DEVNULL)
    return directory / NETWORK_FILE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", default="5,50,200",
                        help="endpoints connected (one of them the sink), comma-separated "
                             "('' to skip)")
    parser.add_argument("--rate", type=float, default=2.0, help="warnings/s from each sender")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per point")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each point, interleaved; the medians are reported")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    parser.add_argument("--sizes", default="10000,100000,1000000,3000000",
                        help="log sizes, comma-separated, rising ('' to skip)")
    parser.add_argument("--journal-tests", default="10000,100000,300000",
                        help="link tests an endpoint has answered, comma-separated, rising "
                             "('' to skip)")
    parser.add_argument("--proofs", type=int, default=200, help="proofs of each kind per size")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes that sign the log's entries")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--idle", type=float, default=IDLE_S,
                        help="seconds each measured relay idles before its RSS is read")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help="where the grown logs are kept between runs (delete to make anew)")
    args = parser.parse_args(argv)
    configure_logging(level=30)
    _IDLE["s"] = args.idle
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
