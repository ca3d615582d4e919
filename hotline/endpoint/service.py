"""The running endpoint: the core, the journal, the relay connection, timers and the API.

:class:`Endpoint` is the edge around :class:`~hotline.endpoint.core.EndpointCore`.
Every step — a WebSocket message, an operator's request, a timer tick, a
fetched proof — runs under one lock in the same order:

1. the core computes an :class:`~hotline.endpoint.core.Output` from the input
   and the time;
2. its events are journaled (one SQLite transaction on the journal's thread);
3. only then are its bytes sent to the relay (envelopes only once welcomed),
   its events logged and published to the console's stream.

On ``welcome`` every envelope the relay has not yet answered is sent again, in
``seq`` order. Entry points: :func:`make_app` (an aiohttp application whose
cleanup context owns the endpoint), :func:`serve_endpoint` (an async context
manager that listens, port 0 allowed, and gives the bound port back) and
:func:`run_endpoint` (until cancelled or ``stop`` is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import structlog
from aiohttp import web

from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.endpoint.access import (
    ACCESS,
    Access,
    access_middleware,
    check_exposure,
    host_names,
)
from hotline.endpoint.api import add_routes
from hotline.endpoint.appkeys import ENDPOINT
from hotline.endpoint.cap_routes import add_cap_routes
from hotline.endpoint.compose import Header, draft_body, referenced_id
from hotline.endpoint.connection import HEARTBEAT_S, Backoff, run_connection
from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import (
    EndpointEvent,
    LinkTestAnswered,
    MessageAccepted,
    MessageQueued,
    ReceiptQueued,
    RelayBack,
    RelayConnected,
    RelayDisconnected,
    RelayOutage,
    event_name,
)
from hotline.endpoint.feed_routes import add_feed_routes
from hotline.endpoint.guard import PeerProofNeed
from hotline.endpoint.hub import EventHub
from hotline.endpoint.journal import JOURNAL_FILE
from hotline.endpoint.journal_thread import ThreadedJournal
from hotline.endpoint.login_routes import add_login_routes
from hotline.endpoint.operators import OperatorStore
from hotline.endpoint.relay_http import RelayHttp, RelayUnavailable, http_base
from hotline.endpoint.sessions import DEFAULT_IDLE_S, SessionStore
from hotline.endpoint.views import event_json
from hotline.endpoint.witness import ConsistencyProof, NeedsProof
from hotline.errors import ConfigError, Rejected
from hotline.network import Network
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import is_envelope
from hotline.protocol.vocab import AckAction
from hotline.tls import (
    TlsSettings,
    client_connector,
    listening_transport,
    note_transport,
    relay_transport,
    server_context,
)

__all__ = [
    "ENDPOINT",
    "Endpoint",
    "EndpointConfig",
    "RunningEndpoint",
    "make_app",
    "run_endpoint",
    "serve_endpoint",
    "wall_clock_ms",
]

log = structlog.get_logger("hotline.endpoint")

_ID_RANDOM_BYTES: Final = 10
UNAVAILABLE_AFTER_MS: Final = 4_000
"""Envelopes waiting this long with none accepted: the ``relay_unavailable`` alarm."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _new_id(now_ms: int) -> bytes:
    return make_id(now_ms, os.urandom(_ID_RANDOM_BYTES))


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Everything an endpoint needs to run; ``port`` 0 lets the OS pick."""

    network: Network
    endpoint_id: str
    key: SigningKey
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    relay_url: str | None = None
    tick_s: float = 0.5
    monitor_s: float = 0.5  # how often the log is read up to the witnessed checkpoint
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], int] = wall_clock_ms
    feeds: Path | None = None  # sensor feeds (feeds.toml); None: DATA/feeds.toml if present
    tls: TlsSettings = field(default_factory=TlsSettings)  # to the relay, and the API's own
    heartbeat_s: float = HEARTBEAT_S  # relay silent this long: ping; no pong in half: reconnect
    # a connection must send a whole request within this long of connecting or of its last
    # answer (a client trickling its headers is closed too), like the relay's
    header_timeout_s: float = 10.0

    # relay replicas sharing one log: tried in turn, each after the other fails (failover)
    relay_urls: tuple[str, ...] = ()
    # host names the API answers to besides loopback's and the listening address (--api-name)
    api_names: tuple[str, ...] = ()
    session_idle_s: float = DEFAULT_IDLE_S  # an operator's session ends after this long idle

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]

    @property
    def ws_urls(self) -> tuple[str, ...]:
        """Every relay URL to try: ``relay_urls``, else ``relay_url``, else network.toml's."""
        return self.relay_urls or (self.relay_url or self.network.relay.url,)


class Endpoint:
    """One national gateway at run time; see the module docstring."""

    def __init__(
        self,
        config: EndpointConfig,
        journal: ThreadedJournal,
        core: EndpointCore,
        session: aiohttp.ClientSession,
    ) -> None:
        self.config = config
        self.me = config.endpoint_id
        self.journal = journal
        self.core = core
        self.hub = EventHub()
        self.relay_http = RelayHttp(session, http_base(config.ws_url), agent=config.endpoint_id)
        self._monitored = Frontier()  # the log entries read and checked so far
        self.relay_url_now = ""  # the relay URL being tried or used
        self._session = session
        self._ws_session: aiohttp.ClientSession | None = None  # the relay WebSocket's, from start
        self._clock = config.clock
        self._lock = asyncio.Lock()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcomed = False
        self.connected_since_ms: int | None = None
        self.last_disconnect: str | None = None
        self._witness_queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # relay_unavailable: since when envelopes wait with none accepted, the alarm raised
        self._waiting_since_ms: int | None = None
        self.outage: RelayOutage | None = None

    # ------------------------------------------------------------------ life

    @classmethod
    async def open(cls, config: EndpointConfig) -> Endpoint:
        """Open the journal and rebuild the core from it (nothing runs yet)."""
        if config.endpoint_id not in config.network.endpoints:
            raise ConfigError(f"{config.endpoint_id!r} is not an endpoint of the network")
        if config.network.endpoints[config.endpoint_id].public_key != config.key.public:
            raise ConfigError(f"the key given is not {config.endpoint_id}'s key in the network")
        transport = relay_transport(config.ws_url, config.tls)  # plaintext only on loopback
        # A new journal starts its seq at the time in microseconds, so an endpoint whose
        # journal was lost still signs seqs above those the relay accepted from it before.
        journal = await ThreadedJournal.open(
            config.data_dir / JOURNAL_FILE, initial_seq=time.time_ns() // 1000
        )
        try:
            state = await journal.call(lambda j: j.load_state())
            core = EndpointCore(
                config.network, config.endpoint_id, config.key, state, _new_id
            )
            connector = client_connector(config.tls.client)  # wss and https to the relay
        except BaseException:
            await journal.close()
            raise
        note_transport(transport, endpoint=config.endpoint_id, relay=config.ws_url)
        session = aiohttp.ClientSession(connector=connector)
        return cls(config, journal, core, session)

    def start(self) -> None:
        """Start the relay connection, the deadline timer and the witness."""
        limit = self.config.network.limits.max_frame_bytes
        # The WebSocket has a session of its own: an upgrade never rides a pooled keep-alive
        # connection that died with the link (half-open), which would cost one more timeout.
        self._ws_session = aiohttp.ClientSession(connector=client_connector(self.config.tls.client))
        self._tasks = [
            asyncio.create_task(
                run_connection(
                    self._ws_session, self.config.ws_urls, self, self.config.backoff,
                    max_message=limit, heartbeat_s=self.config.heartbeat_s,
                    dialing=self._dialing,
                ),
                name=f"endpoint-{self.me}-connection",
            ),
            asyncio.create_task(self._ticker(), name=f"endpoint-{self.me}-ticker"),
            asyncio.create_task(self._witness(), name=f"endpoint-{self.me}-witness"),
            asyncio.create_task(self._monitor(), name=f"endpoint-{self.me}-monitor"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        log.info("endpoint_started", endpoint=self.me, relay=self.config.ws_url,
                 journal=str(self.config.data_dir / JOURNAL_FILE))

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("endpoint_task_failed", endpoint=self.me, task=task.get_name(),
                      error=repr(task.exception()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._ws is not None:
            await self._ws.close()
        if self._ws_session is not None:
            await self._ws_session.close()
        await self._session.close()
        self.hub.close()
        await self.journal.close()
        log.info("endpoint_stopped", endpoint=self.me)

    # ------------------------------------------------------------------ steps

    async def _step(self, compute: Callable[[int], Output]) -> Output:
        async with self._lock:
            out = compute(self._clock())
            await self._apply(out)
            return out

    async def _apply(self, out: Output) -> None:
        await self.journal.record(out.events)
        sent = [await self._send(data) for data in out.send]
        for event in out.events:
            self._log(event, transmitted=all(sent))
            self.hub.publish(event)
        for note in out.checkpoints:
            self._witness_queue.put_nowait(note)
        if any(isinstance(event, MessageAccepted) for event in out.events):
            await self._accepting()
        if out.welcomed is not None:
            await self._welcome(out.welcomed)

    # ------------------------------------------------------------------ relay availability

    async def _accepting(self) -> None:
        """Something was accepted: the relay logs again (called under the lock)."""
        now = self._clock()
        self._waiting_since_ms = now if self.core.pending_count else None
        outage, self.outage = self.outage, None
        if outage is not None:
            await self._edge_event(RelayBack(now, now - outage.since_ms))

    async def _watch_availability(self) -> None:
        """Raise ``relay_unavailable`` once envelopes have waited too long (under the lock)."""
        now = self._clock()
        if not self.core.pending_count:
            self._waiting_since_ms = None
            return
        if self._waiting_since_ms is None:
            self._waiting_since_ms = now
        if self.outage is None and now - self._waiting_since_ms >= UNAVAILABLE_AFTER_MS:
            reason = self.last_disconnect or "not connected"
            if self.welcomed:
                reason = f"connected, but nothing is accepted (last drop: {reason})"
            self.outage = RelayOutage(now, self._waiting_since_ms, self.core.pending_count,
                                      reason)
            await self._edge_event(self.outage)

    async def _edge_event(self, event: EndpointEvent) -> None:
        await self.journal.record((event,))
        self._log(event, transmitted=True)
        self.hub.publish(event)

    async def _send(self, data: bytes) -> bool:
        ws = self._ws
        if ws is None or ws.closed or (is_envelope(data) and not self.welcomed):
            return False
        try:
            await ws.send_bytes(data)
        except (ConnectionError, RuntimeError) as exc:
            log.warning("envelope_not_sent", endpoint=self.me, reason=repr(exc))
            return False
        return True

    async def _welcome(self, size: int) -> None:
        self.welcomed = True
        now = self._clock()
        self.connected_since_ms = now
        self.core.connection(up=True, now_ms=now)
        connected = RelayConnected(now, size)
        await self.journal.record((connected,))
        self._log(connected, transmitted=True)
        self.hub.publish(connected)
        pending = self.core.pending_frames()
        for frame in pending:
            await self._send(frame)
        if pending:
            log.info("envelopes_resent", endpoint=self.me, count=len(pending))

    # ------------------------------------------------------------------ the connection

    def _dialing(self, url: str) -> None:
        """The connection tries ``url``: proofs are fetched from the same relay replica."""
        self.relay_http.base = http_base(url)
        if url != self.relay_url_now:
            if self.relay_url_now:
                log.info("relay_failover", endpoint=self.me, url=url,
                         previous=self.relay_url_now)
            self.relay_url_now = url

    async def attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async with self._lock:
            self._ws = ws
            self.welcomed = False

    async def received(self, data: bytes) -> None:
        try:
            await self._step(lambda now: self.core.receive(data, now))
        except Rejected as exc:
            log.warning("relay_message_refused", endpoint=self.me, code=exc.code,
                        reason=str(exc))

    async def detach(self, reason: str) -> bool:
        async with self._lock:
            was_welcomed = self.welcomed
            self._ws = None
            self.welcomed = False
            self.connected_since_ms = None
            self.core.connection(up=False, now_ms=self._clock())
            if was_welcomed or reason != self.last_disconnect:
                event = RelayDisconnected(self._clock(), reason)
                await self.journal.record((event,))
                self._log(event, transmitted=True)
                self.hub.publish(event)
            self.last_disconnect = reason
            return was_welcomed

    # ------------------------------------------------------------------ timers

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            await self._step(self.core.tick)
            async with self._lock:
                await self._watch_availability()

    async def _witness(self) -> None:
        """Judge checkpoint notes one at a time, in the order they came."""
        while True:
            note = await self._witness_queue.get()
            async with self._lock:
                verdict = self.core.observe_checkpoint(note, self._clock())
                if isinstance(verdict, Output):
                    await self._apply(verdict)
                    continue
            await self._prove(verdict)

    async def _prove(self, need: NeedsProof) -> None:
        while True:
            try:
                proof = await self.relay_http.consistency(*need.sizes)
            except RelayUnavailable as exc:
                old, new = need.sizes
                log.warning("consistency_proof_unavailable", endpoint=self.me,
                            old=old, new=new, reason=exc.sentence)
                return
            async with self._lock:
                result = self.core.complete_checkpoint(need, proof, self._clock())
                if isinstance(result, Output):
                    await self._apply(result)
                    return
            need = result

    async def _monitor(self) -> None:
        """Read the log under each checkpoint we witness, check it, compare peers' views.

        Entries are fetched from the relay's entry tiles up to the held checkpoint's
        size and must hash to its root before the core sees them; each checkpoint a
        peer signed into a body is compared with ours through a consistency proof.
        """
        while True:
            await asyncio.sleep(self.config.monitor_s)
            await self._read_log()
            for need in self.core.peer_proofs_needed():
                try:
                    proof = await self.relay_http.consistency(need.old, need.new)
                except RelayUnavailable as exc:
                    log.warning("consistency_proof_unavailable", endpoint=self.me,
                                old=need.old, new=need.new, reason=exc.sentence, peer=True)
                    continue
                await self._step(functools.partial(self._peer_proof, need, proof))

    def _peer_proof(self, need: PeerProofNeed, proof: ConsistencyProof, now: int) -> Output:
        return self.core.peer_proof(need, proof, now)

    async def _read_log(self) -> None:
        held = self.core.witness.held
        start = self._monitored.size
        if held is None or held.size <= start:
            return
        try:
            entries = await self.relay_http.entries(start, held.size)
        except RelayUnavailable as exc:
            log.warning("log_entries_unavailable", endpoint=self.me, start=start,
                        size=held.size, reason=exc.sentence)
            return
        trial = self._monitored.copy()
        for entry in entries:
            trial.append(leaf_hash(entry))
        root = trial.root()
        if root != held.root:
            await self._step(lambda now: self.core.entries_mismatch(root, now))
            return
        self._monitored = trial
        await self._step(lambda now: self.core.log_entries(start, tuple(entries), now))

    # ------------------------------------------------------------------ operator requests

    async def post_message(self, data: object, operator: str | None = None) -> bytes:
        """Sign, journal and send a message ``operator`` posted; its id. Raises ``Rejected``."""
        ref = referenced_id(data)
        ref_incident = None
        if ref is not None:
            ref_incident = await self.journal.call(lambda j: j.reads.incident_of(ref))

        def compute(now: int) -> Output:
            header = Header(
                id=_new_id(now),
                sender=self.me,
                ts=now,
                kid=self.config.key.public.kid,
                new_incident=_new_id(now),
                skew_ms=self.config.network.limits.clock_skew_ms,
                operator=operator,
            )
            return self.core.send_message(draft_body(data, header, ref_incident), now)

        out = await self._step(compute)
        queued = next(e for e in out.events if isinstance(e, MessageQueued))
        return queued.body.id

    async def acknowledge(
        self, ref: bytes, action: AckAction | None, note: str | None, operator: str | None = None
    ) -> None:
        """``operator`` acknowledged ``ref``. Raises UnknownMessage, AlreadyAcknowledged."""
        await self._step(lambda now: self.core.acknowledge(ref, action, note, now, operator))

    @property
    def connected(self) -> bool:
        return self.welcomed

    # ------------------------------------------------------------------ logging

    def _log(self, event: EndpointEvent, *, transmitted: bool) -> None:
        name = event_name(event)
        fields: dict[str, object] = {"endpoint": self.me}
        if isinstance(event, ReceiptQueued):
            receipt = event.body
            name = "receipt_sent" if transmitted else "receipt_held"
            fields.update(id=format_id(receipt.id), ref=format_id(receipt.ref),
                          stage=receipt.stage.value, seq=receipt.seq, link_test=event.link_test)
            if event.link_test:
                log.debug(name, **fields)
                return
        elif isinstance(event, MessageQueued):
            body = event.body
            name = "envelope_sent" if transmitted else "envelope_held"
            fields.update(id=format_id(body.id), t=body.type.value, seq=body.seq,
                          precedence=body.precedence.value,
                          link=",".join(f"{self.me}->{r}" for r in event.recipients))
        elif isinstance(event, LinkTestAnswered):
            log.debug(name, endpoint=self.me, id=format_id(event.test_id))
            return
        elif isinstance(event, MessageAccepted) and event.receipt:
            log.debug(name, endpoint=self.me, id=format_id(event.id), index=event.index)
            return
        else:
            fields.update(_log_fields(self.me, event))
        if event.alarm:
            log.warning(name, **fields)
        else:
            log.info(name, **fields)


def _log_fields(me: str, event: EndpointEvent) -> dict[str, object]:
    fields = event_json(event)
    fields.pop("event", None)
    fields.pop("body", None)
    party = fields.get("party") or fields.get("from")
    if isinstance(party, str) and party and party != me:
        role = fields.get("role")
        sender_side = fields.get("party") is not None and role != "recipient"
        fields["link"] = f"{me}->{party}" if sender_side else f"{party}->{me}"
    return fields


# ---------------------------------------------------------------------- aiohttp glue

def make_app(config: EndpointConfig) -> web.Application:
    """The endpoint as an aiohttp application: the API routes, and a cleanup
    context that opens the endpoint when the app starts and closes it after."""
    app = web.Application(middlewares=[access_middleware])
    app[ACCESS] = Access(
        names=host_names(config.host, config.api_names),
        operators=OperatorStore(config.data_dir),
        sessions=SessionStore(time.monotonic, config.session_idle_s),
        cookie=("__Host-" if config.tls.serve is not None else "")
        + f"hotline_{config.endpoint_id}",
        secure=config.tls.serve is not None,
    )

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        endpoint = await Endpoint.open(config)
        app[ENDPOINT] = endpoint
        endpoint.start()
        yield
        await endpoint.close()

    async def end_streams(app: web.Application) -> None:
        app[ENDPOINT].hub.close()  # live event streams end before the server waits for them

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(end_streams)
    add_feed_routes(app, config)  # reads the feeds file now: a bad one stops the start
    add_cap_routes(app)  # before add_routes: /api/messages/{id}.cap is matched first
    add_login_routes(app)
    add_routes(app)
    return app


@dataclass(frozen=True, slots=True)
class RunningEndpoint:
    """A listening endpoint: its state and the port it bound."""

    endpoint: Endpoint
    host: str
    port: int
    scheme: str = "http"  # https when the API is served over TLS

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve_endpoint(config: EndpointConfig) -> AsyncIterator[RunningEndpoint]:
    """Run an endpoint and its API on ``config.host``/``config.port`` for the block.

    The API is served over TLS when ``config.tls.serve`` is set. Off loopback it
    is refused without TLS (``unsafe_plaintext`` does not lift this) and without
    an operator who could log in (:func:`~hotline.endpoint.access.check_exposure`).
    """
    tls = config.tls
    check_exposure(config.host, tls.serve is not None, OperatorStore(config.data_dir))
    transport = listening_transport(
        config.host, tls.serve, unsafe_plaintext=tls.unsafe_plaintext,
        what="the endpoint's console and feed API", cert_flags="--api-tls-cert and --api-tls-key",
    )
    ssl_context = server_context(tls.serve) if tls.serve is not None else None
    note_transport(transport, endpoint=config.endpoint_id, api_host=config.host)
    app = make_app(config)
    # keepalive_timeout runs from the connection's start until a whole request has come (and
    # again after each answer), so it bounds reading headers as well as idle keep-alive
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           keepalive_timeout=config.header_timeout_s)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        await site.start()
        addresses = runner.addresses
        port = int(addresses[0][1]) if addresses else config.port
        log.info("endpoint_listening", endpoint=config.endpoint_id, host=config.host, port=port,
                 transport=transport.value)
        scheme = "http" if ssl_context is None else "https"
        yield RunningEndpoint(app[ENDPOINT], config.host, port, scheme)
    finally:
        await runner.cleanup()


async def run_endpoint(
    config: EndpointConfig,
    stop: asyncio.Event | None = None,
    ready: Callable[[RunningEndpoint], Awaitable[None] | None] | None = None,
) -> None:
    """Run until ``stop`` is set (or the task is cancelled), then close cleanly."""
    async with serve_endpoint(config) as running:
        if ready is not None:
            result = ready(running)
            if result is not None:
                await result
        await (stop or asyncio.Event()).wait()
