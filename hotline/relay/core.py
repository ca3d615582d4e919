"""The relay's protocol logic, sans-IO: bytes and time in, actions out.

:class:`RelayCore` never touches a socket, the disk or the clock. The edge
(``hotline.relay.server``) feeds it what arrives and carries out what it asks:

- :class:`Send` — send bytes to a connected endpoint;
- :class:`Append` — durably append a log entry, then call
  :meth:`RelayCore.appended` with the index (in the order the appends were
  asked for on that connection), or :meth:`RelayCore.append_failed` if it
  could not be made durable;
- :class:`Broadcast` — send bytes to every connected endpoint;
- :class:`Close` — close an endpoint's session with a code and reason;
- :class:`LogLine` — write a line to the structured log (what happened, for operators).

Every input returns its actions in one list, notes included; the core keeps no
output for the edge to collect later. It owns its :class:`RelayCounters`: they
change only inside its inputs (the edge reports a session it refused before the
core saw it through :meth:`RelayCore.session_refused`), and :attr:`RelayCore.counters`
gives a copy.

Rules it keeps:

1. Nothing is ``accepted`` before it is in the log: the accepted receipt is
   produced by :meth:`appended`, never by :meth:`receive`.
2. A message is delivered to each recipient in log order within a precedence,
   flash before immediate before priority before routine; the same bytes are
   resent until the recipient's ``delivered`` receipt is logged, first after
   ``retry_interval_ms``, then after twice the previous wait each time, at most
   :data:`RESEND_BACKOFF_MAX` retry intervals (a session that answers nothing
   draws, once the waits have grown, one resend per owed message every
   ``RESEND_BACKOFF_MAX`` intervals, not one every interval); offline recipients
   get their backlog on reconnect, and a new session starts again from one
   retry interval.
3. A resent message (same id, same body) is answered with its original
   accepted receipt, which is a pure function of the log entry (Ed25519 is
   deterministic), and is never delivered twice; the same id with another body
   is a ``replay``.
4. Missed deadlines become ``overdue`` log events, once per message, recipient
   and stage.
4a. Every refusal is answered with a ``refused`` body signed by the relay
   (never logged). Signing costs CPU, so each endpoint may draw
   :data:`REFUSALS_BURST` refusals at once and :data:`REFUSALS_PER_S` a second
   after that; beyond it its session is closed with
   :data:`~hotline.protocol.session.REFUSAL_FLOOD_CLOSE` instead.
5. Link tests go to every endpoint each ``link_test_interval_ms``; they are
   logged (so availability can be recomputed) and never queued behind, or ahead
   of, a real warning: an offline endpoint's test is logged but not sent. Test
   slots are aligned to absolute time: slot ``k`` of an endpoint starts at
   ``k * interval`` plus the endpoint's fixed offset, so relay replicas sharing
   a log agree on every slot (each signs a test for it; the log keeps one).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from hotline.auditlog.leaf import (
    EntryKind,
    LogEvent,
    decode_entry,
    encode_envelope_entry,
    encode_event_entry,
)
from hotline.errors import RejectCode, Rejected
from hotline.network import Network
from hotline.protocol.admission import Admission, LoggedRef, Verdict, recipients_of
from hotline.protocol.bodies import (
    AcceptedBody,
    Body,
    CancelBody,
    LinkTestBody,
    ReceiptBody,
    RefusedBody,
    TextBody,
    WarningBody,
)
from hotline.protocol.budget import TokenBucket
from hotline.protocol.envelope import (
    Envelope,
    body_hash,
    open_envelope,
    read_envelope,
    seal,
    sealed,
)
from hotline.protocol.ids import is_uuid7, make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.lifecycle import (
    OWES,
    RecipientState,
    Step,
    advance,
    expects,
    finished,
    owes,
)
from hotline.protocol.schema import MAX_NOTE, MAX_PATH, unpack_map
from hotline.protocol.session import (
    REFUSAL_FLOOD_CLOSE,
    Accepted,
    Deliver,
    RejectedNotice,
    encode_control,
)
from hotline.protocol.vocab import Stage
from hotline.relay.idmaps import AcceptedIds, IdMaps, Origins

__all__ = [
    "REFUSALS_BURST",
    "REFUSALS_PER_S",
    "Append",
    "Broadcast",
    "Close",
    "LogLine",
    "RelayCore",
    "RelayCounters",
    "Send",
]

RandomSource = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Send:
    party: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``party``'s session with a WebSocket close ``code`` and ``reason``."""

    party: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Append:
    """Append ``entry``; then call ``appended(token, index, now)``.

    ``relay_ts`` and either ``envelope`` or ``event`` say what the entry holds,
    so that the edge can account for it without decoding it again.
    """

    entry: bytes
    token: int
    relay_ts: int = 0
    envelope: Envelope | None = None
    event: LogEvent | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    """Something the edge should write to the structured log: a name and details."""

    event: str
    fields: dict[str, object]


RelayAction = Send | Append | Broadcast | Close | LogLine


@dataclass(slots=True)
class RelayCounters:
    """Monotonic counters the edge exports as metrics."""

    accepted: dict[str, int] = field(default_factory=dict)  # by body type
    rejected: dict[str, int] = field(default_factory=dict)  # by code
    duplicates: int = 0
    deliveries: int = 0
    redeliveries: int = 0
    overdue: dict[str, int] = field(default_factory=dict)  # by stage
    link_tests: int = 0
    refusal_floods: int = 0  # sessions closed for drawing refusals too fast


@dataclass(slots=True)
class _Message:
    """A logged routed message or link test and what is still owed for it."""

    index: int
    relay_ts: int
    sender: str
    frame: bytes
    digest: bytes  # SHA-256 of the body bytes: what receipts name
    body: Body
    rank: int
    states: dict[str, RecipientState]  # each recipient's (see hotline.protocol.lifecycle)
    delivered_at: dict[str, int] = field(default_factory=dict)
    overdue_sent: set[tuple[str, str]] = field(default_factory=set)

    def owing(self, stage: Stage) -> list[str]:
        """The recipients that still owe ``stage``, sorted (a link test owes delivery only)."""
        if isinstance(self.body, LinkTestBody) and stage is not Stage.DELIVERED:
            return []
        return sorted(party for party, state in self.states.items() if owes(state, stage))


@dataclass(slots=True)
class _Pending:
    """A message owed to one recipient: when it is next due to be sent, and how often it was.

    ``due`` is -1 until it is first sent, then the time it was last sent plus the wait
    (see :meth:`RelayCore._resend_wait`). Its recipient's send heap holds ``(due, rank,
    index, id)`` for it; an entry whose ``due`` no longer matches (sent since, or
    answered) is stale and skipped. ``attempts`` counts every send (the logged
    ``attempt``; after a restart, or on another replica, it goes on from the last one
    logged); ``session_sends`` those since the recipient's session began.
    """

    message: _Message
    due: int = -1
    attempts: int = 0
    session_sends: int = 0

    def key(self) -> tuple[int, int, int, bytes]:
        message = self.message
        return (self.due, message.rank, message.index, message.body.id)


def _states_owing(delivery: set[str], ack: set[str]) -> dict[str, RecipientState]:
    """Recipients' states from a snapshot's lists of who still owes each stage.

    A recipient on the delivered list only acknowledged without a delivered receipt
    (a snapshot from before the lifecycle table): it owes nothing more.
    """
    states = dict.fromkeys(ack - delivery, RecipientState.DELIVERED)
    states.update(
        (party, RecipientState.ACCEPTED if party in ack else RecipientState.ACKNOWLEDGED)
        for party in delivery
    )
    return states


def _send_order(pending: _Pending) -> tuple[int, int]:
    """Most urgent precedence first, then log order (rule 2)."""
    return (pending.message.rank, pending.message.index)


@dataclass(frozen=True, slots=True)
class _Inflight:
    envelope: Envelope
    party: str
    relay_ts: int
    last_seq: int | None = None  # the sender's last seq before this envelope was recorded


_TEST_RANK: Final = 99
TESTS_KEPT_FOR: Final = 10
"""An unanswered link test is forgotten after this many link-test timeouts."""
REFUSALS_BURST: Final = 200
"""Signed refusals an endpoint may draw at once (about 10 ms of signing)."""
REFUSALS_PER_S: Final = 20
"""Signed refusals an endpoint may draw each second once its burst is spent."""
RESEND_DOUBLINGS: Final = 4
"""Each resend waits twice as long as the one before, this many times at most."""
RESEND_BACKOFF_MAX: Final = 1 << RESEND_DOUBLINGS
"""A resend waits at most this many retry intervals (16: 48 s at the default 3 s)."""
EVENTS_OWED_MAX: Final = 10_000
"""``connected``, ``disconnected`` and ``redelivered`` entries kept to be asked for
again after their write failed; one more while the store stays down is lost (noted)."""
RECEIPTS_KEPT: Final = 10_000
"""Receipts kept per sender for resending after a reconnect (``auth.since``); older
ones are still in the log, and the endpoint can read them from the tiles."""


def _answer(receipt: ReceiptBody) -> tuple[bytes, str, str]:
    return (receipt.ref, receipt.sender, receipt.stage.value)


def _refused_ids(frame: bytes) -> tuple[bytes | None, bytes | None]:
    """The refused envelope's id and body hash, as far as its bytes can be read."""
    try:
        outer = msgpack.unpackb(frame, raw=False)
    except Exception:  # noqa: BLE001 - the frame is whatever the peer sent
        return None, None
    if not isinstance(outer, list) or len(outer) != 3 or not isinstance(outer[1], bytes):
        return None, None
    digest = body_hash(outer[1])
    try:
        ident = unpack_map(outer[1]).get("id")
    except Rejected:
        return None, digest
    return (ident if isinstance(ident, bytes) and is_uuid7(ident) else None), digest


class RelayCore:
    """Admission, ordering, delivery, receipts, deadlines and link tests."""

    def __init__(
        self, network: Network, key: SigningKey, random: RandomSource, *,
        ids: IdMaps | None = None,
    ) -> None:
        self.network: Final = network
        self._key = key
        self._random = random
        maps = IdMaps.in_memory() if ids is None else ids  # per-id state: see idmaps
        self.admission = Admission(network, seen=maps.seen)
        self._counters = RelayCounters()
        self.online: set[str] = set()
        self._tokens = itertools.count()
        self._inflight: dict[int, _Inflight] = {}
        self._inflight_ids: dict[bytes, list[str]] = {}
        self._accepted: AcceptedIds = maps.accepted  # id → (index, relay_ts, hash)
        self._messages: dict[bytes, _Message] = {}  # messages still owed a receipt
        # when each message next needs a look (a deadline, or forgetting a test): a heap of
        # (time, log index, id), so that a tick visits only what fell due, not every message
        self._due: list[tuple[int, int, bytes]] = []
        self._origin: Origins = maps.origins  # every logged message or test id → its sender
        self._queues: dict[str, dict[bytes, _Pending]] = {e: {} for e in network.endpoints}
        # per recipient, a heap of _Pending.key(): a flush visits only what is due to be
        # sent (new, or its retry interval over), not everything the recipient still owes
        self._sends: dict[str, list[tuple[int, int, int, bytes]]] = {
            e: [] for e in network.endpoints
        }
        self._receipts_for: dict[str, deque[tuple[int, bytes]]] = {
            e: deque(maxlen=RECEIPTS_KEPT) for e in network.endpoints
        }
        self._test_seq = 0
        count = max(len(network.endpoints), 1)
        interval = network.link_test_interval_ms
        self._test_offsets: dict[str, int] = {  # endpoint → its phase within the interval
            party: (position * interval) // count
            for position, party in enumerate(network.endpoints)
        }
        self._slot_signed: dict[str, int] = {}  # endpoint → the last slot a test was signed for
        self._slot_logged: dict[str, int] = {}  # endpoint → the last slot a logged test is for
        self._refusal_seq = 0
        self._answering: set[tuple[bytes, str, str]] = set()  # receipts on their way to the log
        # overdue entries on their way to the log: token → (message id, recipient, stage)
        self._overdue_appends: dict[int, tuple[bytes, str, str]] = {}
        # connected, disconnected and redelivered entries on their way to the log (by token),
        # and those whose write failed, to be asked for again in order (see events_owed)
        self._event_appends: dict[int, Append] = {}
        self._events_owed: list[Append] = []
        self._refusal_budget = TokenBucket(REFUSALS_BURST, REFUSALS_PER_S / 1000)
        self.size = 0
        # A relay replica's name: written into connected/disconnected entries so that the
        # figures follow each endpoint's session on whichever replica holds it ("" alone).
        self.replica = ""

    # ------------------------------------------------------------------ replay from the log

    def restore(
        self, index: int, entry: bytes, *, unsafe_signed_root_covers: bool = False
    ) -> tuple[int, Envelope | LogEvent]:
        """Rebuild state from one logged entry, in log order, at start-up.

        Returns the entry's relay time and its envelope or its event. The
        signature is checked again unless ``unsafe_signed_root_covers``: only
        for an entry whose bytes the caller has matched to a leaf hash under a
        root the relay signed (it was verified before it was logged).
        """
        decoded = decode_entry(entry)
        self.size = index + 1
        if decoded.envelope is None:
            assert decoded.event is not None
            fields = decoded.event.fields
            if decoded.kind is EntryKind.OVERDUE:
                message = self._messages.get(fields.get("ref", b""))
                if message is not None:
                    key = (str(fields.get("recipient")), str(fields.get("stage")))
                    message.overdue_sent.add(key)
            elif decoded.kind is EntryKind.REDELIVERED:
                self._sent_before(
                    str(fields.get("recipient")), fields.get("ref", b""), fields.get("attempt")
                )
            return decoded.relay_ts, decoded.event
        signed = read_envelope(decoded.envelope, self.network, max_size=1 << 30)
        envelope = signed.verified(unsafe_signature_checked=unsafe_signed_root_covers)
        self._logged(index, decoded.relay_ts, envelope, restoring=True)
        return decoded.relay_ts, envelope

    def _sent_before(self, party: str, message_id: object, attempt: object) -> None:
        """A send of ``message_id`` to ``party`` logged as attempt ``attempt`` (by this relay
        before a restart, or by another replica): the next send is the attempt after it."""
        if not isinstance(message_id, bytes) or not isinstance(attempt, int):
            return
        pending = self._queues.get(party, {}).get(message_id)
        if pending is not None:
            pending.attempts = max(pending.attempts, attempt)

    def follow(
        self, index: int, entry: bytes, now: int
    ) -> tuple[list[RelayAction], int, Envelope | LogEvent]:
        """An entry another relay replica logged, applied in log order as if it were ours.

        Its envelope's signature is checked again. A message is queued for its
        recipients and sent to those connected here; a receipt goes to its
        origin if connected here; a link test goes to its endpoint if connected
        here (every replica signs a test for each slot, the log keeps one, and
        the replica the endpoint is connected to sends the logged one). Returns
        the actions, the entry's relay time and its envelope or event.
        """
        decoded = decode_entry(entry)
        if decoded.envelope is None:
            # an event whose write was reported failed and was found durable: not owed
            self._events_owed = [a for a in self._events_owed if a.entry != entry]
            relay_ts, content = self.restore(index, entry)
            return [], relay_ts, content
        signed = read_envelope(decoded.envelope, self.network, max_size=1 << 30)
        envelope = signed.verified()
        self.size = max(self.size, index + 1)
        self.admission.record(envelope)
        actions = self._logged(index, decoded.relay_ts, envelope, restoring=False, now=now)
        return actions, decoded.relay_ts, envelope

    def superseded(self, token: int) -> list[RelayAction]:
        """The entry asked for with ``token`` was logged first by another replica.

        Its envelope is already applied (through :meth:`follow`); whoever sent
        it here gets the original accepted receipt, byte for byte.
        """
        self._overdue_logged(token)
        inflight = self._inflight.pop(token, None)
        if inflight is not None and isinstance(inflight.envelope.body, ReceiptBody):
            self._answering.discard(_answer(inflight.envelope.body))
        if inflight is None:
            return []
        body = inflight.envelope.body
        waiting = self._inflight_ids.pop(body.id, [])
        accepted = self._accepted.get(body.id)
        if accepted is None:
            return []
        self._counters.duplicates += 1
        note = LogLine("duplicate_answered", {"id": body.id.hex(), "replica": "other"})
        index, relay_ts, digest = accepted
        receipt = self._accepted_receipt(body.id, digest, index, relay_ts)
        return [note, *(Send(party, receipt) for party in waiting)]

    def withdrawn(self, token: int) -> None:
        """The entry asked for with ``token`` will not be logged (a link test refused).

        A link test whose slot has no logged test yet is signed again at the
        next tick, while that slot lasts.
        """
        self._overdue_appends.pop(token, None)
        self._event_appends.pop(token, None)
        inflight = self._inflight.pop(token, None)
        if inflight is not None and isinstance(inflight.envelope.body, ReceiptBody):
            self._answering.discard(_answer(inflight.envelope.body))
        if inflight is None:
            return
        body = inflight.envelope.body
        self._inflight_ids.pop(body.id, None)
        if isinstance(body, LinkTestBody):
            party = body.to[0]
            slot = self._test_slot(party, body.ts)
            if self._slot_signed.get(party) == slot and self._slot_logged.get(party, -1) < slot:
                self._slot_signed[party] = slot - 1

    def append_failed(
        self, token: int, retry_after_ms: int, why: str, now: int
    ) -> list[RelayAction]:
        """The entry asked for with ``token`` could not be made durable (the store failed).

        Nothing of it is kept: its envelope is forgotten by admission (a resend
        is judged afresh, not as a duplicate of something never logged), a
        receipt is owed again, and a link test's slot is signed again at the
        next tick while it lasts (as :meth:`withdrawn`). Every party waiting on
        the envelope, its sender and whoever resent it meanwhile, is answered
        with the temporary refusal ``busy`` (see :meth:`busy`): each ``Send``
        returned is such a refusal, and the edge closes that session once it is
        written, as for ``busy``. A missed deadline's ``overdue`` entry is asked
        for again at the next tick (a deadline miss must reach the log); a
        ``connected``, ``disconnected`` or ``redelivered`` entry is owed, with
        its own ``relay_ts``, and asked for again at the next tick, before any
        later one of these (see :meth:`events_owed`).
        """
        event = self._event_appends.pop(token, None)
        if event is not None:
            return [self._owe_event(event, why)]
        overdue = self._overdue_appends.pop(token, None)
        if overdue is not None:
            message_id, recipient, stage = overdue
            message = self._messages.get(message_id)
            if message is not None:
                message.overdue_sent.discard((recipient, stage))
                heapq.heappush(self._due, (now, message.index, message_id))
            return [LogLine("overdue_not_logged", {
                "id": message_id.hex(), "recipient": recipient, "stage": stage, "reason": why,
            })]
        inflight = self._inflight.get(token)
        if inflight is None:
            return [LogLine("log_entry_lost", {"token": token, "reason": why})]
        envelope = inflight.envelope
        body = envelope.body
        waiting = self._inflight_ids.get(body.id, [inflight.party])
        self.withdrawn(token)
        if isinstance(body, LinkTestBody):
            return [LogLine("link_test_not_logged", {"id": body.id.hex(), "to": body.to[0],
                                                     "reason": why})]
        self.admission.forget(envelope, inflight.last_seq)
        actions: list[RelayAction] = [LogLine("append_failed_answered_busy", {
            "id": body.id.hex(), "from": body.sender, "type": body.type.value,
            "parties": ",".join(waiting), "reason": why,
        })]
        for party in waiting:  # one answer per copy sent, as appended() does
            actions.extend(self.busy(party, envelope.frame, retry_after_ms, why, now))
        return actions

    # ------------------------------------------------------------------ connections

    def connected(self, party: str, now: int) -> list[RelayAction]:
        """An endpoint authenticated: log it, and send its backlog in order."""
        self.online.add(party)
        fields: dict[str, object] = {"party": party}
        if self.replica:
            fields["replica"] = self.replica
        actions: list[RelayAction] = [self._kept_event(EntryKind.CONNECTED, fields, now)]
        actions.extend(self._flush(party, now, force=True))
        return actions

    def resend_receipts(self, party: str, since: int) -> list[RelayAction]:
        """Receipts for ``party``'s messages logged after ``since``, again."""
        return [
            Send(party, encode_control(Deliver(index, frame)))
            for index, frame in self._receipts_for.get(party, ())
            if index > since
        ]

    def disconnected(self, party: str, reason: str, now: int) -> list[RelayAction]:
        self.online.discard(party)
        fields: dict[str, object] = {"party": party, "reason": reason}
        if self.replica:
            fields["replica"] = self.replica
        return [self._kept_event(EntryKind.DISCONNECTED, fields, now)]

    def events_owed(self) -> list[Append]:
        """Ask again, in order and each with its own ``relay_ts``, for the ``connected``,
        ``disconnected`` and ``redelivered`` entries whose write failed.

        Asked for at every tick (ticks run only while the relay can log); a new such
        entry while any is owed is owed behind them, so a party's sessions reach the
        log in the order they happened: a ``disconnected`` owed from before a store
        failure never lands after the ``connected`` of the session that followed it.
        """
        owed, self._events_owed = self._events_owed, []
        for append in owed:
            self._event_appends[append.token] = append
        return owed

    # ------------------------------------------------------------------ receiving

    def receive(self, party: str, frame: bytes, now: int) -> list[RelayAction]:
        """A signed envelope from an authenticated endpoint."""
        try:
            envelope = open_envelope(
                frame, self.network, max_size=self.network.limits.max_frame_bytes
            )
            ref = None
            if isinstance(envelope.body, ReceiptBody):
                ref = self._logged_ref(envelope.body)
            verdict = self.admission.check(envelope, authenticated=party, now_ms=now, ref=ref)
        except Rejected as exc:
            return self.refuse(party, frame, exc, now)
        body = envelope.body
        if verdict is Verdict.DUPLICATE:
            self._counters.duplicates += 1
            note = LogLine("duplicate_answered", {"party": party, "id": body.id.hex()})
            waiting = self._inflight_ids.get(body.id)
            if waiting is not None:
                waiting.append(party)
                return [note]
            index, relay_ts, digest = self._accepted[body.id]
            return [note, Send(party, self._accepted_receipt(body.id, digest, index, relay_ts))]
        last_seq = self.admission.last_seq_of(body.sender)
        self.admission.record(envelope)
        token = next(self._tokens)
        self._inflight[token] = _Inflight(envelope, party, now, last_seq)
        self._inflight_ids[body.id] = [party]
        if isinstance(body, ReceiptBody):
            self._answering.add(_answer(body))
        return [Append(encode_envelope_entry(now, envelope.frame), token, now, envelope)]

    def _logged_ref(self, receipt: ReceiptBody) -> LoggedRef | None:
        """What admission judges a receipt against: its ref as logged, and what it is owed.

        Built from the messages still owed a receipt, so that it never needs
        the log: a logged message that is owed nothing any more is ``closed``.
        """
        message = self._messages.get(receipt.ref)
        if message is None:
            origin = self._origin.get(receipt.ref)
            if origin is None:
                return None
            return LoggedRef(origin, frozenset(), b"", frozenset(), closed=True)
        origin = message.sender
        body = message.body
        if isinstance(body, LinkTestBody):
            recipients = frozenset(body.to)
        else:
            assert isinstance(body, WarningBody | CancelBody | TextBody)
            recipients = frozenset(recipients_of(self.network, origin, body.to))
        # receipts admitted for ref and still on their way are logged before this one: each
        # recipient is judged by the state they lead to, not by the state logged so far
        # (an acknowledgement on its way leaves no delivered nor rejected owed)
        coming: dict[str, list[Stage]] = {}
        for ref, sender, stage in self._answering:
            if ref == receipt.ref:
                coming.setdefault(sender, []).append(Stage(stage))
        if isinstance(body, LinkTestBody):  # a test is answered once, delivered (or refused)
            owed = {(r, stage.value) for r in message.owing(Stage.DELIVERED) if r not in coming
                    for stage in (Stage.DELIVERED, Stage.REJECTED)}
        else:  # what would still move each recipient along the lifecycle table
            owed = set()
            for r, state in message.states.items():
                for stage in sorted(coming.get(r, ()), key=lambda s: s is not Stage.DELIVERED):
                    state = advance(state, Step.of(stage))  # noqa: PLW2901 - the state to come
                owed |= {(r, stage.value) for stage in expects(state)}
        return LoggedRef(origin, recipients, message.digest, frozenset(owed))

    def answers_unseen(self, frame: bytes) -> bool:
        """Whether ``frame`` is a receipt for a message or test this core has not applied.

        A relay replica may not have applied yet what another replica logged and
        delivered: it answers such a receipt ``busy`` rather than refuse it for good.
        Read without verifying (admission verifies whatever is then received).
        """
        try:
            outer = msgpack.unpackb(frame, raw=False)
            if not isinstance(outer, list) or len(outer) != 3 or not isinstance(outer[1], bytes):
                return False
            data = unpack_map(outer[1])
        except Exception:  # noqa: BLE001 - the frame is whatever the peer sent
            return False
        ref = data.get("ref")
        if data.get("t") != "receipt" or not isinstance(ref, bytes):
            return False
        return self._origin.get(ref) is None

    def busy(self, party: str, frame: bytes, retry_after_ms: int, why: str,
             now: int) -> list[RelayAction]:
        """The relay cannot log now: the signed, temporary refusal ``busy``; nothing recorded.

        The sender keeps the envelope and sends it again after ``retry_after_ms``.
        """
        exc = Rejected(RejectCode.BUSY, f"the relay cannot log now ({why}); send it again later",
                       retry_after_ms=retry_after_ms)
        return self.refuse(party, frame, exc, now)

    def refuse(self, party: str, frame: bytes, exc: Rejected, now: int) -> list[RelayAction]:
        """Answer a refused frame (envelope or control) with a relay-signed refusal.

        An endpoint that draws refusals faster than its budget (rule 4a) has its
        session closed instead of being answered.
        """
        self._count_rejected(exc.code)
        note = LogLine("envelope_rejected", {
            "party": party, "code": exc.code, "path": exc.path, "reason": exc.sentence,
        })
        wait_ms = self._refusal_budget.take(party, now)
        if wait_ms:
            self._counters.refusal_floods += 1
            flood = LogLine("refusal_flood_closed", {"party": party, "wait_ms": wait_ms})
            return [note, flood, Close(
                party, REFUSAL_FLOOD_CLOSE,
                f"refused_flood: more than {REFUSALS_BURST} refused frames at once; "
                f"retry in {wait_ms} ms",
            )]
        return [note, Send(party, self._rejection(frame, exc, now))]

    def session_refused(self, code: str) -> None:
        """The edge refused a session before it reached the core (authentication failed or
        timed out, too many sessions): counted with the refused frames, under ``code``."""
        self._count_rejected(code)

    def _count_rejected(self, code: str) -> None:
        self._counters.rejected[code] = self._counters.rejected.get(code, 0) + 1

    def _rejection(self, frame: bytes, exc: Rejected, now: int) -> bytes:
        """The ``rejected`` control: the relay-signed ``refused`` body and its v1 fields."""
        ref, digest = _refused_ids(frame)
        code = exc.code
        retry_after_ms: int | None = None
        if code.temporary:
            retry_after_ms = exc.retry_after_ms or self.network.limits.retry_interval_ms
        path = exc.path[:MAX_PATH] if code is RejectCode.SCHEMA and exc.path else None
        self._refusal_seq = max(self._refusal_seq + 1, now * 1000)
        body = RefusedBody(
            id=make_id(now, self._random(10)),
            sender=self.network.relay.id,
            ts=now,
            seq=self._refusal_seq,
            kid=self._key.public.kid,
            ref=ref,
            hash=digest,
            frame_hash=body_hash(frame),
            code=code,
            sentence=exc.sentence[:MAX_NOTE] or code.value,
            path=path,
            retry_after_ms=retry_after_ms,
        )
        signed = seal(body, self._key)
        return encode_control(
            RejectedNotice(ref or b"", exc.code, exc.sentence, exc.path, frame=signed)
        )

    def appended(self, token: int, index: int, now: int) -> list[RelayAction]:
        """The entry asked for with ``token`` is durable at ``index``."""
        self._overdue_logged(token)
        self._event_appends.pop(token, None)
        inflight = self._inflight.pop(token, None)
        if inflight is not None and isinstance(inflight.envelope.body, ReceiptBody):
            self._answering.discard(_answer(inflight.envelope.body))
        self.size = max(self.size, index + 1)
        if inflight is None:
            return []
        envelope = inflight.envelope
        body = envelope.body
        waiting = self._inflight_ids.pop(body.id, [inflight.party])
        kind = body.type.value
        self._counters.accepted[kind] = self._counters.accepted.get(kind, 0) + 1
        fields: dict[str, object] = {"id": body.id.hex(), "from": body.sender, "type": kind,
                                     "index": index}
        if isinstance(body, WarningBody | CancelBody | TextBody):
            fields["to"] = ",".join(recipients_of(self.network, body.sender, body.to))
            fields["precedence"] = body.precedence.value
        elif isinstance(body, ReceiptBody):
            fields["ref"] = body.ref.hex()
            fields["stage"] = body.stage.value
            fields["link"] = f"{body.sender}-{self._origin.get(body.ref) or '?'}"
        actions: list[RelayAction] = []
        if isinstance(body, LinkTestBody):
            self._counters.link_tests += 1
        else:
            actions.append(LogLine("envelope_accepted", fields))
        # the forwards first: signing the sender's receipt need not delay the recipients;
        # then the receipt, before the appends a forward may ask for (a resend's
        # redelivered entry), at which the edge writes its notes
        after = self._logged(index, inflight.relay_ts, envelope, restoring=False, now=now)
        actions.extend(action for action in after if isinstance(action, Send))
        receipt = self._accepted_receipt(body.id, envelope.hash, index, inflight.relay_ts)
        actions.extend(Send(party, receipt) for party in waiting)
        actions.extend(action for action in after if not isinstance(action, Send))
        return actions

    def _overdue_logged(self, token: int) -> None:
        """Count an overdue entry this core asked for once it is in the log (by this relay
        or, the same miss, by another replica first): one that failed is asked for again."""
        overdue = self._overdue_appends.pop(token, None)
        if overdue is not None:
            stage = overdue[2]
            self._counters.overdue[stage] = self._counters.overdue.get(stage, 0) + 1

    def _accepted_receipt(self, ref: bytes, digest: bytes, index: int, relay_ts: int) -> bytes:
        body = AcceptedBody(
            id=make_id(relay_ts, digest[:10]),
            sender=self.network.relay.id,
            ts=relay_ts,
            seq=index,
            kid=self._key.public.kid,
            ref=ref,
            hash=digest,
            index=index,
        )
        return encode_control(Accepted(seal(body, self._key)))

    # ------------------------------------------------------------------ after logging

    def _logged(
        self, index: int, relay_ts: int, envelope: Envelope, *, restoring: bool, now: int = 0
    ) -> list[RelayAction]:
        body = envelope.body
        if restoring:
            self.admission.record(envelope)
        self.admission.logged(envelope)
        self._accepted[body.id] = (index, relay_ts, envelope.hash)
        if isinstance(body, WarningBody | CancelBody | TextBody | LinkTestBody):
            self._origin[body.id] = body.sender
        if isinstance(body, WarningBody | CancelBody | TextBody):
            recipients = recipients_of(self.network, body.sender, body.to)
            message = _Message(
                index, relay_ts, body.sender, envelope.frame, envelope.hash, body,
                body.precedence.rank,
                dict.fromkeys(recipients, RecipientState.ACCEPTED),
            )
            self._messages[body.id] = message
            self._schedule(message)
            actions: list[RelayAction] = []
            for recipient in recipients:
                self._owe(recipient, message)
                if not restoring:
                    actions.extend(self._flush(recipient, now))
            return actions
        if isinstance(body, LinkTestBody):
            recipient = body.to[0]
            message = _Message(
                index, relay_ts, body.sender, envelope.frame, envelope.hash, body, _TEST_RANK,
                {recipient: RecipientState.ACCEPTED},
            )
            self._messages[body.id] = message
            self._schedule(message)
            self._test_seq = max(self._test_seq, body.seq)
            if recipient in self._test_offsets:
                slot = self._test_slot(recipient, body.ts)
                self._slot_logged[recipient] = max(self._slot_logged.get(recipient, slot), slot)
            if restoring or recipient not in self.online:
                return []
            self._counters.deliveries += 1
            return [Send(recipient, encode_control(Deliver(index, envelope.frame)))]
        if isinstance(body, ReceiptBody):
            return self._receipt_logged(index, relay_ts, envelope, body, restoring=restoring)
        return []

    def _receipt_logged(
        self, index: int, relay_ts: int, envelope: Envelope, body: ReceiptBody, *, restoring: bool
    ) -> list[RelayAction]:
        message = self._messages.get(body.ref)
        if message is None:
            origin = self._origin.get(body.ref)
            if origin is None or origin == self.network.relay.id:
                return []
            self._receipts_for[origin].append((index, envelope.frame))
            if restoring or origin not in self.online:
                return []
            return [Send(origin, encode_control(Deliver(index, envelope.frame)))]
        state = message.states.get(body.sender)
        if state is not None and not isinstance(message.body, LinkTestBody):
            state = message.states[body.sender] = advance(state, Step.of(body.stage))
            if not owes(state, Stage.DELIVERED):
                message.delivered_at.setdefault(body.sender, relay_ts)
                self._queues.get(body.sender, {}).pop(body.ref, None)
        if isinstance(message.body, LinkTestBody):
            self._messages.pop(body.ref, None)  # answered: nothing more is owed for a test
            return []
        origin = message.sender
        self._receipts_for[origin].append((index, envelope.frame))
        if all(finished(state) for state in message.states.values()):
            self._messages.pop(body.ref, None)
        if restoring or origin not in self.online:
            return []
        return [
            LogLine("receipt_forwarded", {
                "ref": body.ref.hex(), "link": f"{body.sender}-{origin}",
                "stage": body.stage.value,
            }),
            Send(origin, encode_control(Deliver(index, envelope.frame))),
        ]

    # ------------------------------------------------------------------ delivery

    def _owe(self, party: str, message: _Message) -> None:
        """``party`` owes ``message`` a delivered receipt: it is sent at the next flush.

        Only an online party's heap gets the entry: a new session sends everything owed
        and rebuilds the heap, so an offline party's heap would only hold stale entries.
        """
        pending = _Pending(message)
        self._queues.setdefault(party, {})[message.body.id] = pending
        if party in self.online:
            heapq.heappush(self._sends.setdefault(party, []), pending.key())

    def _flush(self, party: str, now: int, *, force: bool = False) -> list[RelayAction]:
        """Send what ``party`` is owed and due, most urgent first, then log order.

        ``force`` (a new session) sends everything it is owed; otherwise only what was
        never sent or whose retry interval is over, found on the party's send heap.
        """
        if party not in self.online:
            return []
        queue = self._queues.get(party, {})
        sends = self._sends.setdefault(party, [])
        if force:
            due = list(queue.values())
            sends.clear()  # rebuilt below from what is sent now: no stale entry survives
            for owed in due:  # a new session: resends start again from one interval
                owed.session_sends = 0
        else:
            due, taken = [], set()
            while sends and sends[0][0] <= now:
                when, _, _, message_id = heapq.heappop(sends)
                pending = queue.get(message_id)
                if pending is not None and pending.due == when and message_id not in taken:
                    taken.add(message_id)
                    due.append(pending)
        actions: list[RelayAction] = []
        for pending in sorted(due, key=_send_order):
            pending.attempts += 1
            actions.append(LogLine(
                "message_forwarded" if pending.attempts == 1 else "message_redelivered",
                {"id": pending.message.body.id.hex(), "link": f"{pending.message.sender}-{party}",
                 "index": pending.message.index, "attempt": pending.attempts},
            ))
            if pending.attempts > 1:
                self._counters.redeliveries += 1
                actions.append(self._kept_event(
                    EntryKind.REDELIVERED,
                    {"ref": pending.message.body.id, "recipient": party,
                     "attempt": pending.attempts},
                    now,
                ))
            pending.session_sends += 1
            pending.due = now + self._resend_wait(pending.session_sends)
            heapq.heappush(sends, pending.key())
            self._counters.deliveries += 1
            actions.append(
                Send(party, encode_control(Deliver(pending.message.index, pending.message.frame)))
            )
        return actions

    def _resend_wait(self, sends: int) -> int:
        """How long after its ``sends``-th send on this session a message is sent again."""
        return self.network.limits.retry_interval_ms << min(sends - 1, RESEND_DOUBLINGS)

    # ------------------------------------------------------------------ time

    def tick(self, now: int) -> list[RelayAction]:
        """Retries, deadlines and link tests that are due at ``now``."""
        actions: list[RelayAction] = [*self.events_owed()]
        for party in sorted(self.online):
            actions.extend(self._flush(party, now))
        actions.extend(self._deadlines(now))
        actions.extend(self._link_tests(now))
        return actions

    def _schedule(self, message: _Message) -> None:
        """Put the times ``message`` will need a look at on the heap ``_deadlines`` pops."""
        for due in self._looks(message):
            heapq.heappush(self._due, (due, message.index, message.body.id))
        # a replay or a replica catching up schedules every message ever logged before
        # the first tick: compact here too, or the heap holds two entries per answered one.
        # Every look of a live message is kept (one already taken is taken again: harmless,
        # as overdue_sent and forgetting a test are idempotent); one not taken yet may be
        # due already (a message followed late), so none may be dropped here.
        self._compact_due(-1)

    def _looks(self, message: _Message) -> tuple[int, ...]:
        """When ``message`` needs a look: each deadline, or when a link test is forgotten
        (once relay_ts < now - TESTS_KEPT_FOR * timeout, i.e. one ms after that)."""
        body = message.body
        if isinstance(body, LinkTestBody):
            return (message.relay_ts + TESTS_KEPT_FOR * self.network.link_test_timeout_ms + 1,)
        assert isinstance(body, WarningBody | CancelBody | TextBody)
        deadline = self.network.deadlines[body.precedence]
        return (message.relay_ts + deadline.delivered_ms,
                message.relay_ts + deadline.acknowledged_ms)

    def _compact_due(self, now: int) -> None:
        """Drop the heap's entries for messages answered in full since they were pushed,
        once they outnumber the live ones: the heap stays in proportion to ``_messages``."""
        if len(self._due) <= 4 * len(self._messages) + 1024:
            return
        self._due = [
            (due, message.index, message_id)
            for message_id, message in self._messages.items()
            for due in self._looks(message)
            if due > now
        ]
        heapq.heapify(self._due)

    def _deadlines(self, now: int) -> list[RelayAction]:
        """Deadlines missed by ``now`` and link tests to forget: only the messages whose
        time has come are visited, in log order, each at most once per tick."""
        looks: dict[int, _Message] = {}
        while self._due and self._due[0][0] <= now:
            _, index, message_id = heapq.heappop(self._due)
            message = self._messages.get(message_id)
            # else answered in full (or forgotten) already; an entry pushed for another
            # logging of the same id (a log holding it twice) is not this message's
            if message is not None and message.index == index:
                looks[index] = message
        actions: list[RelayAction] = []
        forget_tests_before = now - TESTS_KEPT_FOR * self.network.link_test_timeout_ms
        for index in sorted(looks):
            message = looks[index]
            if isinstance(message.body, LinkTestBody):
                if message.relay_ts < forget_tests_before:
                    del self._messages[message.body.id]  # never answered; counted as missed
                continue
            assert isinstance(message.body, WarningBody | CancelBody | TextBody)
            deadline = self.network.deadlines[message.body.precedence]
            for stage, due in (
                (Stage.DELIVERED, message.relay_ts + deadline.delivered_ms),
                (Stage.ACKNOWLEDGED, message.relay_ts + deadline.acknowledged_ms),
            ):
                for recipient in sorted(message.states):
                    if owes(message.states[recipient], stage):
                        actions.extend(self._overdue(message, recipient, stage, due, now))
        self._compact_due(now)
        return actions

    def _overdue(
        self, message: _Message, recipient: str, stage: Stage, due: int, now: int
    ) -> list[RelayAction]:
        key = (recipient, stage.value)
        if now < due or key in message.overdue_sent:
            return []
        message.overdue_sent.add(key)
        note = LogLine("deadline_missed", {
            "id": message.body.id.hex(), "link": f"{message.sender}-{recipient}",
            "stage": stage.value, "deadline": due,
        })
        append = self._event(
            EntryKind.OVERDUE,
            {"ref": message.body.id, "recipient": recipient, "stage": stage.value,
             "deadline": due},
            now,
        )
        self._overdue_appends[append.token] = (message.body.id, recipient, stage.value)
        return [note, append]

    def _link_tests(self, now: int) -> list[RelayAction]:
        """Tests due at ``now``: each endpoint's at its own phase of the interval.

        Spreading the endpoints over the interval keeps a burst of tests (and of
        their receipts) from landing on top of real traffic all at once. A slot
        gets one test, signed when it starts (or at the first tick after); a
        slot that already has a logged test (another replica's) is skipped, and
        the first slot of each endpoint is the first to start at or after the
        first tick, so a relay starting up does not test everyone at once.
        """
        actions: list[RelayAction] = []
        for party in self.network.endpoints:
            slot = self._test_slot(party, now)
            signed = self._slot_signed.get(party)
            if signed is None:
                signed = slot - 1 if self.test_slot_start(party, now) == now else slot
                self._slot_signed[party] = signed
            if slot <= max(signed, self._slot_logged.get(party, signed)):
                continue
            self._slot_signed[party] = slot
            self._test_seq = max(self._test_seq + 1, now * 1000)
            body = LinkTestBody(
                id=make_id(now, self._random(10)),
                sender=self.network.relay.id,
                ts=now,
                seq=self._test_seq,
                kid=self._key.public.kid,
                to=(party,),
            )
            envelope = sealed(body, self._key)
            token = next(self._tokens)
            self._inflight[token] = _Inflight(envelope, self.network.relay.id, now)
            self._inflight_ids[body.id] = []
            actions.append(Append(encode_envelope_entry(now, envelope.frame), token, now, envelope))
        return actions

    def _test_slot(self, party: str, ts: int) -> int:
        """The number of ``party``'s link-test slot that ``ts`` falls in."""
        return (ts - self._test_offsets.get(party, 0)) // self.network.link_test_interval_ms

    def test_slot_start(self, party: str, ts: int) -> int:
        """When ``party``'s link-test slot holding ``ts`` started (ms): the same on every replica.

        A test signed at ``ts`` (its ``ts``) is that slot's test; the start
        names the slot whatever the interval, so it makes a deterministic id.
        """
        slot = self._test_slot(party, ts)
        return slot * self.network.link_test_interval_ms + self._test_offsets.get(party, 0)

    def _event(self, kind: EntryKind, fields: dict[str, object], now: int) -> Append:
        event = LogEvent(kind, fields)
        return Append(encode_event_entry(now, event), next(self._tokens), now, event=event)

    def _kept_event(self, kind: EntryKind, fields: dict[str, object], now: int) -> RelayAction:
        """An event entry that is owed again if its write fails (see :meth:`append_failed`).

        While older ones are owed it is not asked for but owed behind them (asked for at
        the next tick, which runs only while the store takes writes): never before an older
        one, and a store that is down is not asked again for everything owed at each event.
        """
        append = self._event(kind, fields, now)
        if self._events_owed:
            return self._owe_event(append, "older ones still owed")
        self._event_appends[append.token] = append
        return append

    def _owe_event(self, append: Append, why: str) -> LogLine:
        """Keep ``append`` (an event entry) to be asked for at the next tick, within the cap."""
        assert append.event is not None
        fields: dict[str, object] = {"kind": append.event.kind.value, "relay_ts": append.relay_ts,
                                     "reason": why, "owed": len(self._events_owed)}
        if len(self._events_owed) >= EVENTS_OWED_MAX:
            return LogLine("log_entry_lost", {"token": append.token, **fields})
        self._events_owed.append(append)
        fields["owed"] = len(self._events_owed)
        return LogLine("event_not_logged", fields)

    # ------------------------------------------------------------------ views

    @property
    def counters(self) -> RelayCounters:
        """A copy of the counters now (they change only inside this core's inputs)."""
        c = self._counters
        return RelayCounters(
            accepted=dict(c.accepted), rejected=dict(c.rejected), duplicates=c.duplicates,
            deliveries=c.deliveries, redeliveries=c.redeliveries, overdue=dict(c.overdue),
            link_tests=c.link_tests, refusal_floods=c.refusal_floods,
        )

    @property
    def last_test_seq(self) -> int:
        """The highest ``seq`` of a link test this core signed or saw logged."""
        return self._test_seq

    def pending_count(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def owed(self, message_id: bytes) -> dict[str, frozenset[Stage]]:
        """What each recipient still owes for a logged message or link test (by id).

        Empty once nothing is owed (or the id was never logged, or the test was
        forgotten): the relay then holds nothing more for it.
        """
        message = self._messages.get(message_id)
        if message is None:
            return {}
        if isinstance(message.body, LinkTestBody):
            return {party: frozenset({Stage.DELIVERED}) for party in message.states}
        return {
            party: OWES[state] for party, state in message.states.items() if OWES[state]
        }

    def state_of(self, message_id: bytes, party: str) -> RecipientState | None:
        """Where ``party`` stands with a logged message the relay still holds, or None."""
        message = self._messages.get(message_id)
        return None if message is None else message.states.get(party)

    @property
    def scheduled_looks(self) -> int:
        """Deadline checks still scheduled: kept in proportion to the messages owed a receipt."""
        return len(self._due)

    def queued_for(self, party: str) -> tuple[bytes, ...]:
        """The ids of the messages owed to ``party``, in the order they will be sent."""
        queue = self._queues.get(party, {})
        ordered = sorted(queue.values(), key=_send_order)
        return tuple(pending.message.body.id for pending in ordered)

    # ------------------------------------------------------------------ snapshots

    def state(self) -> dict[str, Any]:
        """What restart would rebuild from the log, as plain values (MessagePack-ready).

        The per-id maps are not in it: they are kept elsewhere (see idmaps).
        """
        return {
            "size": self.size,
            "test_seq": self._test_seq,
            "slot_logged": dict(self._slot_logged),
            "last_seq": self.admission.logged_seqs(),  # not what is still on its way
            "messages": [
                [m.frame, m.index, m.relay_ts,
                 m.owing(Stage.DELIVERED), m.owing(Stage.ACKNOWLEDGED),
                 dict(m.delivered_at), sorted([r, s] for r, s in m.overdue_sent)]
                for m in self._messages.values()
            ],
            "receipts_for": {
                party: [[index, frame] for index, frame in kept]
                for party, kept in self._receipts_for.items()
            },
            "attempts": [
                [party, message_id, pending.attempts]
                for party, queue in self._queues.items()
                for message_id, pending in queue.items() if pending.attempts
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Start from ``state()`` saved by a relay of this network (the caller matched it to
        the log). Message frames are not verified again: they were verified when logged."""
        self.size = int(state["size"])
        self._test_seq = int(state["test_seq"])
        self._slot_logged = {str(k): int(v) for k, v in state["slot_logged"].items()}
        self.admission.restore_last_seqs(state["last_seq"])
        for frame, index, relay_ts, waiting, waiting_ack, delivered_at, overdue in state[
            "messages"
        ]:
            envelope = read_envelope(frame, self.network, max_size=1 << 30).verified(
                unsafe_signature_checked=True
            )
            body = envelope.body
            routed = isinstance(body, WarningBody | CancelBody | TextBody)
            rank = (
                body.precedence.rank if isinstance(body, WarningBody | CancelBody | TextBody)
                else _TEST_RANK
            )
            message = _Message(
                index, relay_ts, body.sender, frame, envelope.hash, body, rank,
                _states_owing(set(waiting), set(waiting_ack)) if routed
                else dict.fromkeys(waiting, RecipientState.ACCEPTED),
                dict(delivered_at), {(str(r), str(s)) for r, s in overdue},
            )
            self._messages[body.id] = message
            self._schedule(message)
            if routed:
                for recipient in message.owing(Stage.DELIVERED):
                    self._owe(recipient, message)
        for party, kept in state["receipts_for"].items():
            if party in self._receipts_for:
                self._receipts_for[party].extend((int(i), bytes(f)) for i, f in kept)
        for party, message_id, attempts in state.get("attempts", []):  # absent: none kept
            self._sent_before(str(party), message_id, attempts)
