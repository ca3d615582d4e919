"""The Ed25519 work of one round trip, and loops that do only that work.

One hotline round trip (``peers.hotline_peer``) needs these signature
operations, in this order, with hotline's own key classes
(:class:`hotline.protocol.keys.SigningKey`: ``cryptography``/OpenSSL signs;
:class:`hotline.protocol.keys.PublicKey`: PyNaCl/libsodium verifies) over the
exact bytes that are signed (``MSG_TAG`` + the body of a real warning, of the
relay's ``accepted`` receipts and of LT's ``delivered`` receipt):

===  =========  ======  ==========================================
 #   who        does    what
===  =========  ======  ==========================================
 1   sender     sign    the warning
 2   relay      verify  the warning
 3   relay      sign    ``accepted`` for the warning, to the sender
 4   recipient  verify  the warning
 5   recipient  sign    the ``delivered`` receipt
 6   relay      verify  the receipt
 7   relay      sign    ``accepted`` for the receipt, to the recipient
 8   sender     verify  the receipt
===  =========  ======  ==========================================

Operations 2, 3, 6 and 7 are the relay's mandatory signature work per round
trip: :func:`relay_cpu_us` times them on one thread (CPU time, not wall time)
and gives ``sig_us_per_msg`` on the hotline rows. :func:`ceiling` runs all
eight in a loop in one process per core, nothing else: its rate is the most
round trips per second the machine's cores could sign and verify, the
*signature ceiling* (system ``ceiling``, mode ``reqack-w100``).

Not counted: an endpoint of the full protocol also verifies each ``accepted``
it is answered with and, as log monitor, every log entry under each
checkpoint it witnessed (``hotline.auditlog.rules``); the benchmark's minimal
endpoints do neither (docs/performance.md gives their measured cost).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Final

from relay import sealed_warning

from hotline.bootstrap import key_path
from hotline.network_file import load_network
from hotline.protocol.bodies import AcceptedBody, ReceiptBody
from hotline.protocol.envelope import MSG_TAG, open_envelope, sealed
from hotline.protocol.ids import make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.vocab import Stage
from peers.hotline_peer import client_for
from peers.workload import Sample

__all__ = [
    "CeilingResult",
    "LoopResult",
    "Party",
    "SignatureOp",
    "Verb",
    "ceiling",
    "relay_cpu_us",
    "round_trip_ops",
    "run_ops",
]

READY_TIMEOUT_S: Final = 60.0


class Party(StrEnum):
    SENDER = "sender"
    RELAY = "relay"
    RECIPIENT = "recipient"


class Verb(StrEnum):
    SIGN = "sign"
    VERIFY = "verify"


@dataclass(frozen=True, slots=True)
class SignatureOp:
    """One Ed25519 operation: ``party`` signs or verifies ``message`` with ``signer``'s key.

    ``signer_pem`` is the signer's private key (PEM, so that it crosses to a
    worker process); a verification uses only its public half.
    ``signature`` is the signature over ``message`` a verification checks.
    """

    party: Party
    verb: Verb
    what: str
    signer_pem: bytes
    message: bytes
    signature: bytes


async def round_trip_ops(config: Path) -> tuple[SignatureOp, ...]:
    """The eight operations of the table above, over real bodies of the network in ``config``."""
    network = load_network(config)
    relay_id = network.relay.id
    pems = {p: key_path(config.parent, p).read_bytes() for p in ("BY", "LT", relay_id)}
    keys = {p: SigningKey.from_pem(pem) for p, pem in pems.items()}
    by, lt = (client_for(config, network, p, "ws://127.0.0.1:9/unused") for p in ("BY", "LT"))
    try:
        frame, ident = sealed_warning(by)
        warning = open_envelope(frame, network)
        receipt = sealed(ReceiptBody(**lt.header(), ref=ident,  # type: ignore[arg-type]
                                     hash=warning.hash, stage=Stage.DELIVERED), keys["LT"])
    finally:
        await by.close()
        await lt.close()

    def accepted(ref: bytes, digest: bytes, index: int) -> bytes:
        now = time.time_ns() // 1_000_000
        body = AcceptedBody(id=make_id(now, digest[:10]), sender=relay_id, ts=now, seq=index,
                            kid=keys[relay_id].public.kid, ref=ref, hash=digest, index=index)
        return MSG_TAG + sealed(body, keys[relay_id]).body_bytes

    signed = {
        "warning": MSG_TAG + warning.body_bytes,
        "receipt": MSG_TAG + receipt.body_bytes,
        "accepted-warning": accepted(ident, warning.hash, 1),
        "accepted-receipt": accepted(receipt.body.id, receipt.hash, 2),
    }
    signer = {"warning": "BY", "receipt": "LT", "accepted-warning": relay_id,
              "accepted-receipt": relay_id}

    def op(party: Party, verb: Verb, what: str) -> SignatureOp:
        who = signer[what]
        message = signed[what]
        return SignatureOp(party, verb, what, pems[who], message, keys[who].sign(message))

    return (
        op(Party.SENDER, Verb.SIGN, "warning"),
        op(Party.RELAY, Verb.VERIFY, "warning"),
        op(Party.RELAY, Verb.SIGN, "accepted-warning"),
        op(Party.RECIPIENT, Verb.VERIFY, "warning"),
        op(Party.RECIPIENT, Verb.SIGN, "receipt"),
        op(Party.RELAY, Verb.VERIFY, "receipt"),
        op(Party.RELAY, Verb.SIGN, "accepted-receipt"),
        op(Party.SENDER, Verb.VERIFY, "receipt"),
    )


@dataclass(frozen=True, slots=True)
class LoopResult:
    """What one loop over the operations did, on one thread."""

    round_trips: int
    wall_s: float
    relay_cpu_s: float
    endpoint_cpu_s: float
    latencies_s: tuple[float, ...]


def run_ops(ops: Sequence[SignatureOp], seconds: float, *, warmup: int = 20) -> LoopResult:
    """Do ``ops`` once per round trip, again and again for ``seconds``; CPU time per party.

    A verification that fails raises :class:`ValueError`: the loop must do the
    real work, not time a shortcut.
    """
    keys: dict[bytes, SigningKey] = {}
    for op in ops:
        if op.signer_pem not in keys:
            keys[op.signer_pem] = SigningKey.from_pem(op.signer_pem)
    steps = [(op.party is Party.RELAY, op.verb is Verb.SIGN, keys[op.signer_pem], op)
             for op in ops]

    def one() -> tuple[int, int]:
        relay_ns = endpoint_ns = 0
        for at_relay, signs, key, op in steps:
            before = time.thread_time_ns()
            if signs:
                key.sign(op.message)
            elif not key.public.verify(op.signature, op.message):
                raise ValueError(f"the {op.party}'s verification of the {op.what} failed")
            spent = time.thread_time_ns() - before
            if at_relay:
                relay_ns += spent
            else:
                endpoint_ns += spent
        return relay_ns, endpoint_ns

    for _ in range(warmup):
        one()
    latencies: list[float] = []
    relay_total = endpoint_total = 0
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline:
        relay_ns, endpoint_ns = one()
        relay_total += relay_ns
        endpoint_total += endpoint_ns
        finished = time.perf_counter()
        latencies.append(finished - now)
        now = finished
    return LoopResult(len(latencies), now - started, relay_total / 1e9, endpoint_total / 1e9,
                      tuple(latencies))


def relay_cpu_us(ops: Sequence[SignatureOp], seconds: float = 0.3) -> float:
    """CPU µs per round trip of the relay's own operations (2, 3, 6, 7), on this thread."""
    relay_ops = [op for op in ops if op.party is Party.RELAY]
    result = run_ops(relay_ops, seconds)
    return result.relay_cpu_s / result.round_trips * 1e6


def _worker(ops: tuple[SignatureOp, ...], seconds: float, ready: queue.Queue[int | str],
            go: Event, out: queue.Queue[LoopResult | str]) -> None:
    """One core's loop; a failure goes back to the parent as a sentence, not a silence."""
    try:
        run_ops(ops, 0.05)  # load the keys and libraries before the start
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        ready.put(f"{exc!r}")
        return
    ready.put(os.getpid())
    go.wait(READY_TIMEOUT_S)
    try:
        out.put(run_ops(ops, seconds, warmup=0))
    except Exception as exc:  # noqa: BLE001 - as above
        out.put(f"{exc!r}")


@dataclass(frozen=True, slots=True)
class CeilingResult:
    """The signature ceiling of one run: every core doing nothing but the eight operations."""

    rate: float
    sample: Sample
    workers: int


def ceiling(ops: tuple[SignatureOp, ...], seconds: float, workers: int | None = None
            ) -> CeilingResult:
    """Run :func:`run_ops` in one fresh process per core, all started together.

    The rate is the sum of the processes' rates; the sample's CPU figures are
    per round trip, the relay's operations as server CPU and the endpoints'
    as client CPU. The processes are this call's own and are joined (or
    killed, by their own handles) before it returns; a failure in one of
    them is raised here as :class:`RuntimeError`.
    """
    count = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    ready: queue.Queue[int | str] = context.Queue()  # type: ignore[assignment]
    out: queue.Queue[LoopResult | str] = context.Queue()  # type: ignore[assignment]
    go = context.Event()
    processes = [context.Process(target=_worker, args=(ops, seconds, ready, go, out),
                                 name=f"ceiling-{n}", daemon=True) for n in range(count)]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            started = ready.get(timeout=READY_TIMEOUT_S)
            if isinstance(started, str):
                raise RuntimeError(  # noqa: TRY004 - the worker's sentence, not a bad type
                    f"a ceiling process failed before the start: {started}")
        go.set()
        results: list[LoopResult] = []
        for _ in processes:
            result = out.get(timeout=seconds + READY_TIMEOUT_S)
            if isinstance(result, str):
                raise RuntimeError(  # noqa: TRY004 - as above
                    f"a ceiling process failed: {result}")
            results.append(result)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
    trips = sum(r.round_trips for r in results)
    latencies = tuple(x for r in results for x in r.latencies_s)
    rate = sum(r.round_trips / r.wall_s for r in results)
    sample = Sample(
        messages=trips, seconds=trips / rate, latencies_s=latencies,
        server_cpu_s=sum(r.relay_cpu_s for r in results),
        client_cpu_s=sum(r.endpoint_cpu_s for r in results),
    )
    return CeilingResult(rate, sample, count)
