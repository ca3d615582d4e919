"""The WebSocket to the relay: connect, hand messages to a handler, reconnect forever.

Reconnection uses exponential backoff with jitter: the delay starts at
``Backoff.initial_s``, doubles after each failed attempt up to ``max_s``, and
each wait is drawn between half the delay and the full delay. A connection
that got as far as ``welcome`` resets the delay.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
import structlog

from hotline.protocol.session import AUTH_FAILED_CLOSE

__all__ = ["Backoff", "SessionHandler", "run_connection"]

log = structlog.get_logger("hotline.endpoint")

_MIN_MESSAGE_LIMIT: Final = 4 * 1024 * 1024  # checkpoint notes with many cosignatures


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
    url: str,
    handler: SessionHandler,
    backoff: Backoff,
    *,
    max_message: int,
) -> None:
    """Keep a connection to ``url`` open until cancelled."""
    delays = backoff.delays(random.Random())  # noqa: S311  (jitter, not cryptography)
    limit = max(max_message * 2, _MIN_MESSAGE_LIMIT)
    while True:
        try:
            async with session.ws_connect(url, max_msg_size=limit, heartbeat=20) as ws:
                await handler.attach(ws)
                reason = await _pump(ws, handler, url)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = f"cannot connect: {exc}"
        welcomed = await handler.detach(reason)
        if welcomed:
            delays.reset()
        await asyncio.sleep(delays.next())


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
