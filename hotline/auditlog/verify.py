"""``hotline audit verify``: check a log bundle with nothing but it and the public keys.

What is checked, and in this order for each entry (the first failure, by
index, is the one reported):

1. the entry decodes as ``[kind, relay_ts, payload]``;
2. its leaf hash equals the level-0 tile hash stored for it;
3. an envelope's structure, sender and key id hold (and, with ``full_schema``,
   its body passes the whole schema); its Ed25519 signature verifies;
   the signing key's period (key rotation) holds the body's ``ts``;
4. ids are never reused; ``seq`` rises strictly per sender;
5. a receipt refers to an earlier message and carries the SHA-256 of that
   message's body bytes.

Then: the tree recomputed from the entries has the root the relay signed in the
bundle's checkpoint; every stored tile of every level equals the recomputed
one; every extra checkpoint given is signed by the relay and matches the tree
at its size (so no two roots were signed for one history); each checkpoint
carries a signature by a relay key that had not expired when the last entry
it covers was written (a retired relay key cannot vouch for later entries,
while old checkpoints signed with it still verify); cosignatures by
endpoints on the checkpoint verify, by any of their keys.

The stateless part of that work (decoding, hashing, the signature) runs in
worker processes, a bundle of 256 entries at a time, so that both cores verify
signatures without contending for one interpreter lock; the main process keeps
the ordered, stateful checks. Small bundles are checked in-process.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import tomllib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final, NamedTuple

import msgpack

from hotline.auditlog.bundle import Bundle, decodable_prefix
from hotline.auditlog.checkpoint import Checkpoint, checkpoint_cosignatures, open_checkpoint
from hotline.auditlog.cosignature import verify_cosignature
from hotline.auditlog.hashlevels import perfect_root
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.auditlog.tiles import TILE_WIDTH, TileRef, decode_entry_bundle, entry_bundles_for_size
from hotline.errors import (
    AuditError,
    EntryError,
    NoteError,
    RejectCode,
    Rejected,
    VerificationFailed,
)
from hotline.network import Network, parse_network
from hotline.protocol.envelope import MSG_TAG, read_envelope
from hotline.protocol.ids import ID_SIZE
from hotline.protocol.keys import KeyPeriod
from hotline.protocol.schema import unpack_map
from hotline.protocol.timetext import format_utc_ms
from hotline.protocol.vocab import BodyType

__all__ = ["VerifyReport", "verify_bundle"]

PARALLEL_FROM: Final = 8192  # below this many entries, worker processes cost more than they save
_IN_FLIGHT: Final = 4  # entry bundles queued per worker


# ----------------------------------------------------------------------------- per entry, stateless


Facts = tuple[str, bytes, int, bytes, bytes, bytes] | None
"""(sender, id, seq, ref, hash, body hash) of an envelope; None for an event.
Plain tuples: they cross between processes for every entry."""


class BundleResult(NamedTuple):
    """One entry bundle, examined: its facts, its tree part, its first problem."""

    facts: list[Facts]
    subtree: bytes  # the bundle's perfect-subtree hash (full bundles only)
    leaves: list[bytes]  # the leaf hashes (a partial bundle only)
    problem_at: int  # offset of the first unsound entry, or -1
    problem: str


_keys: Network | None = None
_full_schema = False


_key_by_id: dict[tuple[str, bytes], KeyPeriod] = {}
_max_frame = 0


def _init_worker(network_toml: bytes, full_schema: bool) -> None:
    global _keys, _full_schema, _key_by_id, _max_frame  # noqa: PLW0603 - a worker's own state
    _keys = parse_network(tomllib.loads(network_toml.decode("utf-8")))
    _full_schema = full_schema
    _max_frame = _keys.limits.max_frame_bytes
    parties = [_keys.relay.id, *_keys.endpoints]
    _key_by_id = {
        (party, period.key.kid): period
        for party in parties
        for period in (_keys.periods_of(party) or ())
    }


def _fast_facts(data: bytes) -> Facts | None:
    """The common case in few steps: a well-formed envelope entry whose signature holds.

    Returns None when anything is unusual, so that :func:`_careful_facts` can
    name the problem exactly; never accepts what the careful path would refuse
    (it checks the same structure, the same key and the same signature).
    """
    if _full_schema:
        return None
    try:
        kind, _relay_ts, frame = msgpack.unpackb(data, raw=False)
        if kind != "envelope" or type(frame) is not bytes or len(frame) > _max_frame:
            return None
        version, body_bytes, signature = msgpack.unpackb(frame, raw=False)
        if type(version) is not int or version != 1 or type(body_bytes) is not bytes:
            return None
        body = unpack_map(body_bytes)
    except (ValueError, TypeError, Rejected, msgpack.UnpackException):
        return None
    sender, kid = body.get("from"), body.get("kid")
    period = (
        _key_by_id.get((sender, kid)) if type(sender) is str and type(kid) is bytes else None
    )
    if period is None or type(signature) is not bytes:
        return None
    if period.bounded:
        ts = body.get("ts")
        if type(ts) is not int or not period.covers(ts):
            return None
    if not period.key.verify(signature, MSG_TAG + body_bytes):
        return None
    ident, seq = body.get("id"), body.get("seq")
    if type(ident) is not bytes or len(ident) != ID_SIZE or type(seq) is not int:
        return None
    ref = digest = b""
    if body.get("t") == "receipt":
        ref_v, hash_v = body.get("ref"), body.get("hash")
        if type(ref_v) is not bytes or type(hash_v) is not bytes:
            return None
        ref, digest = ref_v, hash_v
    assert isinstance(sender, str)
    return (sender, ident, seq, ref, digest, hashlib.sha256(body_bytes).digest())


def _examine(data: bytes, keys: Network) -> Facts:
    """The facts of one entry; Rejected or EntryError says what is wrong with it."""
    facts = _fast_facts(data)
    return facts if facts is not None else _careful_facts(data, keys)


def _careful_facts(data: bytes, keys: Network) -> Facts:
    """The facts of one entry, checked step by step so that a failure is named exactly."""
    entry = decode_entry(data)
    if entry.envelope is None:
        return None
    signed = read_envelope(entry.envelope, keys, max_size=keys.limits.max_frame_bytes)
    if not signed.signature_valid():
        raise Rejected(RejectCode.BAD_SIGNATURE, "its signature does not verify")
    if _full_schema:
        signed.verified(unsafe_signature_checked=True)
    body = signed.data
    ident, seq = body.get("id"), body.get("seq")
    if not isinstance(ident, bytes) or len(ident) != ID_SIZE:
        raise Rejected(RejectCode.SCHEMA, "must be 16 bytes of bin", "id")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise Rejected(RejectCode.SCHEMA, "must be an integer", "seq")
    ref = digest = b""
    if body.get("t") == BodyType.RECEIPT.value:
        ref_v, hash_v = body.get("ref"), body.get("hash")
        if not isinstance(ref_v, bytes) or not isinstance(hash_v, bytes):
            raise Rejected(RejectCode.SCHEMA, "a receipt needs ref and hash as bin", "ref")
        ref, digest = ref_v, hash_v
    return (signed.sender, ident, seq, ref, digest, hashlib.sha256(signed.body_bytes).digest())


def _lenient_entries(raw: bytes) -> tuple[list[bytes], str]:
    """The entries a bundle holds, up to any damage, and what the damage is."""
    try:
        return decode_entry_bundle(raw), ""
    except AuditError as exc:
        whole = decodable_prefix(raw)
        return decode_entry_bundle(raw[: _prefix_bytes(raw, whole)]), str(exc)


def _prefix_bytes(raw: bytes, count: int) -> int:
    offset = 0
    for _ in range(count):
        offset += 2 + int.from_bytes(raw[offset : offset + 2], "big")
    return offset


def _examine_bundle(raw: bytes, tile: bytes, width: int) -> BundleResult:
    """Check each entry's leaf hash against its tile, in order, and examine it.

    The first problem wins: a missing, moved, altered or extra entry shows as
    the first position whose leaf hash is not the tile's.
    """
    assert _keys is not None
    facts: list[Facts] = []
    leaves: list[bytes] = []
    entries, damage = _lenient_entries(raw)
    for offset in range(width):
        stored = tile[offset * 32 : offset * 32 + 32]
        if offset >= len(entries):
            problem = damage or f"the bundle holds {len(entries)} entries, not {width}"
            return BundleResult(facts, b"", leaves, offset, problem)
        data = entries[offset]
        leaf = leaf_hash(data)
        if leaf != stored:
            return BundleResult(
                facts, b"", leaves, offset,
                f"its leaf hash {leaf.hex()} differs from the tile's {stored.hex()}",
            )
        leaves.append(leaf)
        try:
            facts.append(_examine(data, _keys))
        except (Rejected, EntryError) as exc:
            return BundleResult(facts, b"", leaves, offset, exc.describe())
    if len(entries) > width or damage:
        return BundleResult(
            facts, b"", leaves, width,
            damage or f"the bundle holds an entry beyond the checkpoint's size "
            f"({len(entries)} entries where {width} belong)",
        )
    if width == TILE_WIDTH:
        return BundleResult(facts, perfect_root(leaves), [], -1, "")
    return BundleResult(facts, b"", leaves, -1, "")


# ----------------------------------------------------------------------------- in order, stateful


@dataclass(frozen=True, slots=True)
class VerifyReport:
    size: int
    root: bytes
    envelopes: int
    events: int
    checkpoints: int
    cosignatures: int

    def summary(self) -> str:
        return (
            f"ok: {self.size} entries ({self.envelopes} signed envelopes, {self.events} events), "
            f"root {self.root.hex()}, {self.checkpoints} checkpoint(s), "
            f"{self.cosignatures} cosignature(s)"
        )


class _Auditor:
    """The ordered checks: ids, seq, receipts; and the tree from the bundles' subtrees."""

    def __init__(self) -> None:
        self.level_one: list[bytes] = []  # the perfect-subtree hash of each full bundle
        self.tail: list[bytes] = []  # leaf hashes of the partial bundle, if any
        self.seen: dict[bytes, bytes] = {}  # message id → body hash
        self.last_seq: dict[str, int] = {}
        self.envelopes = 0
        self.events = 0

    def bundle(self, start: int, result: BundleResult) -> None:
        for offset, facts in enumerate(result.facts):
            self._entry(start + offset, facts)
        if result.problem_at >= 0:
            raise VerificationFailed(start + result.problem_at, result.problem)
        if result.subtree:
            self.level_one.append(result.subtree)
        else:
            self.tail = result.leaves

    def _entry(self, index: int, facts: Facts) -> None:
        if facts is None:
            self.events += 1
            return
        sender, ident, seq, ref, digest, body_hash = facts
        self.envelopes += 1
        if ident in self.seen:
            raise VerificationFailed(index, f"id {ident.hex()} was used by an earlier entry")
        last = self.last_seq.get(sender)
        if last is not None and seq <= last:
            raise VerificationFailed(index, f"seq {seq} from {sender} does not rise above {last}")
        self.last_seq[sender] = seq
        if ref:
            referenced = self.seen.get(ref)
            if referenced is None:
                raise VerificationFailed(
                    index, f"the receipt refers to {ref.hex()}, which no earlier entry holds"
                )
            if referenced != digest:
                raise VerificationFailed(
                    index,
                    f"the receipt's hash {digest.hex()} is not the referenced body's "
                    f"{referenced.hex()}",
                )
        self.seen[ident] = body_hash

    def root(self) -> bytes:
        """MTH of all entries: full bundles are aligned subtrees of 256 leaves."""
        upper = Frontier()
        for subtree in self.level_one:
            upper.append(subtree)
        lower = Frontier()
        for leaf in self.tail:
            lower.append(leaf)
        size = upper.size * TILE_WIDTH + lower.size
        return Frontier(size, upper.hashes + lower.hashes).root()

    def levels(self) -> list[list[bytes]]:
        """The hashes of tree levels 1, 2, … (one per complete run of 256**L entries)."""
        out = [self.level_one]
        while len(out[-1]) >= TILE_WIDTH:
            below = out[-1]
            out.append(
                [perfect_root(below[i : i + TILE_WIDTH])
                 for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)]
            )
        return out


def _open_extras(
    bundle: Bundle, checkpoint: Checkpoint, notes: Sequence[bytes]
) -> list[Checkpoint]:
    relay = bundle.network.relay
    extras: list[Checkpoint] = []
    for number, note in enumerate(notes, 1):
        try:
            extras.append(open_checkpoint(note, relay.origin, [p.key for p in relay.periods]))
        except NoteError as exc:
            raise VerificationFailed(-1, f"checkpoint #{number} does not verify: {exc}") from None
        if extras[-1].size > checkpoint.size:
            raise VerificationFailed(
                -1,
                f"checkpoint #{number} is of size {extras[-1].size}, beyond the bundle's "
                f"{checkpoint.size}",
            )
    return extras


def _examined_bundles(
    bundle: Bundle, size: int, workers: int, full_schema: bool, parallel_from: int
) -> Iterator[tuple[TileRef, BundleResult]]:
    """Each entry bundle with its entries examined, in order (in worker processes if big)."""
    refs = entry_bundles_for_size(size)

    def job(ref: TileRef) -> tuple[bytes, bytes, int]:
        tile = bundle.read_raw(TileRef(0, ref.index, ref.width))
        return bundle.read_raw(ref), tile, ref.width

    if workers <= 1 or size < parallel_from:
        _init_worker(bundle.network_toml, full_schema)
        for ref in refs:
            yield ref, _examine_bundle(*job(ref))
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker,
        initargs=(bundle.network_toml, full_schema),
    ) as pool:
        window: deque[tuple[TileRef, Future[BundleResult]]] = deque()
        position = 0
        while position < len(refs) or window:
            while position < len(refs) and len(window) < _IN_FLIGHT * workers:
                ref = refs[position]
                window.append((ref, pool.submit(_examine_bundle, *job(ref))))
                position += 1
            ref, future = window.popleft()
            yield ref, future.result()


def verify_bundle(
    bundle: Bundle,
    *,
    extra_checkpoints: Sequence[bytes] = (),
    workers: int = 2,
    full_schema: bool = False,
    parallel_from: int = PARALLEL_FROM,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify everything a bundle claims; VerificationFailed names the first bad entry."""
    checkpoint = bundle.checkpoint()
    extras = _open_extras(bundle, checkpoint, extra_checkpoints)
    auditor = _Auditor()
    for ref, result in _examined_bundles(
        bundle, checkpoint.size, workers, full_schema, parallel_from
    ):
        auditor.bundle(ref.start, result)
        if progress is not None:
            progress(ref.width)
    _check_tree(bundle, auditor, checkpoint)
    _check_signing_period(bundle, bundle.checkpoint_bytes, checkpoint.size, "the checkpoint")
    for number, (note, extra) in enumerate(zip(extra_checkpoints, extras, strict=True), 1):
        _check_signing_period(bundle, note, extra.size, f"checkpoint #{number}")
    # The tiles now hold exactly the entries' hashes, so roots at other sizes come from them.
    for number, extra in enumerate(extras, 1):
        root = bundle.subtree_hash(0, extra.size)
        if root != extra.root:
            raise VerificationFailed(
                -1,
                f"checkpoint #{number} signs root {extra.root.hex()} for size {extra.size}, "
                f"but the log's tree at that size is {root.hex()}",
            )
    return VerifyReport(
        size=checkpoint.size,
        root=checkpoint.root,
        envelopes=auditor.envelopes,
        events=auditor.events,
        checkpoints=1 + len(extras),
        cosignatures=_check_cosignatures(bundle),
    )


def _check_tree(bundle: Bundle, auditor: _Auditor, checkpoint: Checkpoint) -> None:
    root = auditor.root()
    if root != checkpoint.root:
        raise VerificationFailed(
            -1,
            f"the tree of {checkpoint.size} entries has root {root.hex()}, but the checkpoint "
            f"signs {checkpoint.root.hex()}",
        )
    for level, hashes in enumerate(auditor.levels(), 1):
        for number in range(0, len(hashes), TILE_WIDTH):
            expected = hashes[number : number + TILE_WIDTH]
            ref = TileRef(level, number // TILE_WIDTH, len(expected))
            if bundle.tile(ref) != expected:
                raise VerificationFailed(
                    -1, f"tile {ref.path()} does not hold the hashes of the entries below it"
                )


def _check_signing_period(bundle: Bundle, note: bytes, size: int, label: str) -> None:
    """The note needs a signature by a relay key not expired when entry ``size - 1`` was written."""
    if size == 0:
        return
    relay = bundle.network.relay
    written = decode_entry(bundle.entry(size - 1)).relay_ts
    keys = [p.key for p in relay.periods if p.not_after is None or written < p.not_after]
    try:
        open_checkpoint(note, relay.origin, keys)
    except NoteError:
        raise VerificationFailed(
            -1,
            f"{label} is signed only by relay keys that had expired when its last entry "
            f"was written ({format_utc_ms(written)})",
        ) from None


def _check_cosignatures(bundle: Bundle) -> int:
    relay = bundle.network.relay
    relay_keys = [p.key for p in relay.periods]
    try:
        checkpoint = open_checkpoint(bundle.checkpoint_bytes, relay.origin, relay_keys)
        signatures = checkpoint_cosignatures(bundle.checkpoint_bytes, relay.origin, relay_keys)
    except NoteError as exc:
        raise VerificationFailed(-1, f"the checkpoint does not verify: {exc}") from None
    count = 0
    for signature in signatures:
        endpoint = bundle.network.endpoints.get(signature.name)
        if endpoint is None:
            continue
        problem = ""
        for period in endpoint.periods:  # a witness that rotated cosigns with either key
            try:
                verify_cosignature(checkpoint.text(), signature, endpoint.id, period.key)
            except NoteError as exc:
                problem = problem or str(exc)
                continue
            problem = ""
            break
        if problem:
            raise VerificationFailed(-1, f"{signature.name}'s cosignature fails: {problem}")
        count += 1
    return count
