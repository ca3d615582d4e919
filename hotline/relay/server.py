"""The relay's edge: aiohttp WebSocket and HTTP around :class:`RelayCore`.

This module moves bytes between sockets, the audit log and the core, and owns
the timers. Invariants it adds to the core's:

- appends are started in the order the core asks for them and their results
  are handed back to the core in that same order (one completion pipeline), so
  every accepted receipt and every forward follows a durable append;
- each connection has one writer task, so what the core sends a party arrives
  in the order the core sent it;
- a new authenticated connection of a party replaces the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog
from aiohttp import WSMsgType, web

from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.cosignature import add_cosignature, verify_cosignature
from hotline.auditlog.leaf import EntryKind, Event, encode_event_entry
from hotline.auditlog.log import AuditLog
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.auditlog.note import parse_note
from hotline.errors import HotlineError, NoteError, RejectCode, Rejected, StoreError
from hotline.network import Network
from hotline.protocol.envelope import Envelope
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    NONCE_SIZE,
    Auth,
    Challenge,
    CheckpointNote,
    Cosign,
    RejectedNotice,
    Welcome,
    decode_control,
    encode_control,
    is_envelope,
    verify_auth,
)
from hotline.relay.core import Action, Append, Broadcast, RelayCore, Send
from hotline.relay.http import add_http_routes
from hotline.relay.metrics import RelayMetrics

__all__ = ["RELAY", "Relay", "RelayConfig", "RunningRelay", "start_relay"]

log = structlog.get_logger()

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class RelayConfig:
    network: Network
    network_toml: bytes
    data_dir: Path
    key: SigningKey
    host: str = "127.0.0.1"
    port: int = 8700
    checkpoint_every: int = 256
    checkpoint_interval_ms: int = 1_000
    tick_ms: int = 100
    auth_timeout_s: float = 10.0
    clock: Clock = field(default=wall_clock_ms)


@dataclass(eq=False)
class _Connection:
    party: str
    ws: web.WebSocketResponse
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class Relay:
    """One relay: its log, its core, its connections and its timers."""

    def __init__(self, config: RelayConfig) -> None:
        self.config: Final = config
        self.network: Final = config.network
        self.core = RelayCore(config.network, config.key, os.urandom)
        self.log: AuditLog | None = None
        self.metrics = RelayMetrics(self)
        self.figures = self.metrics.figures
        self._connections: dict[str, _Connection] = {}
        self._completions: deque[tuple[Append, asyncio.Task[int]]] = deque()
        self._completion_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpoint_lock = asyncio.Lock()
        self._last_checkpoint_ms = 0
        self.checkpoint_note: bytes = b""
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        config = self.config
        self.log = await asyncio.to_thread(
            AuditLog.open_directory,
            config.data_dir,
            origin=self.network.relay.origin,
            key=config.key,
        )
        try:
            await asyncio.to_thread(self._restore)
        except BaseException:
            await self.log.close()
            raise
        started = Event(
            EntryKind.RELAY_STARTED,
            {"version": "1", "network_sha256": _sha256(config.network_toml)},
        )
        now = config.clock()
        self.perform([Append(encode_event_entry(now, started), -1, now, event=started)])
        self._tasks.append(asyncio.create_task(self._complete(), name="relay-completions"))
        self._tasks.append(asyncio.create_task(self._ticker(), name="relay-ticker"))
        self.checkpoint_note = await asyncio.to_thread(self.log.checkpoint)
        log.info("relay_started", size=self.log.size, data=str(config.data_dir))

    def _restore(self) -> None:
        """Rebuild the core and the figures from the log, in order.

        The entries under the last signed checkpoint were verified before they
        were logged; instead of checking their signatures again, the tree is
        recomputed from their bytes and must have the signed root, or the relay
        refuses to start. Entries after it are verified in full.
        """
        assert self.log is not None
        store = self.log.store
        size = store.size
        covered = max(0, self.log.signed_size)
        tree = Frontier()
        for start in range(0, size, 1024):
            for offset, entry in enumerate(store.read_range(start, min(size, start + 1024))):
                index = start + offset
                trusted = index < covered
                if trusted:
                    tree.append(leaf_hash(entry))
                relay_ts, content = self.core.restore(
                    index, entry, unsafe_signed_root_covers=trusted
                )
                self._account(index, relay_ts, content)
        if covered and tree.root() != self.log.signed_root:
            raise StoreError(
                f"the {covered} entries under the signed checkpoint do not hash to its root: "
                "the store was altered; refusing to start"
            )

    async def stop(self) -> None:
        if self.log is None or self._stopping:
            return
        self._stopping = True
        for connection in list(self._connections.values()):
            await connection.ws.close(code=1001, message=b"relay stopping")
        stopped = Event(EntryKind.RELAY_STOPPED, {})
        now = self.config.clock()
        self.perform([Append(encode_event_entry(now, stopped), -1, now, event=stopped)])
        await self._drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.log.checkpoint)
        await self.log.close()
        log.info("relay_stopped", size=self.log.size)

    def _account(self, index: int, relay_ts: int, content: Envelope | Event) -> None:
        if isinstance(content, Event):
            self.figures.add_event(index, relay_ts, content)
        else:
            self.figures.add_envelope(index, relay_ts, content)

    async def _drain(self) -> None:
        while self._completions:
            _, task = self._completions[-1]
            with contextlib.suppress(Exception):
                await task
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ actions

    def perform(self, actions: Iterable[Action]) -> None:
        assert self.log is not None
        if self.core.notes:
            notes, self.core.notes = self.core.notes, []
            for note in notes:
                log.info(note.event, **note.fields)
        for action in actions:
            if isinstance(action, Send):
                connection = self._connections.get(action.party)
                if connection is not None:
                    connection.queue.put_nowait(action.data)
            elif isinstance(action, Broadcast):
                for connection in self._connections.values():
                    connection.queue.put_nowait(action.data)
            else:
                task = asyncio.get_running_loop().create_task(self.log.append(action.entry))
                self._completions.append((action, task))
                self._completion_ready.set()

    async def _complete(self) -> None:
        """Hand append results to the core in the order the appends were asked for."""
        while True:
            await self._completion_ready.wait()
            while self._completions:
                append, task = self._completions[0]
                try:
                    index = await task
                except HotlineError as exc:
                    log.exception("append_failed", error=exc.describe())
                    self._completions.popleft()
                    continue
                self._completions.popleft()
                content = append.envelope if append.envelope is not None else append.event
                if content is not None:
                    self._account(index, append.relay_ts, content)
                self.perform(self.core.appended(append.token, index, self.config.clock()))
            self._completion_ready.clear()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            now = self.config.clock()
            self.perform(self.core.tick(now))
            await self._maybe_checkpoint(now)

    async def _maybe_checkpoint(self, now: int) -> None:
        assert self.log is not None
        grown = self.log.size - max(0, self.log.signed_size)
        due = grown >= self.config.checkpoint_every or (
            grown > 0 and now - self._last_checkpoint_ms >= self.config.checkpoint_interval_ms
        )
        if not due:
            return
        async with self._checkpoint_lock:
            note = await asyncio.to_thread(self.log.checkpoint)
        self._last_checkpoint_ms = now
        if note != self.checkpoint_note:
            self.checkpoint_note = note
            self.perform([Broadcast(encode_control(CheckpointNote(note)))])

    # ------------------------------------------------------------------ WebSocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=4 * self.network.limits.max_frame_bytes, heartbeat=20.0
        )
        await ws.prepare(request)
        authenticated = await self._authenticate(ws)
        if authenticated is None:
            return ws
        party, since = authenticated
        connection = _Connection(party, ws)
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
                    reason = f"closed {ws.close_code}"
                    self.perform(self.core.disconnected(party, reason, self.config.clock()))
            connection.queue.put_nowait(None)
            await writer
            log.info("endpoint_disconnected", party=party, code=ws.close_code)
        return ws

    async def _authenticate(self, ws: web.WebSocketResponse) -> tuple[str, int] | None:
        challenge = encode_control(
            Challenge(os.urandom(NONCE_SIZE), self.network.relay.id, self.config.clock())
        )
        await ws.send_bytes(challenge)
        try:
            message = await ws.receive(timeout=self.config.auth_timeout_s)
        except TimeoutError:
            await ws.close(code=AUTH_FAILED_CLOSE, message=b"not_authenticated: no answer in time")
            return None
        try:
            if message.type is not WSMsgType.BINARY:
                raise Rejected(RejectCode.BAD_FRAME, "expected a binary auth message")
            auth = decode_control(message.data)
            if not isinstance(auth, Auth):
                raise Rejected(RejectCode.NOT_AUTHENTICATED, "authenticate before anything else")
            endpoint = self.network.endpoints.get(auth.id)
            if endpoint is None:
                raise Rejected(RejectCode.UNKNOWN_SENDER, f"{auth.id!r} is not an endpoint")
            verify_auth(challenge, auth, endpoint.public_key)
        except Rejected as exc:
            self.core.counters.rejected[exc.code] = self.core.counters.rejected.get(exc.code, 0) + 1
            log.warning("authentication_refused", code=exc.code, reason=str(exc))
            await ws.close(code=AUTH_FAILED_CLOSE, message=exc.describe().encode()[:120])
            return None
        assert self.log is not None
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
                    self.perform(self.core.receive(party, data, self.config.clock()))
                else:
                    await self._control(connection, data)
            elif message.type is WSMsgType.TEXT:
                self._notice(connection, RejectCode.BAD_FRAME, "messages are binary MessagePack")
            elif message.type is WSMsgType.ERROR:
                break

    def _notice(self, connection: _Connection, code: RejectCode, sentence: str) -> None:
        self.core.counters.rejected[code.value] = self.core.counters.rejected.get(code.value, 0) + 1
        connection.queue.put_nowait(encode_control(RejectedNotice(b"", code.value, sentence, "")))

    async def _control(self, connection: _Connection, data: bytes) -> None:
        try:
            control = decode_control(data)
        except Rejected as exc:
            self._notice(connection, exc.reject_code, str(exc))
            return
        if not isinstance(control, Cosign):
            name = type(control).__name__
            self._notice(connection, RejectCode.SCHEMA, f"{name} is not for the relay to receive")
            return
        await self._cosign(connection, control)

    async def _cosign(self, connection: _Connection, cosign: Cosign) -> None:
        assert self.log is not None
        async with self._checkpoint_lock:
            note = self.checkpoint_note
            try:
                relay = self.network.relay
                checkpoint = open_checkpoint(note, relay.origin, relay.public_key)
                signature = parse_note(note + cosign.line.encode() + b"\n").signatures[-1]
                endpoint = self.network.endpoints[connection.party]
                verify_cosignature(checkpoint.text(), signature, endpoint.id, endpoint.public_key)
                updated = add_cosignature(note, signature)
            except NoteError as exc:
                log.info("cosignature_ignored", party=connection.party, reason=str(exc))
                return
            await asyncio.to_thread(self.log.replace_checkpoint_note, note, updated)
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

    # ------------------------------------------------------------------ views

    @property
    def online(self) -> list[str]:
        return sorted(self._connections)


RELAY: Final = web.AppKey("relay", Relay)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


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
        return f"ws://{self.relay.config.host}:{self.port}/v1/ws"

    @property
    def http_url(self) -> str:
        return f"http://{self.relay.config.host}:{self.port}"

    async def stop(self) -> None:
        await self.relay.stop()
        await self.runner.cleanup()


async def start_relay(config: RelayConfig) -> RunningRelay:
    """Open the log, start the servers (port 0 picks a free port) and the timers."""
    relay = Relay(config)
    await relay.start()
    runner = web.AppRunner(create_app(relay), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    addresses = runner.addresses
    port = int(addresses[0][1]) if addresses else config.port
    log.info("relay_listening", host=config.host, port=port)
    return RunningRelay(relay, runner, port)
