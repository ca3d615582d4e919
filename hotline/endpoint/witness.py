"""Witnessing the relay's checkpoints, sans-IO.

For each checkpoint note the relay announces:

1. the relay's signature and the origin must verify (:func:`open_checkpoint`),
   else the note is refused; while the relay rotates its key, a signature by
   any key of the relay whose period holds the time of observation will do
   (a key past its period no longer vouches for anything new);
2. against the last checkpoint we hold (size m, root r):
   - a smaller size n is old news, from a relay replica that lags behind the
     one that signed ours: it needs a consistency proof from n to m (fetched
     from a replica that has m); with the proof it is consistent and nothing
     changes (we keep m), against it it is inconsistent; while no replica can
     prove it yet, nothing is held, cosigned or raised;
   - the same size with another root is inconsistent (a fork);
   - the same size and root is nothing new;
   - a larger size needs a consistency proof from m to n, which the edge
     fetches; the proof must name our m, r and the note's n and root, and
     :func:`verify_consistency` must pass, else it is inconsistent;
3. with nothing held yet (or only the empty tree), a verified checkpoint is
   trusted as is: there is nothing it could contradict.

Only a consistent checkpoint becomes the new held one and is cosigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hotline.auditlog.checkpoint import Checkpoint, open_checkpoint
from hotline.auditlog.merkle import verify_consistency
from hotline.endpoint.state import HeldCheckpoint
from hotline.errors import NoteError, ProofError, UsageError
from hotline.protocol.keys import KeyPeriod, PublicKey

__all__ = [
    "ConsistencyProof",
    "Fresh",
    "Inconsistent",
    "NeedsProof",
    "Refused",
    "Seen",
    "Witness",
    "WitnessVerdict",
]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The relay's answer to ``/v1/proof/consistency?old=M&new=N``, decoded."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """Not a checkpoint signed by the relay for our origin."""

    reason: str


@dataclass(frozen=True, slots=True)
class Seen:
    """The checkpoint we already hold."""


@dataclass(frozen=True, slots=True)
class Fresh:
    """Consistent (or the first one): hold it and cosign it."""

    checkpoint: Checkpoint
    note: bytes


@dataclass(frozen=True, slots=True)
class Inconsistent:
    """Signed by the relay, yet it contradicts the checkpoint we hold."""

    checkpoint: Checkpoint
    note: bytes
    held: HeldCheckpoint
    reason: str


@dataclass(frozen=True, slots=True)
class NeedsProof:
    """Larger than the one we hold: fetch a consistency proof from ``held.size``.

    ``older``: smaller than the one we hold (a lagging replica's): the proof
    runs the other way, from the note's size up to ``held.size``.
    """

    checkpoint: Checkpoint
    note: bytes
    held: HeldCheckpoint
    older: bool = False

    @property
    def sizes(self) -> tuple[int, int]:
        """(old, new): the consistency proof to fetch."""
        if self.older:
            return self.checkpoint.size, self.held.size
        return self.held.size, self.checkpoint.size


WitnessVerdict = Refused | Seen | Fresh | Inconsistent | NeedsProof


class Witness:
    """The last consistent checkpoint, and the rules for accepting the next one."""

    def __init__(
        self,
        origin: str,
        relay_key: PublicKey | Sequence[KeyPeriod],
        held: HeldCheckpoint | None,
    ) -> None:
        self._origin = origin
        self._periods = (
            (KeyPeriod(relay_key),) if isinstance(relay_key, PublicKey) else tuple(relay_key)
        )
        self.held = held

    def observe(self, note: bytes, now_ms: int | None = None) -> WitnessVerdict:
        """Judge a note; ``now_ms`` limits the relay's keys to those valid then."""
        keys = [p.key for p in self._periods if now_ms is None or p.covers(now_ms)]
        try:
            checkpoint = open_checkpoint(note, self._origin, keys)
        except (NoteError, UsageError) as exc:
            return Refused(str(exc))
        held = self.held
        if held is None:
            return Fresh(checkpoint, note)
        if held.size == 0 and checkpoint.size > 0:
            return Fresh(checkpoint, note)  # the empty tree is a prefix of every tree
        if checkpoint.size < held.size:
            if checkpoint.size == 0:
                return Seen()  # the empty tree is a prefix of every tree
            return NeedsProof(checkpoint, note, held, older=True)
        if checkpoint.size == held.size:
            if checkpoint.root != held.root:
                return Inconsistent(
                    checkpoint,
                    note,
                    held,
                    f"two different roots were signed for size {held.size}",
                )
            return Seen()
        return NeedsProof(checkpoint, note, held)

    def check_proof(
        self, need: NeedsProof, proof: ConsistencyProof
    ) -> Fresh | Inconsistent | Seen:
        """Judge the fetched proof for ``need``; the roots compared are ours, not the proof's.

        An older checkpoint proven consistent is ``Seen``: nothing to hold or cosign.
        """
        new, held = need.checkpoint, need.held
        old_size, new_size = need.sizes
        old_root, new_root = (new.root, held.root) if need.older else (held.root, new.root)
        problem: str | None = None
        if (proof.old_size, proof.new_size) != (old_size, new_size):
            problem = (
                f"the relay proved sizes {proof.old_size} to {proof.new_size}, "
                f"not {old_size} to {new_size}"
            )
        elif proof.old_root != old_root or proof.new_root != new_root:
            problem = "the proof's roots are not the roots of the two checkpoints"
        else:
            try:
                verify_consistency(old_size, new_size, old_root, new_root, proof.proof)
            except ProofError as exc:
                problem = str(exc)
        if problem is not None:
            return Inconsistent(new, need.note, held, problem)
        if need.older:
            return Seen()
        return Fresh(new, need.note)

    def hold(self, fresh: Fresh) -> None:
        self.held = HeldCheckpoint(fresh.checkpoint.size, fresh.checkpoint.root, fresh.note)
