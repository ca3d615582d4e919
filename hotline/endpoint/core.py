"""The endpoint's protocol core, sans-IO: bytes and time in, bytes and events out.

The edge feeds :class:`EndpointCore` each WebSocket message from the relay with
the time it arrived, the operator's requests, checkpoint proofs and timer
ticks; the core answers with an :class:`Output`: bytes to send to the relay and
events. The edge MUST journal the events before it sends the bytes, so nothing
we signed is ever sent without being on disk.

Rules for what arrives (a ``deliver``):

====================  ===========================================  ====================
who signed            body                                         otherwise refused as
====================  ===========================================  ====================
the relay             ``test`` addressed to us                     ``schema`` (``t``) or
                                                                   ``link_forbidden``
an endpoint           ``warning``, ``update``, ``cancel``,         ``schema`` (``t``),
                      ``text``: linked to us and addressed to us   ``link_forbidden``
                      (``*`` = every endpoint linked to it)
an endpoint           ``receipt`` for one of our messages, by one  ``schema`` (``ref``,
                      of its recipients, with its body hash         ``hash``),
                                                                   ``link_forbidden``
====================  ===========================================  ====================

Every envelope is verified end to end first (:func:`open_envelope`); a refused
one is reported once (``DeliveryRefused``) and never journaled as received or
answered. A new message is answered with a signed ``delivered`` receipt whose
``hash`` is SHA-256 of the body bytes as received; a duplicate (same id, same
body hash) is answered again with the same receipt, and is not shown twice; a
link test is answered at once. ``accepted`` must be signed by the relay and
name a pending envelope of ours with its body hash.

Our ``seq`` rises by one for every envelope we sign and never goes back: it
starts from the journal's value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import msgpack

from hotline.auditlog.cosignature import cosign
from hotline.endpoint.alarms import RelaySuspected
from hotline.endpoint.deadlines import DeadlineTracker
from hotline.endpoint.errors import AlreadyAcknowledged, UnknownMessage
from hotline.endpoint.events import (
    CheckpointInconsistent,
    CheckpointRefused,
    CheckpointWitnessed,
    DeliveryRefused,
    DuplicateIgnored,
    EndpointEvent,
    LinkTestAnswered,
    MessageAccepted,
    MessageAcknowledged,
    MessageQueued,
    MessageReceived,
    MessageRejected,
    ReceiptQueued,
    ReceiptStored,
)
from hotline.endpoint.guard import Guard, PeerProofNeed
from hotline.endpoint.refusals import judge_refusal
from hotline.endpoint.state import (
    Answer,
    CoreState,
    HeldMessage,
    PendingEnvelope,
    SentMessage,
)
from hotline.endpoint.witness import (
    ConsistencyProof,
    Fresh,
    Inconsistent,
    NeedsProof,
    Refused,
    Seen,
    Witness,
)
from hotline.errors import RejectCode, Rejected
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import (
    AcceptedBody,
    LinkTestBody,
    ReceiptBody,
    RefusedBody,
    RoutedBody,
    SeenCheckpoint,
)
from hotline.protocol.envelope import Envelope, body_hash, open_envelope, seal_bytes
from hotline.protocol.ids import format_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.lifecycle import RecipientState, Step, advance, legal
from hotline.protocol.schema import encode_body, unpack_map
from hotline.protocol.session import (
    Accepted,
    Auth,
    Challenge,
    CheckpointNote,
    Cosign,
    Deliver,
    RejectedNotice,
    Welcome,
    auth_signature,
    decode_control,
    encode_control,
    is_envelope,
)
from hotline.protocol.vocab import AckAction, Precedence, Stage

__all__ = ["EndpointCore", "IdMaker", "Output"]

IdMaker = Callable[[int], bytes]
"""A new UUIDv7 for the time given in milliseconds (randomness lives at the edge)."""

_REFUSALS_KEPT: Final = 4096
_TEST_ANSWERS_KEPT: Final = 256


@dataclass(frozen=True, slots=True)
class Output:
    """What one step produced.

    ``send`` holds WebSocket messages for the relay, in order; ``checkpoints``
    holds checkpoint notes to witness (the edge may need to fetch a proof);
    ``welcomed`` is the log size when the relay just welcomed us, else None.
    """

    send: tuple[bytes, ...] = ()
    events: tuple[EndpointEvent, ...] = ()
    checkpoints: tuple[bytes, ...] = ()
    welcomed: int | None = None


class EndpointCore:
    """One endpoint's protocol state; see the module docstring for the rules."""

    def __init__(
        self,
        network: Network,
        me: str,
        key: SigningKey,
        state: CoreState,
        new_id: IdMaker,
    ) -> None:
        if me not in network.endpoints:
            raise ValueError(f"{me!r} is not an endpoint of the network")
        if network.endpoints[me].public_key != key.public:
            raise ValueError(f"the signing key is not {me}'s key in the network")
        self.network = network
        self.me = me
        self._key = key
        self._new_id = new_id
        self._max_frame = network.limits.max_frame_bytes
        self.next_seq = state.next_seq
        self.since = state.since
        self._pending: dict[bytes, PendingEnvelope] = {p.id: p for p in state.pending}
        self._sent: dict[bytes, SentMessage] = {m.id: m for m in state.sent}
        self._inbox: dict[bytes, HeldMessage] = {m.id: m for m in state.inbox}
        self._answers: dict[bytes, Answer] = {a.ref: a for a in state.answers}
        self._test_answers: dict[bytes, Answer] = {}
        self._refused: dict[bytes, None] = {}
        self._unsigned_alarmed: dict[bytes, None] = {}  # refs whose unsigned refusal alarmed
        self.deadlines = DeadlineTracker(network.deadlines, state.fired)
        for sent in state.sent:
            for party, stage in sent.reached:
                self.deadlines.reached(sent.id, party, stage)
            if sent.accepted_ms is not None and not sent.rejected:
                self.deadlines.watch_sent(
                    sent.id, sent.recipients, sent.precedence, sent.accepted_ms
                )
        for held in state.inbox:
            if held.acknowledged:
                self.deadlines.reached(held.id, me, Stage.ACKNOWLEDGED)
            else:
                self.deadlines.watch_received(held.id, me, held.precedence, held.received_ms)
        self.witness = Witness(network.relay.origin, network.relay.periods, state.checkpoint)
        self.guard = Guard(network, me, lambda ref: ref in self._inbox)
        self._retry_at: dict[bytes, int] = {}  # pending id → when to send it again
        self._rearm: list[tuple[bytes, Precedence]] = [
            (sent.id, sent.precedence)
            for sent in state.sent
            if sent.accepted_ms is None and not sent.rejected and sent.id in self._pending
        ]

    # ------------------------------------------------------------------ session

    def receive(self, message: bytes, now_ms: int) -> Output:
        """One WebSocket message from the relay. Raises ``Rejected`` for a bad control map."""
        if is_envelope(message):
            raise Rejected(
                RejectCode.BAD_FRAME, "the relay sends envelopes inside deliver or accepted"
            )
        control = decode_control(message)
        if isinstance(control, Challenge):
            sig = auth_signature(message, self.me, self._key)
            return Output(send=(encode_control(Auth(self.me, sig, self.since)),))
        if isinstance(control, Welcome):
            return Output(welcomed=control.size)
        if isinstance(control, Deliver):
            return self._deliver(control.index, control.frame, now_ms)
        if isinstance(control, Accepted):
            return self._accepted(control.frame, now_ms)
        if isinstance(control, RejectedNotice):
            return self._rejected(control, now_ms)
        if isinstance(control, CheckpointNote):
            return Output(checkpoints=(control.note,))
        raise Rejected(
            RejectCode.SCHEMA, f"{type(control).__name__} is not for an endpoint to receive", "t"
        )

    # ------------------------------------------------------------------ deliveries

    def _deliver(self, index: int, frame: bytes, now_ms: int) -> Output:
        try:
            envelope = open_envelope(frame, self.network, max_size=self._max_frame)
            body = envelope.body
            if isinstance(body, LinkTestBody):
                return self._link_test(envelope, body, index, now_ms)
            if isinstance(body, ReceiptBody):
                return self._receipt(envelope, body, index, now_ms)
            if isinstance(body, AcceptedBody | RefusedBody):
                raise Rejected(
                    RejectCode.SCHEMA, f"a relay's {body.type} is not delivered, it answers us", "t"
                )
            return self._message(envelope, body, index, now_ms)
        except Rejected as exc:
            return self._refuse(frame, index, exc, now_ms)

    def _refuse(self, frame: bytes, index: int, exc: Rejected, now_ms: int) -> Output:
        digest = hashlib.sha256(frame).digest()
        if digest in self._refused:
            return Output()  # the relay resends what we do not answer: report it once
        self._refused[digest] = None
        if len(self._refused) > _REFUSALS_KEPT:
            del self._refused[next(iter(self._refused))]
        return Output(
            events=(
                DeliveryRefused(
                    exc.code, exc.sentence, exc.path, _claimed_sender(frame), index, now_ms
                ),
            )
        )

    def _from_relay(self, sender: str) -> bool:
        return sender == self.network.relay.id

    def _link_test(
        self, envelope: Envelope, body: LinkTestBody, index: int, now_ms: int
    ) -> Output:
        if not self._from_relay(body.sender):
            raise Rejected(RejectCode.SCHEMA, "only the relay sends link tests", "t")
        if self.me not in body.to:
            raise Rejected(
                RejectCode.LINK_FORBIDDEN, f"the link test is for {body.to[0]}, not {self.me}"
            )
        answer = self._test_answers.get(body.id)
        if answer is not None:
            return Output(send=(answer.frame,))
        self.guard.link_test(body.ts, now_ms)
        alarms = self.guard.delivered_entry(index, envelope.hash, body.id, body.sender, now_ms)
        queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms, test=True)
        self._test_answers[body.id] = Answer(body.id, queued.body.id, queued.frame)
        if len(self._test_answers) > _TEST_ANSWERS_KEPT:
            del self._test_answers[next(iter(self._test_answers))]
        return Output(
            send=(queued.frame,),
            events=(LinkTestAnswered(body.id, body.ts, now_ms), queued, *alarms),
        )

    def _message(
        self, envelope: Envelope, body: RoutedBody, index: int, now_ms: int
    ) -> Output:
        sender = body.sender
        if self._from_relay(sender):
            raise Rejected(RejectCode.SCHEMA, f"the relay does not send {body.type} messages", "t")
        if not self.network.linked(sender, self.me):
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"there is no link {sender}-{self.me}")
        if self.me not in recipients_of(self.network, sender, body.to):
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"the message is not addressed to {self.me}")
        held = self._inbox.get(body.id)
        if held is not None:
            if held.body_hash != envelope.hash:
                raise Rejected(RejectCode.REPLAY, "this id was already used for another message")
            duplicate = DuplicateIgnored(body.id, sender, now_ms, index)
            again = self.guard.delivered_again(body.id, sender, index, now_ms)
            answer = self._answers.get(body.id)
            if answer is not None:
                return Output(send=(answer.frame,), events=(duplicate, *again))
            queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms)
            return Output(send=(queued.frame,), events=(duplicate, queued, *again))
        self._inbox[body.id] = HeldMessage(
            body.id, sender, envelope.hash, body.precedence, now_ms, acknowledged=False
        )
        self.deadlines.watch_received(body.id, self.me, body.precedence, now_ms)
        alarms = self.guard.delivered(index, envelope.hash, body, now_ms)
        alarms.extend(self._peer_view(body.sender, body.id, body.cp, index, now_ms))
        received = MessageReceived(envelope.frame, body, envelope.hash, now_ms, index)
        queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms)
        return Output(send=(queued.frame,), events=(received, queued, *alarms))

    def _receipt(
        self, envelope: Envelope, body: ReceiptBody, index: int, now_ms: int
    ) -> Output:
        if self._from_relay(body.sender):
            raise Rejected(RejectCode.SCHEMA, "the relay does not write receipts", "t")
        sent = self._sent.get(body.ref)
        if sent is None:
            raise Rejected(RejectCode.SCHEMA, "is not a message we sent", "ref")
        if body.sender not in sent.recipients:
            raise Rejected(
                RejectCode.LINK_FORBIDDEN,
                f"{body.sender} is not a recipient of message {format_id(body.ref)}",
            )
        if body.hash != sent.body_hash:
            raise Rejected(RejectCode.SCHEMA, "is not the SHA-256 of the message we sent", "hash")
        before = sent.state_of(body.sender)
        if not legal(before, Step.of(body.stage)):
            raise Rejected(
                RejectCode.SCHEMA,
                f"contradicts {body.sender}'s earlier {before} receipt for this message",
                "stage",
            )
        self.since = max(self.since, index)
        alarms = self.guard.delivered_entry(index, envelope.hash, body.id, body.sender, now_ms)
        alarms.extend(self._peer_view(body.sender, body.id, body.cp, index, now_ms))
        self._sent[body.ref] = replace(sent, reached=sent.reached | {(body.sender, body.stage)})
        self.deadlines.reached(body.ref, body.sender, body.stage)
        stored = ReceiptStored(
            ref=body.ref,
            party=body.sender,
            stage=body.stage,
            receipt_id=body.id,
            their_ts=body.ts,
            received_ms=now_ms,
            index=index,
            state=advance(before, Step.of(body.stage)),
            action=body.action,
            note=body.note,
            reason=body.reason,
            operator=body.operator,
        )
        return Output(events=(stored, *alarms))

    # ------------------------------------------------------------------ relay answers

    def _accepted(self, frame: bytes, now_ms: int) -> Output:
        try:
            envelope = open_envelope(frame, self.network, max_size=self._max_frame)
            body = envelope.body
            if not isinstance(body, AcceptedBody) or not self._from_relay(body.sender):
                raise Rejected(
                    RejectCode.SCHEMA, "an accepted receipt must be the relay's accepted", "t"
                )
            pending = self._pending.get(body.ref)
            if pending is None:
                return Output()  # an answer to a resend of something already accepted
            if body.hash != pending.body_hash:
                raise Rejected(RejectCode.SCHEMA, "is not the SHA-256 of what we sent", "hash")
        except Rejected as exc:
            return self._refuse(frame, -1, exc, now_ms)
        del self._pending[body.ref]
        alarms = self.guard.accepted(body.ref, body.index, body.hash, now_ms)
        sent = self._sent.get(body.ref)
        states: tuple[tuple[str, RecipientState], ...] = ()
        if sent is not None and sent.accepted_ms is None:
            sent = self._sent[body.ref] = replace(sent, accepted_ms=now_ms)
            self.deadlines.watch_sent(body.ref, sent.recipients, sent.precedence, now_ms)
            states = tuple((party, sent.state_of(party)) for party in sent.recipients)
        accepted = MessageAccepted(body.ref, body.index, body.ts, now_ms, pending.receipt, states)
        return Output(events=(accepted, *alarms))

    def _rejected(self, notice: RejectedNotice, now_ms: int) -> Output:
        """A refusal counts only if the relay signed it for something we sent (refusals.py)."""
        judged = judge_refusal(notice, self._pending.values(), self.network, self._max_frame,
                               now_ms)
        if isinstance(judged, RelaySuspected):
            # the envelope stays pending, its bound running; one alarm per envelope named,
            # however often a lying relay repeats itself
            if judged.ref in self._unsigned_alarmed:
                return Output()
            self._unsigned_alarmed[judged.ref] = None
            if len(self._unsigned_alarmed) > _REFUSALS_KEPT:
                del self._unsigned_alarmed[next(iter(self._unsigned_alarmed))]
            return Output(events=(judged,))
        if judged is None:
            return Output()  # a late answer for something settled already
        refusal, pending, unfounded = judged
        if refusal.code.temporary:
            due = now_ms + (refusal.retry_after_ms or self.network.limits.retry_interval_ms)
            self._retry_at[pending.id] = due
            return Output()  # sent again at ``due`` by tick; the accept bound keeps running
        self.guard.settled(pending.id)
        del self._pending[pending.id]
        self._retry_at.pop(pending.id, None)
        notice = RejectedNotice(pending.id, refusal.code.value, refusal.sentence,
                                refusal.path or "", notice.frame)
        sent = self._sent.get(notice.ref)
        if sent is not None:
            self._sent[notice.ref] = replace(sent, rejected=True)
        for answers in (self._answers, self._test_answers):
            for ref, answer in list(answers.items()):
                if answer.receipt_id == notice.ref:
                    del answers[ref]  # a duplicate will be answered by a new receipt
        rejected = MessageRejected(
            notice.ref, notice.code, notice.sentence, notice.path, now_ms, pending.receipt
        )
        return Output(events=(rejected, *unfounded))

    # ------------------------------------------------------------------ our own envelopes

    def _sign(self, body: RoutedBody | ReceiptBody) -> tuple[bytes, bytes, bytes]:
        body_bytes = encode_body(body)  # Rejected(schema) if the body is not valid
        return body_bytes, seal_bytes(body_bytes, self._key), body_hash(body_bytes)

    def _write_receipt(
        self,
        ref: bytes,
        ref_hash: bytes,
        stage: Stage,
        now_ms: int,
        *,
        action: AckAction | None = None,
        note: str | None = None,
        operator: str | None = None,
        test: bool = False,
        watch: Precedence | None = None,
    ) -> ReceiptQueued:
        body = ReceiptBody(
            id=self._new_id(now_ms),
            sender=self.me,
            ts=now_ms,
            seq=self.next_seq,
            kid=self._key.public.kid,
            cp=self._seen(),
            ref=ref,
            hash=ref_hash,
            stage=stage,
            action=action,
            note=note,
            operator=operator,
        )
        _, frame, digest = self._sign(body)
        self.next_seq += 1
        self._pending[body.id] = PendingEnvelope(body.seq, body.id, frame, digest, receipt=True)
        if stage is Stage.DELIVERED and not test:
            self._answers[ref] = Answer(ref, body.id, frame)
        if watch is not None:
            self.guard.expect_accept(body.id, watch, now_ms)
        return ReceiptQueued(frame, body, digest, now_ms, link_test=test)

    def send_message(self, draft: RoutedBody, now_ms: int) -> Output:
        """Sign a message the operator wrote; the draft's ``seq`` and ``kid`` are replaced.

        Raises ``Rejected`` (``schema`` with a path, or ``link_forbidden``) and
        then changes nothing.
        """
        if draft.sender != self.me:
            raise Rejected(RejectCode.SENDER_MISMATCH, f"we are {self.me}, not {draft.sender}")
        if draft.id in self._sent or draft.id in self._pending:
            raise Rejected(RejectCode.REPLAY, "this id was already used", "id")
        recipients = recipients_of(self.network, self.me, draft.to)
        if not recipients:
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"{self.me} has no linked endpoint", "to")
        for party in recipients:
            if not self.network.linked(self.me, party):
                raise Rejected(
                    RejectCode.LINK_FORBIDDEN, f"there is no link {self.me}-{party}", "to"
                )
        body = replace(draft, seq=self.next_seq, kid=self._key.public.kid, cp=self._seen())
        _, frame, digest = self._sign(body)
        self.next_seq += 1
        self._pending[body.id] = PendingEnvelope(body.seq, body.id, frame, digest, receipt=False)
        self._sent[body.id] = SentMessage(
            body.id, digest, recipients, body.precedence, accepted_ms=None, rejected=False
        )
        self.guard.expect_accept(body.id, body.precedence, now_ms)
        return Output(
            send=(frame,), events=(MessageQueued(frame, body, digest, recipients, now_ms),)
        )

    def acknowledge(
        self, ref: bytes, action: AckAction | None, note: str | None, now_ms: int,
        operator: str | None = None,
    ) -> Output:
        """Our operator saw message ``ref``: a signed acknowledged receipt to its sender."""
        held = self._inbox.get(ref)
        if held is None:
            raise UnknownMessage(f"no received message has the id {format_id(ref)}")
        if held.acknowledged:
            raise AlreadyAcknowledged(f"message {format_id(ref)} was acknowledged before")
        queued = self._write_receipt(
            ref, held.body_hash, Stage.ACKNOWLEDGED, now_ms, action=action, note=note,
            watch=held.precedence,
            operator=operator,
        )
        self._inbox[ref] = replace(held, acknowledged=True)
        self.deadlines.reached(ref, self.me, Stage.ACKNOWLEDGED)
        acknowledged = MessageAcknowledged(ref, held.sender, action, note, now_ms, operator)
        return Output(send=(queued.frame,), events=(acknowledged, queued))

    @property
    def pending_count(self) -> int:
        """Envelopes signed and not yet answered by the relay."""
        return len(self._pending)

    def pending_frames(self) -> tuple[bytes, ...]:
        """Everything signed and not yet answered by the relay, in ``seq`` order."""
        return tuple(p.frame for p in sorted(self._pending.values(), key=lambda p: p.seq))

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> Output:
        """Missed deadlines and the relay's missed bounds as of ``now_ms``, each reported once."""
        for ref, precedence in self._rearm:
            self.guard.expect_accept(ref, precedence, now_ms)  # queued before a restart
        self._rearm = []
        again = []
        for ref, due in list(self._retry_at.items()):
            if due <= now_ms:
                del self._retry_at[ref]
                pending = self._pending.get(ref)
                if pending is not None:
                    again.append(pending.frame)  # refused for now (rate_limited): once more
        return Output(send=tuple(again),
                      events=(*self.deadlines.due(now_ms), *self.guard.tick(now_ms)))

    def connection(self, *, up: bool, now_ms: int) -> None:
        """The relay welcomed us (``up``), or the session ended."""
        self.guard.connection(up=up, now_ms=now_ms)

    # ------------------------------------------------------------------ watching the log

    def _seen(self) -> SeenCheckpoint | None:
        """The checkpoint we vouch for in what we sign: the latest we witnessed."""
        held = self.witness.held
        if held is None or held.size == 0:
            return None
        return SeenCheckpoint(size=held.size, root=held.root)

    def _peer_view(
        self, sender: str, ref: bytes, seen: SeenCheckpoint | None, index: int, now_ms: int
    ) -> list[RelaySuspected]:
        if seen is None:
            return []
        return self.guard.peer_view(sender, ref, seen, self.witness.held, index=index,
                                    now_ms=now_ms)

    def log_entries(self, start: int, entries: tuple[bytes, ...], now_ms: int) -> Output:
        """Entries ``start``, ``start + 1``, … read under the checkpoint we hold, in order.

        The edge has checked that every entry up to the held size hashes to its root.
        """
        alarms: list[RelaySuspected] = []
        for offset, entry in enumerate(entries):
            alarms.extend(self.guard.logged(start + offset, entry, now_ms))
        return Output(events=tuple(alarms))

    def entries_mismatch(self, computed_root: bytes, now_ms: int) -> Output:
        """The entries served for the held checkpoint hash to another root."""
        held = self.witness.held
        if held is None:
            return Output()
        return Output(events=tuple(self.guard.mismatch(held, computed_root, now_ms)))

    def peer_proofs_needed(self) -> list[PeerProofNeed]:
        return self.guard.peer_proofs_needed(self.witness.held)

    def peer_proof(self, need: PeerProofNeed, proof: ConsistencyProof, now_ms: int) -> Output:
        held = self.witness.held
        if held is None:
            return Output()
        return Output(events=tuple(self.guard.peer_proof(need, held, proof, now_ms)))

    # ------------------------------------------------------------------ witnessing

    def observe_checkpoint(self, note: bytes, now_ms: int) -> Output | NeedsProof:
        """Judge a checkpoint note; a larger tree needs a proof (:meth:`complete_checkpoint`)."""
        verdict = self.witness.observe(note, now_ms)
        if isinstance(verdict, NeedsProof):
            if not verdict.older:
                self.guard.proof_pending(verdict.held.size, now_ms)
            return verdict
        if isinstance(verdict, Refused):
            return Output(events=(CheckpointRefused(note, verdict.reason, now_ms),))
        if isinstance(verdict, Fresh | Inconsistent):
            return self._settle(verdict, now_ms)
        return Output()

    def complete_checkpoint(
        self, need: NeedsProof, proof: ConsistencyProof, now_ms: int
    ) -> Output | NeedsProof:
        """Judge a checkpoint with the consistency proof the edge fetched for it."""
        if self.witness.held != need.held:
            return self.observe_checkpoint(need.note, now_ms)  # the held one moved meanwhile
        verdict = self.witness.check_proof(need, proof)
        if isinstance(verdict, Seen):
            return Output()  # an older checkpoint, consistent with ours: nothing to do
        return self._settle(verdict, now_ms)

    def _settle(self, verdict: Fresh | Inconsistent, now_ms: int) -> Output:
        self.guard.proof_done()
        if isinstance(verdict, Inconsistent):
            event = CheckpointInconsistent(
                verdict.checkpoint.size,
                verdict.checkpoint.root,
                verdict.note,
                verdict.held.size,
                verdict.held.root,
                verdict.reason,
                now_ms,
            )
            return Output(events=(event,))
        self.witness.hold(verdict)
        text = verdict.checkpoint.text()
        line = cosign(text, self.me, self._key, now_ms // 1000).line().rstrip("\n")
        witnessed = CheckpointWitnessed(
            verdict.checkpoint.size, verdict.checkpoint.root, verdict.note, line, now_ms
        )
        return Output(send=(encode_control(Cosign(line)),), events=(witnessed,))


def _claimed_sender(frame: bytes) -> str:
    """Who a frame says it is from, for the report of a refusal (never trusted)."""
    try:
        outer = msgpack.unpackb(frame, raw=False)
        sender = unpack_map(outer[1]).get("from")
    except Exception:  # noqa: BLE001  (anything unreadable has no claimed sender)
        return ""
    return sender if isinstance(sender, str) else ""
