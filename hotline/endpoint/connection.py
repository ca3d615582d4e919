"""The WebSocket to the relay: connect, hand messages to a handler, reconnect forever.

Reconnection uses exponential backoff with jitter: the delay starts at
``Backoff.initial_s``, doubles after each failed attempt up to ``max_s``, and
each wait is drawn between half the delay and the full delay. A connection
that got as far as ``welcome`` resets the delay.

Several relay URLs (relay replicas sharing one log): each new attempt goes to
the next URL in turn, so a connection that drops, or an attempt that fails,
is followed by one to another replica after a short pause; the backoff delay
grows only after every URL failed once in a row. The first URL is preferred:
while connected elsewhere, its ``/healthz`` is asked every ``HOME_PROBE_S``,
and once it has answered ``ok`` twice in a row the connection moves back to it,
so endpoints spread over the replicas again after one was down or hung.

When every URL in turn closed its session with 1013 (no replica can log now:
a quorum loss), no new session is opened until one of them answers its
``/healthz`` with 200 (asked every ``READY_POLL_S``, at most ``BUSY_WAIT_S``,
after at least ``BUSY_PAUSE_S``): opening and closing sessions meanwhile
would spend the endpoint's session budget at the relay (``rate_limited``) and
lock it out just when the relay can log again.

Liveness: the relay must send something at least every ``heartbeat_s``. When
it has been silent for a third of that, a WebSocket ping goes out (the relay's
WebSocket layer answers it with a pong); after ``heartbeat_s`` of silence the
connection is dropped, its close bounded by ``CLOSE_S``. With the default of
1.5 s a hung relay (a paused process, a dead link) is left within 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
import structlog

from hotline.endpoint.relay_http import http_base
from hotline.protocol.session import AUTH_FAILED_CLOSE
from hotline.tls import network_sentence, refusal_sentence

__all__ = ["HEARTBEAT_S", "HOME_PROBE_S", "Backoff", "SessionHandler", "run_connection"]

log = structlog.get_logger("hotline.endpoint")

_MIN_MESSAGE_LIMIT: Final = 4 * 1024 * 1024  # checkpoint notes with many cosignatures
HEARTBEAT_S: Final = 1.5
"""Default seconds of silence from the relay after which the connection is dropped."""
HOME_PROBE_S: Final = 1.0
"""While on another replica: how often the preferred (first) relay URL's /healthz is asked."""
CLOSE_S: Final = 1.0
"""Longest wait for the relay's answer to our close frame."""
BUSY_PAUSE_S: Final = 0.5
"""Pause before the next attempt once every relay URL in turn closed with 1013 (cannot log)."""
READY_POLL_S: Final = 0.2
"""Meanwhile, how often every relay URL's /healthz is asked whether it can log again."""
BUSY_WAIT_S: Final = 10.0
"""Longest wait for a /healthz 200 before a session is tried anyway."""
_HOME_CLOSE: Final = 1000
NOT_READY_CLOSE: Final = 1013


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 5.0

    def delays(self, rng: random.Random) -> _Delays:
        return _Delays(self, rng)


class _Delays:
    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self._backoff = backoff
        self._rng = rng
        self._delay = backoff.initial_s

    def reset(self) -> None:
        self._delay = self._backoff.initial_s

    def next(self) -> float:
        delay = self._delay
        self._delay = min(self._delay * 2, self._backoff.max_s)
        return delay * (0.5 + self._rng.random() / 2)


class SessionHandler(Protocol):
    """What the connection drives: the endpoint."""

    async def attach(self, ws: aiohttp.ClientWebSocketResponse) -> None: ...

    async def received(self, data: bytes) -> None: ...

    async def detach(self, reason: str) -> bool:
        """The connection ended; True if it had been welcomed."""
        ...


async def run_connection(
    session: aiohttp.ClientSession,
    urls: str | Sequence[str],
    handler: SessionHandler,
    backoff: Backoff,
    *,
    max_message: int,
    heartbeat_s: float = HEARTBEAT_S,
    dialing: Callable[[str], None] | None = None,
) -> None:
    """Keep a connection to one of ``urls`` open until cancelled.

    ``dialing(url)`` is called before each attempt, with the URL tried.

    The connection is dropped after ``heartbeat_s`` without a frame from the
    relay (pings go out meanwhile, see the module docstring), so a relay that
    hangs or a link that went silent (half-open, blackholed) is noticed within
    that; the WebSocket upgrade gets 1.5 times that budget.
    """
    delays = backoff.delays(random.Random())  # noqa: S311  (jitter, not cryptography)
    limit = max(max_message * 2, _MIN_MESSAGE_LIMIT)
    ring = [urls] if isinstance(urls, str) else list(urls)
    failed_in_a_row = 0
    busy_in_a_row = 0  # sessions closed with 1013 (the relay cannot log now), in a row
    index = 0
    while True:
        url = ring[index]
        if dialing is not None:
            dialing(url)
        home = _Homecoming(session, ring[0]) if index else None
        try:
            ws = await _open(session, url, limit, heartbeat_s)
            async with ws:
                await handler.attach(ws)
                reason = await _pump(ws, handler, url, heartbeat_s, home)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = _failure(exc, url)
        welcomed = await handler.detach(reason)
        if welcomed:
            delays.reset()
            failed_in_a_row = 0
        else:
            failed_in_a_row += 1
        if home is not None and home.due:
            log.info("relay_returning", url=ring[0], previous=url)
            index = 0
            continue  # the preferred replica is ready: straight back to it
        index = (index + 1) % len(ring)
        busy_in_a_row = busy_in_a_row + 1 if f"({NOT_READY_CLOSE}:" in reason else 0
        if busy_in_a_row >= len(ring):
            index = await _until_ready(session, ring, index)  # no replica can log now
        elif len(ring) > 1 and (welcomed or failed_in_a_row % len(ring)):
            await asyncio.sleep(backoff.initial_s / 2)  # another replica may be up: try it
        else:
            await asyncio.sleep(delays.next())


async def _until_ready(session: aiohttp.ClientSession, ring: Sequence[str], index: int) -> int:
    """The index of the first URL whose /healthz answers 200 (see the module docstring);
    ``index`` when none does within ``BUSY_WAIT_S``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    log.info("relay_waiting_until_ready", urls=len(ring), poll_s=READY_POLL_S)
    await asyncio.sleep(BUSY_PAUSE_S)
    while loop.time() - began < BUSY_WAIT_S:
        answers = await asyncio.gather(*(_healthy(session, url) for url in ring))
        ready = [i for i, ok in enumerate(answers) if ok]
        if ready:
            return ready[0]
        await asyncio.sleep(READY_POLL_S)
    return index


async def _healthy(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether the relay at ``url`` answers /healthz with 200 (ready) within READY_POLL_S."""
    timeout = aiohttp.ClientTimeout(total=max(READY_POLL_S, 0.5))
    try:
        async with session.get(http_base(url) + "/healthz", timeout=timeout) as response:
            return response.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


class _Homecoming:
    """Whether the preferred relay answered its /healthz ``ok`` twice in a row (see above)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = http_base(url) + "/healthz"
        self._ok_in_a_row = 0
        self._next = asyncio.get_running_loop().time() + HOME_PROBE_S
        self._probe: asyncio.Task[bool] | None = None
        self.due = False

    def poll(self) -> bool:
        """Start or collect a probe when one is due; True once it is time to go back."""
        now = asyncio.get_running_loop().time()
        if self._probe is not None and self._probe.done():
            ok = not self._probe.cancelled() and self._probe.exception() is None \
                and self._probe.result()
            self._probe = None
            self._ok_in_a_row = self._ok_in_a_row + 1 if ok else 0
            self.due = self._ok_in_a_row >= 2
        if self._probe is None and now >= self._next and not self.due:
            self._next = now + HOME_PROBE_S
            self._probe = asyncio.create_task(self._ready())
        return self.due

    async def _ready(self) -> bool:
        timeout = aiohttp.ClientTimeout(total=HOME_PROBE_S)
        try:
            async with self._session.get(self._url, timeout=timeout) as response:
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    def cancel(self) -> None:
        if self._probe is not None:
            self._probe.cancel()


def _failure(exc: BaseException, url: str) -> str:
    """Why a connection attempt failed; a refused certificate (wrong pin, untrusted, or ours
    refused by the relay under mutual TLS) is logged at error level with the reason."""
    refused = refusal_sentence(exc)
    if refused is not None:
        log.error("relay_certificate_refused", url=url, reason=refused)
        return f"cannot connect: {refused}"
    sentence = network_sentence(exc, url)
    if "TLS connection was refused" in sentence:
        log.error("relay_tls_refused", url=url, reason=sentence)
    return f"cannot connect: {sentence}"


async def _open(
    session: aiohttp.ClientSession, url: str, limit: int, heartbeat_s: float
) -> aiohttp.ClientWebSocketResponse:
    """The upgraded WebSocket, or TimeoutError when the relay stays silent too long."""
    budget = heartbeat_s * 1.5
    try:
        async with asyncio.timeout(budget):
            return await session.ws_connect(
                url, max_msg_size=limit, autoping=False,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_S),
            )
    except TimeoutError:
        raise TimeoutError(f"no WebSocket upgrade within {budget:g} s") from None


async def _pump(
    ws: aiohttp.ClientWebSocketResponse, handler: SessionHandler, url: str,
    heartbeat_s: float, home: _Homecoming | None,
) -> str:
    """Hand every binary message to the handler; the reason the connection ended."""
    try:
        return await _receive_all(ws, handler, url, heartbeat_s, home)
    finally:
        if home is not None:
            home.cancel()


async def _receive_all(
    ws: aiohttp.ClientWebSocketResponse, handler: SessionHandler, url: str,
    heartbeat_s: float, home: _Homecoming | None,
) -> str:
    loop = asyncio.get_running_loop()
    heard = loop.time()
    wait = min(heartbeat_s / 6, HOME_PROBE_S / 2)  # silence is judged this often
    while True:
        if home is not None and home.poll():
            await ws.close(code=_HOME_CLOSE, message=b"back to the preferred relay")
            return "moved back to the preferred relay"
        try:
            message = await ws.receive(timeout=wait)
        except TimeoutError:
            silent = loop.time() - heard
            if silent >= heartbeat_s:
                log.warning("relay_silent", url=url, silent_s=round(silent, 2))
                with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
                    async with asyncio.timeout(CLOSE_S):
                        await ws.close(code=1001, message=b"no frame from the relay")
                return f"no frame from the relay for {silent:.1f} s"
            if silent >= heartbeat_s / 3:
                with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
                    async with asyncio.timeout(heartbeat_s):
                        await ws.ping()
            continue
        kind = message.type
        if kind is aiohttp.WSMsgType.BINARY:
            await handler.received(message.data)
            heard = loop.time()
            continue
        heard = loop.time()
        if kind is aiohttp.WSMsgType.PING:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.pong(message.data)
        elif kind is aiohttp.WSMsgType.PONG:
            pass
        elif kind is aiohttp.WSMsgType.CLOSE:
            code, why = message.data, message.extra or ""
            if code == AUTH_FAILED_CLOSE:
                log.error("relay_auth_failed", url=url, reason=why)
            return f"closed by the relay ({code}: {why})"
        elif kind in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return "closed"
        elif kind is aiohttp.WSMsgType.ERROR:
            return f"error: {ws.exception()!r}"
        else:
            log.warning("relay_message_ignored", kind=kind.name)
