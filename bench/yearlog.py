"""A synthetic log of a network in steady operation, made fast, with real signatures.

    python bench/yearlog.py --network NET/network.toml --data DIR --records 3000000

What a quiet network logs, round after round (one round every :data:`ROUND_MS`):
each endpoint gets a relay link test at its own phase of the round and answers
it with a signed ``delivered`` receipt a few milliseconds later (its clock a
few ms off the relay's); every :data:`WARNING_EVERY` rounds BY warns two
linked endpoints, which answer ``delivered`` and then ``acknowledged``. A
``connected`` event per endpoint opens the log. 3,000,000 records span
about 31 days.

Every envelope is real: a unique id, a ``seq`` rising per sender, its own
Ed25519 signature (libsodium through PyNaCl, about 23 µs each, in worker
processes). Link tests and their receipts, which are nearly all of the log,
are encoded from a template of the schema's canonical MessagePack (each
worker checks the template against ``encode_body`` before it starts);
warnings and their receipts go through the schema. Entries are appended
through the file store in batches and a checkpoint is signed at the end, as
a relay that ran that long would have left it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Final

import msgpack
import nacl.signing
from cryptography.hazmat.primitives import serialization

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_envelope_entry, encode_event_entry
from hotline.auditlog.log import STORE_DIR, AuditLog
from hotline.bootstrap import key_path
from hotline.keyfile import load_signing_key
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.bodies import LinkTestBody, ReceiptBody, Track, WarningBody
from hotline.protocol.envelope import MSG_TAG, VERSION, body_hash, open_envelope
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import AckAction, ObjectKind, Precedence, Source, Stage, Status
from hotline.testing.traffic import START_MS

__all__ = ["ROUND_MS", "grow", "span_days"]

ROUND_MS: Final = 9_000
WARNING_EVERY: Final = 600  # rounds: a warning about every 90 minutes
ROUNDS_PER_CHUNK: Final = 1_000
_OFFSETS_MS: Final = (0, 3, -2, 11, 1, -4, 7)  # each endpoint's clock against the relay's


class _Maker:
    """Signs one chunk of rounds; see the module docstring."""

    def __init__(self, network: Network, directory: Path) -> None:
        self.network = network
        self.endpoints = list(network.endpoints)
        self.relay = network.relay.id
        parties = [self.relay, *self.endpoints]
        keys = {p: load_signing_key(key_path(directory, p)) for p in parties}
        self.kid = {p: keys[p].public.kid for p in parties}
        self.sodium = {p: nacl.signing.SigningKey(_seed(keys[p].to_pem())) for p in parties}
        self.keys = keys
        sender = self.endpoints[0]
        self.warn_from = sender
        self.warn_to = tuple(network.peers(sender)[:2])
        self._check_templates()

    def _sign(self, party: str, body: bytes) -> bytes:
        signature = self.sodium[party].sign(MSG_TAG + body).signature
        frame: bytes = msgpack.packb([VERSION, body, signature], use_bin_type=True)
        return frame

    def _test(self, ident: bytes, ts: int, seq: int, to: str) -> bytes:
        body: bytes = msgpack.packb({"t": "test", "id": ident, "from": self.relay, "ts": ts,
                                     "seq": seq, "kid": self.kid[self.relay], "to": [to]},
                                    use_bin_type=True)
        return body

    def _answer(self, ident: bytes, party: str, ts: int, seq: int, *, ref: bytes,
                digest: bytes) -> bytes:
        body: bytes = msgpack.packb({"t": "receipt", "id": ident, "from": party, "ts": ts,
                                     "seq": seq, "kid": self.kid[party], "ref": ref,
                                     "hash": digest, "stage": "delivered"}, use_bin_type=True)
        return body

    def _check_templates(self) -> None:
        """The templates must be byte for byte what the schema encodes, and must verify."""
        party = self.endpoints[0]
        test_id, answer_id = make_id(START_MS, b"\0" * 10), make_id(START_MS, b"\0" * 9 + b"\1")
        test = LinkTestBody(id=test_id, sender=self.relay, ts=START_MS, seq=7,
                            kid=self.kid[self.relay], to=(party,))
        body = self._test(test_id, START_MS, 7, party)
        answer = ReceiptBody(id=answer_id, sender=party, ts=START_MS + 2, seq=9,
                             kid=self.kid[party], ref=test_id, hash=body_hash(body),
                             stage=Stage.DELIVERED)
        answer_body = self._answer(answer_id, party, START_MS + 2, 9, ref=test_id,
                                   digest=body_hash(body))
        if encode_body(test) != body or encode_body(answer) != answer_body:
            raise SystemExit("yearlog: the templates no longer match the schema's encoding")
        open_envelope(self._sign(self.relay, body), self.network)
        open_envelope(self._sign(party, answer_body), self.network)

    def chunk(self, number: int, rounds: int) -> list[bytes]:
        """The entries of rounds ``number·ROUNDS_PER_CHUNK`` onwards, in log order."""
        out: list[bytes] = []
        first = number * ROUNDS_PER_CHUNK
        count = len(self.endpoints)
        for r in range(first, first + rounds):
            start = START_MS + r * ROUND_MS
            seq = r * 64  # rising per sender across rounds and chunks
            timed: list[tuple[int, bytes]] = []
            if r % WARNING_EVERY == WARNING_EVERY // 2:
                timed += self._warning(r, start + ROUND_MS // 2, seq + 32)
            for position, party in enumerate(self.endpoints):
                ts = start + position * ROUND_MS // count
                test_id = make_id(ts, (r * 256 + 2 * position).to_bytes(10, "big"))
                test = self._test(test_id, ts, seq + position, party)
                rtt = 3 + (r * 7 + position * 13) % 9
                answered = ts + rtt
                answer_ts = ts + rtt // 2 + _OFFSETS_MS[position % len(_OFFSETS_MS)]
                answer_id = make_id(answer_ts, (r * 256 + 2 * position + 1).to_bytes(10, "big"))
                answer = self._answer(answer_id, party, answer_ts, seq + position, ref=test_id,
                                      digest=body_hash(test))
                timed.append((ts, encode_envelope_entry(ts, self._sign(self.relay, test))))
                timed.append(
                    (answered, encode_envelope_entry(answered, self._sign(party, answer)))
                )
            timed.sort(key=lambda item: item[0])  # log order is relay-time order
            out += (entry for _, entry in timed)
        return out

    def _warning(self, r: int, ts: int, seq: int) -> list[tuple[int, bytes]]:
        sender = self.warn_from
        warning = WarningBody(
            id=make_id(ts, (r * 256 + 200).to_bytes(10, "big")), sender=sender, ts=ts, seq=seq,
            kid=self.kid[sender], to=self.warn_to, status=Status.EXERCISE,
            precedence=Precedence.FLASH, incident=make_id(ts, (r * 256 + 201).to_bytes(10, "big")),
            expires=ts + 600_000,
            track=Track(lat=54.3, lon=25.9, observed_at=ts - 500, object=ObjectKind.UAV,
                        confidence=0.8, source=Source.RADAR, sensor_id="RAD-1"),
        )
        body = encode_body(warning)
        out = [(ts, encode_envelope_entry(ts, self._sign(sender, body)))]
        for n, recipient in enumerate(self.warn_to):
            for stage, after in ((Stage.DELIVERED, 20), (Stage.ACKNOWLEDGED, 3_000)):
                serial = (r * 256 + 210 + 4 * n + (after > 20)).to_bytes(10, "big")
                receipt = ReceiptBody(
                    id=make_id(ts + after, serial), sender=recipient, ts=ts + after,
                    seq=seq + (after > 20), kid=self.kid[recipient],
                    ref=warning.id, hash=body_hash(body), stage=stage,
                    action=AckAction.MONITORING if stage is Stage.ACKNOWLEDGED else None,
                )
                signed = self._sign(recipient, encode_body(receipt))
                out.append((ts + after + 2, encode_envelope_entry(ts + after + 2, signed)))
        return out


def _seed(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


_WORKER: dict[str, _Maker] = {}


def _init(config: str) -> None:
    _WORKER["maker"] = _Maker(load_network(Path(config)), Path(config).parent)


def _chunk(job: tuple[int, int]) -> list[bytes]:
    return _WORKER["maker"].chunk(*job)


def span_days(records: int, endpoints: int) -> float:
    """About how many days of rounds ``records`` entries hold."""
    return records / (2 * endpoints) * ROUND_MS / 86_400_000


def _chunks(config: Path, first_round: int, workers: int) -> Iterator[list[bytes]]:
    jobs = ((n, ROUNDS_PER_CHUNK) for n in range(first_round // ROUNDS_PER_CHUNK, 1 << 40))
    pool = ProcessPoolExecutor(workers, initializer=_init, initargs=(str(config),))
    try:
        # a bounded window of chunks in flight, so memory stays flat however large the log
        pending = [pool.submit(_chunk, next(jobs)) for _ in range(2 * workers)]
        while True:
            done = pending.pop(0)
            pending.append(pool.submit(_chunk, next(jobs)))
            yield done.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def grow(config: Path, data: Path, records: int, workers: int) -> float:
    """Append rounds to the log in ``data`` until it holds at least ``records``; sign a
    checkpoint. Returns the seconds taken (0 if it was already that large)."""
    network = load_network(config)
    started = time.perf_counter()
    store = FileStore(data / STORE_DIR)
    try:
        size = store.size
        if size >= records:
            return 0.0
        marker = data / "yearlog-rounds"
        done_rounds = int(marker.read_text()) if marker.exists() else 0
        if size == 0:
            store.append_batch([
                encode_event_entry(START_MS - 1_000, LogEvent(EntryKind.CONNECTED, {"party": p}))
                for p in network.endpoints
            ])
        if done_rounds % ROUNDS_PER_CHUNK:
            raise SystemExit(f"yearlog: {marker} is not on a chunk boundary")
        for entries in _chunks(config, done_rounds, workers):
            store.append_batch(entries)  # whole rounds: the log may end a chunk past records
            done_rounds += ROUNDS_PER_CHUNK
            marker.write_text(str(done_rounds))
            if store.size >= records:
                break
    finally:
        store.close()
    relay_key = load_signing_key(key_path(config.parent, network.relay.id))
    log = AuditLog.open_directory(data, origin=network.relay.origin, key=relay_key)
    try:
        log.checkpoint()
    finally:
        asyncio.run(log.close())
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", type=Path, required=True, help="network.toml")
    parser.add_argument("--data", type=Path, required=True, help="the relay's data directory")
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    seconds = grow(args.network, args.data, args.records, args.workers)
    print(f"{args.records:,} records in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
