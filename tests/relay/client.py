"""A bare WebSocket client of the relay for tests: it speaks session.py and nothing more."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import TracebackType

import aiohttp

from hotline.protocol.bodies import Body, LinkTestBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.session import (
    Accepted,
    Auth,
    Challenge,
    CheckpointNote,
    Control,
    Deliver,
    RejectedNotice,
    Welcome,
    auth_signature,
    decode_control,
    encode_control,
)
from tests.factories import TestNet

TIMEOUT = 10.0


class RawClient:
    """One authenticated session; ``next(kind)`` waits for the next control of a kind."""

    def __init__(self, net: TestNet, party: str, url: str, since: int = -1) -> None:
        self.net = net
        self.party = party
        self.url = url
        self.since = since
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.inbox: asyncio.Queue[Control] = asyncio.Queue()
        self.welcome: Welcome | None = None
        self._reader: asyncio.Task[None] | None = None
        self.seq = 0

    async def __aenter__(self) -> RawClient:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url)
        first = await self.ws.receive_bytes(timeout=TIMEOUT)
        assert isinstance(decode_control(first), Challenge)
        signature = auth_signature(first, self.party, self.net.keys[self.party])
        await self.ws.send_bytes(encode_control(Auth(self.party, signature, self.since)))
        welcome = decode_control(await self.ws.receive_bytes(timeout=TIMEOUT))
        assert isinstance(welcome, Welcome), welcome
        self.welcome = welcome
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                await self.inbox.put(decode_control(message.data))

    async def send(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    def seal(self, body: Body) -> bytes:
        key = self.net.keys[body.sender]
        return seal(replace(body, kid=key.public.kid), key)

    async def next(self, *kinds: type[Control]) -> Control:
        """The next control message of one of ``kinds`` (others are skipped).

        A cancel always ends the wait: ``asyncio.timeout`` and not ``asyncio.wait_for``,
        which on Python 3.11 returns the message instead when the cancel and the message
        come in the same turn of the loop (CPython gh-86296), so a task answering in a
        loop (link tests keep coming) would never stop.
        """
        while True:
            async with asyncio.timeout(TIMEOUT):
                message = await self.inbox.get()
            if isinstance(message, kinds):
                return message

    async def accepted(self) -> Accepted | RejectedNotice:
        result = await self.next(Accepted, RejectedNotice)
        assert isinstance(result, Accepted | RejectedNotice)
        return result

    async def delivered(self, skip_tests: bool = True) -> Deliver:
        while True:
            message = await self.next(Deliver)
            assert isinstance(message, Deliver)
            body = open_envelope(message.frame, self.net.network).body
            if skip_tests and isinstance(body, LinkTestBody):
                continue
            return message

    async def checkpoint(self) -> CheckpointNote:
        note = await self.next(CheckpointNote)
        assert isinstance(note, CheckpointNote)
        return note

    async def closed_by_relay(self) -> int | None:
        """Wait until the relay has closed the session; its close code."""
        assert self.ws is not None
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), TIMEOUT)
        return self.ws.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        await self.session.close()
