"""The endpoint's watch over the relay, sans-IO: claims, bounds and checks.

The relay is trusted for availability only, so an endpoint believes nothing
it says without evidence. :class:`Guard` takes what the core saw (what we
signed, what the relay answered, what it delivered), each log entry the edge's
monitor read under a checkpoint we witnessed (in log order, after checking
that the entries hash to that checkpoint's root), proofs the edge fetched, and
the time; it returns :class:`~hotline.endpoint.alarms.RelaySuspected` alarms,
each raised once. Rules:

=====================  ========================================================================
alarm                  raised when
=====================  ========================================================================
not_accepted           something we signed (a message, an acknowledgement) has neither the
                       relay's ``accepted`` nor a relay-signed refusal within the accept bound
                       of its precedence, counted from when we queued it (FLASH 10 s)
delivery_late          a delivered message reached us more than its precedence's delivery
                       deadline after the relay logged it, while we were connected all along
delivery_reordered     a sender's message reached us after one of its later messages (higher
                       ``seq``) of the same or lower urgency (the relay may only put more
                       urgent messages first)
delivery_stale         a message reached us past its ``expires`` or older than ``max_age``
                       although we were connected before it was written, or the same message
                       came again from a second log index
not_in_log             the entry at an index the relay named (in ``accepted`` or ``deliver``)
                       holds something else
inclusion_unproven     an index the relay named is not under a checkpoint we witnessed and
                       whose entries we checked, within the proof bound (15 s): a frozen
                       checkpoint, or entries the relay will not serve
consistency_unproven   a newer checkpoint, or a checkpoint a peer signed into a body, is not
                       proven consistent with ours within the proof bound
split_view             a peer's signed checkpoint contradicts ours: the same size with another
                       root, or a consistency proof between the two that fails
entries_mismatch       the entries the relay serves do not hash to the root it signed
log_rule_broken        the log holds an entry an honest relay refuses (a finding of
                       :class:`~hotline.auditlog.rules.LogRules` against the relay)
withheld               a message to us is in the log but was not delivered to us within the
                       proof bound of our seeing it there, while we were connected
=====================  ========================================================================

Refusals (``refusal_unsigned``, ``refusal_unfounded``) are judged by the core,
which holds the frames they answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.merkle import verify_consistency
from hotline.auditlog.rules import Blame, LogRules
from hotline.endpoint.alarms import (
    ACCEPT_BOUND_MS,
    PROOF_BOUND_MS,
    AlarmKind,
    RelaySuspected,
)
from hotline.endpoint.state import HeldCheckpoint
from hotline.endpoint.witness import ConsistencyProof
from hotline.errors import HotlineError
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import (
    Body,
    CancelBody,
    RoutedBody,
    SeenCheckpoint,
    TextBody,
    WarningBody,
)
from hotline.protocol.envelope import body_hash, read_envelope
from hotline.protocol.ids import format_id
from hotline.protocol.vocab import Precedence

__all__ = ["Guard", "PeerProofNeed"]

K = TypeVar("K")
V = TypeVar("V")

_PEERS_WAITING: Final = 4096
"""Peers' checkpoints waiting for a proof at once; a relay refusing proofs cannot grow it."""

_REMEMBERED: Final = 1 << 16
"""Recent log indexes (and message ids) remembered for claims that arrive late."""


@dataclass(slots=True)
class _Claim:
    """The relay said the entry at ``index`` holds the body hashing to ``body_hash``."""

    index: int
    body_hash: bytes
    ref: bytes
    what: str  # "accepted" or "delivered"
    party: str
    due_ms: int
    received_ms: int
    late_after_ms: int  # the delivery deadline of a routed message; 0 for anything else
    connected_since: int | None
    raised: bool = False


@dataclass(slots=True)
class _PeerView:
    sender: str
    ref: bytes
    due_ms: int
    raised: bool = False


@dataclass(frozen=True, slots=True)
class PeerProofNeed:
    """Fetch ``/v1/proof/consistency?old=&new=`` to compare a peer's checkpoint with ours."""

    seen: SeenCheckpoint
    old: int
    new: int


def _hex(data: bytes) -> str:
    return data.hex()


class Guard:
    """What we expect of the relay, and the alarms when it falls short."""

    def __init__(self, network: Network, me: str, received: Callable[[bytes], bool]) -> None:
        self._network = network
        self._me = me
        self._received = received
        self._rules = LogRules(network)
        self._accept_due: dict[bytes, tuple[int, Precedence, int]] = {}
        self._claims: dict[int, list[_Claim]] = {}
        self.covered = 0  # entries below this index were read and checked
        self._hashes: OrderedDict[int, bytes] = OrderedDict()  # recent index → body hash
        self._relay_ts: OrderedDict[int, int] = OrderedDict()
        self._owed: dict[bytes, tuple[int, int, str]] = {}  # id → (index, due, sender)
        self._unproven: tuple[int, int] | None = None  # (held size, since) of a pending proof
        self._unproven_raised = False
        self._peers: dict[tuple[int, bytes], _PeerView] = {}
        self._agreed: OrderedDict[tuple[int, bytes], None] = OrderedDict()
        self._last_seq: dict[str, tuple[int, int]] = {}  # sender → (seq, rank) of its latest
        self._first_index: OrderedDict[bytes, int] = OrderedDict()
        self._replayed: OrderedDict[bytes, None] = OrderedDict()
        self._mismatch_raised: set[int] = set()
        self.connected_since: int | None = None
        self._offset: int | None = None  # our clock minus the relay's, at most

    # ------------------------------------------------------------------ connection and clock

    def connection(self, *, up: bool, now_ms: int) -> None:
        """The relay welcomed us (``up``) or the session ended."""
        self.connected_since = now_ms if up else None
        if up:
            for ref, (index, due, sender) in list(self._owed.items()):
                self._owed[ref] = (index, max(due, now_ms + PROOF_BOUND_MS), sender)

    def link_test(self, test_ts: int, received_ms: int) -> None:
        """A link test signed at the relay's ``test_ts`` reached us at ``received_ms``."""
        offset = received_ms - test_ts
        self._offset = offset if self._offset is None else min(self._offset, offset)

    # ------------------------------------------------------------------ what we signed

    def expect_accept(self, ref: bytes, precedence: Precedence, now_ms: int) -> None:
        """We queued ``ref``: the relay owes ``accepted`` (or a signed refusal) in time."""
        self._accept_due[ref] = (now_ms + ACCEPT_BOUND_MS[precedence], precedence, now_ms)

    def settled(self, ref: bytes) -> None:
        """The relay answered ``ref`` with a signed ``accepted`` or refusal."""
        self._accept_due.pop(ref, None)

    def accepted(self, ref: bytes, index: int, digest: bytes, now_ms: int) -> list[RelaySuspected]:
        self.settled(ref)
        return self._claim(_Claim(index, digest, ref, "accepted", "", now_ms + PROOF_BOUND_MS,
                                  now_ms, 0, self.connected_since), now_ms)

    # ------------------------------------------------------------------ what the relay delivered

    def delivered(
        self, index: int, digest: bytes, body: RoutedBody, now_ms: int
    ) -> list[RelaySuspected]:
        """A message to us arrived for the first time, verified, from log ``index``."""
        out: list[RelaySuspected] = []
        _remember(self._first_index, body.id, index)
        self._owed.pop(body.id, None)
        out.extend(self._order(body, index, now_ms))
        out.extend(self._freshness(body, index, now_ms))
        late = self._network.deadlines[body.precedence].delivered_ms
        out.extend(self._claim(_Claim(index, digest, body.id, "delivered", body.sender,
                                      now_ms + PROOF_BOUND_MS, now_ms, late,
                                      self.connected_since), now_ms))
        return out

    def delivered_again(
        self, ref: bytes, sender: str, index: int, now_ms: int
    ) -> list[RelaySuspected]:
        """A message we hold came again; from another log index it was logged twice."""
        first = self._first_index.get(ref)
        if first is None or first == index or index < 0 or ref in self._replayed:
            return []
        _remember(self._replayed, ref, None)  # one alarm per message, however often replayed
        return [RelaySuspected(
            AlarmKind.DELIVERY_STALE,
            f"message {format_id(ref)} from {sender} was delivered again from log index {index}; "
            f"it came from index {first} before: the relay logged it twice",
            now_ms, ref, sender, index, (("first_index", first), ("again_index", index)),
        )]

    def delivered_entry(self, index: int, digest: bytes, ref: bytes, sender: str,
                        now_ms: int) -> list[RelaySuspected]:
        """A receipt or link test for us arrived from log ``index``."""
        return self._claim(_Claim(index, digest, ref, "delivered", sender,
                                  now_ms + PROOF_BOUND_MS, now_ms, 0, self.connected_since),
                           now_ms)

    def _order(self, body: RoutedBody, index: int, now_ms: int) -> list[RelaySuspected]:
        rank = body.precedence.rank
        last = self._last_seq.get(body.sender)
        if last is None or body.seq > last[0]:
            self._last_seq[body.sender] = (body.seq, rank)
            return []
        last_seq, last_rank = last
        if rank > last_rank:
            return []  # a less urgent message may wait behind a more urgent one
        return [RelaySuspected(
            AlarmKind.DELIVERY_REORDERED,
            f"{body.sender}'s message {format_id(body.id)} (seq {body.seq}, "
            f"{body.precedence.value}) reached us after its later message seq {last_seq}",
            now_ms, body.id, body.sender, index, (("seq", body.seq), ("after_seq", last_seq)),
        )]

    def _freshness(self, body: RoutedBody, index: int, now_ms: int) -> list[RelaySuspected]:
        since = self.connected_since
        if since is None or since > body.ts:
            return []  # we were away when it was written: a backlog may be old by right
        expires = body.expires if isinstance(body, WarningBody) else None
        problem = None
        if expires is not None and now_ms > expires:
            problem = f"it expired {now_ms - expires} ms before it reached us"
        elif now_ms - body.ts > self._network.limits.max_age_ms:
            problem = f"it was written {now_ms - body.ts} ms before it reached us"
        if problem is None:
            return []
        return [RelaySuspected(
            AlarmKind.DELIVERY_STALE,
            f"{body.sender}'s message {format_id(body.id)} is stale: {problem}, "
            "although we were connected when it was written",
            now_ms, body.id, body.sender, index,
            (("ts", body.ts), ("received_ms", now_ms), ("expires", expires or 0)),
        )]

    # ------------------------------------------------------------------ claims on the log

    def _claim(self, claim: _Claim, now_ms: int) -> list[RelaySuspected]:
        if claim.index < 0:
            return []
        if claim.index < self.covered:
            logged = self._hashes.get(claim.index)
            if logged is None and claim.index not in self._relay_ts:
                return []  # older than what we remember: the auditor's job
            return self._confirm(claim, logged, self._relay_ts.get(claim.index, 0), now_ms)
        self._claims.setdefault(claim.index, []).append(claim)
        return []

    def _confirm(
        self, claim: _Claim, logged: bytes | None, relay_ts: int, now_ms: int
    ) -> list[RelaySuspected]:
        if logged != claim.body_hash:
            found = "an event" if logged is None else f"body hash {_hex(logged)}"
            return [RelaySuspected(
                AlarmKind.NOT_IN_LOG,
                f"the relay named log index {claim.index} for {format_id(claim.ref)} "
                f"({claim.what}), but that entry holds {found}",
                now_ms, claim.ref, claim.party, claim.index,
                (("what", claim.what), ("expected_hash", _hex(claim.body_hash)),
                 ("found", "event" if logged is None else _hex(logged))),
            )]
        if not claim.late_after_ms or claim.connected_since is None:
            return []
        logged_here = relay_ts + (self._offset or 0)
        start = max(logged_here, claim.connected_since)
        waited = claim.received_ms - start
        if waited <= claim.late_after_ms:
            return []
        return [RelaySuspected(
            AlarmKind.DELIVERY_LATE,
            f"{claim.party}'s message {format_id(claim.ref)} was logged at index {claim.index} "
            f"but reached us {waited} ms later, past its {claim.late_after_ms} ms delivery "
            "deadline, while we were connected",
            now_ms, claim.ref, claim.party, claim.index,
            (("relay_ts", relay_ts), ("received_ms", claim.received_ms), ("waited_ms", waited)),
        )]

    # ------------------------------------------------------------------ the monitor's entries

    def logged(self, index: int, entry: bytes, now_ms: int) -> list[RelaySuspected]:
        """The entry at ``index``, read under a checkpoint we witnessed, in log order."""
        out: list[RelaySuspected] = []
        for finding in self._rules.entry(index, entry):
            out.append(RelaySuspected(
                AlarmKind.LOG_RULE_BROKEN,
                f"log index {finding.index}: {finding.sentence}",
                now_ms, b"", "", finding.index,
                (("rule", str(finding.rule)),
                 ("blame", "relay" if finding.blame is Blame.RELAY else "corrupt")),
            ))
        digest, relay_ts, body = _read(entry, self._network)
        if digest is not None:
            _remember(self._hashes, index, digest)
        _remember(self._relay_ts, index, relay_ts)
        for claim in self._claims.pop(index, ()):
            out.extend(self._confirm(claim, digest, relay_ts, now_ms))
        self.covered = max(self.covered, index + 1)
        if isinstance(body, WarningBody | CancelBody | TextBody) and body.sender != self._me:
            to_us = self._me in recipients_of(self._network, body.sender, body.to)
            if to_us and not self._received(body.id) and body.id not in self._first_index:
                self._owed[body.id] = (index, now_ms + PROOF_BOUND_MS, body.sender)
        return out

    def mismatch(self, held: HeldCheckpoint, computed: bytes, now_ms: int) -> list[RelaySuspected]:
        """The entries served for ``held`` hash to ``computed``, not to its root."""
        if held.size in self._mismatch_raised:
            return []
        self._mismatch_raised.add(held.size)
        return [RelaySuspected(
            AlarmKind.ENTRIES_MISMATCH,
            f"the entries the relay serves up to size {held.size} hash to root "
            f"{_hex(computed)}, not to the root {_hex(held.root)} it signed",
            now_ms, b"", "", held.size,
            (("size", held.size), ("signed_root", _hex(held.root)),
             ("entries_root", _hex(computed))),
        )]

    # ------------------------------------------------------------------ checkpoints

    def proof_pending(self, held_size: int, now_ms: int) -> None:
        """A newer checkpoint waits for a consistency proof from ``held_size``."""
        if self._unproven is None or self._unproven[0] != held_size:
            self._unproven = (held_size, now_ms)
            self._unproven_raised = False

    def proof_done(self) -> None:
        """The checkpoint we hold moved on (or the proof came)."""
        self._unproven = None
        self._unproven_raised = False

    def peer_view(
        self, sender: str, ref: bytes, seen: SeenCheckpoint, held: HeldCheckpoint | None,
        *, index: int, now_ms: int,
    ) -> list[RelaySuspected]:
        """A body ``sender`` signed says it saw ``seen``: it must agree with our view."""
        key = (seen.size, seen.root)
        if key in self._agreed or key in self._peers:
            return []
        if held is not None and held.size == seen.size:
            if held.root == seen.root:
                _remember(self._agreed, key, None)
                return []
            return [self._split(sender, ref, seen, held, index=index,
                                problem="the same size with another root", now_ms=now_ms)]
        if len(self._peers) >= _PEERS_WAITING:
            return []  # the relay already leaves this many unproven: their alarms stand
        self._peers[key] = _PeerView(sender, ref, now_ms + PROOF_BOUND_MS)
        return []

    def peer_proofs_needed(self, held: HeldCheckpoint | None) -> list[PeerProofNeed]:
        """Proofs to fetch now: each waiting peer checkpoint against the one we hold."""
        if held is None:
            return []
        return [
            PeerProofNeed(SeenCheckpoint(size=size, root=root), min(size, held.size),
                          max(size, held.size))
            for (size, root) in self._peers
            if size != held.size or root != held.root
        ]

    def peer_proof(
        self, need: PeerProofNeed, held: HeldCheckpoint, proof: ConsistencyProof, now_ms: int
    ) -> list[RelaySuspected]:
        """Judge a fetched proof between a peer's checkpoint and ours (the roots are ours)."""
        key = (need.seen.size, need.seen.root)
        view = self._peers.get(key)
        if view is None:
            return []
        if need.seen.size == held.size:
            del self._peers[key]
            if need.seen.root == held.root:
                _remember(self._agreed, key, None)
                return []
            return [self._split(view.sender, view.ref, need.seen, held, index=-1,
                                problem="the same size with another root", now_ms=now_ms)]
        if need.seen.size < held.size:
            old, new, old_root, new_root = need.seen.size, held.size, need.seen.root, held.root
        else:
            old, new, old_root, new_root = held.size, need.seen.size, held.root, need.seen.root
        problem = None
        if (proof.old_size, proof.new_size) != (old, new):
            problem = f"the relay proved sizes {proof.old_size} to {proof.new_size}"
        else:
            try:
                verify_consistency(old, new, old_root, new_root, proof.proof)
            except HotlineError as exc:
                problem = f"no consistency between them: {exc}"
        del self._peers[key]
        if problem is None:
            _remember(self._agreed, key, None)
            return []
        return [self._split(view.sender, view.ref, need.seen, held, index=-1, problem=problem,
                            now_ms=now_ms)]

    def _split(self, sender: str, ref: bytes, seen: SeenCheckpoint, held: HeldCheckpoint,
               *, index: int, problem: str, now_ms: int) -> RelaySuspected:
        return RelaySuspected(
            AlarmKind.SPLIT_VIEW,
            f"{sender} signed that it saw the relay's tree at size {seen.size} with root "
            f"{_hex(seen.root)}; we hold size {held.size} with root {_hex(held.root)}: {problem}. "
            "The relay shows different histories to different endpoints",
            now_ms, ref, sender, index,
            (("their_size", seen.size), ("their_root", _hex(seen.root)),
             ("our_size", held.size), ("our_root", _hex(held.root))),
        )

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> list[RelaySuspected]:
        """Every bound passed by ``now_ms``, each alarm raised once."""
        out: list[RelaySuspected] = []
        for ref, (due, precedence, queued) in list(self._accept_due.items()):
            if now_ms >= due:
                del self._accept_due[ref]
                waited = now_ms - queued
                out.append(RelaySuspected(
                    AlarmKind.NOT_ACCEPTED,
                    f"our {precedence.value} message {format_id(ref)} was queued {waited} ms ago "
                    f"and the relay has neither accepted nor refused it "
                    f"(bound {ACCEPT_BOUND_MS[precedence]} ms)",
                    now_ms, ref, "", -1, (("queued_ms", queued), ("waited_ms", waited)),
                ))
        for claims in self._claims.values():
            for claim in claims:
                if not claim.raised and now_ms >= claim.due_ms:
                    claim.raised = True
                    out.append(RelaySuspected(
                        AlarmKind.INCLUSION_UNPROVEN,
                        f"the relay named log index {claim.index} for {format_id(claim.ref)} "
                        f"({claim.what}) {now_ms - claim.received_ms} ms ago; no checkpoint we "
                        f"could check reaches it (entries checked up to {self.covered})",
                        now_ms, claim.ref, claim.party, claim.index,
                        (("what", claim.what), ("covered", self.covered)),
                    ))
        if self._unproven is not None and not self._unproven_raised:
            held_size, since = self._unproven
            if now_ms - since >= PROOF_BOUND_MS:
                self._unproven_raised = True
                out.append(RelaySuspected(
                    AlarmKind.CONSISTENCY_UNPROVEN,
                    f"the relay announced a newer checkpoint {now_ms - since} ms ago and has not "
                    f"proven it consistent with the one we hold (size {held_size})",
                    now_ms, b"", "", held_size, (("held_size", held_size), ("since_ms", since)),
                ))
        for (size, root), view in self._peers.items():
            if not view.raised and now_ms >= view.due_ms:
                view.raised = True
                out.append(RelaySuspected(
                    AlarmKind.CONSISTENCY_UNPROVEN,
                    f"{view.sender} signed that it saw the relay's tree at size {size}; the relay "
                    "has not proven that tree consistent with ours",
                    now_ms, view.ref, view.sender, -1,
                    (("their_size", size), ("their_root", _hex(root))),
                ))
        if self.connected_since is not None:
            for ref, (index, due, sender) in list(self._owed.items()):
                if self._received(ref):
                    del self._owed[ref]
                elif now_ms >= due:
                    del self._owed[ref]
                    out.append(RelaySuspected(
                        AlarmKind.WITHHELD,
                        f"{sender}'s message {format_id(ref)} to us is in the log at index "
                        f"{index}, and the relay has not delivered it to us",
                        now_ms, ref, sender, index, (("index", index),),
                    ))
        return out



def _remember(table: OrderedDict[K, V], key: K, value: V) -> None:
    """Keep ``key`` in a table of the most recent :data:`_REMEMBERED` keys."""
    table[key] = value
    if len(table) > _REMEMBERED:
        table.popitem(last=False)


def _read(entry: bytes, network: Network) -> tuple[bytes | None, int, Body | None]:
    """An entry's body hash (None for an event), its relay time and its body, unverified.

    The monitor's checker verifies signatures; here only what was logged is compared.
    """
    try:
        decoded = decode_entry(entry)
    except HotlineError:
        return None, 0, None
    if decoded.envelope is None:
        return None, decoded.relay_ts, None
    try:
        signed = read_envelope(decoded.envelope, network, max_size=1 << 30)
    except HotlineError:
        return body_hash(b""), decoded.relay_ts, None  # unreadable: matches no claim
    digest = body_hash(signed.body_bytes)
    try:
        body = signed.verified(unsafe_signature_checked=True).body
    except HotlineError:
        return digest, decoded.relay_ts, None
    return digest, decoded.relay_ts, body
