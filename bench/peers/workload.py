"""The workload every system runs, and the driver that times it.

A round trip: A hands a ~550-byte warning to its client; the system carries it
to B; B acknowledges; the acknowledgement reaches A. The clock starts when A's
bytes are handed to the client library (after any signing) and stops when A
holds B's acknowledgement. ``window`` round trips may be in flight at once:
``reqack-w1`` waits for each acknowledgement before sending the next,
``reqack-w100`` keeps up to 100 outstanding.

Each system implements :class:`Peer`; :meth:`Driver.measure` does the rest the same
way for all of them: a warm-up that is not counted, then a measured phase
bounded by a message count and a duration, with the CPU time of the server
process(es) and of this process (the clients) read before and after.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from peers.procstat import CpuSnapshot

__all__ = [
    "MODES",
    "AckHandler",
    "Driver",
    "Mode",
    "Peer",
    "Row",
    "Sample",
    "padded",
    "percentile",
    "token_of",
]

AckHandler = Callable[[int], None]

TOKEN_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    window: int


MODES: Final = (Mode("reqack-w1", 1), Mode("reqack-w100", 100))


class Peer(Protocol):
    """The two clients of one system, connected to its running server."""

    @property
    def name(self) -> str:
        """The system's name in the results (starts with hotline, nats or mosquitto)."""
        ...

    @property
    def server_pids(self) -> tuple[int, ...]:
        """The server processes whose CPU time is charged to this system."""
        ...

    async def connect(self, on_ack: AckHandler) -> None:
        """Connect A and B; call ``on_ack(token)`` when B's acknowledgement reaches A."""
        ...

    async def fresh(self) -> None:
        """Bring the system to the state a run starts from (before the warm-up)."""
        ...

    def prepare(self, token: int) -> bytes:
        """A's message for ``token``, ready to send (signed, where the system signs)."""
        ...

    async def send(self, message: bytes) -> None:
        """Hand A's message to the system; do not wait for the acknowledgement."""
        ...

    def failure(self) -> str | None:
        """A sentence if the system refused something during the run, else None."""
        ...

    async def close(self) -> None: ...


def padded(token: int, size: int) -> bytes:
    """``token`` as 8 bytes, then filler up to ``size`` bytes: a peer's opaque payload."""
    return token.to_bytes(TOKEN_BYTES, "big") + b"w" * (size - TOKEN_BYTES)


def token_of(payload: bytes) -> int:
    return int.from_bytes(payload[:TOKEN_BYTES], "big")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``share`` of them at or below."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Sample:
    """What one measured phase saw."""

    messages: int
    seconds: float
    latencies_s: tuple[float, ...]
    server_cpu_s: float
    client_cpu_s: float


@dataclass(frozen=True, slots=True)
class Row:
    """One line of ``latest.json``: one system, one mode, one round."""

    system: str
    mode: str
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_msg: float
    client_cpu_us_per_msg: float
    messages: int
    round: int
    sig_us_per_msg: float | None = None

    @classmethod
    def of(cls, system: str, mode: str, round_: int, sample: Sample,
           sig_us_per_msg: float | None = None) -> Row:
        n = sample.messages
        return cls(
            system=system,
            mode=mode,
            msgs_per_s=n / sample.seconds,
            p50_ms=percentile(sample.latencies_s, 0.50) * 1000,
            p99_ms=percentile(sample.latencies_s, 0.99) * 1000,
            server_cpu_us_per_msg=sample.server_cpu_s / n * 1e6,
            client_cpu_us_per_msg=sample.client_cpu_s / n * 1e6,
            messages=n,
            round=round_,
            sig_us_per_msg=sig_us_per_msg,
        )

    def to_json(self) -> dict[str, str | int | float]:
        row: dict[str, str | int | float] = {
            "system": self.system,
            "mode": self.mode,
            "msgs_per_s": round(self.msgs_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "server_cpu_us_per_msg": round(self.server_cpu_us_per_msg, 1),
            "client_cpu_us_per_msg": round(self.client_cpu_us_per_msg, 1),
            "messages": self.messages,
            "round": self.round,
        }
        if self.sig_us_per_msg is not None:
            row["sig_us_per_msg"] = round(self.sig_us_per_msg, 1)
        return row

    @classmethod
    def from_json(cls, row: Mapping[str, object]) -> Row:
        def number(key: str) -> float:
            value = row[key]
            if not isinstance(value, int | float):
                raise TypeError(f"{key} must be a number, not {value!r}")
            return float(value)

        return cls(
            system=str(row["system"]), mode=str(row["mode"]),
            msgs_per_s=number("msgs_per_s"), p50_ms=number("p50_ms"), p99_ms=number("p99_ms"),
            server_cpu_us_per_msg=number("server_cpu_us_per_msg"),
            client_cpu_us_per_msg=number("client_cpu_us_per_msg"),
            messages=int(number("messages")), round=int(number("round")),
            sig_us_per_msg=number("sig_us_per_msg") if "sig_us_per_msg" in row else None,
        )


def _client_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class _Phase:
    """Round trips in flight: who was sent when, and the latencies of those answered."""

    def __init__(self, window: int) -> None:
        self.slots = asyncio.Semaphore(window)
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.settled = asyncio.Event()
        self.sending = True
        self.last_ack = 0.0

    def acknowledged(self, token: int) -> None:
        started = self.sent_at.pop(token, None)
        if started is None:  # a redelivery of one already counted
            return
        self.last_ack = time.perf_counter()
        self.latencies.append(self.last_ack - started)
        self.slots.release()
        if not self.sending and not self.sent_at:
            self.settled.set()


class _Router:
    """Hands each acknowledgement to the phase that is running."""

    def __init__(self) -> None:
        self.phase: _Phase | None = None

    def __call__(self, token: int) -> None:
        if self.phase is not None:
            self.phase.acknowledged(token)


async def _phase(
    peer: Peer, router: _Router, first_token: int, *, window: int, count: int, seconds: float,
    timeout_s: float,
) -> tuple[_Phase, float]:
    phase = _Phase(window)
    router.phase = phase
    started = time.perf_counter()
    deadline = started + seconds
    token = first_token
    while token - first_token < count and time.perf_counter() < deadline:
        await phase.slots.acquire()
        message = peer.prepare(token)
        phase.sent_at[token] = time.perf_counter()
        await peer.send(message)
        token += 1
        problem = peer.failure()
        if problem is not None:
            raise RuntimeError(f"{peer.name}: {problem}")
    phase.sending = False
    if phase.sent_at:
        try:
            await asyncio.wait_for(phase.settled.wait(), timeout_s)
        except TimeoutError:
            missing = len(phase.sent_at)
            problem = peer.failure() or "no failure reported"
            raise RuntimeError(
                f"{peer.name}: {missing} acknowledgements did not arrive within "
                f"{timeout_s:.0f} s ({problem})"
            ) from None
    return phase, started


class Driver:
    """Runs phases on one connected peer; tokens never repeat across its phases."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.router = _Router()
        self.next_token = 1

    async def connect(self) -> None:
        await self.peer.connect(self.router)

    async def measure(
        self, window: int, *, warmup: int, count: int, seconds: float, timeout_s: float = 60.0,
        fresh: bool = True,
    ) -> Sample:
        """A warm-up of ``warmup`` round trips, then up to ``count`` in at most ``seconds``.

        Unless ``fresh`` is false, the peer is first brought to its starting state.
        """
        if fresh:
            await self.peer.fresh()
        if warmup:
            await _phase(self.peer, self.router, self.next_token, window=window, count=warmup,
                         seconds=1e9, timeout_s=timeout_s)
            self.next_token += warmup
        pids = self.peer.server_pids
        server_before, client_before = CpuSnapshot.of(pids), _client_cpu_s()
        phase, started = await _phase(
            self.peer, self.router, self.next_token, window=window, count=count, seconds=seconds,
            timeout_s=timeout_s,
        )
        server_after, client_after = CpuSnapshot.of(pids), _client_cpu_s()
        self.router.phase = None
        self.next_token += len(phase.latencies)
        return Sample(
            messages=len(phase.latencies),
            seconds=phase.last_ack - started,
            latencies_s=tuple(phase.latencies),
            server_cpu_s=server_after.since(server_before),
            client_cpu_s=client_after - client_before,
        )

