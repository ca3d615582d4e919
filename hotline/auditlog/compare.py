"""``hotline audit compare``: what endpoints were told, against what the log holds, sans-IO.

Each endpoint keeps, in its journal, what the relay told it: the checkpoints it
witnessed (size and root), the log index of each ``accepted`` it received and
of each message delivered to it, and the alarms it raised. :func:`compare`
holds those :class:`Claims` against a bundle's entries and lists every
:class:`Disagreement`:

=======================  ============================================================
kind                     the endpoint was told …
=======================  ============================================================
checkpoint_disagrees     a checkpoint whose root is not the bundle's root at that size
                         (the relay showed this endpoint another history)
checkpoint_beyond        a checkpoint larger than the bundle (the bundle is not the
                         whole log the relay showed)
accepted_elsewhere       ``accepted`` naming an index that holds another entry, or
                         none in the bundle
delivered_elsewhere      a delivery from an index that holds another entry, or none
alarm                    nothing new: an alarm the endpoint raised against the relay,
                         listed beside the rest
=======================  ============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgpack

from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.errors import HotlineError
from hotline.protocol.envelope import body_hash
from hotline.protocol.schema import unpack_map

__all__ = ["Claims", "Disagreement", "compare"]


@dataclass(frozen=True, slots=True)
class Claims:
    """What one endpoint was told by the relay, as its journal keeps it."""

    who: str
    checkpoints: Sequence[tuple[int, bytes]] = ()  # (size, root) witnessed
    accepted: Sequence[tuple[int, bytes, bytes]] = ()  # (index, body hash, message id)
    delivered: Sequence[tuple[int, bytes, bytes]] = ()  # (index, body hash, message id)
    alarms: Sequence[tuple[str, str]] = ()  # (kind, sentence) raised against the relay


@dataclass(frozen=True, slots=True)
class Disagreement:
    who: str
    kind: str
    index: int
    detail: str

    def line(self) -> str:
        where = f" index={self.index}" if self.index >= 0 else ""
        return f"{self.who}: {self.kind}{where}: {self.detail}"


@dataclass(slots=True)
class _Log:
    size: int = 0
    hashes: dict[int, bytes] = field(default_factory=dict)  # index → body hash (envelopes)
    roots: dict[int, bytes] = field(default_factory=dict)  # size → root, at asked sizes


def _body_hash_of(entry: bytes) -> bytes | None:
    try:
        decoded = decode_entry(entry)
    except HotlineError:
        return None
    if decoded.envelope is None:
        return None
    try:
        _, body, _ = msgpack.unpackb(decoded.envelope, raw=False)
        unpack_map(body)
    except Exception:  # noqa: BLE001  (an unreadable envelope holds no body hash)
        return None
    return body_hash(body) if isinstance(body, bytes) else None


def _read(entries: Iterable[tuple[int, bytes]], sizes: Sequence[int], wanted: set[int]) -> _Log:
    log = _Log()
    frontier = Frontier()
    pending = sorted(set(sizes))
    position = 0
    if pending and pending[0] == 0:  # the empty log's checkpoint, witnessed before any entry
        log.roots[0] = frontier.root()
        position = 1
    for index, entry in entries:
        frontier.append(leaf_hash(entry))
        if index in wanted:
            digest = _body_hash_of(entry)
            if digest is not None:
                log.hashes[index] = digest
        while position < len(pending) and pending[position] == frontier.size:
            log.roots[frontier.size] = frontier.root()
            position += 1
    log.size = frontier.size
    return log


def compare(entries: Iterable[tuple[int, bytes]], claims: Sequence[Claims]) -> list[Disagreement]:
    """Every way the claims disagree with the entries (a bundle's, in order from 0)."""
    sizes = [size for c in claims for size, _ in c.checkpoints]
    wanted = {i for c in claims for i, _, _ in (*c.accepted, *c.delivered)}
    log = _read(entries, sizes, wanted)
    out: list[Disagreement] = []
    for claim in claims:
        for size, root in sorted(set(claim.checkpoints)):
            if size > log.size:
                out.append(Disagreement(claim.who, "checkpoint_beyond", size,
                                        f"witnessed size {size}; the bundle holds {log.size}"))
            elif log.roots.get(size) != root:
                theirs = log.roots.get(size, b"").hex()
                out.append(Disagreement(
                    claim.who, "checkpoint_disagrees", size,
                    f"witnessed root {root.hex()} at size {size}; the bundle's is {theirs}",
                ))
        for kind, rows in (("accepted_elsewhere", claim.accepted),
                           ("delivered_elsewhere", claim.delivered)):
            for index, digest, ident in rows:
                held = log.hashes.get(index)
                if held == digest:
                    continue
                found = "no entry" if index >= log.size else (
                    "an event" if held is None else f"body hash {held.hex()}")
                out.append(Disagreement(
                    claim.who, kind, index,
                    f"message {ident.hex()} (body hash {digest.hex()}); the bundle holds {found}",
                ))
        out.extend(Disagreement(claim.who, "alarm", -1, f"{kind}: {sentence}")
                   for kind, sentence in claim.alarms)
    out.sort(key=lambda d: (d.kind == "alarm", d.who, d.index))
    return out

