"""bench/peers/nats_ed25519_peer.py: the NATS clients sign and verify as hotline's endpoints do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("nats")

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.nats_ed25519_peer import NatsEd25519Peer

WARNING, ACK = 552, 218


def _peer() -> NatsEd25519Peer:
    # No server is needed for what A and B do with the bytes.
    return NatsEd25519Peer(4222, 0, warning_size=WARNING, ack_size=ACK)


def test_a_signed_warning_is_answered_with_a_signed_acknowledgement_of_the_frame_sizes() -> None:
    """A's warning verifies at B; B's answer verifies at A and names the same token."""
    peer = _peer()
    warning = peer.prepare(7)
    assert len(warning) == WARNING
    answer = peer._answer(warning)
    assert answer is not None
    assert len(answer) == ACK
    assert peer._acknowledged(answer) == 7
    assert peer.failure() is None


def test_a_forged_warning_is_not_answered_and_fails_the_run() -> None:
    """One flipped payload byte: B does not answer, and the run reports why."""
    peer = _peer()
    warning = bytearray(peer.prepare(7))
    warning[10] ^= 1
    assert peer._answer(bytes(warning)) is None
    assert peer.failure() == "B received a warning whose signature is not A's"


def test_an_acknowledgement_signed_by_another_key_does_not_count() -> None:
    """An answer from another peer's B (another key) is not counted at this A."""
    peer, other = _peer(), _peer()
    answer = other._answer(other.prepare(7))
    assert answer is not None
    assert peer._acknowledged(answer) is None
    assert peer.failure() == "A received an acknowledgement whose signature is not B's"
