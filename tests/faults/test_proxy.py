"""The fault proxy in every mode, against a real echo server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from faults.proxy import FaultProxy, Mode, Setting, Timing

QUIET_S = 0.5  # how long a stalled connection is watched for bytes that must not come
ANSWER_S = 5.0  # the bound on waiting for anything that must come


@dataclass
class Echo:
    """An echo server that counts connections and notices each one closing."""

    port: int = 0
    accepted: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            self.closed.set()
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    state = Echo()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
        server.close()


@pytest.fixture
async def proxy(echo: Echo) -> AsyncIterator[FaultProxy]:
    running = FaultProxy(echo.port, seed=7)
    await running.start()
    yield running
    await running.close()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _round_trip(
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes
) -> bytes:
    reader, writer = stream
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), ANSWER_S)


async def _close(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    stream[1].close()
    with contextlib.suppress(OSError):
        await stream[1].wait_closed()


def test_delay_adds_the_same_wait_to_every_chunk() -> None:
    """In delay mode each chunk is released exactly ``ms`` after it was read."""
    timing = Timing(random.Random(1))
    setting = Setting(Mode.DELAY, 250)
    assert timing.release_at(setting, 10.0) == pytest.approx(10.25)
    assert timing.release_at(setting, 11.0) == pytest.approx(11.25)


def test_jitter_never_lets_a_chunk_overtake_the_one_before() -> None:
    """Jittered release times never decrease, and the same seed gives the same times."""
    def times(seed: int) -> list[float]:
        timing = Timing(random.Random(seed))
        out = []
        for step in range(200):
            at = timing.release_at(Setting(Mode.JITTER, 400), step * 0.01)
            assert at is not None
            out.append(at)
        return out

    first = times(3)
    assert first == sorted(first)
    assert first == times(3)
    assert first != times(4)


def test_a_blackhole_releases_nothing() -> None:
    """In blackhole mode a chunk has no release time."""
    assert Timing(random.Random(1)).release_at(Setting(Mode.BLACKHOLE), 1.0) is None


async def test_pass_forwards_bytes_both_ways(proxy: FaultProxy, echo: Echo) -> None:
    """In pass mode what the client sends comes back from the echo server unchanged."""
    stream = await _connect(proxy)
    assert await _round_trip(stream, b"warning 1") == b"warning 1"
    assert echo.accepted == 1
    await _close(stream)


async def test_delay_holds_each_direction_and_keeps_order(proxy: FaultProxy) -> None:
    """A 150 ms delay each way makes a round trip take at least 300 ms, bytes in order."""
    proxy.set_mode(Mode.DELAY, 150)
    stream = await _connect(proxy)
    data = b"".join(b"%05d;" % n for n in range(2000))
    started = time.monotonic()
    assert await _round_trip(stream, data) == data
    assert time.monotonic() - started >= 0.3
    await _close(stream)


async def test_jitter_keeps_the_byte_order_of_a_connection(proxy: FaultProxy) -> None:
    """Many small writes under jitter come back complete and in the order sent."""
    proxy.set_mode(Mode.JITTER, 50)
    reader, writer = await _connect(proxy)
    expected = b""
    for n in range(100):
        piece = b"%04d," % n
        expected += piece
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0)  # let the proxy read the pieces as separate chunks
    assert await asyncio.wait_for(reader.readexactly(len(expected)), ANSWER_S) == expected
    await _close((reader, writer))


async def test_drop_resets_open_connections_and_lets_new_ones_through(
    proxy: FaultProxy, echo: Echo
) -> None:
    """drop() resets the client's socket; the next connection works."""
    reader, writer = await _connect(proxy)
    assert await _round_trip((reader, writer), b"before") == b"before"
    assert proxy.drop() == 1
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), ANSWER_S)
    await asyncio.wait_for(echo.closed.wait(), ANSWER_S)
    again = await _connect(proxy)
    assert await _round_trip(again, b"after") == b"after"
    await _close(again)
    await _close((reader, writer))


async def test_half_open_stalls_both_ways_and_hides_a_close(
    proxy: FaultProxy, echo: Echo
) -> None:
    """After half_open() nothing is forwarded and the server never hears the client leave."""
    reader, writer = await _connect(proxy)
    assert await _round_trip((reader, writer), b"before") == b"before"
    assert proxy.half_open() == 1
    writer.write(b"lost")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), QUIET_S)
    await _close((reader, writer))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(echo.closed.wait(), QUIET_S)
    fresh = await _connect(proxy)
    assert await _round_trip(fresh, b"fresh") == b"fresh"
    await _close(fresh)


async def test_blackhole_accepts_and_forwards_nothing(proxy: FaultProxy, echo: Echo) -> None:
    """In a blackhole a connection is accepted but never reaches the server; pass ends it."""
    proxy.set_mode(Mode.BLACKHOLE)
    reader, writer = await _connect(proxy)
    writer.write(b"into the void")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), QUIET_S)
    assert echo.accepted == 0
    proxy.set_mode(Mode.PASS)
    with pytest.raises(TimeoutError):  # a frozen connection never thaws
        await asyncio.wait_for(reader.read(1), QUIET_S)
    fresh = await _connect(proxy)
    assert await _round_trip(fresh, b"back") == b"back"
    await _close(fresh)
    await _close((reader, writer))
