"""A relay replica: one of several ``hotline relay`` processes sharing one JetStream stream.

The stream (``hotline.auditlog.natsstore``) is the log; each replica keeps a
local mirror of it (the file store in its data directory) from which it serves
tiles, proofs and checkpoints exactly as a single relay does. The replica runs
on the relay's own event loop and uses :class:`StreamClient` directly (the
async store path): no thread, no group committer.

How an entry travels:

1. The core asks for an ``Append``; :meth:`Replica.append` queues it for the
   stream with a ``Nats-Msg-Id``: for an endpoint's envelope, the sender's
   envelope it was admitted after (below), a deterministic id for an
   ``overdue`` event (two replicas that both notice one missed deadline log
   it once), the last test's sequence for a link test (below), a
   replica-unique id for anything else.
2. Publishing retries on failure with the same id until JetStream
   acknowledges it (a duplicate acknowledgement is fine). Entries of one
   sender are published one at a time, in order: a later entry is never
   stored before an earlier one, so ``seq`` rises in log order per sender
   even when a node dies mid-publish.
3. An endpoint's envelope is judged (admission, the receipt lifecycle) against
   what this replica knew of its sender when it arrived: the sender's last
   envelope in the log, or one of the sender's still waiting here. It is
   published as that envelope's successor, ``Nats-Msg-Id``
   ``env-<sender>-after-<seq>`` (``env-<sender>-first`` for none), and only
   once that envelope is known stored. Within the duplicate window a name is
   stored once, however concurrent the publishes, so the sender's envelopes in
   the stream form one chain, each judged against the one before it: an
   endpoint sending to two replicas at once (two warnings of one ``seq``, two
   contradicting receipts) gets one logged and the other answered ``busy``
   (``LogSink.failed``), to be judged again when it is sent again; every
   later envelope of that sender waiting here goes the same way. So no
   endpoint can get two of its own envelopes logged that break a rule between
   them (``seq``, the receipt lifecycle, an id it used before), which the
   auditor would blame on the relay. The same envelope sent to two replicas
   names the same predecessor, so it is stored once and both answer with its
   receipt.
4. Link tests: every replica signs a test for every endpoint in each of its
   slots (slots are aligned to absolute time, so the replicas agree on
   them), whether the endpoint is connected to it, to another replica or to
   none, unless it has already followed that slot's test. A test is
   published with ``Nats-Msg-Id`` ``test-after-<s>``, ``s`` being the stream
   sequence of the last test this replica knows of (0 for none), and with
   that expected last test sequence. The id makes the stream a chain: the
   first test published after ``s`` is stored, any other naming ``s`` is a
   duplicate, however concurrent (JetStream's expected-sequence check alone
   lets two concurrent publishes through on a cluster; its id check does
   not). So a test is logged only right after every test its replica knew
   of: it is signed above them (a test signed at or below the last one
   logged is withdrawn unpublished) and its slot has none of them (a
   replica's own test of a slot is dropped when it follows another test of
   that slot). Hence the relay's test ``seq`` rises in log order and each
   slot is logged at most once. A test refused, answered as a duplicate of
   another test, or not acknowledged in time is withdrawn, and the core
   signs its slot again at the next tick unless the slot was logged
   meanwhile: one not acknowledged but stored after all is applied as
   any other replica's test, and the slot's new test then names a sequence
   that test already follows, so it is refused: logged and counted once.
5. Every replica follows the stream in order (an ordered consumer). Each
   message is first appended to the mirror, then applied to the core: if it
   carries the id and the exact bytes of one of this replica's own appends it
   completes that append (``LogSink.logged``: the accepted receipt, the
   forwards); if it carries the id of an own append with other bytes, or holds
   the same envelope as one waiting here, another replica logged it first, so
   it is applied as theirs and the own append is answered with the original
   receipt (``LogSink.superseded``); an own envelope whose name another
   envelope of its sender took is not logged (step 3); otherwise it is another
   replica's entry (``LogSink.followed``): deliveries, receipts and link
   tests go to whoever is connected here. So each entry is applied once, in
   log order, by every replica, and a message or a link test reaches its
   recipient through whichever replica the recipient is connected to. (A
   link test is recognised as own by its bytes alone, its id naming its
   predecessor; another replica's test of an own test's slot drops the own
   one, as ``superseded``.)

Readiness (``Replica.ready``, ``/healthz``, the ``hotline_relay_ready`` metric): a
replica is not ready while it holds no connection to a NATS server, while one of
its publishes has gone unacknowledged for ``PUBLISH_STALL_S`` (but not within
``RESEND_GRACE_S`` of the client's reconnection to another node, which sends
every waiting publish again at once), while an entry
the stream acknowledged to it has not reached its follower for as long (after
``BEHIND_S`` it reads the missing entries by sequence and tries a new consumer:
the old one may live on a node that hangs; it does both at once when its client
reconnects to another node, and while it has no consumer at all it reads at once
and tries a new consumer every ``RETRY_FOLLOW_S``),
or after this process was paused (SIGSTOP, a stuck VM) until it has caught up with the stream
again; once not ready, it is ready again only when every such wait is under half
the bound. Turning not ready it closes its endpoint sessions (1013, try again
later), so they fail over to another replica; while not ready it answers new
envelopes ``busy`` with a retry-after instead of queueing what it cannot log,
and skips its timers (no link tests, no deadlines judged on a stale mirror). A
publish still unacknowledged after ``RECONNECT_AFTER_S`` makes it reconnect to
another NATS node (a hung node is also left by the client's own pings within
about 2 s).

A write the mirror fails (a full or failing disk) makes the replica not ready until
the mirror is recovered in place (``Recoverable``): the entries the failed write did
not keep are written again, those it did are applied, each once and in order. Meanwhile
it does not follow the stream (no consumer, no reads by sequence); once the batch in hand
is written it follows again from the mirror's size.

Invariants: the mirror holds exactly the stream's first ``size`` messages
(checked against the stream on open: a mirror longer than the stream, or whose
last entry differs, refuses to start); an index is stream sequence minus one;
checkpoints are signed over the mirror only, and their text is a pure
function of (origin, size, root), so two replicas sign identical notes for a
size and never two roots for one size.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog
from nats.aio.subscription import Subscription

from hotline.auditlog.leaf import EntryKind
from hotline.auditlog.natsstore import Published, StreamClient, StreamEntry, StreamSettings
from hotline.auditlog.store import LogStore, Recoverable
from hotline.errors import StoreError
from hotline.protocol.bodies import LinkTestBody
from hotline.protocol.envelope import Envelope
from hotline.relay.core import Append

if TYPE_CHECKING:
    from hotline.auditlog.log import AuditLog
    from hotline.relay.logbackend import LogSink

__all__ = ["Replica"]

log = structlog.get_logger()

CATCH_UP_TIMEOUT_S: Final = 120.0
STALL_S: Final = 2.0
RETRY_S: Final = (0.1, 0.25)
WATCH_S: Final = 0.25
"""How often readiness is judged."""
PAUSED_S: Final = 1.0
"""The watchdog woke this much later than asked: this process was paused (or starved)."""
PUBLISH_STALL_S: Final = 1.5
"""A publish unacknowledged this long makes the replica not ready."""
RECONNECT_AFTER_S: Final = 2.5
"""A publish unacknowledged this long makes the replica reconnect to another NATS node."""
RESEND_GRACE_S: Final = 0.5
"""After the NATS client reconnected, its waiting publishes get this long before a stall counts."""
RESYNC_TIMEOUT_S: Final = 2.0
_PULL_CHUNK: Final = 64
RESUBSCRIBE_S: Final = 2.0
BEHIND_S: Final = 0.75
"""An acknowledged entry not delivered to this replica's follower this long: follow again."""
RETRY_FOLLOW_S: Final = 0.5
"""With no consumer (its creation failed), how often a new one is tried."""
CHAIN_WAIT_S: Final = 2.0
"""After a sender's envelope was acknowledged as stored before, how long its lane waits for
the follower to apply what was stored, so that the next envelope names it."""
MIRROR_RETRY_S: Final = (0.05, 5.0)
"""After the mirror failed a write, the first and the longest pause between tries to recover."""


@dataclass(slots=True, eq=False)
class _Own:
    append: Append
    msg_id: str  # its key in Replica._own (a link test's and an envelope's are not their ids)
    test: bool
    # An endpoint's envelope: what its sender's last envelope was when it was admitted (one
    # still waiting here, or the seq of one stored), the Nats-Msg-Id it was published with,
    # and whether it is in the stream (None: not known yet).
    after: _Own | int | None = None
    published_as: str = ""
    stored: bool | None = None


class Replica:
    """This relay's publisher to and follower of the shared stream: its log backend
    (``hotline.relay.logbackend``) when the log is a stream, mirrored into ``audit_log``."""

    shared = True

    def __init__(
        self, audit_log: AuditLog, sink: LogSink, settings: StreamSettings, name: str = ""
    ) -> None:
        self._log: Final = audit_log
        self._sink: Final = sink
        self.settings: Final = settings
        self.name: Final = name or f"replica-{os.getpid()}"
        self.client = StreamClient(settings, name=f"hotline-{self.name}")
        self._boot = os.urandom(6).hex()
        self._numbers = itertools.count()
        self._own: dict[str, _Own] = {}
        self._chain: dict[str, int] = {}  # sender → seq of its last envelope known stored
        self._chained: dict[str, _Own] = {}  # Nats-Msg-Id → the envelope published with it
        self._lanes: dict[str, deque[_Own]] = {}
        self._lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._test_lock = asyncio.Lock()
        self._last_test_seq = 0  # the stream sequence of the last test logged
        self._last_test_signed = 0  # that test's signed seq: a later test must sign above it
        self._incoming: asyncio.Queue[tuple[int, StreamEntry]] = asyncio.Queue()
        self._generation = 0
        self._subscription: Subscription | None = None
        self._applier: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._progress = time.monotonic()
        self._applied = asyncio.Condition()
        self._closing = False
        self._flights = itertools.count()
        self._in_flight: dict[int, float] = {}  # publishes waiting for an ack: when they began
        self.ready = False
        self.not_ready_reason = "starting"
        self._not_ready_since = time.monotonic()
        self._paused_s = 0.0  # > 0: resynchronising after a pause of this many seconds
        self._last_reconnect = 0.0
        self._checks: set[asyncio.Task[None]] = set()
        self._acked_seq = 0  # the highest sequence the stream acknowledged to this replica
        self._behind_since: float | None = None  # since when that sequence is not applied
        self._unapplied: deque[tuple[int, float]] = deque()  # acknowledged (seq, when), in order
        self._reconnects_seen = 0.0  # the client's reconnected_at the watchdog acted on
        self._last_refollow = 0.0
        self._puller: asyncio.Task[None] | None = None
        self._resubscriber: asyncio.Task[None] | None = None
        self._pulled = (0, 0)  # (generation, last sequence read by _pull and queued)
        self._subscribing = asyncio.Lock()
        self._mirror_failure = ""  # why the mirror refuses writes, until it is recovered

    @property
    def size(self) -> int:
        """Entries applied: the mirror's size."""
        return self._log.store.size

    @property
    def unlogged_tests(self) -> int:
        """This replica's link tests published or waiting, not yet seen in the stream."""
        return sum(own.test for own in self._own.values())

    def health(self) -> dict[str, object]:
        """``/healthz`` fields: this replica's name and the NATS server it is connected to."""
        return {"replica": self.name, "nats_server": self.client.server}

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, check the mirror against the stream, follow it and catch up."""
        await self.client.connect()
        await self.client.ensure_stream()
        last = await self.client.last_seq()
        size = self.size
        if size > last:
            raise StoreError(
                f"the local mirror holds {size} entries but stream {self.settings.stream} only "
                f"{last}: this is not that stream's mirror; refusing to start"
            )
        if size:
            held = await asyncio.to_thread(self._log.store.read, size - 1)
            if (await self.client.read(size)).data != held:
                raise StoreError(
                    f"entry {size - 1} of the local mirror differs from stream "
                    f"{self.settings.stream}: this is not that stream's mirror; refusing to start"
                )
        self._last_test_signed = self._sink.last_test_seq  # tests already in the mirror
        self._chain = self._sink.sender_seqs()  # senders' envelopes already in the mirror
        self._applier = asyncio.create_task(self._apply(), name="replica-applier")
        await self._subscribe()
        self._watchdog = asyncio.create_task(self._watch(), name="replica-watchdog")
        await self.wait_applied(last, CATCH_UP_TIMEOUT_S)
        log.info("replica_caught_up", replica=self.name, size=self.size,
                 stream=self.settings.stream)
        self._judge(time.monotonic())

    async def wait_applied(self, size: int, timeout_s: float) -> bool:
        """Wait (bounded) until the mirror holds ``size`` entries; whether it does."""
        return await self.wait_applied_until(lambda: self.size >= size, timeout_s)

    async def wait_applied_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (bounded) until ``condition`` holds, judged again after each batch of entries
        applied; whether it does. A cancel always ends it (``asyncio.timeout``: Python 3.11's
        ``asyncio.wait_for`` returns the result instead when both come in one turn)."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._applied:
                    await self._applied.wait_for(condition)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (bounded), stop following, disconnect."""
        self._closing = True
        pending = [*self._lane_tasks.values(), *self._tasks]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                async with self._applied:
                    await self._applied.wait_for(lambda: not self._own)
        for task in [*pending, *self._checks, self._applier, self._watchdog]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._unsubscribe()
        await self.client.close()
        if self._own:
            log.warning("replica_closed_with_pending", replica=self.name, pending=len(self._own))

    # ------------------------------------------------------------------ publishing

    @contextlib.asynccontextmanager
    async def link_tests_held(self) -> AsyncIterator[None]:
        """Hold this replica's link tests back: none is published until the block ends
        (they wait as they do behind a slow publish of the test before them)."""
        async with self._test_lock:
            yield

    def append(self, append: Append) -> None:
        """Queue ``append`` for the stream; the follower completes it once it is logged."""
        test = append.envelope is not None and isinstance(append.envelope.body, LinkTestBody)
        own = _Own(append, self._msg_id(append), test)
        self._own[own.msg_id] = own
        if test:
            self._spawn(self._publish_test(own))
            return
        lane = append.envelope.body.sender if append.envelope is not None else ""
        if not lane:
            self._spawn(self._publish_event(own))
            return
        queue = self._lanes.setdefault(lane, deque())
        own.after = queue[-1] if queue else self._chain.get(lane)
        queue.append(own)
        task = self._lane_tasks.get(lane)
        if task is None or task.done():
            self._lane_tasks[lane] = asyncio.create_task(self._run_lane(lane))

    def _msg_id(self, append: Append) -> str:
        if append.envelope is not None:
            body = append.envelope.body
            if isinstance(body, LinkTestBody):
                return self._slot_key(body)  # the key of _own; its Nats-Msg-Id is chosen later
            return body.id.hex()
        event = append.event
        if event is not None and event.kind is EntryKind.OVERDUE:
            fields = event.fields
            ref = fields.get("ref", b"")
            ref_hex = ref.hex() if isinstance(ref, bytes) else str(ref)
            return f"overdue-{ref_hex}-{fields.get('recipient')}-{fields.get('stage')}"
        return f"{self.name}-{self._boot}-{next(self._numbers)}"

    def _slot_key(self, body: LinkTestBody) -> str:
        party = body.to[0]
        return f"test-{party}-{self._sink.test_slot_start(party, body.ts)}"

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_lane(self, lane: str) -> None:
        """One sender's entries, one at a time, in the order the core asked for them."""
        queue = self._lanes[lane]
        while queue:
            own = queue[0]
            if self._own.get(own.msg_id) is own:  # else answered meanwhile: logged elsewhere
                await self._publish_chained(lane, own)
            queue.popleft()

    async def _publish_chained(self, sender: str, own: _Own) -> None:
        """An endpoint's envelope, published as the successor of the sender's last envelope
        this replica knows stored (see the module docstring): never logged after a later
        one of the same sender, nor beside another that names the same predecessor."""
        assert own.append.envelope is not None
        seq = own.append.envelope.body.seq
        after, own.after = own.after, None
        if isinstance(after, _Own):
            if not after.stored:  # admitted after one not logged: judged on a log that is not
                self._lost(own, f"an earlier envelope of {sender} was not logged")
                return
            assert after.append.envelope is not None
            after = after.append.envelope.body.seq
        own.published_as = f"env-{sender}-first" if after is None else \
            f"env-{sender}-after-{after}"
        self._chained[own.published_as] = own
        published = await self._publish_retrying(own, own.published_as)
        if published is None:
            return
        if not published.duplicate:
            own.stored = True
            self._chain[sender] = max(self._chain.get(sender, seq), seq)
        else:  # stored before: this envelope (sent again) or another that named the same
            # predecessor first; applying it, the follower tells which (``stored``)
            applied = await self.wait_applied(published.seq, CHAIN_WAIT_S)
            if applied and own.stored is None and self._own.get(own.msg_id) is own:
                # Applied before this envelope took the name, so not matched to it: the
                # follower found no envelope of ours there, so it holds another one.
                self._lost(own, f"another replica logged an envelope of {sender} first")

    def _lost(self, own: _Own, reason: str) -> None:
        """``own``, an endpoint's envelope, will not be logged: its senders hear ``busy``
        and may send it again, to be judged against the log as it is now."""
        own.stored = False
        if self._own.get(own.msg_id) is own:
            del self._own[own.msg_id]
        if own.published_as:
            self._chained.pop(own.published_as, None)
        log.info("replica_envelope_not_logged", replica=self.name, msg_id=own.msg_id,
                 reason=reason)
        self._sink.failed(own.append, reason, why=reason)

    def _take(self, msg_id: str) -> _Own | None:
        """The append waiting here that ``msg_id`` (a key or a chained Nats-Msg-Id) names."""
        own = self._own.pop(msg_id, None)
        if own is None:
            chained = self._chained.pop(msg_id, None)
            if chained is not None and self._own.get(chained.msg_id) is chained:
                own = self._own.pop(chained.msg_id)
        if own is not None and own.published_as:
            self._chained.pop(own.published_as, None)
        return own

    @contextlib.contextmanager
    def _flight(self) -> Iterator[None]:
        """A publish waiting for its acknowledgement (readiness watches the oldest)."""
        key = next(self._flights)
        self._in_flight[key] = time.monotonic()
        try:
            yield
        finally:
            del self._in_flight[key]

    async def _publish_event(self, own: _Own) -> None:
        await self._publish_retrying(own, own.msg_id)

    async def _publish_retrying(self, own: _Own, msg_id: str) -> Published | None:
        """Publish ``own`` as ``msg_id`` until the stream acknowledges it (None: abandoned
        while closing)."""
        with self._flight():
            for attempt in itertools.count():
                try:
                    published = await self.client.publish(own.append.entry, msg_id=msg_id)
                except StoreError as exc:
                    if self._closing and attempt > 2:
                        log.exception("replica_publish_abandoned", msg_id=msg_id,
                                      error=str(exc))
                        return None
                    if attempt == 0:
                        log.warning("replica_publish_retried", msg_id=msg_id, error=str(exc))
                    await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                    continue
                if published is not None:
                    self._acknowledged(published.seq)
                return published
        return None  # not reached: the loop ends only by returning

    def _acknowledged(self, seq: int) -> None:
        """The stream stored ``seq``: the follower must deliver it soon (see ``_judge``)."""
        self._acked_seq = max(self._acked_seq, seq)
        if self.size < seq:
            now = time.monotonic()
            if self._behind_since is None:
                self._behind_since = now
            if not self._unapplied or seq > self._unapplied[-1][0]:
                self._unapplied.append((seq, now))

    async def _publish_test(self, own: _Own) -> None:
        """A link test: logged only after the last test this replica knows of, else withdrawn."""
        async with self._test_lock:
            assert own.append.envelope is not None
            if self._own.get(own.msg_id) is not own:
                return  # its slot was logged (another replica's test) while it waited
            if own.append.envelope.body.seq <= self._last_test_signed:
                # Signed before a test another replica logged meanwhile (this one waited
                # for the lock): logging it now would break the relay's rising seq.
                self._withdraw_test(own, "a test signed later was logged first")
                return
            msg_id = f"test-after-{self._last_test_seq}"
            try:
                with self._flight():
                    published = await self.client.publish(
                        own.append.entry, msg_id=msg_id, test_after=self._last_test_seq
                    )
                if published is not None and published.duplicate:
                    # Another test was logged after the same one first, unless this is
                    # that test (an acknowledgement lost and retried): the bytes tell.
                    stored = await self.client.read(published.seq)
                    if stored.data != own.append.entry:
                        published = None
            except StoreError as exc:
                # Maybe stored, maybe not: withdrawn either way (see the module docstring).
                log.warning("link_test_not_confirmed", slot=own.msg_id, msg_id=msg_id,
                            error=str(exc))
                self._withdraw_test(own, "not acknowledged in time")
                return
            if published is None:
                self._withdraw_test(own, "another replica logged a test first")
                return
            self._last_test_seq = max(self._last_test_seq, published.seq)
            self._last_test_signed = max(self._last_test_signed, own.append.envelope.body.seq)
            self._acknowledged(published.seq)

    def _withdraw_test(self, own: _Own, reason: str) -> None:
        if self._own.get(own.msg_id) is own:
            del self._own[own.msg_id]
        self._sink.withdrawn(own.append)
        log.info("link_test_withdrawn", slot=own.msg_id, reason=reason)

    # ------------------------------------------------------------------ readiness

    def _judge(self, now: float) -> None:
        """Ready or not, now; act on a change (see the module docstring)."""
        reason = ""
        oldest = min(self._in_flight.values(), default=now)
        # Publishes waiting when the client reconnected have just been sent again to the
        # new server: a ready replica gives them a moment before judging the stream
        # stalled (a replica not ready stays so until they are acknowledged).
        resending = self.ready and now - self.client.reconnected_at < RESEND_GRACE_S
        if self._behind_since is not None and self.size >= self._acked_seq:
            self._behind_since = None
        behind = 0.0 if self._behind_since is None else now - self._behind_since
        if behind >= BEHIND_S:
            self._catch_up_behind(now)
        # Not ready when one acknowledged entry waits too long, not while entries keep
        # arriving (read by sequence, say) behind a stream that keeps growing.
        while self._unapplied and self._unapplied[0][0] <= self.size:
            self._unapplied.popleft()
        waiting = now - self._unapplied[0][1] if self._unapplied else 0.0
        # Hysteresis: ready again only once every wait is well under the bound, so a
        # replica whose waits hover around it does not close its sessions again and again.
        limit = PUBLISH_STALL_S if self.ready else PUBLISH_STALL_S / 2
        if self._mirror_failure:
            reason = f"its mirror failed a write and is recovering ({self._mirror_failure})"
        elif self._paused_s:
            reason = f"catching up after this process was paused for {self._paused_s:.1f} s"
        elif not self.client.connected:
            reason = "not connected to any NATS server"
        elif now - oldest >= limit and not resending:
            reason = f"the stream has not acknowledged a publish for {now - oldest:.1f} s"
        elif waiting >= limit:
            reason = f"an acknowledged entry has not reached this replica for {waiting:.1f} s"
        if reason and self.ready:
            self.ready = False
            self._not_ready_since = now
            log.warning("replica_not_ready", replica=self.name, reason=reason,
                        server=self.client.server)
            self._sink.log_unready(reason)
        elif not reason and not self.ready:
            self.ready = True
            log.info("replica_ready", replica=self.name, server=self.client.server,
                     after_s=round(now - self._not_ready_since, 2))
        self.not_ready_reason = reason
        if (now - oldest >= RECONNECT_AFTER_S and self.client.connected
                and now - self._last_reconnect >= 2 * RECONNECT_AFTER_S):
            self._last_reconnect = now
            self._check(self.client.reconnect_elsewhere())

    def _catch_up_behind(self, now: float) -> None:
        """Entries acknowledged to this replica do not arrive: read them, and follow again.

        The ordered consumer lives on one node, and creating one needs the cluster's
        metadata leader: either may be the node that hangs. Reading by sequence asks
        the stream's leader only, so the mirror keeps up (a read every ``WATCH_S``)
        while a new consumer is tried every ``RESUBSCRIBE_S``.
        """
        if self._mirror_failure:
            return  # not following on purpose: follows again once the mirror is recovered
        self._start_pulling()
        if now - self._last_refollow >= RESUBSCRIBE_S:
            self._last_refollow = now
            log.warning("replica_follow_restarted", replica=self.name, size=self.size,
                        acknowledged=self._acked_seq)
            self._start_resubscribing()

    def _follow_anew(self, now: float) -> None:
        """The client reconnected to another node: the consumer may live on the one it left
        (hung, as a rule), so follow with a new one at once, and read what was acknowledged."""
        log.info("replica_follow_restarted", replica=self.name, size=self.size,
                 acknowledged=self._acked_seq, reason="reconnected")
        self._last_refollow = now
        self._start_resubscribing()
        if self._acked_seq > self.size:
            self._start_pulling()

    def _without_consumer(self, now: float) -> None:
        """Creating the consumer failed (JetStream answers 503 for a while after a quorum
        returns): read what was acknowledged at once, and try a new consumer every
        ``RETRY_FOLLOW_S`` instead of after ``BEHIND_S`` and ``RESUBSCRIBE_S``."""
        if self._subscription is not None or self._closing or self._mirror_failure:
            return  # (a failed mirror follows again once it is recovered)
        if self._acked_seq > self.size:
            self._start_pulling()
        if now - self._last_refollow >= RETRY_FOLLOW_S:
            self._last_refollow = now
            self._start_resubscribing()

    def _start_resubscribing(self) -> None:
        """Follow with a new consumer, unless an attempt is under way."""
        if self._resubscriber is None or self._resubscriber.done():
            self._resubscriber = asyncio.create_task(self._resubscribe_quietly())
            self._checks.add(self._resubscriber)
            self._resubscriber.add_done_callback(self._checks.discard)

    def _start_pulling(self) -> None:
        """Read what was acknowledged by sequence, unless a read is under way."""
        if self._puller is None or self._puller.done():
            self._puller = asyncio.create_task(self._pull_quietly(self._acked_seq))
            self._checks.add(self._puller)
            self._puller.add_done_callback(self._checks.discard)

    async def _pull_quietly(self, last: int) -> None:
        try:
            await self._pull(last)
        except StoreError as exc:
            log.info("replica_stream_unreachable", replica=self.name, error=str(exc))

    async def _resubscribe_quietly(self) -> None:
        try:
            await self._subscribe()
        except StoreError as exc:
            log.info("replica_stream_unreachable", replica=self.name, error=str(exc))

    async def _pull(self, last: int) -> None:
        """Read entries size+1..last by sequence and hand them to the applier, in order
        (none while the mirror fails a write: they would wait in memory, unbounded)."""
        if self._mirror_failure:
            return
        generation = self._generation
        queued = self._pulled[1] if self._pulled[0] == generation else 0  # read, not applied
        first = max(self.size, queued) + 1
        for start in range(first, last + 1, _PULL_CHUNK):
            stop = min(last, start + _PULL_CHUNK - 1)
            entries = await asyncio.gather(
                *(self.client.read(seq) for seq in range(start, stop + 1)))
            if generation != self._generation:
                return  # following stopped (a failed mirror) or started anew meanwhile
            for entry in entries:
                self._incoming.put_nowait((generation, entry))
            self._pulled = (generation, stop)
        if last >= first:
            log.info("replica_entries_pulled", replica=self.name, first=first, last=last)

    def _check(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _resync(self) -> None:
        """After a pause: ready again once the mirror holds what the stream held after it."""
        while self._paused_s and not self._closing:
            try:
                async with asyncio.timeout(RESYNC_TIMEOUT_S):
                    last = await self.client.last_seq()
                if await self.wait_applied(last, RESYNC_TIMEOUT_S):
                    log.info("replica_resynchronised", replica=self.name, size=self.size)
                    self._paused_s = 0.0
                    return
            except (StoreError, TimeoutError) as exc:
                log.info("replica_resync_retried", replica=self.name, error=repr(exc))
                await asyncio.sleep(WATCH_S)

    # ------------------------------------------------------------------ following

    async def _subscribe(self) -> None:
        async with self._subscribing:  # one subscription at a time, never two left open
            await self._unsubscribe()
            self._generation += 1
            generation = self._generation
            if self._mirror_failure:
                return  # follows again from the mirror's size once the mirror is recovered

            async def deliver(entry: StreamEntry) -> None:
                self._incoming.put_nowait((generation, entry))

            self._subscription = await self.client.follow(self.size + 1, deliver)
            self._progress = time.monotonic()

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _watch(self) -> None:
        """Judge readiness every WATCH_S; notice a pause; check that following progresses."""
        last = time.monotonic()
        following: asyncio.Task[None] | None = None
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            late = now - last - WATCH_S
            last = now
            if late >= PAUSED_S:
                log.warning("replica_paused", replica=self.name, paused_s=round(late, 2))
                if not self._paused_s:
                    self._paused_s = late
                    self._check(self._resync())
                else:
                    self._paused_s += late
            self._judge(now)
            if self.client.reconnected_at != self._reconnects_seen:
                self._reconnects_seen = self.client.reconnected_at
                self._follow_anew(now)
            else:
                self._without_consumer(now)
            if following is None or following.done():
                following = asyncio.create_task(self._check_following())
                self._checks.add(following)
                following.add_done_callback(self._checks.discard)

    async def _check_following(self) -> None:
        """Follow again from the mirror's size when the stream is ahead and nothing arrives."""
        if time.monotonic() - self._progress < STALL_S or self._mirror_failure:
            return  # (a failed mirror follows again once it is recovered)
        try:
            async with asyncio.timeout(STALL_S):
                last = await self.client.last_seq()
            if last > self.size and time.monotonic() - self._progress >= STALL_S:
                log.warning("replica_follow_restarted", replica=self.name,
                            size=self.size, stream_last=last)
                await self._pull(last)
                await self._subscribe()
            else:
                self._progress = time.monotonic()
        except (StoreError, TimeoutError) as exc:
            log.info("replica_stream_unreachable", replica=self.name, error=repr(exc))

    async def _apply(self) -> None:
        """Take what arrived, in order: mirror first, then the core."""
        store = self._log.store
        while True:
            generation, first = await self._incoming.get()
            arrived = [(generation, first)]
            while not self._incoming.empty() and len(arrived) < 1024:
                arrived.append(self._incoming.get_nowait())
            batch: list[StreamEntry] = []
            expected = self.size + 1
            for generation, entry in arrived:
                if generation != self._generation or entry.seq < expected:
                    continue  # from an abandoned subscription, or already applied
                if entry.seq > expected:
                    log.warning("replica_gap_seen", replica=self.name, expected=expected,
                                got=entry.seq)
                    await self._subscribe()
                    break
                batch.append(entry)
                expected += 1
            if not batch:
                continue
            await self._mirror(store, batch)
            async with self._applied:
                self._applied.notify_all()

    async def _mirror(self, store: LogStore, batch: list[StreamEntry]) -> None:
        """Append ``batch`` to the mirror, then apply it; a write the mirror failed is
        recovered in place and the entries it did not keep are written again.

        Meanwhile this replica is not ready (see ``_judge``): it closes its sessions and
        answers ``busy``, and it stops following the stream, so that what other replicas
        log does not pile up in memory while the disk is down; once the batch is written
        it follows again from the mirror's size.
        """
        wait = MIRROR_RETRY_S[0]
        following_stopped = False
        while batch:
            first = self.size
            try:
                await asyncio.to_thread(store.append_batch, [entry.data for entry in batch])
                failure = ""
            except StoreError as exc:
                failure = str(exc)
            written = batch
            if failure:
                if not self._mirror_failure:
                    log.error("replica_mirror_write_failed", replica=self.name, size=first,
                              entries=len(batch), error=failure)
                    self._mirror_failure = failure
                    self._judge(time.monotonic())
                    # Stop following: what the stream logs meanwhile would wait here in
                    # memory for as long as the disk stays down. Read again once recovered.
                    await self._subscribe()
                    following_stopped = True
                await asyncio.sleep(wait)
                wait = min(2 * wait, MIRROR_RETRY_S[1])
                if not await self._recover_mirror(store):
                    continue
                # The failed write either left its entries durable and counted, or none.
                written = batch[: self.size - first]
            self._progress = time.monotonic()
            for entry in written:
                self._applied_entry(entry)
            batch = batch[len(written):]
        if following_stopped:
            await self._resubscribe_quietly()  # from the mirror's size: what was not read

    async def _recover_mirror(self, store: LogStore) -> bool:
        """Make the mirror take writes again after a failed one; whether it does."""
        try:
            if isinstance(store, Recoverable):
                await asyncio.to_thread(store.recover)
        except StoreError as exc:
            log.warning("replica_mirror_recovery_retried", replica=self.name, error=str(exc))
            return False
        if self._mirror_failure:
            log.warning("replica_mirror_recovered", replica=self.name, size=self.size,
                        failure=self._mirror_failure)
            self._mirror_failure = ""
        return True

    def _applied_entry(self, entry: StreamEntry) -> None:
        index = entry.seq - 1
        own: _Own | None
        if entry.subject == self.settings.test_subject:
            self._last_test_seq = max(self._last_test_seq, entry.seq)
            own = next((o for o in self._own.values() if o.test and o.append.entry == entry.data),
                       None)
            if own is not None:
                del self._own[own.msg_id]
        else:
            own = self._take(entry.msg_id)
        if own is not None and own.append.entry == entry.data:
            append = own.append
            if append.envelope is not None:
                body = append.envelope.body
                if own.test:
                    self._last_test_signed = max(self._last_test_signed, body.seq)
                else:
                    own.stored = True
                    self._chain[body.sender] = max(self._chain.get(body.sender, body.seq),
                                                   body.seq)
            self._sink.logged(append, index)
            return
        content = self._sink.followed(index, entry.data)
        if isinstance(content, Envelope) and isinstance(content.body, LinkTestBody):
            self._last_test_signed = max(self._last_test_signed, content.body.seq)
            # This slot is logged: this replica's own test of it is not to be.
            own = self._own.pop(self._slot_key(content.body), None)
        elif isinstance(content, Envelope):
            body = content.body
            self._chain[body.sender] = max(self._chain.get(body.sender, body.seq), body.seq)
            waiting = own.append.envelope if own is not None else None
            if own is not None and waiting is not None and waiting.hash != content.hash:
                # Published as the successor of the same envelope as this one: it lost.
                self._lost(own, f"another replica logged an envelope of {body.sender} first")
                own = None
            same = self._take(body.id.hex())  # this envelope, sent here too and waiting
            if same is not None and same.append.envelope is not None \
                    and same.append.envelope.hash != content.hash:
                # Its id, other bytes: it can never be logged, nor an envelope after it.
                self._lost(same, f"another envelope of {body.sender} with its id was logged")
            elif same is not None:
                same.stored = True
                self._sink.superseded(same.append)
            if own is not None and waiting is not None:
                own.stored = True  # this envelope, stored by another replica
        if own is not None:
            self._sink.superseded(own.append)
