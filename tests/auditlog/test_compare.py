"""audit compare: what an endpoint was told, held against the log."""

from __future__ import annotations

from hotline.auditlog.compare import Claims, compare
from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.merkle import leaf_hash, root_of
from hotline.protocol.envelope import open_envelope
from tests.endpoint.builders import Author
from tests.factories import make_network


def _log() -> tuple[list[tuple[int, bytes]], list[bytes], list[bytes]]:
    net = make_network()
    author = Author(net)
    frames = [net.seal(author.text(sender="BY", to=("LT",))) for _ in range(4)]
    entries = [encode_envelope_entry(1_000 + i, f) for i, f in enumerate(frames)]
    hashes = [open_envelope(f, net.network).hash for f in frames]
    ids = [open_envelope(f, net.network).body.id for f in frames]
    return list(enumerate(entries)), hashes, ids


def test_claims_that_match_the_log_raise_no_disagreement() -> None:
    """The right roots and indexes: nothing to list."""
    entries, hashes, ids = _log()
    leaves = [leaf_hash(e) for _, e in entries]
    claims = Claims("LT", checkpoints=[(2, root_of(leaves[:2])), (4, root_of(leaves))],
                    accepted=[(1, hashes[1], ids[1])], delivered=[(3, hashes[3], ids[3])])
    assert compare(entries, [claims]) == []


def test_another_history_and_a_wrong_index_are_each_listed() -> None:
    """A root the log does not have, a size beyond it and an index holding another entry."""
    entries, hashes, ids = _log()
    claims = Claims("PL", checkpoints=[(3, b"\x01" * 32), (9, b"\x02" * 32)],
                    accepted=[(0, hashes[2], ids[2])], delivered=[(7, hashes[1], ids[1])],
                    alarms=[("split_view", "BY saw another root")])
    found = [(d.kind, d.index) for d in compare(entries, [claims])]
    assert found == [
        ("accepted_elsewhere", 0),
        ("checkpoint_disagrees", 3),
        ("delivered_elsewhere", 7),
        ("checkpoint_beyond", 9),
        ("alarm", -1),
    ]


def test_a_witnessed_empty_checkpoint_does_not_hide_the_later_ones() -> None:
    """An endpoint that connected before the first entry witnessed size 0: all sizes still count."""
    entries, _, _ = _log()
    leaves = [leaf_hash(e) for _, e in entries]
    claims = Claims("BY", checkpoints=[(0, root_of([])), (2, root_of(leaves[:2])),
                                       (4, root_of(leaves))])
    assert compare(entries, [claims]) == []
