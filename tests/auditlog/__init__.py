"""Tests of the audit log: Merkle proofs, signed notes, checkpoints, cosignatures, tiles."""
