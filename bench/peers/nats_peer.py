"""The workload on NATS JetStream: file-stored streams, durable explicit-ack consumers.

Two streams on file storage: ``HOTLINE_WARN`` (subject ``hotline.warn.B``) and
``HOTLINE_ACK`` (subject ``hotline.ack.A``). A and B each have their own
connection.

- A publishes each warning and waits (asynchronously, with up to ``window`` in
  flight) for the stream's PubAck: the server has stored it.
- B reads ``HOTLINE_WARN`` through the durable push consumer ``B`` with
  explicit acks. For each warning it publishes its acknowledgement to
  ``hotline.ack.A`` and, when that publish's PubAck arrives, acks the warning
  to its consumer (so a warning is never acked before its answer is stored).
- A reads ``HOTLINE_ACK`` through the durable push consumer ``A`` with
  explicit acks and acks each acknowledgement as it takes it.

Publishes use nats-py's ``publish_async``, so neither A nor B waits for one
PubAck before sending the next message, as hotline's endpoints do not wait
for the relay's ``accepted`` receipt.
"""

from __future__ import annotations

import asyncio
from typing import Final

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    PubAck,
    StorageType,
    StreamConfig,
)

from peers.workload import AckHandler, padded, token_of

__all__ = ["NatsPeer"]

WARN_STREAM: Final = "HOTLINE_WARN"
ACK_STREAM: Final = "HOTLINE_ACK"
WARN_SUBJECT: Final = "hotline.warn.B"
ACK_SUBJECT: Final = "hotline.ack.A"
MAX_ACK_PENDING: Final = 10_000


def _consumer() -> ConsumerConfig:
    return ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW,
        max_ack_pending=MAX_ACK_PENDING,
    )


class NatsPeer:
    def __init__(self, port: int, server_pid: int, *, warning_size: int, ack_size: int) -> None:
        self.name = "nats"
        self.server_pids = (server_pid,)
        self._url = f"nats://127.0.0.1:{port}"
        self._warning_size = warning_size
        self._ack_size = ack_size
        self._a: NatsClient | None = None
        self._b: NatsClient | None = None
        self._js_a: JetStreamContext | None = None
        self._js_b: JetStreamContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: str | None = None

    async def connect(self, on_ack: AckHandler) -> None:
        self._a = await nats.connect(self._url, name="hotline-bench-A")
        self._b = await nats.connect(self._url, name="hotline-bench-B")
        self._js_a, self._js_b = self._a.jetstream(), self._b.jetstream()
        for name, subject in ((WARN_STREAM, WARN_SUBJECT), (ACK_STREAM, ACK_SUBJECT)):
            await self._js_a.add_stream(
                StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE)
            )
        js_b = self._js_b

        async def at_b(msg: Msg) -> None:
            answer = self._answer(msg.data)
            if answer is None:
                return
            stored = await js_b.publish_async(ACK_SUBJECT, answer)
            task = asyncio.create_task(self._ack_after(stored, msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        async def at_a(msg: Msg) -> None:
            token = self._acknowledged(msg.data)
            if token is not None:
                on_ack(token)
            await msg.ack()

        # nats-py fills in the config it is given (durable name, deliver subject,
        # filter), so each consumer needs its own.
        await self._js_b.subscribe(WARN_SUBJECT, durable="B", stream=WARN_STREAM, cb=at_b,
                                   manual_ack=True, config=_consumer())
        await self._js_a.subscribe(ACK_SUBJECT, durable="A", stream=ACK_STREAM, cb=at_a,
                                   manual_ack=True, config=_consumer())

    def _answer(self, warning: bytes) -> bytes | None:
        """B's acknowledgement of ``warning`` (None: do not answer it)."""
        return padded(token_of(warning), self._ack_size)

    def _acknowledged(self, acknowledgement: bytes) -> int | None:
        """The token an acknowledgement reaching A answers (None: it does not count)."""
        return token_of(acknowledgement)

    async def _ack_after(self, stored: asyncio.Future[PubAck], msg: Msg) -> None:
        try:
            await stored
            await msg.ack()
        except Exception as exc:  # noqa: BLE001 - any failure is the run's failure
            self._error = f"B could not store its acknowledgement: {exc!r}"

    async def fresh(self) -> None:
        """Nothing to do: the server keeps no per-message state once a run is answered."""

    def prepare(self, token: int) -> bytes:
        return padded(token, self._warning_size)

    async def send(self, message: bytes) -> None:
        assert self._js_a is not None
        stored = await self._js_a.publish_async(WARN_SUBJECT, message)
        stored.add_done_callback(self._check_stored)

    def _check_stored(self, stored: asyncio.Future[PubAck]) -> None:
        if stored.cancelled() or stored.exception() is not None:
            self._error = f"A's warning was not stored: {stored!r}"

    def failure(self) -> str | None:
        return self._error

    async def close(self) -> None:
        for client in (self._a, self._b):
            if client is not None:
                await client.drain()
