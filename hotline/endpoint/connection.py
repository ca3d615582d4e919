"""The WebSocket to the relay: connect, hand messages to a handler, reconnect forever.

Reconnection uses exponential backoff with jitter: the delay starts at
``Backoff.initial_s``, doubles after each failed attempt up to ``max_s``, and
each wait is drawn between half the delay and the full delay. A connection
that got as far as ``welcome`` resets the delay.

Several relay URLs (relay replicas sharing one log): each new attempt goes to
the next URL in turn, so a connection that drops, or an attempt that fails,
is followed by one to another replica after a short pause; the backoff delay
grows only after every URL failed once in a row.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
import structlog

from hotline.protocol.session import AUTH_FAILED_CLOSE
from hotline.tls import refusal_sentence

__all__ = ["HEARTBEAT_S", "Backoff", "SessionHandler", "run_connection"]

log = structlog.get_logger("hotline.endpoint")

_MIN_MESSAGE_LIMIT: Final = 4 * 1024 * 1024  # checkpoint notes with many cosignatures
HEARTBEAT_S: Final = 5.0
"""Default seconds of silence from the relay before a ping; no pong in half that: reconnect."""


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

    A ping goes out after ``heartbeat_s`` without a frame from the relay and the
    connection is dropped when no pong follows within half that, so a link that
    went silent (half-open, blackholed) is noticed in at most 1.5 heartbeats;
    the WebSocket upgrade gets the same budget.
    """
    delays = backoff.delays(random.Random())  # noqa: S311  (jitter, not cryptography)
    limit = max(max_message * 2, _MIN_MESSAGE_LIMIT)
    ring = [urls] if isinstance(urls, str) else list(urls)
    failed_in_a_row = 0
    for attempt in itertools.count():
        url = ring[attempt % len(ring)]
        if dialing is not None:
            dialing(url)
        try:
            ws = await _open(session, url, limit, heartbeat_s)
            async with ws:
                await handler.attach(ws)
                reason = await _pump(ws, handler, url)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = _failure(exc, url)
        welcomed = await handler.detach(reason)
        if welcomed:
            delays.reset()
            failed_in_a_row = 0
        else:
            failed_in_a_row += 1
        if len(ring) > 1 and (welcomed or failed_in_a_row % len(ring)):
            await asyncio.sleep(backoff.initial_s / 2)  # another replica may be up: try it
        else:
            await asyncio.sleep(delays.next())


def _failure(exc: BaseException, url: str) -> str:
    """Why a connection attempt failed; a refused certificate (wrong pin, untrusted) is logged."""
    refused = refusal_sentence(exc)
    if refused is None:
        return f"cannot connect: {exc}"
    log.error("relay_certificate_refused", url=url, reason=refused)
    return f"cannot connect: {refused}"


async def _open(
    session: aiohttp.ClientSession, url: str, limit: int, heartbeat_s: float
) -> aiohttp.ClientWebSocketResponse:
    """The upgraded WebSocket, or TimeoutError when the relay stays silent too long."""
    budget = heartbeat_s * 1.5
    try:
        async with asyncio.timeout(budget):
            return await session.ws_connect(url, max_msg_size=limit, heartbeat=heartbeat_s)
    except TimeoutError:
        raise TimeoutError(f"no WebSocket upgrade within {budget:g} s") from None


async def _pump(
    ws: aiohttp.ClientWebSocketResponse, handler: SessionHandler, url: str
) -> str:
    """Hand every binary message to the handler; the reason the connection ended."""
    while True:
        message = await ws.receive()
        kind = message.type
        if kind is aiohttp.WSMsgType.BINARY:
            await handler.received(message.data)
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
