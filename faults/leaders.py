"""When JetStream elected each leader of the log's stream, from its own advisories.

Polling ``stream_info`` tells when the harness *noticed* a leader: up to a
poll interval late, and up to a request timeout late when the node the
harness asks is the one that hangs. The new leader itself publishes
``$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.<stream>`` with the time of the
election (``timestamp``, the server's clock: this machine's). One connection
to every node of the cluster, each subscribed, so that an advisory is seen
even while some nodes hang. Pure parsing in :func:`parse_election`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

__all__ = ["Election", "LeaderWatch", "parse_election"]

ADVISORY: Final = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{stream}"
_STAMP: Final = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True, slots=True)
class Election:
    leader: str
    at_ms: int  # wall-clock milliseconds of the election, by the elected server


def parse_election(data: bytes) -> Election | None:
    """The election an advisory reports (None if it is not one we can read)."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    leader, stamp = body.get("leader"), body.get("timestamp")
    if not isinstance(leader, str) or not isinstance(stamp, str):
        return None
    match = _STAMP.match(stamp)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else zone
    at = datetime.fromisoformat(f"{whole}.{micros}{zone}").astimezone(UTC)
    return Election(leader, round(at.timestamp() * 1000))


class LeaderWatch:
    """Follows the stream's leader-elected advisories on every node (see the module)."""

    def __init__(self, urls: Sequence[str], stream: str) -> None:
        self._urls = list(urls)
        self._subject = ADVISORY.format(stream=stream)
        self._clients: list[NatsClient] = []
        self.elections: list[Election] = []

    async def start(self) -> None:
        async def quiet(_exc: Exception) -> None:
            return None  # a hung node is the point of the run: nothing to report

        for url in self._urls:
            client = await nats.connect(
                servers=[url], name="failover-leader-watch", ping_interval=1,
                max_outstanding_pings=1, max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                connect_timeout=2, error_cb=quiet,
            )
            await client.subscribe(self._subject, cb=self._seen)
            self._clients.append(client)

    async def _seen(self, msg: Msg) -> None:
        election = parse_election(msg.data)
        if election is not None and election not in self.elections:
            self.elections.append(election)

    def elected(self, other_than: str, after_ms: int, before_ms: int) -> int | None:
        """The time of the first election of a leader other than ``other_than`` in the span."""
        times = [e.at_ms for e in self.elections
                 if e.leader != other_than and after_ms <= e.at_ms <= before_ms]
        return min(times, default=None)

    async def stop(self) -> None:
        for client in self._clients:
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await client.close()
