"""The relay's edge: aiohttp WebSocket and HTTP around :class:`RelayCore`.

This module moves bytes between sockets, the audit log and the core, and owns
the timers. The appends the core asks for go to the relay's log backend
(``hotline.relay.logbackend``: the file store itself, or a stream shared with
other replicas), which reports each one back through :meth:`Relay.logged` (or,
for entries other replicas logged, :meth:`Relay.followed`). Invariants it adds
to the core's:

- appends are started in the order the core asks for them and their results
  are handed back to the core in that same order (one completion pipeline, in
  the backend), so every accepted receipt and every forward follows a durable
  append;
- each connection has one writer task, so what the core sends a party arrives
  in the order the core sent it;
- a new authenticated connection of a party replaces the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import structlog
from aiohttp import WSMsgType, web

from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.cosignature import add_cosignature, verify_cosignature
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_event_entry
from hotline.auditlog.log import AuditLog
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.auditlog.note import NoteSignature, parse_note
from hotline.auditlog.store import LogStore
from hotline.auditlog.streamconfig import StreamSettings
from hotline.errors import (
    HotlineError,
    NoteError,
    RejectCode,
    Rejected,
    SnapshotMismatch,
    StoreError,
)
from hotline.figures import LinkFigures
from hotline.httplog import server_logger
from hotline.lograte import LogThrottle
from hotline.logs import log_infos
from hotline.network import Network
from hotline.protocol.envelope import Envelope
from hotline.protocol.keys import PublicKey, SigningKey
from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    NONCE_SIZE,
    SLOW_READER_CLOSE,
    Auth,
    Challenge,
    CheckpointNote,
    Cosign,
    Welcome,
    decode_control,
    encode_control,
    is_envelope,
    verify_auth,
)
from hotline.relay.core import Append, Broadcast, Close, LogLine, RelayAction, RelayCore, Send
from hotline.relay.guard import AuthGuard, GuardLimits, Refusal, Ticket
from hotline.relay.http import add_http_routes
from hotline.relay.idindex import ID_INDEX_FILE, IdIndex
from hotline.relay.logbackend import EmbeddedLog, LogBackend
from hotline.relay.metrics import RelayMetrics
from hotline.relay.snapshot import SNAPSHOT_FILE, Snapshot, load_snapshot, save_snapshot
from hotline.tls import (
    TlsSettings,
    listening_transport,
    note_transport,
    server_context,
)

if TYPE_CHECKING:
    from hotline.relay.replica import Replica

__all__ = ["RELAY", "Relay", "RelayConfig", "RunningRelay", "open_log", "open_relay", "start_relay"]

log = structlog.get_logger()

Clock = Callable[[], int]
_T = TypeVar("_T")

_SLOW_CLOSE_S: Final = 5.0
"""How long a slow reader's close frame may take to get through before the socket is cut."""
NOT_READY_CLOSE: Final = 1013
"""WebSocket close code (try again later) for sessions of a replica that cannot log now."""
BUSY_RETRY_MS: Final = 500
"""The retry-after a not-ready replica gives with ``busy``."""
STORE_FAILED: Final = "its log store failed a write"
"""Why an append the log store failed is answered ``busy``."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class RelayConfig:
    network: Network
    network_toml: bytes
    data_dir: Path
    key: SigningKey
    # other relay keys whose period has not ended (a rotation's overlap): checkpoints
    # carry a signature by each of them as well, so witnesses holding either key follow
    also_sign: tuple[SigningKey, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8700
    checkpoint_every: int = 256
    checkpoint_interval_ms: int = 1_000
    tick_ms: int = 100
    auth_timeout_s: float = 10.0
    # a session whose queued frames wait this long without one send completing, or that
    # holds more than send_queue_bytes queued, is closed as a slow reader (4408)
    send_stall_s: float = 10.0
    send_queue_bytes: int = 64 * 1024 * 1024
    auth_guard: GuardLimits = field(default_factory=GuardLimits)
    heartbeat_s: float = 5.0  # an endpoint silent this long: ping; no pong in half: dropped
    clock: Clock = field(default=wall_clock_ms)
    tls: TlsSettings = field(default_factory=TlsSettings)  # plaintext only on loopback
    # [store] kind = "nats": the log is a JetStream stream shared with other replicas
    stream: StreamSettings | None = None
    replica_name: str = ""
    # relay-state snapshots (restart replays only what was logged after the last one): one
    # after this many entries, or this long after the last if anything was logged since
    snapshot_every: int = 10_000
    snapshot_interval_ms: int = 600_000


@dataclass(eq=False)
class _Connection:
    """One authenticated session and what waits to be written to it.

    ``queued_bytes`` counts the frames in ``queue``; ``waiting_since`` is when the
    writer last made progress while frames waited (monotonic seconds), or None when
    the queue is empty; ``slow`` is set once the session is being closed as slow.
    """

    party: str
    ws: web.WebSocketResponse
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    transport: asyncio.Transport | None = None
    queued_bytes: int = 0
    waiting_since: float | None = None
    slow: bool = False
    busy: bool = False  # answered busy: every later envelope too, and closed once drained

    def offer(self, data: bytes) -> None:
        if self.slow:
            return  # closing: what it is owed is redelivered when it connects again
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
        self.queued_bytes += len(data)
        self.queue.put_nowait(data)

    def stalled_for(self, now: float) -> float:
        return 0.0 if self.waiting_since is None else now - self.waiting_since


class Relay:
    """One relay: its log, its core, its connections and its timers."""

    def __init__(self, config: RelayConfig, audit_log: AuditLog, *,
                 log_throttle: LogThrottle | None = None) -> None:
        """A relay on its open log (see :func:`open_log`); :meth:`start` starts it, and from
        then on the relay owns the log: :meth:`stop`, or a failed start, closes it."""
        self.config: Final = config
        self.network: Final = config.network
        self.core = RelayCore(config.network, config.key, os.urandom)
        self.log: Final = audit_log
        # the core's per-id maps, on disk beside the log
        self.ids: Final = IdIndex(
            config.data_dir / ID_INDEX_FILE, self.network, audit_log.store.read, config.clock
        )
        self.metrics = RelayMetrics(self)
        self.figures = self.metrics.figures
        self._accounted = 0  # entries folded into the core and the figures, in log order
        self._snapshot_size = 0  # entries the last saved (or loaded) snapshot covers
        self._snapshot_ms = 0
        self._file_work: set[asyncio.Future[Any]] = set()
        # entries under a loaded snapshot, re-hashed after start: how many, and the root
        # (signed by this relay) their bytes must give
        self._unscanned = 0
        self._unscanned_root = b""
        # set when the relay stopped itself (its store was found altered); halt_reason says why
        self.halted = asyncio.Event()
        self.halt_reason = ""
        self._connections: dict[str, _Connection] = {}
        self._log_lines: list[LogLine] = []  # notes the core made, written after the sends
        self._notes_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpoint_lock = asyncio.Lock()
        self._last_checkpoint_ms = 0
        self.checkpoint_note: bytes = b""
        self._stopping = False
        self.guard = AuthGuard(config.auth_guard)
        self.log_throttle = log_throttle or LogThrottle()
        """Events a peer can repeat at will (``hotline.lograte``): the relay's, and TLS's."""
        self._closers: set[asyncio.Task[None]] = set()
        self._recorded_keys: list[object] | None = None  # the last keys_changed entry's keys
        self._recorded_network: bytes | None = None  # network_sha256 of the last start or change
        # where appends become durable: the file store itself, or a stream shared with
        # other replicas (then ``replica`` is that same backend)
        self.replica: Replica | None = None
        self.backend: LogBackend
        if config.stream is not None:
            # Imported here: nats-py is only needed when the log is on a stream.
            from hotline.relay.replica import Replica  # noqa: PLC0415

            self.backend = self.replica = Replica(
                audit_log, self, config.stream, config.replica_name
            )
        else:
            self.backend = EmbeddedLog(audit_log, self)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Rebuild the state from the log, open the backend, log the start, run the timers.

        If it fails, the backend, the id index and the log are closed again.
        """
        config = self.config
        try:
            await asyncio.to_thread(self._restore, self.ids)
            self.core.replica = self.backend.name
            await self.backend.open()
        except BaseException:
            await self.backend.close(timeout_s=0)
            self.ids.close()
            await self.log.close()
            raise
        network_sha256 = _sha256(config.network_toml)
        started = LogEvent(EntryKind.RELAY_STARTED,
                           {"version": "1", "network_sha256": network_sha256,
                            **self._replica_field()})
        now = config.clock()
        self.perform([Append(encode_event_entry(now, started), -1, now, event=started)])
        previous = self._recorded_network
        if previous is not None and previous != network_sha256:
            changed_config = LogEvent(
                EntryKind.CONFIG_CHANGED,
                {"network_sha256": network_sha256, "previous_network_sha256": previous},
            )
            self.perform([
                Append(encode_event_entry(now, changed_config), -1, now, event=changed_config)
            ])
            log.info("config_change_recorded", network_sha256=network_sha256.hex(),
                     previous_network_sha256=previous.hex())
        keys = key_rows(self.network)
        if keys != self._recorded_keys:
            changed = LogEvent(
                EntryKind.KEYS_CHANGED,
                {"network_sha256": _sha256(config.network_toml), "keys": keys},
            )
            self.perform([Append(encode_event_entry(now, changed), -1, now, event=changed)])
            log.info("keys_recorded", keys=len(keys))
        self._tasks.append(asyncio.create_task(self._ticker(), name="relay-ticker"))
        if self._unscanned:
            self._tasks.append(asyncio.create_task(self._scan(), name="relay-store-scan"))
        async with self._checkpoint_lock:  # the ticker may already want one too
            self.checkpoint_note = await self._in_thread(self.log.checkpoint)
        self._snapshot_ms = config.clock()
        log.info("relay_started", size=self.log.size, data=str(config.data_dir))

    def _replica_field(self) -> dict[str, object]:
        """``{"replica": name}`` for a relay replica's own events, else nothing."""
        return {"replica": self.backend.name} if self.backend.name else {}

    def _restore(self, ids: IdIndex) -> None:
        """Rebuild the core and the figures: from a snapshot and the log after it, or the log.

        A snapshot is used only if it matches the log (see hotline.relay.snapshot);
        otherwise it is discarded and the whole log replayed. The id index is cut or
        extended to the entry the replay starts at. The entries under the last
        signed checkpoint were verified before they were logged; instead of
        checking their signatures again, their bytes must hash to the leaves of
        the tree whose root was signed, or the relay refuses to start. Entries
        after it are verified in full.
        """
        store = self.log.store
        size = store.size
        self.core = RelayCore(self.network, self.config.key, os.urandom, ids=ids.maps)
        begin = self._load_snapshot(ids, size)
        if ids.size > begin:
            ids.cut(begin)
        elif ids.size < begin:
            added = ids.catch_up(_entries(store, ids.size, begin), begin)
            log.info("id_index_caught_up", rows=added, size=begin)
        covered = max(0, self.log.signed_size)
        tree = Frontier() if begin == 0 else None
        for start in range(begin, size, 1024):
            for offset, entry in enumerate(store.read_range(start, min(size, start + 1024))):
                index = start + offset
                trusted = index < covered
                if trusted:
                    leaf = leaf_hash(entry)
                    if tree is not None:
                        tree.append(leaf)
                    elif leaf != store.leaf_hash(index):
                        raise StoreError(
                            f"entry {index} does not hash to its leaf under the signed "
                            "checkpoint: the store was altered; refusing to start"
                        )
                relay_ts, content = self.core.restore(
                    index, entry, unsafe_signed_root_covers=trusted
                )
                self._account(index, relay_ts, content)
            if index + 1 - ids.size >= 50_000:
                ids.flush(index + 1)
        ids.flush(size)
        root = (
            None if not covered
            else tree.root() if tree is not None else store.subtree_hash(0, covered)
        )
        if covered and root != self.log.signed_root:
            raise StoreError(
                f"the {covered} entries under the signed checkpoint do not hash to its root: "
                "the store was altered; refusing to start"
            )
        if begin and covered > begin:  # the re-hash goes on to the signed checkpoint
            self._unscanned, self._unscanned_root = covered, self.log.signed_root
        log.info("relay_state_restored", snapshot_size=begin, replayed=size - begin)

    def _load_snapshot(self, ids: IdIndex, size: int) -> int:
        """Load a snapshot that matches the log; the number of entries it covers (0: none)."""
        path = self.config.data_dir / SNAPSHOT_FILE
        try:
            snapshot = load_snapshot(
                path, self.config.key.public, _sha256(self.config.network_toml)
            )
            if snapshot is None:
                return 0
            if not 0 < snapshot.size <= size:
                raise SnapshotMismatch(
                    f"it covers {snapshot.size} entries and the log holds {size}"
                )
            if snapshot.size <= self.log.store.size and (
                self.log.store.subtree_hash(0, snapshot.size) != snapshot.root
            ):
                raise SnapshotMismatch(
                    f"the log's first {snapshot.size} entries do not have its tree root"
                )
            try:
                figures = LinkFigures.from_state(self.network, snapshot.figures)
                self.core.load_state(snapshot.core)
                keys = snapshot.relay["recorded_keys"]
                network = snapshot.relay["recorded_network"]
            except (HotlineError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise SnapshotMismatch(f"its state does not load: {exc}") from exc
        except SnapshotMismatch as exc:
            log.warning("snapshot_discarded", path=str(path), reason=str(exc))
            self.core = RelayCore(self.network, self.config.key, os.urandom, ids=ids.maps)
            return 0
        self.figures = figures
        self._recorded_keys = keys if isinstance(keys, list) else None
        self._recorded_network = network if isinstance(network, bytes) else None
        self._accounted = self._snapshot_size = self._unscanned = snapshot.size
        self._unscanned_root = snapshot.root
        log.info("snapshot_loaded", size=snapshot.size)
        return snapshot.size

    async def _scan(self) -> None:
        """Re-hash the entries under the loaded snapshot, after start.

        A restart from a snapshot does not read those entries, so this is where an
        entry rewritten on disk (checksum and all) is found: each entry's bytes must
        hash to its stored leaf, and the tree of all of them must have the root this
        relay signed (its checkpoint's, or the snapshot's). Otherwise the relay logs
        ``store_altered`` and stops itself, as a full restart would have refused to
        start. The scan pauses three times as long as it works, so it takes at most
        about a quarter of a core (a few minutes for 3,000,000 entries).
        """
        store, end, step = self.log.store, self._unscanned, 4096
        tree = Frontier()
        try:
            for start in range(0, end, step):
                began = time.monotonic()
                bad = await asyncio.to_thread(
                    _altered_leaf, store, tree, start, min(end, start + step)
                )
                # at most a quarter of a core: the scan must not crowd out live traffic
                await asyncio.sleep(3 * (time.monotonic() - began))
                if bad is not None:
                    self.halt_reason = (
                        f"entry {bad} does not hash to its leaf in the tree: the store was "
                        "altered; the relay stops"
                    )
                    break
            else:
                if tree.root() == self._unscanned_root:
                    log.info("store_scanned", entries=end)
                    return
                self.halt_reason = (
                    f"the {end} entries under the snapshot do not hash to the root this relay "
                    "signed: the store was altered; the relay stops"
                )
            log.error("store_altered", reason=self.halt_reason)
        except HotlineError as exc:
            self.halt_reason = f"the store could not be re-read: {exc.describe()}"
            log.exception("store_scan_failed", reason=self.halt_reason)
        self.halted.set()
        task = asyncio.current_task()
        if task in self._tasks:
            self._tasks.remove(task)  # stop() cancels the others; this one does the stopping
        await self.stop()

    def _snapshot(self) -> Snapshot | None:
        """The state after the entries folded so far, to save (taken between two events)."""
        size = self._accounted
        if size == 0:
            return None
        self.ids.flush(size)
        return Snapshot(
            size=size, root=self.log.store.subtree_hash(0, size),
            network_sha256=_sha256(self.config.network_toml), core=self.core.state(),
            figures=self.figures.state(),
            relay={"recorded_keys": self._recorded_keys,
                   "recorded_network": self._recorded_network},
        )

    async def _save_snapshot(self, now: int, *, force: bool = False) -> None:
        grown = self._accounted - self._snapshot_size
        due = force or grown >= self.config.snapshot_every or (
            now - self._snapshot_ms >= self.config.snapshot_interval_ms
        )
        if grown <= 0 or not due:
            return
        snapshot = self._snapshot()
        if snapshot is None:
            return
        self._snapshot_size, self._snapshot_ms = snapshot.size, now
        path = self.config.data_dir / SNAPSHOT_FILE
        written = await self._in_thread(
            functools.partial(save_snapshot, path, snapshot, self.config.key)
        )
        log.info("snapshot_saved", size=snapshot.size, bytes=written)

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        """Run file work in a thread that stop() waits for even if its caller is cancelled,
        so that two writers of the same file (checkpoint, snapshot) never overlap."""
        future = asyncio.ensure_future(asyncio.to_thread(work))
        self._file_work.add(future)
        future.add_done_callback(self._file_work.discard)
        return await asyncio.shield(future)

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        # All at once, each bounded: a session that stopped reading (its socket full) cannot
        # take the close frame, and is aborted instead of holding the stop for ever.
        await asyncio.gather(*(
            self._close_with(connection, 1001, "relay stopping")
            for connection in list(self._connections.values())
        ))
        stopped = LogEvent(EntryKind.RELAY_STOPPED, self._replica_field())
        now = self.config.clock()
        owed = self.core.events_owed()  # sessions that ended, first
        if owed and not self.ready:
            log.warning("events_not_logged_at_stop", owed=len(owed), reason=self.not_ready_reason)
            owed = []
        self.perform([*owed, Append(encode_event_entry(now, stopped), -1, now, event=stopped)])
        await self.backend.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for work in list(self._file_work):
            with contextlib.suppress(Exception):
                await work
        async with self._checkpoint_lock:
            await asyncio.to_thread(self.log.checkpoint)
        with contextlib.suppress(HotlineError, OSError):
            await self._save_snapshot(self.config.clock(), force=True)
        self.ids.close()
        await self.log.close()
        self._write_log_lines()
        log.info("relay_stopped", size=self.log.size)

    def _account(self, index: int, relay_ts: int, content: Envelope | LogEvent) -> None:
        self._accounted = max(self._accounted, index + 1)
        if isinstance(content, LogEvent):
            if content.kind is EntryKind.KEYS_CHANGED:
                recorded = content.fields.get("keys")
                self._recorded_keys = recorded if isinstance(recorded, list) else None
            elif content.kind in (EntryKind.RELAY_STARTED, EntryKind.CONFIG_CHANGED):
                digest = content.fields.get("network_sha256")
                self._recorded_network = digest if isinstance(digest, bytes) else None
            self.figures.add_event(index, relay_ts, content)
        else:
            self.figures.add_envelope(index, relay_ts, content)

    # ------------------------------------------------------------------ the log backend's reports

    def logged(self, append: Append, index: int) -> None:
        """An append this relay asked for is durable at ``index``: the core completes it."""
        content = append.envelope if append.envelope is not None else append.event
        if content is not None:
            self._account(index, append.relay_ts, content)
        self.perform(self.core.appended(append.token, index, self.config.clock()))

    def followed(self, index: int, entry: bytes) -> Envelope | LogEvent | None:
        """Another replica logged ``entry`` at ``index`` (already in the file store): apply
        it as if it were ours; its envelope or event, or None if it cannot be used here."""
        try:
            actions, relay_ts, content = self.core.follow(index, entry, self.config.clock())
        except HotlineError as exc:
            # Logged by another replica, so it passed admission there; it stays in the log
            # (the auditor will name it) but this replica cannot act on it.
            log.exception("replica_entry_unusable", index=index, error=exc.describe())
            return None
        self._account(index, relay_ts, content)
        self.perform(actions)
        return content

    def superseded(self, append: Append) -> None:
        """Another replica logged ``append``'s envelope first: answer with the original."""
        self.perform(self.core.superseded(append.token))

    def withdrawn(self, append: Append) -> None:
        """``append`` (a link test) will not be logged; its slot may be signed again."""
        self.core.withdrawn(append.token)

    def failed(self, append: Append, error: str, *, why: str = STORE_FAILED) -> None:
        """``append`` could not be made durable: the core forgets it and answers everyone
        waiting on it ``busy`` (``why``: the reason they are told); each such session is
        closed (1013) once that is written, as when this relay is not ready (see
        :meth:`_envelope`)."""
        actions = self.core.append_failed(append.token, BUSY_RETRY_MS, why, self.config.clock())
        for action in actions:
            if isinstance(action, Send):  # a busy refusal (see RelayCore.append_failed)
                connection = self._connections.get(action.party)
                if connection is not None:
                    connection.busy = True
        self.perform(actions)

    @property
    def last_test_seq(self) -> int:
        """The highest ``seq`` of a link test this relay signed or saw logged."""
        return self.core.last_test_seq

    def sender_seqs(self) -> dict[str, int]:
        """Each sender's ``seq`` of its last envelope in the log (as far as applied)."""
        return self.core.admission.logged_seqs()

    def test_slot_start(self, party: str, ts: int) -> int:
        """When ``party``'s link-test slot holding ``ts`` started (ms), as on every replica."""
        return self.core.test_slot_start(party, ts)

    # ------------------------------------------------------------------ actions

    def perform(self, actions: Iterable[RelayAction]) -> None:
        """Carry out what the core asked for: log notes, sends, closes; appends go to the
        log backend, which reports each back through :meth:`logged`.

        Log notes are written once this turn of the event loop has let the sends go
        (:meth:`_write_log_lines`), so rendering them never delays a message.
        """
        try:
            for action in actions:
                if isinstance(action, LogLine):
                    self._log_lines.append(action)
                elif isinstance(action, Send):
                    connection = self._connections.get(action.party)
                    if connection is not None:
                        self._offer(connection, action.data)
                elif isinstance(action, Broadcast):
                    for connection in list(self._connections.values()):
                        self._offer(connection, action.data)
                elif isinstance(action, Close):
                    connection = self._connections.get(action.party)
                    if connection is not None and not connection.ws.closed:
                        closer = asyncio.get_running_loop().create_task(
                            self._close_with(connection, action.code, action.reason)
                        )
                        self._closers.add(closer)
                        closer.add_done_callback(self._closers.discard)
                else:
                    # the back-end logs a refusal at once: the notes that led to it go first
                    self._write_log_lines()
                    self.backend.append(action)
        finally:
            if self._log_lines and not self._notes_scheduled:
                # scheduled after the sends above woke their writers, so they go out first
                self._notes_scheduled = True
                asyncio.get_running_loop().call_soon(self._write_log_lines)

    def _write_log_lines(self) -> None:
        """Write the log notes gathered since the last call, in the order they were made."""
        self._notes_scheduled = False
        lines, self._log_lines = self._log_lines, []
        log_infos((line.event, line.fields) for line in lines)

    async def _ticker(self) -> None:
        """Every tick: retries, deadlines and link tests, slow readers, checkpoints.

        A tick that fails is logged (``tick_failed``) and the next one runs as usual:
        a fault in one tick must not end resends, deadlines and checkpoints for good.
        """
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            now = self.config.clock()
            self._report_held_lines(now)
            try:
                if self.ready:  # a replica that cannot log signs no tests, judges no deadlines
                    self.perform(self.core.tick(now))
                self._check_stalls()
                await self._maybe_checkpoint(now)
            except Exception as exc:  # noqa: BLE001 - logged (throttled); the next tick runs
                error = exc.describe() if isinstance(exc, HotlineError) else repr(exc)
                self._throttled("tick_failed", now, traceback=True, error=error)

    def _throttled(self, event: str, now: int, *, traceback: bool = False,
                   **fields: object) -> None:
        """Log an event a peer (or a lasting fault) can repeat at will, within the throttle:
        a line held back is counted, and the count is written with the next one
        (``suppressed``) or, once its window ends, as ``log_lines_suppressed``."""
        peer = fields.get("peer")
        extra = self.log_throttle.fields(event, now, peer if isinstance(peer, str) else None)
        if extra is None:
            return
        fields.update(extra)
        if traceback:
            log.exception(event, **fields)
        else:
            log.warning(event, **fields)

    def _report_held_lines(self, now: int) -> None:
        """``log_lines_suppressed`` for each throttled event whose window ended with lines
        held back (the relay's own, and failed TLS handshakes on its port)."""
        window_s = self.log_throttle.window_ms // 1000
        for event, lines in self.log_throttle.due(now):
            log.warning("log_lines_suppressed", of=event, lines=lines, window_s=window_s)

    async def _maybe_checkpoint(self, now: int) -> None:
        grown = self.log.size - max(0, self.log.signed_size)
        due = grown >= self.config.checkpoint_every or (
            grown > 0 and now - self._last_checkpoint_ms >= self.config.checkpoint_interval_ms
        )
        if not due:
            return
        relay_id = self.network.relay.id
        expired = [
            k for k in self.log.signing_keys if k not in self.network.keys_valid_at(relay_id, now)
        ]
        if expired and len(expired) < len(self.log.signing_keys):
            self.log.stop_signing_with(expired)
            log.info("checkpoint_key_retired", kids=[k.kid.hex() for k in expired])
        async with self._checkpoint_lock:
            note = await self._in_thread(self.log.checkpoint)
        self._last_checkpoint_ms = now
        self.ids.flush(self._accounted)
        await self._save_snapshot(now)
        if note != self.checkpoint_note:
            self.checkpoint_note = note
            self.perform([Broadcast(encode_control(CheckpointNote(note)))])

    # ------------------------------------------------------------------ WebSocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "unknown"
        ticket = self.guard.opening()
        if isinstance(ticket, Refusal):
            return self._refuse_session(address, ticket)
        ws = web.WebSocketResponse(
            max_msg_size=4 * self.network.limits.max_frame_bytes,
            heartbeat=self.config.heartbeat_s,
        )
        authenticated: tuple[str, int] | None = None
        try:
            await ws.prepare(request)
            authenticated = await self._authenticate(ws, ticket, address)
        except Rejected:
            pass  # a valid answer over the endpoint's session budget: closed, not a failed guess
        finally:
            ticket.gone()  # closed before it answered (a no-op once the answer was judged)
        if authenticated is None:
            return ws
        party, since = authenticated
        connection = _Connection(party, ws, transport=request.transport)
        previous = self._connections.get(party)
        self._connections[party] = connection
        if previous is not None:
            await previous.ws.close(code=4409, message=b"replaced by a new connection")
        writer = asyncio.create_task(self._write(connection), name=f"relay-writer-{party}")
        log.info("endpoint_connected", party=party, peer=request.remote)
        try:
            await self._serve(connection, since)
        finally:
            if self._connections.get(party) is connection:
                del self._connections[party]
                if not self._stopping:
                    reason = "slow_reader" if connection.slow else f"closed {ws.close_code}"
                    self.perform(self.core.disconnected(party, reason, self.config.clock()))
            connection.queue.put_nowait(None)
            await writer
            log.info("endpoint_disconnected", party=party, code=ws.close_code)
        return ws

    async def _authenticate(
        self, ws: web.WebSocketResponse, ticket: Ticket, address: str
    ) -> tuple[str, int] | None:
        """The party and its ``since`` once its answer verifies (never refused for failures
        counted before); None after closing a wrong or missing answer.

        Raises ``Rejected`` (``rate_limited``, after closing with 4401) for a valid
        answer from an endpoint over its session budget: not a failed guess.
        """
        challenge = encode_control(
            Challenge(os.urandom(NONCE_SIZE), self.network.relay.id, self.config.clock())
        )
        await ws.send_bytes(challenge)
        try:
            # one deadline for the answer: ws.receive(timeout=...) restarts its timer on
            # every ping and pong, so a silent client answering heartbeats never timed out
            async with asyncio.timeout(self.config.auth_timeout_s):
                message = await ws.receive()
        except TimeoutError:
            code = RejectCode.NOT_AUTHENTICATED.value
            self.core.session_refused(code)
            self._throttled("authentication_timed_out", self.config.clock(),
                            after_s=self.config.auth_timeout_s, peer=address)
            ticket.gone()
            await ws.close(code=AUTH_FAILED_CLOSE, message=b"not_authenticated: no answer in time")
            return None
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
            ticket.gone()  # it left without answering: nothing to count against anyone
            return None
        claimed = ""
        try:
            if message.type is not WSMsgType.BINARY:
                raise Rejected(RejectCode.BAD_FRAME, "expected a binary auth message")
            if is_envelope(message.data):
                raise Rejected(RejectCode.NOT_AUTHENTICATED,
                               "an envelope came before auth; answer the challenge first")
            auth = decode_control(message.data)
            if not isinstance(auth, Auth):
                raise Rejected(RejectCode.NOT_AUTHENTICATED, "authenticate before anything else")
            claimed = auth.id
            endpoint = self.network.endpoints.get(auth.id)
            if endpoint is None:
                raise Rejected(RejectCode.UNKNOWN_SENDER, f"{auth.id!r} is not an endpoint")
            _verify_auth_any(
                challenge, auth, self.network.keys_valid_at(endpoint.id, self.config.clock())
            )
        except Rejected as exc:
            self.core.session_refused(exc.code)
            locked = ticket.failed(address, claimed, self.config.clock())
            reason = exc.describe()
            if locked is not None:
                retry_s = max(1, math.ceil(locked.retry_after_ms / 1000))
                reason = f"{RejectCode.RATE_LIMITED.value}: {locked.reason}; retry in {retry_s} s"
            self._throttled("authentication_refused", self.config.clock(), code=exc.code,
                            reason=str(exc), peer=address, claimed=claimed[:64],
                            locked=locked is not None)
            await ws.close(code=AUTH_FAILED_CLOSE, message=reason.encode()[:120])
            return None
        ticket.succeeded()
        try:
            self.core.admission.take_session(endpoint.id, self.config.clock())
        except Rejected as exc:
            # Not a failed guess: the endpoint proved itself, it reconnects too often.
            self.core.session_refused(exc.code)
            log.warning("session_rate_limited", party=endpoint.id, reason=str(exc))
            await ws.close(code=AUTH_FAILED_CLOSE, message=exc.describe().encode()[:120])
            raise
        await ws.send_bytes(encode_control(Welcome(auth.id, self.log.size)))
        if self.checkpoint_note:
            await ws.send_bytes(encode_control(CheckpointNote(self.checkpoint_note)))
        return auth.id, auth.since

    async def _serve(self, connection: _Connection, since: int) -> None:
        party = connection.party
        now = self.config.clock()
        self.perform(self.core.resend_receipts(party, since))
        self.perform(self.core.connected(party, now))
        async for message in connection.ws:
            if message.type is WSMsgType.BINARY:
                data: bytes = message.data
                if is_envelope(data):
                    self._envelope(connection, data)
                else:
                    await self._control(connection, data)
            elif message.type is WSMsgType.TEXT:
                self._notice(
                    connection, message.data.encode(),
                    Rejected(RejectCode.BAD_FRAME, "messages are binary MessagePack"),
                )
            elif message.type is WSMsgType.ERROR:
                break

    def _envelope(self, connection: _Connection, data: bytes) -> None:
        """Receive an envelope, or answer it ``busy`` while this relay cannot log.

        A relay replica also answers ``busy`` to a receipt for a message it has not
        applied yet (another replica logged it and delivered it): that is lag, not
        an unknown message.

        A sender's envelopes must be logged in ``seq`` order, so once one is answered
        ``busy`` no later one of the session is taken (even if the relay is ready
        again by then; they are not answered either), and the session is closed
        (1013) as soon as the answer is written: the endpoint sends everything still
        pending again, in order, on its next session.
        """
        party = connection.party
        if connection.busy:
            return  # closing: sent again, in order, on the next session
        why = self.not_ready_reason if not self.ready else ""
        if not why and self.backend.shared and self.core.answers_unseen(data):
            why = "the message this receipt answers has not reached this replica yet"
        if why:
            self.perform(self.core.busy(party, data, BUSY_RETRY_MS, why, self.config.clock()))
            connection.busy = True
            return
        self.perform(self.core.receive(party, data, self.config.clock()))

    def _notice(self, connection: _Connection, data: bytes, exc: Rejected) -> None:
        """Refuse a control frame as envelopes are refused: with a relay-signed refusal."""
        self.perform(self.core.refuse(connection.party, data, exc, self.config.clock()))

    async def _control(self, connection: _Connection, data: bytes) -> None:
        try:
            self.core.admission.take_control(connection.party, self.config.clock())
            control = decode_control(data)
        except Rejected as exc:
            self._notice(connection, data, exc)
            return
        if not isinstance(control, Cosign):
            name = type(control).__name__
            self._notice(connection, data, Rejected(
                RejectCode.SCHEMA, f"{name} is not for the relay to receive", "t"
            ))
            return
        await self._cosign(connection, control)

    async def _cosign(self, connection: _Connection, cosign: Cosign) -> None:
        async with self._checkpoint_lock:
            note = self.checkpoint_note
            try:
                relay = self.network.relay
                checkpoint = open_checkpoint(note, relay.origin, self.log.signing_keys)
                signature = parse_note(note + cosign.line.encode() + b"\n").signatures[-1]
                endpoint = self.network.endpoints[connection.party]
                _verify_cosignature_any(
                    checkpoint.text(), signature, endpoint.id,
                    self.network.keys_valid_at(endpoint.id, self.config.clock()),
                )
                updated = add_cosignature(note, signature)
            except NoteError as exc:
                log.info("cosignature_ignored", party=connection.party, reason=str(exc))
                return
            await self._in_thread(
                functools.partial(self.log.replace_checkpoint_note, note, updated)
            )
            self.checkpoint_note = updated
        log.info("checkpoint_cosigned", party=connection.party, size=checkpoint.size)

    async def _write(self, connection: _Connection) -> None:
        while True:
            data = await connection.queue.get()
            if data is None or connection.ws.closed:
                return
            try:
                await connection.ws.send_bytes(data)
            except ConnectionError:
                return
            connection.queued_bytes -= len(data)
            connection.waiting_since = None if connection.queue.empty() else time.monotonic()
            if connection.busy and connection.queue.empty():
                await connection.ws.close(code=NOT_READY_CLOSE, message=b"busy: send again later")
                return

    # ------------------------------------------------------------------ slow readers

    def _refuse_session(self, address: str, refusal: Refusal) -> web.Response:
        """HTTP 429 before the WebSocket opens: too many sockets are authenticating."""
        retry_s = max(1, math.ceil(refusal.retry_after_ms / 1000))
        code = RejectCode.RATE_LIMITED.value
        self.core.session_refused(code)
        self._throttled("session_refused", self.config.clock(), peer=address,
                        reason=refusal.reason, retry_after_s=retry_s)
        return web.json_response(
            {"error": code, "detail": f"{refusal.reason}; retry in {retry_s} s"},
            status=429, headers={"Retry-After": str(retry_s)},
        )

    def _offer(self, connection: _Connection, data: bytes) -> None:
        connection.offer(data)
        if not connection.slow and connection.queued_bytes > self.config.send_queue_bytes:
            self._close_slow(connection, f"more than {self.config.send_queue_bytes} bytes queued")

    def _check_stalls(self) -> None:
        now = time.monotonic()
        for connection in list(self._connections.values()):
            stalled = connection.stalled_for(now)
            if not connection.slow and stalled > self.config.send_stall_s:
                self._close_slow(connection, f"nothing it was sent was read for {stalled:.1f} s")

    def _close_slow(self, connection: _Connection, why: str) -> None:
        """Close a session that stopped reading; what it was owed is redelivered later.

        Everything queued is dropped: deliveries stay owed in the core until their
        receipts are logged and are sent again on the next connection, and the
        endpoint resends what still lacks an accepted receipt.
        """
        connection.slow = True
        self._write_log_lines()  # the notes of what was sent come before the disconnect
        frames = connection.queue.qsize()
        log.warning("slow_reader_disconnected", party=connection.party, reason=why,
                    queued_frames=frames, queued_bytes=connection.queued_bytes)
        while not connection.queue.empty():
            connection.queue.get_nowait()
        connection.queued_bytes = 0
        connection.queue.put_nowait(None)
        task = asyncio.get_running_loop().create_task(self._close_slowly(connection, why))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_slowly(self, connection: _Connection, why: str) -> None:
        await self._close_with(connection, SLOW_READER_CLOSE, f"slow_reader: {why}")

    async def _close_with(self, connection: _Connection, code: int, reason: str) -> None:
        """Close a session with ``code``; abort the transport if the close cannot get through."""
        try:
            await asyncio.wait_for(
                connection.ws.close(code=code, message=reason.encode()[:120]), _SLOW_CLOSE_S
            )
        except (TimeoutError, ConnectionError):
            if connection.transport is not None:
                connection.transport.abort()  # the close frame could not get through

    # ------------------------------------------------------------------ readiness

    @property
    def ready(self) -> bool:
        """Whether what is accepted now can be logged (always, on the relay's own store)."""
        return self.backend.ready

    @property
    def not_ready_reason(self) -> str:
        return self.backend.not_ready_reason

    def log_unready(self, reason: str) -> None:
        """This replica cannot log now: close every session so its endpoint fails over."""
        message = f"not ready: {reason}".encode()[:120]

        async def close(ws: web.WebSocketResponse) -> None:
            await ws.close(code=NOT_READY_CLOSE, message=message)

        for connection in list(self._connections.values()):
            task = asyncio.get_running_loop().create_task(close(connection.ws))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

    # ------------------------------------------------------------------ views

    @property
    def online(self) -> list[str]:
        return sorted(self._connections)


RELAY: Final = web.AppKey("relay", Relay)


def _altered_leaf(store: LogStore, tree: Frontier, start: int, stop: int) -> int | None:
    """The first index in ``[start, stop)`` whose entry does not hash to its stored leaf;
    the entries' leaf hashes are added to ``tree``."""
    for index, entry in enumerate(store.read_range(start, stop), start):
        leaf = leaf_hash(entry)
        if leaf != store.leaf_hash(index):
            return index
        tree.append(leaf)
    return None


def _entries(store: LogStore, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    for first in range(start, stop, 1024):
        yield from enumerate(store.read_range(first, min(stop, first + 1024)), first)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def key_rows(network: Network) -> list[object]:
    """Every key of every party with its period: the payload of a keys_changed entry."""
    rows: list[object] = []
    for party in (network.relay.id, *network.endpoints):
        for period in network.periods_of(party) or ():
            row: dict[str, object] = {
                "party": party, "kid": period.key.kid, "public_key": period.key.raw,
            }
            if period.not_before is not None:
                row["not_before"] = period.not_before
            if period.not_after is not None:
                row["not_after"] = period.not_after
            rows.append(row)
    return rows


def _verify_auth_any(challenge: bytes, auth: Auth, keys: Sequence[PublicKey]) -> None:
    """The answer must be signed by one of the endpoint's keys valid now (rotation overlap)."""
    failure = Rejected(RejectCode.BAD_SIGNATURE, f"no key of {auth.id} is valid now")
    for key in keys:
        try:
            verify_auth(challenge, auth, key)
        except Rejected as exc:
            failure = exc
            continue
        return
    raise failure


def _verify_cosignature_any(
    text: str, signature: NoteSignature, name: str, keys: Sequence[PublicKey]
) -> None:
    """A witness's cosignature by any of its keys valid now."""
    failure = NoteError(f"no key of {name} is valid now")
    for key in keys:
        try:
            verify_cosignature(text, signature, name, key)
        except NoteError as exc:
            failure = exc
            continue
        return
    raise failure


def create_app(relay: Relay) -> web.Application:
    app = web.Application()
    app[RELAY] = relay
    app.router.add_get("/v1/ws", relay.websocket)
    add_http_routes(app, relay)
    return app


@dataclass
class RunningRelay:
    relay: Relay
    runner: web.AppRunner
    port: int

    @property
    def ws_url(self) -> str:
        scheme = "ws" if self.relay.config.tls.serve is None else "wss"
        return f"{scheme}://{self.relay.config.host}:{self.port}/v1/ws"

    @property
    def http_url(self) -> str:
        scheme = "http" if self.relay.config.tls.serve is None else "https"
        return f"{scheme}://{self.relay.config.host}:{self.port}"

    async def stop(self) -> None:
        await self.relay.stop()
        await self.runner.cleanup()


async def open_log(config: RelayConfig) -> AuditLog:
    """Open the relay's audit log in its data directory, signing with the keys valid now."""
    network, now = config.network, config.clock()
    return await asyncio.to_thread(
        functools.partial(
            AuditLog.open_directory,
            config.data_dir,
            origin=network.relay.origin,
            key=config.key,
            also_sign=[
                k for k in config.also_sign
                if k.public in network.keys_valid_at(network.relay.id, now)
            ],
            known_keys=network.keys_of(network.relay.id) or (),
        )
    )


_R = TypeVar("_R", bound=Relay)


async def open_relay(config: RelayConfig, make: Callable[[AuditLog], _R]) -> _R:
    """Open the log, build the relay on it with ``make`` and start it.

    Whatever fails, nothing stays open: a relay that cannot be built closes the log
    here, one that cannot start closes it in :meth:`Relay.start`.
    """
    audit_log = await open_log(config)
    try:
        relay = make(audit_log)
    except BaseException:
        await audit_log.close()
        raise
    await relay.start()
    return relay


async def start_relay(config: RelayConfig) -> RunningRelay:
    """Open the log, start the servers (port 0 picks a free port) and the timers.

    Plaintext off loopback without ``tls.unsafe_plaintext``, or a TLS file that
    does not load, is refused before the log is opened.
    """
    tls = config.tls
    transport = listening_transport(
        config.host, tls.serve, unsafe_plaintext=tls.unsafe_plaintext,
        what="the relay", cert_flags="--tls-cert and --tls-key",
    )
    # failed handshakes, malformed requests and refused sessions: one budget of lines
    throttle = LogThrottle()
    ssl_context = (
        server_context(tls.serve, lines=throttle, clock=config.clock)
        if tls.serve is not None else None
    )
    note_transport(transport, role="relay", host=config.host)
    # Each step that opens something registers its undoing; a failure at any later step
    # (a port in use) unwinds them, so nothing of the relay stays open.
    async with contextlib.AsyncExitStack() as undo:
        relay = await open_relay(
            config, functools.partial(Relay, config, log_throttle=throttle)
        )
        undo.push_async_callback(relay.stop)
        # keepalive_timeout also closes a socket that never sends its request (aiohttp starts
        # the timer at connect), so a flood of idle sockets cannot hold the relay's descriptors
        # malformed requests: throttled http_request_failed lines (hotline.httplog)
        runner = web.AppRunner(create_app(relay), handle_signals=False, access_log=None,
                               keepalive_timeout=config.auth_timeout_s,
                               logger=server_logger("hotline.relay.http", throttle, config.clock))
        await runner.setup()
        undo.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        await site.start()
        undo.pop_all()  # listening: RunningRelay.stop undoes it from now on
    addresses = runner.addresses
    port = int(addresses[0][1]) if addresses else config.port
    log.info("relay_listening", host=config.host, port=port, transport=transport.value,
             mutual_tls=tls.serve is not None and tls.serve.client_ca is not None)
    return RunningRelay(relay, runner, port)
