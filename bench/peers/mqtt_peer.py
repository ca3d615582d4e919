"""The workload on Mosquitto: QoS 1 both ways, persistent sessions.

A and B each hold one MQTT 3.1.1 session with ``clean_session`` false (the
broker keeps their subscriptions and unacknowledged messages across
reconnects). A publishes each warning with QoS 1 to ``hotline/warn/B``; B is
subscribed at QoS 1, answers the broker's PUBLISH with a PUBACK and publishes
its acknowledgement with QoS 1 to ``hotline/ack/A``, to which A is subscribed
at QoS 1. Payloads are opaque bytes of the same sizes as hotline's warning
and receipt frames.
"""

from __future__ import annotations

from typing import Final

from peers.mqtt_wire import MqttClient
from peers.workload import AckHandler, padded, token_of

__all__ = ["MosquittoPeer"]

WARN_TOPIC: Final = "hotline/warn/B"
ACK_TOPIC: Final = "hotline/ack/A"


class MosquittoPeer:
    def __init__(self, port: int, server_pid: int, *, warning_size: int, ack_size: int) -> None:
        self.name = "mosquitto"
        self.server_pids = (server_pid,)
        self._port = port
        self._warning_size = warning_size
        self._ack_size = ack_size
        self._a: MqttClient | None = None
        self._b: MqttClient | None = None

    async def connect(self, on_ack: AckHandler) -> None:
        def at_b(_topic: str, payload: bytes) -> None:
            assert self._b is not None
            self._b.publish(ACK_TOPIC, padded(token_of(payload), self._ack_size))

        def at_a(_topic: str, payload: bytes) -> None:
            on_ack(token_of(payload))

        self._b = await MqttClient.connect("127.0.0.1", self._port, "hotline-bench-B", at_b)
        await self._b.subscribe(WARN_TOPIC)
        self._a = await MqttClient.connect("127.0.0.1", self._port, "hotline-bench-A", at_a)
        await self._a.subscribe(ACK_TOPIC)

    async def fresh(self) -> None:
        """Nothing to do: the server keeps no per-message state once a run is answered."""

    def prepare(self, token: int) -> bytes:
        return padded(token, self._warning_size)

    async def send(self, message: bytes) -> None:
        assert self._a is not None
        self._a.publish(WARN_TOPIC, message)

    def failure(self) -> str | None:
        for client in (self._a, self._b):
            if client is not None and client.error is not None:
                return client.error
        return None

    async def close(self) -> None:
        for client in (self._a, self._b):
            if client is not None:
                await client.disconnect()
