"""Stalls seen by the endpoints: how long each had messages waiting and none accepted.

:class:`StallWatch` follows every endpoint's event stream (``GET /api/events``)
and keeps, per endpoint, the times its own messages were queued and accepted
and the times it raised ``relay_unavailable`` (all in the endpoint's own
milliseconds, from the events' fields). :func:`stalls` turns that into stall
intervals: a stall begins when a message is queued while none was waiting, or
at an acceptance after which messages still wait; it ends at the next
acceptance (or at the end of the run). Pure, so the rules are tested alone.

- ``max_stall_s``: the longest stall, counting only its time outside the
  windows given (quorum losses: nothing can be logged there, the endpoints are
  told ``busy`` and raise the alarm instead);
- ``silent_stalls``: stalls longer than ``SILENT_AFTER_MS`` (in full) with no
  ``relay_unavailable`` raised by that endpoint between their start and end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp

__all__ = ["SILENT_AFTER_MS", "Stall", "StallWatch", "Timeline", "stalls", "summarise"]

SILENT_AFTER_MS: Final = 5_000


@dataclass
class Timeline:
    """One endpoint's own messages and alarms, in its own milliseconds."""

    queued: dict[str, int] = field(default_factory=dict)  # message id → created_ms
    accepted: dict[str, int] = field(default_factory=dict)  # message id → received_ms
    alarms: list[int] = field(default_factory=list)  # relay_unavailable at_ms


@dataclass(frozen=True, slots=True)
class Stall:
    party: str
    start_ms: int
    end_ms: int
    outside_ms: int  # the part outside the excluded windows
    alarmed: bool


def _overlap(start: int, end: int, windows: Sequence[tuple[int, int]]) -> int:
    return sum(max(0, min(end, w_end) - max(start, w_start)) for w_start, w_end in windows)


def stalls(
    party: str, timeline: Timeline, *, end_ms: int, excluded: Sequence[tuple[int, int]] = ()
) -> list[Stall]:
    """The stalls of one endpoint (see the module docstring)."""
    points: list[tuple[int, int, str]] = []  # (ms, 0 queued / 1 accepted, id)
    for ident, at in timeline.queued.items():
        points.append((at, 0, ident))
    for ident, at in timeline.accepted.items():
        if ident in timeline.queued:
            points.append((at, 1, ident))
    points.sort()
    waiting: set[str] = set()
    found: list[Stall] = []
    began: int | None = None

    def close(at: int) -> None:
        if began is None:
            return
        alarmed = any(began <= alarm <= at for alarm in timeline.alarms)
        outside = (at - began) - _overlap(began, at, excluded)
        found.append(Stall(party, began, at, outside, alarmed))

    for at, kind, ident in points:
        if kind == 0:
            if not waiting:
                began = at
            waiting.add(ident)
            continue
        if ident not in waiting:
            continue
        close(at)
        waiting.discard(ident)
        began = at if waiting else None
    if waiting:
        close(end_ms)
    return found


def summarise(
    timelines: Mapping[str, Timeline], *, end_ms: int, excluded: Sequence[tuple[int, int]] = ()
) -> tuple[float, int, list[Stall]]:
    """(max_stall_s outside ``excluded``, silent_stalls, every stall) over all endpoints."""
    every = [s for party, tl in timelines.items()
             for s in stalls(party, tl, end_ms=end_ms, excluded=excluded)]
    longest = max((s.outside_ms for s in every), default=0) / 1000
    silent = sum(1 for s in every
                 if s.end_ms - s.start_ms > SILENT_AFTER_MS and not s.alarmed)
    return longest, silent, every


class StallWatch:
    """Follows each endpoint's ``/api/events`` stream into its :class:`Timeline`."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.urls = urls
        self.timelines = {party: Timeline() for party in urls}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, session: aiohttp.ClientSession) -> None:
        for party, url in self.urls.items():
            self._tasks.append(asyncio.create_task(self._follow(session, party, url)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, session: aiohttp.ClientSession, party: str, url: str) -> None:
        timeline = self.timelines[party]
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                async with session.get(url + "/api/events", timeout=timeout) as response:
                    name, buffer = "", b""
                    async for chunk in response.content.iter_any():  # lines can be long
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for raw in lines:
                            line = raw.decode("utf-8")
                            if line.startswith("event: "):
                                name = line[len("event: "):]
                            elif line.startswith("data: "):
                                _fold(timeline, name, json.loads(line[len("data: "):]))
            await asyncio.sleep(0.2)


def _fold(timeline: Timeline, name: str, data: object) -> None:
    if not isinstance(data, dict):
        return
    event = data.get("event", name)
    if event == "message_queued":
        timeline.queued.setdefault(str(data["id"]), int(data["created_ms"]))
    elif event == "message_accepted" and not data.get("receipt"):
        timeline.accepted.setdefault(str(data["id"]), int(data["received_ms"]))
    elif event == "relay_unavailable":
        timeline.alarms.append(int(data["at_ms"]))
