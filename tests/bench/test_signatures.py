"""bench/peers/signatures.py: the Ed25519 work of a round trip, done for real and timed."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.hotline_peer import frame_sizes, prepare_network
from peers.signatures import (
    Party,
    SignatureOp,
    Verb,
    ceiling,
    relay_cpu_us,
    round_trip_ops,
    run_ops,
)

from hotline.protocol.envelope import MSG_TAG
from hotline.protocol.keys import SigningKey


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> tuple[SignatureOp, ...]:
    config = prepare_network(tmp_path_factory.mktemp("net"), "ws://127.0.0.1:9/v1/ws")
    return asyncio.run(round_trip_ops(config))


def test_a_round_trip_is_four_signatures_and_four_verifications_half_at_the_relay(
    ops: tuple[SignatureOp, ...],
) -> None:
    """Sender and recipient sign and verify once each; the relay verifies two and signs two."""
    counts = Counter((op.party, op.verb) for op in ops)
    assert counts == {
        (Party.SENDER, Verb.SIGN): 1, (Party.SENDER, Verb.VERIFY): 1,
        (Party.RECIPIENT, Verb.SIGN): 1, (Party.RECIPIENT, Verb.VERIFY): 1,
        (Party.RELAY, Verb.SIGN): 2, (Party.RELAY, Verb.VERIFY): 2,
    }
    for op in ops:
        assert op.message.startswith(MSG_TAG)
        assert SigningKey.from_pem(op.signer_pem).public.verify(op.signature, op.message)


def test_the_signed_bytes_are_those_of_the_real_frames(
    ops: tuple[SignatureOp, ...], tmp_path: Path,
) -> None:
    """The warning and receipt signed are real bodies: their frames are hotline's frame sizes."""
    config = prepare_network(tmp_path / "net", "ws://127.0.0.1:9/v1/ws")
    warning, receipt = asyncio.run(frame_sizes(config))
    body = {op.what: len(op.message) - len(MSG_TAG) for op in ops}
    # A frame is [1, body, sig] in MessagePack: the body and 64-byte signature plus 6-8 bytes.
    assert 0 < warning - body["warning"] - 64 <= 8
    assert 0 < receipt - body["receipt"] - 64 <= 8


def test_a_loop_refuses_to_time_a_verification_that_fails(ops: tuple[SignatureOp, ...]) -> None:
    """A tampered message makes the loop fail instead of timing a rejected verification."""
    verify = next(op for op in ops if op.verb is Verb.VERIFY)
    tampered = replace(verify, message=verify.message[:-1] + bytes([verify.message[-1] ^ 1]))
    with pytest.raises(ValueError, match="verification of the warning failed"):
        run_ops([tampered], 0.01, warmup=0)


def test_cpu_is_charged_to_the_party_that_does_the_operation(
    ops: tuple[SignatureOp, ...],
) -> None:
    """Only the relay's operations are charged to the relay, only the others to the endpoints."""
    endpoints = run_ops([op for op in ops if op.party is not Party.RELAY], 0.1)
    relay = run_ops([op for op in ops if op.party is Party.RELAY], 0.1)
    assert endpoints.round_trips > 0
    assert relay.round_trips > 0
    assert (endpoints.relay_cpu_s, relay.endpoint_cpu_s) == (0, 0)
    assert endpoints.endpoint_cpu_s > 0
    assert relay.relay_cpu_s > 0
    assert relay_cpu_us(ops, 0.1) > 0


def test_the_ceiling_runs_in_its_own_processes_and_counts_their_round_trips(
    ops: tuple[SignatureOp, ...],
) -> None:
    """One worker process for 0.3 s: a positive rate, latencies, and CPU on both sides."""
    found = ceiling(ops, 0.3, workers=1)
    assert found.workers == 1
    assert found.rate > 0
    assert found.sample.messages == len(found.sample.latencies_s) > 0
    assert found.sample.server_cpu_s > 0
    assert found.sample.client_cpu_s > 0


def test_a_ceiling_process_that_fails_is_reported_not_waited_for(
    ops: tuple[SignatureOp, ...],
) -> None:
    """A verification that fails in a ceiling process comes back as a RuntimeError naming it."""
    verify = next(op for op in ops if op.verb is Verb.VERIFY)
    tampered = replace(verify, signature=bytes(64))
    with pytest.raises(RuntimeError, match="verification of the warning failed"):
        ceiling((tampered,), 0.1, workers=1)
