"""An endpoint's journal after months of link tests: its rows, restart time and memory.

An endpoint answers the relay's link test every interval, for as long as it
runs: 17,280 a day at 5 s. Each answer is a signed receipt in the journal's
outbox until the relay accepts it; then only its count is kept. This writes
that history through :class:`hotline.endpoint.journal.Journal` (the events an
answered, accepted test produces: ``ReceiptQueued``, ``LinkTestAnswered``,
``MessageAccepted``; each receipt signed with the endpoint's key through
libsodium, 10,000 tests per transaction), then starts ``hotline endpoint`` on
the journal and times it until ``/healthz`` answers, and reads its peak RSS
after it has run a second.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Final

import aiohttp
import msgpack
import nacl.signing
from cryptography.hazmat.primitives import serialization
from peers.procstat import peak_rss_mib
from peers.servers import spawn

from hotline.bootstrap import key_path
from hotline.endpoint.events import EndpointEvent, LinkTestAnswered, MessageAccepted, ReceiptQueued
from hotline.endpoint.journal import JOURNAL_FILE, Journal
from hotline.keyfile import load_signing_key
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import MSG_TAG, VERSION, body_hash
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import Stage
from hotline.testing.ports import free_port
from hotline.testing.traffic import START_MS

__all__ = ["ENDPOINT", "endpoint_point", "grow_journal"]

ENDPOINT: Final = "LT"
INTERVAL_MS: Final = 5_000
BATCH: Final = 10_000


def grow_journal(config: Path, data: Path, tests: int) -> float:
    """Add answered, accepted link tests until the journal has seen ``tests``; seconds taken."""
    key = load_signing_key(key_path(config.parent, ENDPOINT))
    raw = serialization.load_pem_private_key(key.to_pem(), password=None).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    sodium = nacl.signing.SigningKey(raw)
    started = time.perf_counter()
    data.mkdir(parents=True, exist_ok=True)
    journal = Journal.open(data / JOURNAL_FILE)
    try:
        done = journal.reads.link_tests().answered
        while done < tests:
            events: list[EndpointEvent] = []
            for n in range(done, min(tests, done + BATCH)):
                ts = START_MS + n * INTERVAL_MS
                test_id = make_id(ts, (2 * n).to_bytes(10, "big"))
                receipt = ReceiptBody(
                    id=make_id(ts + 2, (2 * n + 1).to_bytes(10, "big")), sender=ENDPOINT,
                    ts=ts + 2, seq=n + 1, kid=key.public.kid, ref=test_id,
                    hash=body_hash(test_id), stage=Stage.DELIVERED,
                )
                body = encode_body(receipt)
                frame = msgpack.packb(
                    [VERSION, body, sodium.sign(MSG_TAG + body).signature], use_bin_type=True
                )
                events += [
                    ReceiptQueued(frame, receipt, body_hash(body), ts + 2, link_test=True),
                    LinkTestAnswered(test_id, ts, ts + 2),
                    MessageAccepted(receipt.id, 2 * n + 1, ts + 4, ts + 5, receipt=True),
                ]
            journal.record(events)
            done = min(tests, done + BATCH)
    finally:
        journal.close()
    return time.perf_counter() - started


def _journal_mib(data: Path) -> float:
    return sum(f.stat().st_size for f in data.iterdir() if f.is_file()) / (1 << 20)


def _rows(data: Path) -> dict[str, int]:
    journal = Journal.open(data / JOURNAL_FILE)
    try:
        db = journal._db
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}
    finally:
        journal.close()
    return counts


async def _healthy(url: str, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
    raise RuntimeError(f"the endpoint did not answer /healthz within {timeout_s:.0f} s")


async def endpoint_point(config: Path, data: Path, state: Path, tests: int) -> dict[str, float]:
    """Grow the journal to ``tests`` answered link tests; start ``hotline endpoint`` on it."""
    wrote = await asyncio.to_thread(grow_journal, config, data, tests)
    rows = await asyncio.to_thread(_rows, data)
    port, nowhere = free_port(), free_port()
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "hotline", "endpoint", "--network", str(config),
            "--id", ENDPOINT, "--data", str(data), "--port", str(port),
            "--relay-url", f"ws://127.0.0.1:{nowhere}/v1/ws"]
    started = time.perf_counter()
    server = await asyncio.to_thread(spawn, "hotline endpoint", argv, port, state, 300.0)
    try:
        await _healthy(f"http://127.0.0.1:{port}", 300.0)
        ready = time.perf_counter() - started
        await asyncio.sleep(1.0)
        rss = peak_rss_mib(server.pid)
    finally:
        await asyncio.to_thread(server.stop, 30.0)
    return {
        "tests_answered": tests, "journal_rows": sum(rows.values()),
        "outbox_rows": rows.get("outbox", 0),
        "journal_mib": await asyncio.to_thread(_journal_mib, data),
        "restart_s": ready, "peak_rss_mib": rss, "write_s": wrote,
        "days_at_5s": tests * INTERVAL_MS / 86_400_000,
    }
