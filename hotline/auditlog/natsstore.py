"""The audit log on a NATS JetStream stream: durable on a quorum of nodes, shared by replicas.

Two layers:

- :class:`StreamClient` (asyncio, on the caller's event loop) is the only code
  that speaks to NATS. It creates the stream if it is missing, publishes an
  entry and waits for the JetStream acknowledgement, reads entries back by
  sequence and follows the stream in order. Every nats-py exception is
  translated here into :class:`~hotline.errors.StoreError` (``raise … from``).
  The relay's replicas (``hotline.relay.replica``) use it directly on the
  relay's own event loop: that is the async store path.
- :class:`NatsStore` is the synchronous ``LogStore`` (``hotline.auditlog.store``)
  over the same stream, for code written against that protocol (the group
  committer's worker thread, the contract tests). nats-py is asyncio, so the
  store runs its client on an event loop in a thread of its own and waits for
  each call there; the tree is served from a local mirror (a ``MemoryStore``
  unless another store is given) that is caught up from the stream in order.

The stream:

- ``settings.stream`` holds subjects ``<subject>.entry`` (every entry) and
  ``<subject>.test`` (relay-signed link tests, see below), file storage,
  ``settings.replicas`` replicas (3 by default: a quorum of 2 survives the
  loss of one node), limits retention with no limit: nothing is ever removed.
- Stream sequence ``s`` is log index ``s - 1``; the stream starts at 1 and is
  never purged, so the mirror's size is the last sequence it applied.
- An entry counts as durable once JetStream acknowledged it (the stream
  leader stored it and a quorum of replicas agreed), never before.
- Each publish carries ``Nats-Msg-Id``. Within the stream's duplicate window
  (``settings.duplicate_window_ms``, at least the network's ``max_age``) a
  second publish with the same id is not stored again: the acknowledgement
  says ``duplicate`` and gives the original's sequence. This is how two
  replicas that accept the same resent envelope end up with one entry, and
  how two replicas never log two envelopes of one sender that each judged
  against the same predecessor (the id names it: ``hotline.relay.replica``).
- ``Nats-Expected-Last-Msg-Id`` is not used: nats-server 2.15.1 stops
  acknowledging every publish to a replicated (R3) stream after one such
  check failed (publish ``a``, ``b``, then ``c`` expecting ``a``: refused, and
  every later publish times out, 30 s and more; 2.9.10 and an R1 stream go
  on), so it cannot chain one sender's entries to let several be in flight.
- A link test is published with ``Nats-Expected-Last-Subject-Sequence``: it
  is refused if another test was stored since the last one the publisher saw.
  On a cluster this check does not hold between concurrent publishes (both
  can be stored; nats-server 2.9), the ``Nats-Msg-Id`` check does: the
  replicas therefore also name a test by the test it follows
  (``hotline.relay.replica``), so the relay's signed ``seq`` rises in log
  order even with several replicas signing tests.

With several writers one writer's entries are not contiguous in the stream:
:meth:`NatsStore.append_each` returns each entry's own index, and the group
committer uses it when a store offers it (``IndexedAppend``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.client import Server
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import PubAck, RetentionPolicy, StorageType, StreamConfig

from hotline.auditlog.memstore import MemoryStore
from hotline.auditlog.merkle import Frontier
from hotline.auditlog.store import LogStore, check_batch
from hotline.auditlog.streamconfig import (
    DEFAULT_STREAM,
    DEFAULT_SUBJECT,
    StreamSettings,
    parse_store_table,
)
from hotline.errors import ConfigError, StoreError, UsageError

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT",
    "NatsStore",
    "Published",
    "StreamClient",
    "StreamEntry",
    "StreamSettings",
    "parse_store_table",
]

MSG_ID: Final = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQ: Final = "Nats-Expected-Last-Subject-Sequence"
_WRONG_LAST_SEQUENCE: Final = 10071  # JetStream's error code for a failed expected-sequence check
_ID_IN_PROCESS: Final = 10158  # the same Nats-Msg-Id is being stored now: ask again shortly
_STREAM_EXISTS: Final = 10058
_STREAM_NOT_FOUND: Final = 10059
_STREAM_WAIT_S: Final = 30.0

_log = structlog.get_logger()

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Published:
    """JetStream's acknowledgement: the entry's sequence, and whether it was there already."""

    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stored message of the stream."""

    seq: int
    data: bytes
    msg_id: str
    subject: str = ""


def _translated(what: str, exc: BaseException) -> StoreError:
    return StoreError(f"{what} failed ({type(exc).__name__}: {exc})")


_NATS_ERRORS: Final = (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError)
# Errors a publish may meet while the stream elects a leader or the client reconnects.
_TRANSIENT: Final = (
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    TimeoutError,
)
# A publish keeps retrying for this many acknowledgement timeouts, backing off from
# _RETRY_FIRST_S to _RETRY_MAX_S; NatsStore waits for twice as long before giving up.
_PUBLISH_BUDGET: Final = 2
_RETRY_FIRST_S: Final = 0.05
_RETRY_MAX_S: Final = 0.25
ATTEMPT_S: Final = 0.5
"""Longest wait for one acknowledgement within a publish's budget: a publish sent to a leader
that froze or died is sent again (same ``Nats-Msg-Id``) after this, so it reaches a newly
elected leader within about half a second of the election instead of after ``timeout_s``."""
PING_INTERVAL_S: Final = 1
MAX_OUTSTANDING_PINGS: Final = 1
"""The client pings its server every second and reconnects to another node once a ping has
gone unanswered for a second more: a hung node is left within about 2 s (nats-py's defaults,
2 minutes and 2 pings, noticed after about 4 minutes)."""
PROBE_S: Final = 0.5
"""After a publish attempt timed out, the connected server gets this long to answer a ping
(the client's own flush) before the client leaves it for another node: a hung node is left
about a second after a publish went to it, not only after the periodic pings."""
_PROBE_EVERY_S: Final = 1.0
CONNECT_TIMEOUT_S: Final = 1.0
"""A node that accepts the TCP connection but sends nothing (hung) is given up after this."""
CONNECT_WAIT_S: Final = 30.0
"""How long a client starting tries the servers before it gives up (``StoreError``)."""
RECONNECT_WAIT_S: Final = 0.25
"""Pause before trying a server again that was tried (or left) this recently."""


class StreamClient:
    """One NATS connection and the log's stream, on the event loop that calls ``connect``."""

    def __init__(self, settings: StreamSettings, *, name: str = "hotline") -> None:
        self.settings: Final = settings
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._used: dict[str, float] = {}  # server (host:port) → when last used or tried
        self._server_now = ""  # the server connected to last (host:port)
        self._reconnected = asyncio.Event()  # set (and replaced) at each reconnection
        self.reconnected_at = 0.0
        """When (monotonic) the client last reconnected to a server (0: never)."""
        self._probe: asyncio.Task[None] | None = None
        self._probed_at = 0.0

    async def connect(self, wait_s: float = CONNECT_WAIT_S) -> None:
        """Connect to any of the servers within ``wait_s`` (``StoreError`` if none answers);
        from then on reconnect by itself for as long as it lives."""

        async def disconnected() -> None:
            _log.warning("nats_disconnected", client=self._name)
            self._left()

        async def reconnected() -> None:
            self.reconnected_at = time.monotonic()
            self._reconnected.set()  # publishes waiting on the server left: send them again
            self._reconnected = asyncio.Event()
            url = self._nc.connected_url if self._nc is not None else None
            if url is not None:
                self._server_now = url.netloc
                self._used[url.netloc] = time.monotonic()
            _log.info("nats_reconnected", client=self._name,
                      server=None if url is None else url.netloc)

        async def error(exc: Exception) -> None:
            _log.warning("nats_connection_error", client=self._name, error=repr(exc))

        nc = NatsClient()
        # nats-py tries the servers for ever (max_reconnect_attempts=-1 holds for the first
        # connection too): a start with every server unreachable must end.
        deadline = asyncio.timeout(wait_s)
        try:
            async with deadline:
                await nc.connect(
                    list(self.settings.servers),
                    name=self._name,
                    # annotated int, used as seconds: any number of them (as nats.connect's)
                    connect_timeout=CONNECT_TIMEOUT_S,  # type: ignore[arg-type]
                    reconnect_time_wait=RECONNECT_WAIT_S,  # type: ignore[arg-type]
                    max_reconnect_attempts=-1,
                    ping_interval=PING_INTERVAL_S,
                    max_outstanding_pings=MAX_OUTSTANDING_PINGS,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                    reconnect_to_server_handler=self._next_server,
                )
        except _NATS_ERRORS as exc:
            await nc.close()
            servers = ", ".join(self.settings.servers)
            if deadline.expired():
                raise StoreError(f"connecting to NATS at {servers} failed: no server accepted "
                                 f"a connection within {wait_s:g} s") from exc
            raise _translated(f"connecting to NATS at {servers}", exc) from exc
        self._nc = nc
        self._server_now = self.server
        self._used[self._server_now] = time.monotonic()
        self._js = self._nc.jetstream(timeout=self.settings.timeout_s)

    def _next_server(self, servers: list[Server], _info: dict[str, Any]) -> tuple[Server, float]:
        """The server to reconnect to: the one used or tried least recently, so never the one
        just left (hung, as a rule) while another is known; with a pause if even that one was
        tried a moment ago (every server down)."""
        now = time.monotonic()
        chosen = min(servers, key=lambda s: self._used.get(s.uri.netloc, 0.0))
        recently = self._used.get(chosen.uri.netloc, 0.0)
        self._used[chosen.uri.netloc] = now
        return chosen, max(0.0, RECONNECT_WAIT_S - (now - recently))

    @property
    def connected(self) -> bool:
        """Whether the client holds a live connection to a server now."""
        return self._nc is not None and self._nc.is_connected

    @property
    def server(self) -> str:
        """The server connected to (host:port), or "" when none."""
        url = self._nc.connected_url if self._nc is not None else None
        return "" if url is None else str(url.netloc)

    async def reconnect_elsewhere(self) -> None:
        """Drop the current server and reconnect to another of ``servers``."""
        if self._nc is not None:
            _log.warning("nats_reconnecting_elsewhere", client=self._name, server=self.server)
            self._left()
            await self._nc.force_reconnect()

    def _left(self) -> None:
        """The server in use is being left: it is the last to be tried again."""
        if self._server_now:
            self._used[self._server_now] = time.monotonic()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise UsageError("the stream client is not connected")
        return self._js

    async def ensure_stream(self, wait_s: float = _STREAM_WAIT_S) -> None:
        """Create the stream if it is missing, retrying while the cluster elects its leaders."""
        s = self.settings
        config = StreamConfig(
            name=s.stream,
            subjects=[s.entry_subject, s.test_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            duplicate_window=s.duplicate_window_ms / 1000,
            max_msg_size=1 << 20,
        )
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            try:
                info = await self.js.stream_info(s.stream)
            except nats.js.errors.NotFoundError:
                info = None
            except _NATS_ERRORS as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise _translated(f"reading stream {s.stream}", exc) from exc
                await asyncio.sleep(0.25)
                continue
            if info is not None:
                replicas = info.config.num_replicas or 1
                if replicas != s.replicas:
                    raise ConfigError(
                        f"stream {s.stream} has {replicas} replicas, the configuration "
                        f"asks for {s.replicas}; change one of them"
                    )
                return
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code == _STREAM_EXISTS:
                    continue
                raise _translated(f"creating stream {s.stream}", exc) from exc
            except _NATS_ERRORS as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise _translated(f"creating stream {s.stream}", exc) from exc
                await asyncio.sleep(0.25)
                continue
            _log.info("stream_created", stream=s.stream, replicas=s.replicas)
            return

    async def publish(
        self, entry: bytes, *, msg_id: str, test_after: int | None = None
    ) -> Published | None:
        """Store ``entry``; its sequence once JetStream acknowledged it.

        ``test_after``: publish as a link test, only if the last test in the
        stream is at that sequence (0 for none); None is returned if it is not.
        Raises ``StoreError`` when the stream did not acknowledge in time: the
        entry may or may not be stored, and publishing it again with the same
        ``msg_id`` is safe.
        """
        headers = {MSG_ID: msg_id}
        subject = self.settings.entry_subject
        if test_after is not None:
            headers[EXPECTED_LAST_SUBJECT_SEQ] = str(test_after)
            subject = self.settings.test_subject
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout_s * _PUBLISH_BUDGET
        pause = _RETRY_FIRST_S
        while True:
            attempt_s = min(self.settings.timeout_s, ATTEMPT_S,
                            max(deadline - loop.time(), _RETRY_FIRST_S))
            try:
                answer = await self._attempt(subject, entry, attempt_s, headers)
                if answer is None:  # sent to the server just left: again now, on the new one
                    if loop.time() >= deadline:
                        raise StoreError(f"publishing entry {msg_id} failed (the client "
                                         "reconnected; no acknowledgement in time)")
                    continue
                ack = answer
                break
            except _TRANSIENT as exc:
                # No stream leader yet (one is being elected after a node died), or the
                # reply was lost: the same Nats-Msg-Id makes a second publish safe.
                if isinstance(exc, nats.errors.TimeoutError):
                    self._check_server()  # or the node this client is on hangs
                if loop.time() + pause >= deadline:
                    raise _translated(f"publishing entry {msg_id}", exc) from exc
                _log.info("stream_publish_retried", msg_id=msg_id, error=type(exc).__name__)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RETRY_MAX_S)
            except nats.js.errors.APIError as exc:
                if test_after is not None and exc.err_code == _WRONG_LAST_SEQUENCE:
                    return None
                if exc.err_code == _ID_IN_PROCESS and loop.time() + pause < deadline:
                    # An earlier attempt of this id is being stored: its outcome decides.
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _RETRY_MAX_S)
                    continue
                raise _translated(f"publishing entry {msg_id}", exc) from exc
            except _NATS_ERRORS as exc:
                raise _translated(f"publishing entry {msg_id}", exc) from exc
        return Published(int(ack.seq), bool(ack.duplicate))

    def _check_server(self) -> None:
        """Ping the connected server (one probe at a time, at most every ``_PROBE_EVERY_S``)."""
        now = time.monotonic()
        if (self._probe is None or self._probe.done()) and now - self._probed_at >= \
                _PROBE_EVERY_S:
            self._probed_at = now
            self._probe = asyncio.ensure_future(self._probe_server())

    async def _probe_server(self) -> None:
        """Leave the connected server for another node when it does not answer in PROBE_S."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            return
        try:
            await nc.flush(timeout=PROBE_S)  # type: ignore[arg-type]  # annotated int; any seconds
        except nats.errors.TimeoutError:
            _log.warning("nats_server_silent", client=self._name, server=self.server,
                         after_s=PROBE_S)
            await self.reconnect_elsewhere()
        except _NATS_ERRORS:
            return

    async def _attempt(
        self, subject: str, entry: bytes, timeout_s: float, headers: dict[str, str]
    ) -> PubAck | None:
        """One publish's acknowledgement; None as soon as the client reconnects meanwhile
        (the acknowledgement of a publish sent to the server just left would never come)."""
        reconnected = asyncio.ensure_future(self._reconnected.wait())
        publish = asyncio.ensure_future(
            self.js.publish(subject, entry, timeout=timeout_s, headers=headers))
        try:
            await asyncio.wait((publish, reconnected), return_when=asyncio.FIRST_COMPLETED)
        finally:
            reconnected.cancel()
        if not publish.done():
            publish.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NATS_ERRORS):
                await publish
            return None
        return publish.result()

    async def last_seq(self) -> int:
        """The stream's last sequence (0 when it is empty)."""
        try:
            info = await self.js.stream_info(self.settings.stream)
        except _NATS_ERRORS as exc:
            raise _translated(f"reading stream {self.settings.stream}", exc) from exc
        return int(info.state.last_seq)

    async def read(self, seq: int) -> StreamEntry:
        """The message at ``seq``."""
        try:
            raw = await self.js.get_msg(self.settings.stream, seq)
        except _NATS_ERRORS as exc:
            raise _translated(f"reading stream sequence {seq}", exc) from exc
        headers = raw.headers or {}
        return StreamEntry(
            seq, raw.data or b"", str(headers.get(MSG_ID, "")), str(raw.subject or "")
        )

    async def follow(
        self, start_seq: int, deliver: Callable[[StreamEntry], Awaitable[None]]
    ) -> Subscription:
        """Hand every message from ``start_seq`` on to ``deliver``, in order (ordered consumer).

        nats-py recreates an ordered consumer by itself when it notices a gap
        or lost heartbeats; the caller should still check sequences and call
        ``follow`` again from where it is if they stop rising.
        """
        from nats.js.api import ConsumerConfig, DeliverPolicy  # noqa: PLC0415

        async def on_message(msg: Msg) -> None:
            headers = msg.headers or {}
            await deliver(StreamEntry(
                int(msg.metadata.sequence.stream), msg.data, str(headers.get(MSG_ID, "")),
                msg.subject,
            ))

        try:
            return await self.js.subscribe(
                f"{self.settings.subject}.*",
                stream=self.settings.stream,
                cb=on_message,
                ordered_consumer=True,
                idle_heartbeat=0.5,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
                ),
                pending_msgs_limit=1 << 20,
            )
        except _NATS_ERRORS as exc:
            raise _translated(f"following stream {self.settings.stream}", exc) from exc

    async def delete_stream(self) -> None:
        """Remove the stream and everything in it (tests and demos only)."""
        try:
            await self.js.delete_stream(self.settings.stream)
        except nats.js.errors.NotFoundError:
            return
        except _NATS_ERRORS as exc:
            raise _translated(f"deleting stream {self.settings.stream}", exc) from exc

    async def close(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except _NATS_ERRORS:
                await nc.close()


class NatsStore:
    """A ``LogStore`` whose entries are durable in a JetStream stream; see the module docstring.

    Reads, hashes and the frontier come from ``mirror``, which is caught up
    from the stream on open and after every append, in stream order, so it
    also holds what other writers appended.
    """

    def __init__(self, settings: StreamSettings, *, mirror: LogStore | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="nats-store", daemon=True
        )
        self._thread.start()
        self._client = StreamClient(settings, name="hotline-store")
        self._mirror: LogStore = mirror if mirror is not None else MemoryStore()
        self._ids = itertools.count()
        self._prefix = os.urandom(8).hex()
        self._closed = False
        try:
            self._call(self._client.connect())
            self._call(self._client.ensure_stream(), _STREAM_WAIT_S + 5)
            self._catch_up(self._call(self._client.last_seq()))
        except BaseException:
            self._shutdown()
            raise

    def _call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        async def run() -> T:
            return await coro

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(timeout or self._client.settings.timeout_s * 4)

    @property
    def mirror(self) -> LogStore:
        return self._mirror

    @property
    def settings(self) -> StreamSettings:
        return self._client.settings

    @property
    def size(self) -> int:
        return self._mirror.size

    def append_batch(self, entries: Sequence[bytes]) -> int:
        """Append and return the first entry's index (see ``append_each`` with other writers)."""
        return self.append_each(entries)[0]

    def append_each(self, entries: Sequence[bytes]) -> list[int]:
        """Publish each entry, wait for every acknowledgement; each entry's own index."""
        self._check_open()
        check_batch(entries)
        ids = [f"{self._prefix}-{next(self._ids)}" for _ in entries]

        async def publish_all() -> list[Published | None]:
            return await asyncio.gather(*(
                self._client.publish(entry, msg_id=msg_id)
                for entry, msg_id in zip(entries, ids, strict=True)
            ))

        acks = self._call(publish_all())
        seqs = [ack.seq for ack in acks if ack is not None]
        self._catch_up(max(seqs))
        return [seq - 1 for seq in seqs]

    def _catch_up(self, last_seq: int) -> None:
        """Append the stream's entries after the mirror's size, up to ``last_seq``, in order."""
        chunk = 256
        while self._mirror.size < last_seq:
            start = self._mirror.size + 1
            stop = min(last_seq, start + chunk - 1)

            async def read_chunk(first: int = start, last: int = stop) -> list[StreamEntry]:
                return await asyncio.gather(
                    *(self._client.read(seq) for seq in range(first, last + 1))
                )

            entries = self._call(read_chunk())
            self._mirror.append_batch([entry.data for entry in entries])

    def read(self, index: int) -> bytes:
        self._check_open()
        return self._mirror.read(index)

    def read_range(self, start: int, stop: int) -> list[bytes]:
        self._check_open()
        return self._mirror.read_range(start, stop)

    def leaf_hash(self, index: int) -> bytes:
        self._check_open()
        return self._mirror.leaf_hash(index)

    def subtree_hash(self, start: int, end: int) -> bytes:
        self._check_open()
        return self._mirror.subtree_hash(start, end)

    def frontier(self) -> Frontier:
        self._check_open()
        return self._mirror.frontier()

    def delete_stream(self) -> None:
        """Remove the stream (tests only): the store is unusable afterwards."""
        self._check_open()
        self._call(self._client.delete_stream())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown()
        self._mirror.close()

    def _shutdown(self) -> None:
        try:
            self._call(self._client.close())
        except (StoreError, TimeoutError, RuntimeError):
            _log.warning("nats_store_close_failed")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("the NATS log store is closed")
