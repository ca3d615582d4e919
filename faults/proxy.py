"""A fault proxy on loopback: one listening port in front of the relay, faults switched live.

An endpoint given ``--relay-url ws://127.0.0.1:<proxy port>/v1/ws`` reaches the
relay only through its proxy, so faults on one proxy hit one endpoint's link.

Lasting modes (:meth:`FaultProxy.set_mode`), judged for every chunk when it is read:

==========  ==================================================================
``pass``    bytes go through as soon as they are read
``delay``   every chunk waits ``ms`` milliseconds, each way
``jitter``  every chunk waits a random 0..``ms`` milliseconds (seeded); a chunk
            never overtakes the one read before it, so a connection's bytes
            keep their order
``blackhole``  the connections open now freeze, and new ones are accepted and
            frozen at once (no connection to the relay is even made)
==========  ==================================================================

One-shot actions on the connections open now (the mode stays as it is):
:meth:`FaultProxy.drop` resets both sockets of each (RST, no FIN);
:meth:`FaultProxy.half_open` freezes each.

A frozen connection keeps both sockets open and forwards nothing, either way:
what arrives is read and discarded, and a side closing is not passed on to the
other side, so only heartbeats or timeouts can tell. It never thaws, like a TCP
connection whose retransmissions ran out during the outage.

:class:`Timing` is the schedule of one direction, sans-IO (time in, release
time out); :class:`FaultProxy` is the asyncio edge around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import random
import socket
import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["FaultProxy", "Mode", "ProxyStats", "Setting", "Timing"]

_CHUNK: Final = 64 * 1024
_LOOPBACK: Final = "127.0.0.1"


class Mode(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a mode's name, not a password
    DELAY = "delay"
    JITTER = "jitter"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True, slots=True)
class Setting:
    """A proxy's lasting mode; ``ms`` is the delay, or the jitter's upper bound."""

    mode: Mode = Mode.PASS
    ms: float = 0.0


class Timing:
    """When each chunk of one direction of one connection may go out (seconds).

    Rules: ``delay`` adds ``ms``; ``jitter`` adds a draw from the seeded ``rng``
    in [0, ``ms``]; no chunk is released before the one read before it, whatever
    the mode was then; ``blackhole`` releases nothing (None).
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last = -math.inf

    def release_at(self, setting: Setting, now: float) -> float | None:
        if setting.mode is Mode.BLACKHOLE:
            return None
        wait = 0.0
        if setting.mode is Mode.DELAY:
            wait = setting.ms / 1000
        elif setting.mode is Mode.JITTER:
            wait = self._rng.uniform(0.0, setting.ms) / 1000
        at = max(now + wait, self._last)
        self._last = at
        return at


@dataclass(slots=True)
class ProxyStats:
    accepted: int = 0  # client connections accepted
    upstream_failed: int = 0  # the relay refused: the client was closed at once
    reset: int = 0  # connections dropped with RST
    frozen: int = 0  # connections frozen (half-open, blackhole)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: linger on, zero seconds, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its connection to the relay, four tasks between them."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        number: int,
    ) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._number = number
        self.frozen = False
        self._open = {"client": True, "relay": True}
        self._done = asyncio.Event()

    def freeze(self) -> None:
        self.frozen = True

    def reset(self) -> None:
        _reset(self._client[1])
        if self._upstream is not None:
            _reset(self._upstream[1])
        self._done.set()

    async def run(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            if self._proxy.setting.mode is Mode.BLACKHOLE:
                self.freeze()
                self._open["relay"] = False
                tasks.append(asyncio.create_task(self._read("client", self._client[0], None)))
            else:
                try:
                    self._upstream = await asyncio.open_connection(*self._proxy.upstream)
                except OSError:
                    self._proxy.stats.upstream_failed += 1
                    return
                to_relay: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
                to_client: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
                tasks += [
                    asyncio.create_task(self._read("client", self._client[0], to_relay)),
                    asyncio.create_task(self._write("client", to_relay, self._upstream[1])),
                    asyncio.create_task(self._read("relay", self._upstream[0], to_client)),
                    asyncio.create_task(self._write("relay", to_client, self._client[1])),
                ]
            await self._done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._close_all()

    def _close_all(self) -> None:
        for pair in (self._client, self._upstream):
            if pair is not None and not pair[1].transport.is_closing():
                pair[1].close()

    def _writer_of(self, side: str) -> asyncio.StreamWriter | None:
        if side == "client":
            return self._client[1]
        return None if self._upstream is None else self._upstream[1]

    def _side_closed(self, side: str) -> None:
        """A frozen link: close our socket to the side that left; the other never hears."""
        self._open[side] = False
        writer = self._writer_of(side)
        if writer is not None and not writer.transport.is_closing():
            writer.close()
        if not any(self._open.values()):
            self._done.set()

    async def _read(
        self,
        side: str,
        source: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None] | None,
    ) -> None:
        timing = Timing(random.Random(f"{self._proxy.seed}:{self._number}:{side}"))  # noqa: S311
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await source.read(_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                if self.frozen or queue is None:
                    self._side_closed(side)
                else:
                    queue.put_nowait(None)
                return
            if self.frozen or queue is None:
                continue
            at = timing.release_at(self._proxy.setting, loop.time())
            if at is None:
                self.freeze()
                continue
            queue.put_nowait((at, chunk))

    async def _write(
        self,
        source: str,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        target: asyncio.StreamWriter,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            if item is None:
                if self.frozen:
                    self._side_closed(source)  # it left just before the freeze
                else:
                    self._done.set()  # one side closed: flushed, now close both
                return
            at, chunk = item
            if at > loop.time():
                await asyncio.sleep(at - loop.time())
            if self.frozen:
                continue
            try:
                target.write(chunk)
                await target.drain()
            except OSError:
                self._done.set()
                return


class FaultProxy:
    """Listens on 127.0.0.1 (port 0: the OS picks) and forwards to ``upstream``."""

    def __init__(self, upstream_port: int, *, seed: int, port: int = 0) -> None:
        self.upstream: Final = (_LOOPBACK, upstream_port)
        self.seed = seed
        self.setting = Setting()
        self.stats = ProxyStats()
        self._port = port
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, _LOOPBACK, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def set_mode(self, mode: Mode, ms: float = 0.0) -> None:
        """Switch the lasting mode; ``blackhole`` also freezes every open connection."""
        self.setting = Setting(mode, ms)
        if mode is Mode.BLACKHOLE:
            self.half_open()

    def drop(self) -> int:
        """Reset every open connection; how many."""
        links = list(self._links)
        for link in links:
            link.reset()
        self.stats.reset += len(links)
        return len(links)

    def half_open(self) -> int:
        """Freeze every open connection; how many."""
        links = [link for link in self._links if not link.frozen]
        for link in links:
            link.freeze()
        self.stats.frozen += len(links)
        return len(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        link = _Link(self, (reader, writer), self.stats.accepted)
        if self.setting.mode is Mode.BLACKHOLE:
            self.stats.frozen += 1
        self._links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            self._tasks.discard(task)
