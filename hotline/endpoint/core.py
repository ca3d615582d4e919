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

Several relays (``[relays.<ID>]``): every step names the relay it came from
(``relay``), and the core keeps a :class:`~hotline.endpoint.paths.RelayPath`
per relay. What we sign is signed once, carries each relay's witnessed
checkpoint in ``cps``, and goes to every relay its link uses
(``Output.send_to``); each relay's outbox is settled by that relay's own
``accepted`` or signed refusal. A message is shown once, from the first path;
each path's arrival is a :class:`~hotline.endpoint.events.PathArrived`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
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
    PathArrived,
    ReceiptNotLogged,
    ReceiptQueued,
    ReceiptStored,
)
from hotline.endpoint.guard import Guard, PeerProofNeed
from hotline.endpoint.paths import TESTS_FRESH_MS, RelayPath, channel_alarm
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
    RelayCheckpoint,
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
_FIRST_KEPT: Final = 1 << 16
_TEST_ANSWERS_KEPT: Final = 256


@dataclass(frozen=True, slots=True)
class Output:
    """What one step produced.

    ``send`` holds WebSocket messages for the relay, in order; with several
    relays ``send_to`` holds them instead, each with the relay it is for.
    ``checkpoints`` holds checkpoint notes to witness (the edge may need to
    fetch a proof); ``welcomed`` is the log size when the relay just welcomed
    us, else None.
    """

    send: tuple[bytes, ...] = ()
    events: tuple[EndpointEvent, ...] = ()
    checkpoints: tuple[bytes, ...] = ()
    welcomed: int | None = None
    send_to: tuple[tuple[str, bytes], ...] = ()


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
        self.several = network.multipath
        self.paths: dict[str, RelayPath] = {}
        for relay in network.all_relays:
            delivered: OrderedDict[bytes, int] = OrderedDict(
                state.path_delivered.get(relay.id, {}))
            view = network.for_relay(relay.id)
            seen = state.path_checkpoints.get(relay.id) if self.several else state.checkpoint
            if self.several:
                received: Callable[[bytes], bool] = delivered.__contains__
            else:
                received = self._in_inbox
            path = RelayPath(
                relay, view, Witness(relay.origin, relay.periods, seen),
                Guard(view, me, received), delivered=delivered,
            )
            pending = state.path_pending.get(relay.id, ()) if self.several else state.pending
            path.pending = {p.id: p for p in pending}
            path.since = state.path_since.get(relay.id, -1)
            path.fresh_ms = max(TESTS_FRESH_MS, 3 * network.link_test_interval_ms
                                + network.link_test_timeout_ms)
            self.paths[relay.id] = path
        self._primary = self.paths[network.relay.id]
        self._sent: dict[bytes, SentMessage] = {m.id: m for m in state.sent}
        self._inbox: dict[bytes, HeldMessage] = {m.id: m for m in state.inbox}
        self._answers: dict[bytes, Answer] = {a.ref: a for a in state.answers}
        self._refused: dict[bytes, None] = {}
        # id → first path
        self._first: OrderedDict[bytes, tuple[str, int]] = OrderedDict(state.path_first)
        # several relays: per body to us, the relays whose cps entry we compared
        self._cps_checked: OrderedDict[bytes, set[str]] = OrderedDict()
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
        self._rearm: list[tuple[str, bytes, Precedence]] = [
            (path.id, sent.id, sent.precedence)
            for sent in state.sent
            for path in self.paths.values()
            if sent.id in path.pending and not sent.rejected
            and (sent.accepted_ms is None or self.several)
        ]

    def _in_inbox(self, ref: bytes) -> bool:
        return ref in self._inbox

    # ------------------------------------------------------------------ paths

    @property
    def witness(self) -> Witness:
        """The first (in a one-relay network, the only) relay's witness."""
        return self._primary.witness

    @property
    def guard(self) -> Guard:
        """The first (in a one-relay network, the only) relay's guard."""
        return self._primary.guard

    def _path(self, relay: str | None) -> RelayPath:
        return self._primary if relay is None else self.paths[relay]

    def _to(self, path: RelayPath, frames: tuple[bytes, ...],
            events: tuple[EndpointEvent, ...] = ()) -> Output:
        """An output whose frames go to ``path``'s relay alone."""
        if not self.several:
            return Output(send=frames, events=events)
        return Output(events=events, send_to=tuple((path.id, f) for f in frames))

    def _fan_out(self, frame: bytes, relays: tuple[str, ...], events: tuple[EndpointEvent, ...],
                 ) -> Output:
        """An output sending one signed frame over every relay in ``relays``."""
        if not self.several:
            return Output(send=(frame,), events=events)
        return Output(events=events, send_to=tuple((r, frame) for r in relays))

    def _alarms(self, path: RelayPath, alarms: list[RelaySuspected], now_ms: int,
                ) -> list[RelaySuspected]:
        """A path's guard alarms, named for its relay and judged across paths."""
        if not self.several:
            return alarms
        out = []
        for alarm in alarms:
            judged = channel_alarm(path, alarm, self._first.get(alarm.ref), now_ms)
            if judged is not None:
                out.append(judged)
        return out

    # ------------------------------------------------------------------ session

    def receive(self, message: bytes, now_ms: int, relay: str | None = None) -> Output:
        """One WebSocket message from ``relay`` (None: the first). Raises ``Rejected``."""
        path = self._path(relay)
        if is_envelope(message):
            raise Rejected(
                RejectCode.BAD_FRAME, "the relay sends envelopes inside deliver or accepted"
            )
        control = decode_control(message)
        if isinstance(control, Challenge):
            sig = auth_signature(message, self.me, self._key)
            since = self.since if not self.several else path.since
            return self._to(path, (encode_control(Auth(self.me, sig, since)),))
        if isinstance(control, Welcome):
            return Output(welcomed=control.size)
        if isinstance(control, Deliver):
            return self._deliver(path, control.index, control.frame, now_ms)
        if isinstance(control, Accepted):
            return self._accepted(path, control.frame, now_ms)
        if isinstance(control, RejectedNotice):
            return self._rejected(path, control, now_ms)
        if isinstance(control, CheckpointNote):
            return Output(checkpoints=(control.note,))
        raise Rejected(
            RejectCode.SCHEMA, f"{type(control).__name__} is not for an endpoint to receive", "t"
        )

    # ------------------------------------------------------------------ deliveries

    def _deliver(self, path: RelayPath, index: int, frame: bytes, now_ms: int) -> Output:
        try:
            envelope = open_envelope(frame, self.network, max_size=self._max_frame)
            body = envelope.body
            if isinstance(body, LinkTestBody):
                return self._link_test(path, envelope, body, index, now_ms)
            if isinstance(body, ReceiptBody):
                return self._receipt(path, envelope, body, index, now_ms)
            if isinstance(body, AcceptedBody | RefusedBody):
                raise Rejected(
                    RejectCode.SCHEMA, f"a relay's {body.type} is not delivered, it answers us", "t"
                )
            return self._message(path, envelope, body, index, now_ms)
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
        return self.network.is_relay(sender)

    def _link_test(
        self, path: RelayPath, envelope: Envelope, body: LinkTestBody, index: int, now_ms: int
    ) -> Output:
        if body.sender != path.id:
            raise Rejected(RejectCode.SCHEMA, "only the relay sends link tests", "t")
        if self.me not in body.to:
            raise Rejected(
                RejectCode.LINK_FORBIDDEN, f"the link test is for {body.to[0]}, not {self.me}"
            )
        answer = path.test_answers.get(body.id)
        if answer is not None:
            return self._to(path, (answer.frame,))
        path.guard.link_test(body.ts, now_ms)
        path.last_test_ms = now_ms
        alarms = self._alarms(path, path.guard.delivered_entry(
            index, envelope.hash, body.id, body.sender, now_ms), now_ms)
        queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms, test=True,
                                     relays=(path.id,))
        path.test_answers[body.id] = Answer(body.id, queued.body.id, queued.frame)
        if len(path.test_answers) > _TEST_ANSWERS_KEPT:
            del path.test_answers[next(iter(path.test_answers))]
        relay = path.id if self.several else ""
        return self._to(
            path, (queued.frame,),
            (LinkTestAnswered(body.id, body.ts, now_ms, relay), queued, *alarms),
        )

    def _message(
        self, path: RelayPath, envelope: Envelope, body: RoutedBody, index: int, now_ms: int
    ) -> Output:
        sender = body.sender
        if self._from_relay(sender):
            raise Rejected(RejectCode.SCHEMA, f"the relay does not send {body.type} messages", "t")
        if not path.view.linked(sender, self.me):
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"there is no link {sender}-{self.me}")
        if self.me not in recipients_of(self.network, sender, body.to):
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"the message is not addressed to {self.me}")
        held = self._inbox.get(body.id)
        relay = path.id if self.several else ""
        if held is not None:
            if held.body_hash != envelope.hash:
                raise Rejected(RejectCode.REPLAY, "this id was already used for another message")
            events: list[EndpointEvent] = []
            alarms: list[RelaySuspected] = []
            if self.several and path.saw(body.id, now_ms):
                # the same message over another relay: not shown again, its path recorded
                events.append(PathArrived(path.id, body.id, body.id, sender, "message", now_ms,
                                          index, first=False))
                alarms = self._alarms(path, path.guard.delivered(
                    index, envelope.hash, body, now_ms), now_ms)
                alarms.extend(self._peer_view(path, body, index, now_ms))
            else:
                events.append(DuplicateIgnored(body.id, sender, now_ms, index, relay))
                alarms = self._alarms(path, path.guard.delivered_again(
                    body.id, sender, index, now_ms), now_ms)
            answer = self._answers.get(body.id)
            if answer is not None and body.id in path.unanswered:
                # this relay refused our receipt before it had the message: one of its own
                del path.unanswered[body.id]
                first = self._first.get(body.id)
                queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms,
                                             relays=(path.id,), answer=False,
                                             via=None if first is None else first[0])
                return self._to(path, (queued.frame,), (*events, queued, *alarms))
            if answer is not None:
                return self._to(path, (answer.frame,), (*events, *alarms))
            first = self._first.get(body.id) if self.several else None
            queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms,
                                         relays=self._relays_to(sender),
                                         via=None if first is None else first[0])
            return self._fan_out(queued.frame, queued.relays, (*events, queued, *alarms))
        self._inbox[body.id] = HeldMessage(
            body.id, sender, envelope.hash, body.precedence, now_ms, acknowledged=False
        )
        self.deadlines.watch_received(body.id, self.me, body.precedence, now_ms)
        arrived: tuple[EndpointEvent, ...] = ()
        if self.several:
            path.saw(body.id, now_ms)
            self._note_first(body.id, path.id, now_ms)
            arrived = (PathArrived(path.id, body.id, body.id, sender, "message", now_ms, index,
                                   first=True),)
        alarms = self._alarms(path, path.guard.delivered(index, envelope.hash, body, now_ms),
                              now_ms)
        alarms.extend(self._peer_view(path, body, index, now_ms))
        received = MessageReceived(envelope.frame, body, envelope.hash, now_ms, index, relay)
        queued = self._write_receipt(body.id, envelope.hash, Stage.DELIVERED, now_ms,
                                     relays=self._relays_to(sender), via=relay or None)
        return self._fan_out(queued.frame, queued.relays, (received, *arrived, queued, *alarms))

    def _note_first(self, ref: bytes, relay: str, now_ms: int) -> None:
        self._first[ref] = (relay, now_ms)
        if len(self._first) > _FIRST_KEPT:
            self._first.popitem(last=False)

    def _relays_to(self, party: str) -> tuple[str, ...]:
        """The relays a body of ours to ``party`` goes over (several relays only)."""
        return self.network.relays_of_link(self.me, party) if self.several else ()

    def _receipt(
        self, path: RelayPath, envelope: Envelope, body: ReceiptBody, index: int, now_ms: int
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
        if path is self._primary:
            self.since = max(self.since, index)
        path.since = max(path.since, index)
        alarms = self._alarms(path, path.guard.delivered_entry(
            index, envelope.hash, body.id, body.sender, now_ms), now_ms)
        relay = ""
        arrived: tuple[EndpointEvent, ...] = ()
        alarms.extend(self._peer_view(path, body, index, now_ms))
        if self.several:
            relay = path.id
            new_path = path.saw(body.id, now_ms)
            first = (body.sender, body.stage) not in sent.reached
            if new_path:
                arrived = (PathArrived(path.id, body.id, body.ref, body.sender,
                                       body.stage.value, now_ms, index, first=first),)
            if not first:
                return Output(events=(*arrived, *alarms))  # came over another relay first
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
            relay=relay,
        )
        return Output(events=(stored, *arrived, *alarms))

    # ------------------------------------------------------------------ relay answers

    def _accepted(self, path: RelayPath, frame: bytes, now_ms: int) -> Output:
        try:
            envelope = open_envelope(frame, self.network, max_size=self._max_frame)
            body = envelope.body
            if not isinstance(body, AcceptedBody) or body.sender != path.id:
                raise Rejected(
                    RejectCode.SCHEMA, "an accepted receipt must be the relay's accepted", "t"
                )
            pending = path.pending.get(body.ref)
            if pending is None:
                return Output()  # an answer to a resend of something already accepted
            if body.hash != pending.body_hash:
                raise Rejected(RejectCode.SCHEMA, "is not the SHA-256 of what we sent", "hash")
        except Rejected as exc:
            return self._refuse(frame, -1, exc, now_ms)
        del path.pending[body.ref]
        path.retry_at.pop(body.ref, None)
        alarms = self._alarms(path, path.guard.accepted(body.ref, body.index, body.hash, now_ms),
                              now_ms)
        sent = self._sent.get(body.ref)
        states: tuple[tuple[str, RecipientState], ...] = ()
        if sent is not None and sent.accepted_ms is None:
            sent = self._sent[body.ref] = replace(sent, accepted_ms=now_ms)
            self.deadlines.watch_sent(body.ref, sent.recipients, sent.precedence, now_ms)
            states = tuple((party, sent.state_of(party)) for party in sent.recipients)
        accepted = MessageAccepted(body.ref, body.index, body.ts, now_ms, pending.receipt, states,
                                   path.id if self.several else "")
        return Output(events=(accepted, *alarms))

    def _rejected(self, path: RelayPath, notice: RejectedNotice, now_ms: int) -> Output:
        """A refusal counts only if the relay signed it for something we sent (refusals.py)."""
        judged = judge_refusal(notice, path.pending.values(), path.view, self._max_frame,
                               now_ms, several=self.several, delivered=path.delivered)
        if isinstance(judged, RelaySuspected):
            # the envelope stays pending, its bound running; one alarm per envelope named,
            # however often a lying relay repeats itself
            if judged.ref in path.unsigned_alarmed:
                return Output()
            path.unsigned_alarmed[judged.ref] = None
            if len(path.unsigned_alarmed) > _REFUSALS_KEPT:
                del path.unsigned_alarmed[next(iter(path.unsigned_alarmed))]
            return Output(events=tuple(self._alarms(path, [judged], now_ms)))
        if judged is None:
            return Output()  # a late answer for something settled already
        refusal, pending, unfounded = judged
        found = tuple(self._alarms(path, list(unfounded), now_ms))
        if refusal.code.temporary:
            due = now_ms + (refusal.retry_after_ms or self.network.limits.retry_interval_ms)
            path.retry_at[pending.id] = due
            return Output()  # sent again at ``due`` by tick; the accept bound keeps running
        path.guard.settled(pending.id)
        del path.pending[pending.id]
        path.retry_at.pop(pending.id, None)
        notice = RejectedNotice(pending.id, refusal.code.value, refusal.sentence,
                                refusal.path or "", notice.frame)
        if self.several:
            # one relay refused it: its outbox is settled; the others still carry it
            kind = MessageRejected
            if pending.receipt and refusal.code is RejectCode.SCHEMA and refusal.path == "ref":
                kind = ReceiptNotLogged  # not yet (or never) given the message: no alarm
                for answer in self._answers.values():
                    if answer.receipt_id == pending.id:
                        path.unanswered[answer.ref] = None
                        if len(path.unanswered) > _REFUSALS_KEPT:
                            path.unanswered.popitem(last=False)
                        break
            rejected = kind(notice.ref, notice.code, notice.sentence, notice.path, now_ms,
                            pending.receipt, path.id)
            return Output(events=(rejected, *found))
        sent = self._sent.get(notice.ref)
        if sent is not None:
            self._sent[notice.ref] = replace(sent, rejected=True)
        for answers in (self._answers, path.test_answers):
            for ref, answer in list(answers.items()):
                if answer.receipt_id == notice.ref:
                    del answers[ref]  # a duplicate will be answered by a new receipt
        rejected = MessageRejected(
            notice.ref, notice.code, notice.sentence, notice.path, now_ms, pending.receipt
        )
        return Output(events=(rejected, *found))

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
        relays: tuple[str, ...] = (),
        answer: bool = True,
        via: str | None = None,
    ) -> ReceiptQueued:
        body = ReceiptBody(
            id=self._new_id(now_ms),
            sender=self.me,
            ts=now_ms,
            seq=self.next_seq,
            kid=self._key.public.kid,
            cp=self._seen(),
            cps=self._seen_each(),
            ref=ref,
            hash=ref_hash,
            stage=stage,
            action=action,
            note=note,
            operator=operator,
            via=via,
        )
        _, frame, digest = self._sign(body)
        self.next_seq += 1
        pending = PendingEnvelope(body.seq, body.id, frame, digest, receipt=True)
        for path in self._paths_of(relays):
            path.pending[body.id] = pending
            if watch is not None:
                path.guard.expect_accept(body.id, watch, now_ms)
        if stage is Stage.DELIVERED and not test and answer:
            self._answers[ref] = Answer(ref, body.id, frame)
        return ReceiptQueued(frame, body, digest, now_ms, link_test=test,
                             relays=relays if self.several else ())

    def _paths_of(self, relays: tuple[str, ...]) -> tuple[RelayPath, ...]:
        """The paths named (the one path of a one-relay network)."""
        if not self.several:
            return (self._primary,)
        return tuple(self.paths[r] for r in relays)

    def send_message(self, draft: RoutedBody, now_ms: int) -> Output:
        """Sign a message the operator wrote; the draft's ``seq`` and ``kid`` are replaced.

        Raises ``Rejected`` (``schema`` with a path, or ``link_forbidden``) and
        then changes nothing.
        """
        if draft.sender != self.me:
            raise Rejected(RejectCode.SENDER_MISMATCH, f"we are {self.me}, not {draft.sender}")
        if draft.id in self._sent or any(draft.id in p.pending for p in self.paths.values()):
            raise Rejected(RejectCode.REPLAY, "this id was already used", "id")
        recipients = recipients_of(self.network, self.me, draft.to)
        if not recipients:
            raise Rejected(RejectCode.LINK_FORBIDDEN, f"{self.me} has no linked endpoint", "to")
        for party in recipients:
            if not self.network.linked(self.me, party):
                raise Rejected(
                    RejectCode.LINK_FORBIDDEN, f"there is no link {self.me}-{party}", "to"
                )
        body = replace(draft, seq=self.next_seq, kid=self._key.public.kid, cp=self._seen(),
                       cps=self._seen_each())
        _, frame, digest = self._sign(body)
        self.next_seq += 1
        relays = self.network.relays_for(self.me, recipients) if self.several else ()
        pending = PendingEnvelope(body.seq, body.id, frame, digest, receipt=False)
        for path in self._paths_of(relays):
            path.pending[body.id] = pending
            path.guard.expect_accept(body.id, body.precedence, now_ms)
        self._sent[body.id] = SentMessage(
            body.id, digest, recipients, body.precedence, accepted_ms=None, rejected=False
        )
        queued = MessageQueued(frame, body, digest, recipients, now_ms, relays)
        return self._fan_out(frame, relays, (queued,))

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
            relays=self._relays_to(held.sender),
        )
        self._inbox[ref] = replace(held, acknowledged=True)
        self.deadlines.reached(ref, self.me, Stage.ACKNOWLEDGED)
        acknowledged = MessageAcknowledged(ref, held.sender, action, note, now_ms, operator)
        return self._fan_out(queued.frame, queued.relays, (acknowledged, queued))

    @property
    def pending_count(self) -> int:
        """Envelopes signed and not yet answered by the first (or only) relay."""
        return len(self._primary.pending)

    def pending_on(self, relay: str | None = None) -> int:
        """Envelopes signed and not yet answered by ``relay``."""
        return len(self._path(relay).pending)

    def pending_frames(self, relay: str | None = None) -> tuple[bytes, ...]:
        """Everything signed and not yet answered by ``relay``, in ``seq`` order."""
        pending = self._path(relay).pending.values()
        return tuple(p.frame for p in sorted(pending, key=lambda p: p.seq))

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> Output:
        """Missed deadlines and the relay's missed bounds as of ``now_ms``, each reported once."""
        for relay, ref, precedence in self._rearm:
            self.paths[relay].guard.expect_accept(ref, precedence, now_ms)  # before a restart
        self._rearm = []
        again: list[tuple[str, bytes]] = []
        alarms: list[RelaySuspected] = []
        for path in self.paths.values():
            for ref, due in list(path.retry_at.items()):
                if due <= now_ms:
                    del path.retry_at[ref]
                    pending = path.pending.get(ref)
                    if pending is not None:
                        again.append((path.id, pending.frame))  # refused for now: once more
            alarms.extend(self._alarms(path, path.guard.tick(now_ms), now_ms))
        events: tuple[EndpointEvent, ...] = (*self.deadlines.due(now_ms), *alarms)
        if self.several:
            return Output(send_to=tuple(again), events=events)
        return Output(send=tuple(f for _, f in again), events=events)

    def connection(self, *, up: bool, now_ms: int, relay: str | None = None) -> None:
        """The relay welcomed us (``up``), or the session ended."""
        path = self._path(relay)
        path.up_since = now_ms if up else None
        path.guard.connection(up=up, now_ms=now_ms)

    # ------------------------------------------------------------------ watching the log

    def _seen(self) -> SeenCheckpoint | None:
        """The checkpoint we vouch for in what we sign: the latest we witnessed."""
        if self.several:
            return None
        held = self.witness.held
        if held is None or held.size == 0:
            return None
        return SeenCheckpoint(size=held.size, root=held.root)

    def _seen_each(self) -> tuple[RelayCheckpoint, ...] | None:
        """Several relays: each relay's latest witnessed checkpoint (``cps``)."""
        if not self.several:
            return None
        seen = tuple(
            RelayCheckpoint(relay=path.id, size=held.size, root=held.root)
            for path in sorted(self.paths.values(), key=lambda p: p.id)
            if (held := path.witness.held) is not None and held.size > 0
        )
        return seen or None

    def _peer_view(
        self, path: RelayPath, body: RoutedBody | ReceiptBody, index: int, now_ms: int
    ) -> list[RelaySuspected]:
        """What ``body`` says its signer saw of each relay's log, against our view of it.

        One relay: its ``cp``. Several: each ``cps`` entry for a relay we use, whichever
        relay carried the body, against that relay's own witness and guard, once per body
        and relay. Another relay's entry is compared once we hold a checkpoint of it; one of
        another size only while that relay answers (it owes the proof between them).
        """
        if not self.several:
            seen = body.seen_on(path.id)
            if seen is None:
                return []
            return self._alarms(path, path.guard.peer_view(
                body.sender, body.id, seen, path.witness.held, index=index, now_ms=now_ms),
                now_ms)
        checked = self._cps_checked.setdefault(body.id, set())
        if len(self._cps_checked) > _FIRST_KEPT:
            self._cps_checked.popitem(last=False)
        alarms: list[RelaySuspected] = []
        for entry in body.cps or ():
            other = self.paths.get(entry.relay)
            if other is None or entry.relay in checked:
                continue
            held = other.witness.held
            if other is not path and (held is None or (
                    held.size != entry.size and not other.answering(now_ms))):
                continue  # compared when it carries the body, or later over another path
            checked.add(entry.relay)
            alarms.extend(self._alarms(other, other.guard.peer_view(
                body.sender, body.id, entry.seen, held,
                index=index if other is path else -1, now_ms=now_ms), now_ms))
        return alarms

    def log_entries(self, start: int, entries: tuple[bytes, ...], now_ms: int,
                    relay: str | None = None) -> Output:
        """Entries ``start``, ``start + 1``, … read under the checkpoint we hold, in order.

        The edge has checked that every entry up to the held size hashes to its root.
        """
        path = self._path(relay)
        alarms: list[RelaySuspected] = []
        for offset, entry in enumerate(entries):
            alarms.extend(path.guard.logged(start + offset, entry, now_ms))
        return Output(events=tuple(self._alarms(path, alarms, now_ms)))

    def entries_mismatch(self, computed_root: bytes, now_ms: int,
                         relay: str | None = None) -> Output:
        """The entries served for the held checkpoint hash to another root."""
        path = self._path(relay)
        held = path.witness.held
        if held is None:
            return Output()
        return Output(events=tuple(self._alarms(
            path, path.guard.mismatch(held, computed_root, now_ms), now_ms)))

    def peer_proofs_needed(self, relay: str | None = None) -> list[PeerProofNeed]:
        path = self._path(relay)
        return path.guard.peer_proofs_needed(path.witness.held)

    def peer_proof(self, need: PeerProofNeed, proof: ConsistencyProof, now_ms: int,
                   relay: str | None = None) -> Output:
        path = self._path(relay)
        held = path.witness.held
        if held is None:
            return Output()
        return Output(events=tuple(self._alarms(
            path, path.guard.peer_proof(need, held, proof, now_ms), now_ms)))

    # ------------------------------------------------------------------ witnessing

    def observe_checkpoint(self, note: bytes, now_ms: int,
                           relay: str | None = None) -> Output | NeedsProof:
        """Judge a checkpoint note; a larger tree needs a proof (:meth:`complete_checkpoint`)."""
        path = self._path(relay)
        verdict = path.witness.observe(note, now_ms)
        if isinstance(verdict, NeedsProof):
            if not verdict.older:
                path.guard.proof_pending(verdict.held.size, now_ms)
            return verdict
        if isinstance(verdict, Refused):
            return Output(events=(CheckpointRefused(note, verdict.reason, now_ms),))
        if isinstance(verdict, Fresh | Inconsistent):
            return self._settle(path, verdict, now_ms)
        return Output()

    def complete_checkpoint(
        self, need: NeedsProof, proof: ConsistencyProof, now_ms: int, relay: str | None = None
    ) -> Output | NeedsProof:
        """Judge a checkpoint with the consistency proof the edge fetched for it."""
        path = self._path(relay)
        if path.witness.held != need.held:
            return self.observe_checkpoint(need.note, now_ms, relay)  # the held one moved
        verdict = path.witness.check_proof(need, proof)
        if isinstance(verdict, Seen):
            return Output()  # an older checkpoint, consistent with ours: nothing to do
        return self._settle(path, verdict, now_ms)

    def _settle(self, path: RelayPath, verdict: Fresh | Inconsistent, now_ms: int) -> Output:
        path.guard.proof_done()
        relay = path.id if self.several else ""
        if isinstance(verdict, Inconsistent):
            event = CheckpointInconsistent(
                verdict.checkpoint.size,
                verdict.checkpoint.root,
                verdict.note,
                verdict.held.size,
                verdict.held.root,
                verdict.reason,
                now_ms,
                relay,
            )
            return Output(events=(event,))
        path.witness.hold(verdict)
        text = verdict.checkpoint.text()
        line = cosign(text, self.me, self._key, now_ms // 1000).line().rstrip("\n")
        witnessed = CheckpointWitnessed(
            verdict.checkpoint.size, verdict.checkpoint.root, verdict.note, line, now_ms, relay
        )
        return self._to(path, (encode_control(Cosign(line)),), (witnessed,))


def _claimed_sender(frame: bytes) -> str:
    """Who a frame says it is from, for the report of a refusal (never trusted)."""
    try:
        outer = msgpack.unpackb(frame, raw=False)
        sender = unpack_map(outer[1]).get("from")
    except Exception:  # noqa: BLE001  (anything unreadable has no claimed sender)
        return ""
    return sender if isinstance(sender, str) else ""
