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
from hotline.endpoint.appkeys import ENDPOINT, LOG_LINES
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
from hotline.httplog import LineBudget, server_logger
from hotline.lograte import LogThrottle
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


class RelayLink:
    """One relay's session at the edge: its WebSocket, proofs, log monitor and outage.

    A one-relay network has one; a network of several relays one per relay,
    each connecting, witnessing and monitoring on its own, so losing one relay
    leaves the others working.
    """

    def __init__(self, endpoint: Endpoint, relay: str, urls: tuple[str, ...],
                 relay_http: RelayHttp) -> None:
        self.endpoint = endpoint
        self.relay = relay
        self.urls = urls
        self.relay_http = relay_http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcomed = False
        self.connected_since_ms: int | None = None
        self.last_disconnect: str | None = None
        self.relay_url_now = ""  # the relay URL being tried or used
        self.monitored = Frontier()  # the log entries read and checked so far
        self.witness_queue: asyncio.Queue[bytes] = asyncio.Queue()
        # relay_unavailable: since when envelopes wait with none accepted, the alarm raised
        self.waiting_since_ms: int | None = None
        self.outage: RelayOutage | None = None

    @property
    def tag(self) -> str:
        """The relay's id in events of a network of several relays, else ''."""
        return self.relay if self.endpoint.several else ""

    async def attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await self.endpoint.attach_link(self, ws)

    async def received(self, data: bytes) -> None:
        await self.endpoint.received_on(self, data)

    async def detach(self, reason: str) -> bool:
        return await self.endpoint.detach_link(self, reason)

    def dialing(self, url: str) -> None:
        """The connection tries ``url``: proofs are fetched from the same relay replica."""
        self.relay_http.base = http_base(url)
        if url != self.relay_url_now:
            if self.relay_url_now:
                log.info("relay_failover", endpoint=self.endpoint.me, url=url,
                         previous=self.relay_url_now, relay=self.relay)
            self.relay_url_now = url


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
        self.several = config.network.multipath
        self.links: dict[str, RelayLink] = {}
        for relay, urls in _relay_urls(config).items():
            http = RelayHttp(session, http_base(urls[0]), agent=config.endpoint_id)
            self.links[relay] = RelayLink(self, relay, urls, http)
        self._primary = self.links[config.network.relay.id]
        self._session = session
        self._ws_session: aiohttp.ClientSession | None = None  # the relay WebSocket's, from start
        self._clock = config.clock
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # the first (in a one-relay network, the only) relay's session
    @property
    def relay_http(self) -> RelayHttp:
        return self._primary.relay_http

    @property
    def welcomed(self) -> bool:
        return self._primary.welcomed

    @property
    def connected_since_ms(self) -> int | None:
        return self._primary.connected_since_ms

    @property
    def last_disconnect(self) -> str | None:
        return self._primary.last_disconnect

    @property
    def relay_url_now(self) -> str:
        return self._primary.relay_url_now

    @property
    def outage(self) -> RelayOutage | None:
        return self._primary.outage

    # ------------------------------------------------------------------ life

    @classmethod
    async def open(cls, config: EndpointConfig) -> Endpoint:
        """Open the journal and rebuild the core from it (nothing runs yet)."""
        if config.endpoint_id not in config.network.endpoints:
            raise ConfigError(f"{config.endpoint_id!r} is not an endpoint of the network")
        if config.network.endpoints[config.endpoint_id].public_key != config.key.public:
            raise ConfigError(f"the key given is not {config.endpoint_id}'s key in the network")
        if config.network.multipath and (config.relay_url or config.relay_urls):
            raise ConfigError(
                "--relay-url is for a network of one relay; this network lists several "
                f"({', '.join(config.network.relays)}), each with its url in network.toml"
            )
        transports = [relay_transport(urls[0], config.tls)  # plaintext only on loopback
                      for urls in _relay_urls(config).values()]
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
        for transport, urls in zip(transports, _relay_urls(config).values(), strict=True):
            note_transport(transport, endpoint=config.endpoint_id, relay=urls[0])
        session = aiohttp.ClientSession(connector=connector)
        return cls(config, journal, core, session)

    def start(self) -> None:
        """Start each relay's connection, witness and monitor, and the deadline timer."""
        limit = self.config.network.limits.max_frame_bytes
        # The WebSocket has a session of its own: an upgrade never rides a pooled keep-alive
        # connection that died with the link (half-open), which would cost one more timeout.
        self._ws_session = aiohttp.ClientSession(connector=client_connector(self.config.tls.client))
        suffix = {link.relay: (f"-{link.relay}" if self.several else "")
                  for link in self.links.values()}
        self._tasks = [asyncio.create_task(self._ticker(), name=f"endpoint-{self.me}-ticker")]
        for link in self.links.values():
            self._tasks += [
                asyncio.create_task(
                    run_connection(
                        self._ws_session, link.urls, link, self.config.backoff,
                        max_message=limit, heartbeat_s=self.config.heartbeat_s,
                        dialing=link.dialing,
                    ),
                    name=f"endpoint-{self.me}-connection{suffix[link.relay]}",
                ),
                asyncio.create_task(self._witness(link),
                                    name=f"endpoint-{self.me}-witness{suffix[link.relay]}"),
                asyncio.create_task(self._monitor(link),
                                    name=f"endpoint-{self.me}-monitor{suffix[link.relay]}"),
            ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        log.info("endpoint_started", endpoint=self.me,
                 relay=",".join(link.urls[0] for link in self.links.values()),
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
        for link in self.links.values():
            if link.ws is not None:
                await link.ws.close()
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
            await self._apply(out, self._primary)
            return out

    async def _apply(self, out: Output, link: RelayLink) -> None:
        """Journal ``out``, then send its frames: ``send`` over ``link``, ``send_to`` as named."""
        await self.journal.record(out.events)
        sent = [await self._send(link, data) for data in out.send]
        for relay, data in out.send_to:
            target = self.links.get(relay)
            if target is not None:
                sent.append(await self._send(target, data))
        for event in out.events:
            self._log(event, transmitted=all(sent))
            self.hub.publish(event)
        for note in out.checkpoints:
            link.witness_queue.put_nowait(note)
        for event in out.events:
            if isinstance(event, MessageAccepted):
                accepted_on = self.links.get(event.relay, self._primary)
                await self._accepting(accepted_on)
        if out.welcomed is not None:
            await self._welcome(link, out.welcomed)

    # ------------------------------------------------------------------ relay availability

    async def _accepting(self, link: RelayLink) -> None:
        """Something was accepted: the relay logs again (called under the lock)."""
        now = self._clock()
        link.waiting_since_ms = now if self.core.pending_on(link.relay) else None
        outage, link.outage = link.outage, None
        if outage is not None:
            await self._edge_event(RelayBack(now, now - outage.since_ms, link.tag))

    async def _watch_availability(self, link: RelayLink) -> None:
        """Raise ``relay_unavailable`` once envelopes have waited too long (under the lock)."""
        now = self._clock()
        waiting = self.core.pending_on(link.relay)
        if not waiting:
            link.waiting_since_ms = None
            return
        if link.waiting_since_ms is None:
            link.waiting_since_ms = now
        if link.outage is None and now - link.waiting_since_ms >= UNAVAILABLE_AFTER_MS:
            reason = link.last_disconnect or "not connected"
            if link.welcomed:
                reason = f"connected, but nothing is accepted (last drop: {reason})"
            link.outage = RelayOutage(now, link.waiting_since_ms, waiting, reason, link.tag)
            await self._edge_event(link.outage)

    async def _edge_event(self, event: EndpointEvent) -> None:
        await self.journal.record((event,))
        self._log(event, transmitted=True)
        self.hub.publish(event)

    async def _send(self, link: RelayLink, data: bytes) -> bool:
        ws = link.ws
        if ws is None or ws.closed or (is_envelope(data) and not link.welcomed):
            return False
        try:
            await ws.send_bytes(data)
        except (ConnectionError, RuntimeError) as exc:
            log.warning("envelope_not_sent", endpoint=self.me, reason=repr(exc),
                        relay=link.relay)
            return False
        return True

    async def _welcome(self, link: RelayLink, size: int) -> None:
        link.welcomed = True
        now = self._clock()
        link.connected_since_ms = now
        self.core.connection(up=True, now_ms=now, relay=link.relay)
        connected = RelayConnected(now, size, link.tag)
        await self.journal.record((connected,))
        self._log(connected, transmitted=True)
        self.hub.publish(connected)
        pending = self.core.pending_frames(link.relay)
        for frame in pending:
            await self._send(link, frame)
        if pending:
            log.info("envelopes_resent", endpoint=self.me, count=len(pending), relay=link.relay)

    # ------------------------------------------------------------------ the connection

    async def attach_link(self, link: RelayLink, ws: aiohttp.ClientWebSocketResponse) -> None:
        async with self._lock:
            link.ws = ws
            link.welcomed = False

    async def received(self, data: bytes) -> None:
        """A WebSocket message from the first (in a one-relay network, the only) relay."""
        await self.received_on(self._primary, data)

    async def received_on(self, link: RelayLink, data: bytes) -> None:
        try:
            async with self._lock:
                out = self.core.receive(data, self._clock(), link.relay)
                await self._apply(out, link)
        except Rejected as exc:
            log.warning("relay_message_refused", endpoint=self.me, code=exc.code,
                        reason=str(exc), relay=link.relay)

    async def detach_link(self, link: RelayLink, reason: str) -> bool:
        async with self._lock:
            was_welcomed = link.welcomed
            link.ws = None
            link.welcomed = False
            link.connected_since_ms = None
            self.core.connection(up=False, now_ms=self._clock(), relay=link.relay)
            if was_welcomed or reason != link.last_disconnect:
                event = RelayDisconnected(self._clock(), reason, link.tag)
                await self.journal.record((event,))
                self._log(event, transmitted=True)
                self.hub.publish(event)
            link.last_disconnect = reason
            return was_welcomed

    # ------------------------------------------------------------------ timers

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            await self._step(self.core.tick)
            async with self._lock:
                for link in self.links.values():
                    await self._watch_availability(link)

    async def _witness(self, link: RelayLink) -> None:
        """Judge one relay's checkpoint notes one at a time, in the order they came."""
        while True:
            note = await link.witness_queue.get()
            async with self._lock:
                verdict = self.core.observe_checkpoint(note, self._clock(), link.relay)
                if isinstance(verdict, Output):
                    await self._apply(verdict, link)
                    continue
            await self._prove(link, verdict)

    async def _prove(self, link: RelayLink, need: NeedsProof) -> None:
        while True:
            try:
                proof = await link.relay_http.consistency(*need.sizes)
            except RelayUnavailable as exc:
                old, new = need.sizes
                log.warning("consistency_proof_unavailable", endpoint=self.me,
                            old=old, new=new, reason=exc.sentence, relay=link.relay)
                return
            async with self._lock:
                result = self.core.complete_checkpoint(need, proof, self._clock(), link.relay)
                if isinstance(result, Output):
                    await self._apply(result, link)
                    return
            need = result

    async def _monitor(self, link: RelayLink) -> None:
        """Read a relay's log under each checkpoint we witness, check it, compare peers' views.

        Entries are fetched from the relay's entry tiles up to the held checkpoint's
        size and must hash to its root before the core sees them; each checkpoint a
        peer signed into a body is compared with ours through a consistency proof.
        """
        while True:
            await asyncio.sleep(self.config.monitor_s)
            await self._read_log(link)
            for need in self.core.peer_proofs_needed(link.relay):
                try:
                    proof = await link.relay_http.consistency(need.old, need.new)
                except RelayUnavailable as exc:
                    log.warning("consistency_proof_unavailable", endpoint=self.me,
                                old=need.old, new=need.new, reason=exc.sentence, peer=True,
                                relay=link.relay)
                    continue
                await self._step(functools.partial(self._peer_proof, link, need, proof))

    def _peer_proof(self, link: RelayLink, need: PeerProofNeed, proof: ConsistencyProof,
                    now: int) -> Output:
        return self.core.peer_proof(need, proof, now, link.relay)

    async def _read_log(self, link: RelayLink) -> None:
        held = self.core.paths[link.relay].witness.held
        start = link.monitored.size
        if held is None or held.size <= start:
            return
        try:
            entries = await link.relay_http.entries(start, held.size)
        except RelayUnavailable as exc:
            log.warning("log_entries_unavailable", endpoint=self.me, start=start,
                        size=held.size, reason=exc.sentence, relay=link.relay)
            return
        trial = link.monitored.copy()
        for entry in entries:
            trial.append(leaf_hash(entry))
        root = trial.root()
        if root != held.root:
            await self._step(lambda now: self.core.entries_mismatch(root, now, link.relay))
            return
        link.monitored = trial
        await self._step(lambda now: self.core.log_entries(start, tuple(entries), now,
                                                           link.relay))

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
        """Welcomed by a relay (with several relays: by any of them)."""
        return any(link.welcomed for link in self.links.values())

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


def _relay_urls(config: EndpointConfig) -> dict[str, tuple[str, ...]]:
    """Each relay's URLs to try, in order: one relay (its replicas), or each of several."""
    network = config.network
    if not network.multipath:
        return {network.relay.id: config.ws_urls}
    return {relay.id: (relay.url,) for relay in network.all_relays}


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
    app[LOG_LINES] = LineBudget(LogThrottle(), config.clock)
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
    app = make_app(config)
    # failed handshakes, malformed requests, refused logins: one budget of lines, each count
    # riding on the next line of its event
    budget = app[LOG_LINES]
    ssl_context = (
        server_context(tls.serve, lines=budget.lines, clock=budget.clock)
        if tls.serve is not None else None
    )
    note_transport(transport, endpoint=config.endpoint_id, api_host=config.host)
    # keepalive_timeout runs from the connection's start until a whole request has come (and
    # again after each answer), so it bounds reading headers as well as idle keep-alive
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           keepalive_timeout=config.header_timeout_s,
                           logger=server_logger("hotline.endpoint.http", budget.lines,
                                                budget.clock))
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
