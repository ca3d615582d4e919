"""Steady load through the endpoints' local APIs, and simulated duty officers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_PRECEDENCES = ("flash", "immediate", "priority", "routine")
_ACTIONS_NOTE = "seen by the fault harness"


@dataclass
class LoadStats:
    sent: dict[str, list[str]] = field(default_factory=dict)  # sender → ids answered 202
    refused: int = 0  # an HTTP answer other than 202: a bug under this load
    not_sent: int = 0  # no answer (the endpoint was down or died mid-request)
    acks: int = 0
    refusals: list[str] = field(default_factory=list)

    @property
    def total_sent(self) -> int:
        return sum(len(ids) for ids in self.sent.values())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def message_body(rng: random.Random, peers: list[str]) -> dict[str, Any]:
    """A text or a warning to one or two linked peers."""
    to = rng.sample(peers, k=min(len(peers), rng.choice((1, 1, 2))))
    precedence = rng.choice(_PRECEDENCES)
    if rng.random() < 0.5:
        return {"t": "text", "to": to, "status": "exercise", "precedence": precedence,
                "text": f"fault harness {rng.getrandbits(32):08x}", "lang": "en"}
    now = _now_ms()
    return {
        "t": "warning", "to": to, "status": "exercise", "precedence": precedence,
        "track": {"lat": round(rng.uniform(53.5, 56.0), 4),
                  "lon": round(rng.uniform(23.0, 28.0), 4), "observed_at": now,
                  "object": "uav", "confidence": 0.5, "source": "radar"},
        "expires": now + 3_600_000,
    }


class Load:
    """One poster per endpoint at ``rate / len(endpoints)`` per second, plus officers."""

    def __init__(
        self,
        urls: Mapping[str, str],
        peers: Mapping[str, list[str]],
        rate: float,
        rng: random.Random,
        is_up: Callable[[str], bool],
    ) -> None:
        self.urls = urls
        self.peers = peers
        self.interval = len(urls) / rate
        self.rng = rng
        self.is_up = is_up
        self.stats = LoadStats(sent={party: [] for party in urls})
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, session: aiohttp.ClientSession) -> None:
        for party in self.urls:
            self._tasks.append(asyncio.create_task(self._poster(session, party)))
        self._tasks.append(asyncio.create_task(self._officers(session)))

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self._tasks)

    async def _tick(self, seconds: float) -> bool:
        """Pace the load; True once stopping is asked for."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    async def _poster(self, session: aiohttp.ClientSession, party: str) -> None:
        while not await self._tick(self.rng.uniform(0.5, 1.5) * self.interval):
            # Posts go on while the endpoint is killed: one cut off mid-request, or refused
            # while it restarts, is counted as not sent; only a 202 counts as sent.
            body = message_body(self.rng, self.peers[party])
            try:
                async with session.post(self.urls[party] + "/api/messages", json=body) as r:
                    answer = await r.json(content_type=None)
                    if r.status == 202:
                        self.stats.sent[party].append(str(answer["id"]))
                    else:
                        self.stats.refused += 1
                        self.stats.refusals.append(f"{party} {r.status}: {answer}")
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.stats.not_sent += 1

    async def _officers(self, session: aiohttp.ClientSession) -> None:
        """Every so often an officer somewhere acknowledges one unacknowledged message."""
        while not await self._tick(0.5):
            party = self.rng.choice(sorted(self.urls))
            if not self.is_up(party):
                continue
            url = self.urls[party]
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                async with session.get(url + "/api/inbox") as r:
                    inbox = await r.json()
                waiting = [m["id"] for m in inbox["messages"] if not m["acknowledged"]]
                if not waiting:
                    continue
                message_id = self.rng.choice(waiting)
                payload = {"action": "monitoring", "note": _ACTIONS_NOTE}
                async with session.post(f"{url}/api/messages/{message_id}/ack",
                                        json=payload) as r:
                    if r.status == 202:
                        self.stats.acks += 1
