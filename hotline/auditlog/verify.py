"""``hotline audit verify``: check a log bundle with nothing but it and the public keys.

Every problem found is a :class:`~hotline.auditlog.rules.Finding` that names
the entry (or ``-1`` for the tree and the checkpoints), a stable rule name and
whom it blames; verification goes on after a finding, so one run lists every
bad entry (the first :data:`MAX_FINDINGS` in full, the rest counted).

- **corrupt** — the bundle is damaged: an entry does not match the hash the
  tile holds for it, is missing or extra, does not decode, or its signature
  does not verify; the tiles do not give the root the checkpoint signs; a
  cosignature does not verify.
- **relay** — the relay logged what an honest relay refuses (every rule of
  :mod:`hotline.auditlog.rules`), or signed a checkpoint that forks from the
  log or with a relay key that had expired. These are evidence against the
  relay only when the entries are those it signed: if the tiles do not give
  the checkpoint's root, the relay's findings are reported as corrupt instead.

What is checked:

1. each entry's leaf hash equals the level-0 tile hash stored for it (an
   entry that differs is reported and not examined further, so a deleted
   entry shows as every following entry of its bundle);
2. every entry against the rules of :mod:`hotline.auditlog.rules`, in log
   order (``full_schema`` checks each body against the whole schema; without
   it, only the fields those rules read);
3. the tree built from the level-0 tiles has the root the checkpoint signs,
   and every stored tile of a higher level equals the recomputed one;
4. every extra checkpoint given is signed by the relay and matches the tree at
   its size (so no two roots were signed for one history);
5. each checkpoint carries a signature by a relay key that had not expired
   when the last entry it covers was written (a retired relay key cannot vouch
   for later entries, while old checkpoints signed with it still verify);
6. the cosignatures by endpoints on the bundle's checkpoint and on every extra
   checkpoint verify, by any of the endpoint's keys.

A checkpoint that is not signed by the relay at all, an extra checkpoint
beyond the bundle's size, and a missing tile stop verification with
:class:`~hotline.errors.VerificationFailed`: nothing can be judged against them.

The stateless part of the work (decoding, hashing, the signature) runs in
worker processes, a bundle of 256 entries at a time, so that both cores verify
signatures without contending for one interpreter lock; the main process keeps
the ordered, stateful rules. Small bundles are checked in-process.
"""

from __future__ import annotations

import enum
import multiprocessing
import tomllib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Final, NamedTuple

from hotline.auditlog.bundle import Bundle, decodable_prefix
from hotline.auditlog.checkpoint import Checkpoint, checkpoint_cosignatures, open_checkpoint
from hotline.auditlog.cosignature import verify_cosignature
from hotline.auditlog.hashlevels import perfect_root
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.auditlog.rules import Blame, Examined, Examiner, Finding, LogRules
from hotline.auditlog.tiles import TILE_WIDTH, TileRef, decode_entry_bundle, entry_bundles_for_size
from hotline.errors import AuditError, NoteError, VerificationFailed
from hotline.network import Network, parse_network
from hotline.protocol.timetext import format_utc_ms

__all__ = ["MAX_FINDINGS", "BundleRule", "VerifyReport", "audit_bundle", "verify_bundle"]

PARALLEL_FROM: Final = 8192  # below this many entries, worker processes cost more than they save
MAX_FINDINGS: Final = 1000  # findings kept in full; the rest are only counted
_IN_FLIGHT: Final = 4  # entry bundles queued per worker
_NO_HASH: Final = b"\x00" * 32


class BundleRule(enum.StrEnum):
    """Rules of the bundle as a whole (entry rules are in :class:`~hotline.auditlog.rules.Rule`)."""

    LEAF_MISMATCH = "leaf_mismatch"  # corrupt: the entry is not the one the tile hashes
    ENTRY_MISSING = "entry_missing"  # corrupt: the bundle lacks an entry the tree has
    ENTRY_EXTRA = "entry_extra"  # corrupt: the bundle holds entries beyond the checkpoint
    TREE_MISMATCH = "tree_mismatch"  # corrupt: the tiles do not give the signed root
    TILE_MISMATCH = "tile_mismatch"  # corrupt: a higher tile does not hash the one below
    COSIGNATURE_BAD = "cosignature_bad"  # corrupt: an endpoint's cosignature does not verify
    CHECKPOINT_FORK = "checkpoint_fork"  # relay: it signed another root for a size of this log
    CHECKPOINT_KEY_EXPIRED = "checkpoint_key_expired"  # relay: signed only by expired keys


# ---------------------------------------------------------------------------- per bundle, stateless


class BundleResult(NamedTuple):
    """One entry bundle, examined: each entry's result and the tile's hashes."""

    entries: list[Examined]  # one per position of the tile (missing entries included)
    hashes: list[bytes]  # the level-0 hashes the tile holds (what the checkpoint covers)
    extra: list[Finding]  # findings of the bundle as a whole (entries beyond its width)


_examiner: Examiner | None = None


def _init_worker(network_toml: bytes, full_schema: bool) -> None:
    global _examiner  # noqa: PLW0603 - a worker's own state
    network = parse_network(tomllib.loads(network_toml.decode("utf-8")))
    _examiner = Examiner(network, full_schema=full_schema)


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


def _corrupt(index: int, rule: BundleRule, sentence: str) -> Finding:
    return Finding(index, rule, Blame.CORRUPT, sentence)


def _examine_bundle(raw: bytes | None, tile: bytes, width: int, start: int) -> BundleResult:
    """Check each entry's leaf hash against its tile and examine the entries that match.

    ``raw`` is None when the bundle file is missing. An entry that is not the
    one its tile hash names is reported and examined no further.
    """
    assert _examiner is not None
    stored = [tile[i : i + 32] for i in range(0, width * 32, 32)]
    entries, damage = _lenient_entries(raw) if raw is not None else ([], "")
    results: list[Examined] = []
    hashes: list[bytes] = []
    for offset in range(width):
        index = start + offset
        tile_hash = stored[offset] if len(stored[offset]) == 32 else b""
        if offset >= len(entries):
            problem = (
                "the bundle file is missing" if raw is None
                else damage or f"the bundle holds {len(entries)} entries, not {width}"
            )
            results.append(_missing(index, BundleRule.ENTRY_MISSING, problem))
            hashes.append(tile_hash or _NO_HASH)
            continue
        data = entries[offset]
        leaf = leaf_hash(data)
        hashes.append(tile_hash or leaf)
        if not tile_hash:
            results.append(_missing(
                index, BundleRule.LEAF_MISMATCH,
                f"the tile holds no hash for it (the tile is {len(tile)} bytes)",
            ))
        elif leaf != tile_hash:
            results.append(_missing(
                index, BundleRule.LEAF_MISMATCH,
                f"its leaf hash {leaf.hex()} differs from the tile's {tile_hash.hex()}",
            ))
        else:
            results.append(_examiner.examine(index, data))
    extra: list[Finding] = []
    if len(entries) > width or (damage and len(entries) >= width):
        extra.append(_corrupt(
            start + width, BundleRule.ENTRY_EXTRA,
            damage or f"the bundle holds an entry beyond the checkpoint's size "
            f"({len(entries)} entries where {width} belong)",
        ))
    return BundleResult(results, hashes, extra)


def _missing(index: int, rule: BundleRule, sentence: str) -> Examined:
    return Examined(None, (_corrupt(index, rule, sentence),), envelope=False)


# ----------------------------------------------------------------------------- in order, stateful


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What was checked and every finding (the first :data:`MAX_FINDINGS`, all counted)."""

    size: int
    root: bytes
    envelopes: int
    events: int
    checkpoints: int
    cosignatures: int
    findings: tuple[Finding, ...] = ()
    relay_findings: int = 0
    corrupt_findings: int = 0

    @property
    def ok(self) -> bool:
        return self.relay_findings + self.corrupt_findings == 0

    def summary(self) -> str:
        """One line: ``ok: …`` for a sound bundle, else the count of findings by blame."""
        if self.ok:
            return (
                f"ok: {self.size} entries ({self.envelopes} signed envelopes, "
                f"{self.events} events), root {self.root.hex()}, {self.checkpoints} "
                f"checkpoint(s), {self.cosignatures} cosignature(s)"
            )
        total = self.relay_findings + self.corrupt_findings
        return (
            f"{total} finding(s) in {self.size} entries: {self.relay_findings} against the "
            f"relay (it logged or signed what it should have refused), "
            f"{self.corrupt_findings} of a corrupt bundle"
        )

    def lines(self) -> list[str]:
        """``relay: entry N: rule: sentence`` for each kept finding, the relay's first."""
        out = []
        for blame in (Blame.RELAY, Blame.CORRUPT):
            for finding in self.findings:
                if finding.blame is blame:
                    where = f"entry {finding.index}" if finding.index >= 0 else "log"
                    out.append(f"{blame.value}: {where}: {finding.rule}: {finding.sentence}")
        hidden = self.relay_findings + self.corrupt_findings - len(self.findings)
        if hidden:
            out.append(f"… and {hidden} more finding(s) not shown")
        return out


@dataclass(slots=True)
class _Findings:
    """Findings in the order found, the first MAX_FINDINGS kept, all counted by blame."""

    kept: list[Finding] = field(default_factory=list)
    counts: dict[Blame, int] = field(default_factory=lambda: dict.fromkeys(Blame, 0))

    def add(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.counts[finding.blame] += 1
            if len(self.kept) < MAX_FINDINGS:
                self.kept.append(finding)

    def unattributable(self) -> None:
        """The entries are not proven to be the relay's: its findings become corruption."""
        self.counts[Blame.CORRUPT] += self.counts[Blame.RELAY]
        self.counts[Blame.RELAY] = 0
        self.kept = [
            replace(f, blame=Blame.CORRUPT, sentence=f"{f.sentence} (not evidence against the "
                    "relay: the entries do not match the tree it signed)")
            if f.blame is Blame.RELAY else f
            for f in self.kept
        ]


class _Auditor:
    """The ordered rules over every entry; and the tree from the tiles' level-0 hashes."""

    def __init__(self, network: Network, full_schema: bool) -> None:
        self.rules = LogRules(network, full_schema=full_schema)
        self.findings = _Findings()
        self.level_one: list[bytes] = []  # the perfect-subtree hash of each full bundle
        self.tail: list[bytes] = []  # leaf hashes of the partial bundle, if any
        self.envelopes = 0
        self.events = 0

    def bundle(self, start: int, result: BundleResult) -> None:
        for offset, examined in enumerate(result.entries):
            index = start + offset
            corrupt = any(f.blame is Blame.CORRUPT for f in examined.findings)
            self.findings.add(examined.findings)
            self.findings.add(self.rules.ordered(index, examined.facts, corrupt=corrupt))
            if examined.envelope:
                self.envelopes += 1
            elif not examined.findings:
                self.events += 1
        self.findings.add(result.extra)
        if len(result.hashes) == TILE_WIDTH:
            self.level_one.append(perfect_root(result.hashes))
        else:
            self.tail = result.hashes

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

    def job(ref: TileRef) -> tuple[bytes | None, bytes, int, int]:
        tile = bundle.read_raw(TileRef(0, ref.index, ref.width))
        try:
            raw: bytes | None = bundle.read_raw(ref)
        except VerificationFailed:
            raw = None
        return raw, tile, ref.width, ref.start

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


def audit_bundle(
    bundle: Bundle,
    *,
    extra_checkpoints: Sequence[bytes] = (),
    workers: int = 2,
    full_schema: bool = False,
    parallel_from: int = PARALLEL_FROM,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check everything a bundle claims and report every finding (see the module docstring).

    Raises VerificationFailed only when nothing can be judged: the bundle's
    checkpoint or an extra one is not signed by the relay, an extra checkpoint
    is beyond the bundle, or a tile is missing.
    """
    checkpoint = bundle.checkpoint()
    extras = _open_extras(bundle, checkpoint, extra_checkpoints)
    auditor = _Auditor(bundle.network, full_schema)
    for ref, result in _examined_bundles(
        bundle, checkpoint.size, workers, full_schema, parallel_from
    ):
        auditor.bundle(ref.start, result)
        if progress is not None:
            progress(ref.width)
    findings = auditor.findings
    tree_sound = _check_tree(bundle, auditor, checkpoint, findings)
    if not tree_sound:
        findings.unattributable()
    notes = [bundle.checkpoint_bytes, *extra_checkpoints]
    sizes = [checkpoint.size, *(extra.size for extra in extras)]
    for number, (note, size) in enumerate(zip(notes, sizes, strict=True)):
        label = "the checkpoint" if number == 0 else f"checkpoint #{number}"
        findings.add(_check_signing_period(bundle, note, size, label))
    # The tiles now hold exactly the tree's hashes, so roots at other sizes come from them.
    for number, extra in enumerate(extras, 1):
        root = bundle.subtree_hash(0, extra.size)
        if root != extra.root:
            findings.add([Finding(
                -1, BundleRule.CHECKPOINT_FORK, Blame.RELAY if tree_sound else Blame.CORRUPT,
                f"checkpoint #{number} signs root {extra.root.hex()} for size {extra.size}, "
                f"but the log's tree at that size is {root.hex()}",
            )])
    cosignatures = 0
    for number, note in enumerate(notes):
        label = "the checkpoint" if number == 0 else f"checkpoint #{number}"
        count, problems = _check_cosignatures(bundle, note, label)
        cosignatures += count
        findings.add(problems)
    return VerifyReport(
        size=checkpoint.size,
        root=checkpoint.root,
        envelopes=auditor.envelopes,
        events=auditor.events,
        checkpoints=len(notes),
        cosignatures=cosignatures,
        findings=tuple(findings.kept),
        relay_findings=findings.counts[Blame.RELAY],
        corrupt_findings=findings.counts[Blame.CORRUPT],
    )


def verify_bundle(
    bundle: Bundle,
    *,
    extra_checkpoints: Sequence[bytes] = (),
    workers: int = 2,
    full_schema: bool = False,
    parallel_from: int = PARALLEL_FROM,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """:func:`audit_bundle`, raising VerificationFailed with the first finding if any."""
    report = audit_bundle(
        bundle, extra_checkpoints=extra_checkpoints, workers=workers, full_schema=full_schema,
        parallel_from=parallel_from, progress=progress,
    )
    if not report.ok:
        first = report.findings[0]
        raise VerificationFailed(first.index, f"{first.rule}: {first.sentence}")
    return report


def _check_tree(
    bundle: Bundle, auditor: _Auditor, checkpoint: Checkpoint, findings: _Findings
) -> bool:
    """The tiles against the signed root; False if the root does not match."""
    root = auditor.root()
    if root != checkpoint.root:
        findings.add([_corrupt(
            -1, BundleRule.TREE_MISMATCH,
            f"the tiles of {checkpoint.size} entries give root {root.hex()}, but the "
            f"checkpoint signs {checkpoint.root.hex()}",
        )])
        return False
    for level, hashes in enumerate(auditor.levels(), 1):
        for number in range(0, len(hashes), TILE_WIDTH):
            expected = hashes[number : number + TILE_WIDTH]
            ref = TileRef(level, number // TILE_WIDTH, len(expected))
            if bundle.tile(ref) != expected:
                findings.add([_corrupt(
                    -1, BundleRule.TILE_MISMATCH,
                    f"tile {ref.path()} does not hold the hashes of the entries below it",
                )])
    return True


def _check_signing_period(bundle: Bundle, note: bytes, size: int, label: str) -> list[Finding]:
    """The note needs a signature by a relay key not expired when entry ``size - 1`` was written."""
    if size == 0:
        return []
    relay = bundle.network.relay
    try:
        written = decode_entry(bundle.entry(size - 1)).relay_ts
    except AuditError:
        return []  # the entry is damaged or missing: already a finding
    keys = [p.key for p in relay.periods if p.not_after is None or written < p.not_after]
    try:
        open_checkpoint(note, relay.origin, keys)
    except NoteError:
        return [Finding(
            -1, BundleRule.CHECKPOINT_KEY_EXPIRED, Blame.RELAY,
            f"{label} is signed only by relay keys that had expired when its last entry "
            f"was written ({format_utc_ms(written)})",
        )]
    return []


def _check_cosignatures(bundle: Bundle, note: bytes, label: str) -> tuple[int, list[Finding]]:
    """How many endpoint cosignatures on ``note`` verify, and a finding for each that does not."""
    relay = bundle.network.relay
    relay_keys = [p.key for p in relay.periods]
    checkpoint = open_checkpoint(note, relay.origin, relay_keys)
    signatures = checkpoint_cosignatures(note, relay.origin, relay_keys)
    count = 0
    problems: list[Finding] = []
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
            problems.append(_corrupt(
                -1, BundleRule.COSIGNATURE_BAD,
                f"{signature.name}'s cosignature on {label} fails: {problem}",
            ))
        else:
            count += 1
    return count, problems
