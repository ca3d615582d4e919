"""A small MQTT 3.1.1 client: CONNECT, SUBSCRIBE, and PUBLISH with QoS 1 both ways.

Just what the benchmark needs, so that the client's CPU per message stays well
below the broker's (measured: see docs/performance.md). Packets are encoded and
split by pure functions; :class:`MqttClient` is an :class:`asyncio.Protocol`
that answers every incoming QoS 1 PUBLISH with a PUBACK (after the handler has
run, so a handler that publishes has its PUBLISH on the wire first) and tracks
its own QoS 1 PUBLISHes until the broker's PUBACK arrives.

No keep-alive (``keepalive`` 0), no QoS 2, no will, no TLS, no MQTT 5.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["MqttClient", "MqttError", "connect_packet", "publish_packet", "split_packets"]

CONNECT: Final = 0x10
CONNACK: Final = 0x20
PUBLISH: Final = 0x30
PUBACK: Final = 0x40
SUBSCRIBE: Final = 0x82
SUBACK: Final = 0x90
DISCONNECT: Final = 0xE0
QOS1: Final = 0x02

MessageHandler = Callable[[str, bytes], None]


class MqttError(Exception):
    """The broker refused or broke the session."""


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, *, clean_session: bool) -> bytes:
    flags = 0x02 if clean_session else 0x00
    return _packet(CONNECT, _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 0)
                   + _string(client_id))


def subscribe_packet(packet_id: int, topic: str) -> bytes:
    return _packet(SUBSCRIBE, struct.pack("!H", packet_id) + _string(topic) + bytes([1]))


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    return _packet(PUBLISH | QOS1, _string(topic) + struct.pack("!H", packet_id) + payload)


def puback_packet(packet_id: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", packet_id)


def split_packets(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Remove every complete packet from ``buffer``: (first byte, body) each."""
    packets: list[tuple[int, bytes]] = []
    position = 0
    size = len(buffer)
    while position + 2 <= size:
        length, multiplier, cursor = 0, 1, position + 1
        while True:
            if cursor >= size:
                del buffer[:position]
                return packets
            byte = buffer[cursor]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            cursor += 1
            if not byte & 0x80:
                break
        end = cursor + length
        if end > size:
            break
        packets.append((buffer[position], bytes(buffer[cursor:end])))
        position = end
    del buffer[:position]
    return packets


class MqttClient(asyncio.Protocol):
    """One MQTT 3.1.1 session over one TCP connection."""

    def __init__(self, on_message: MessageHandler) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._next_id = 0
        self._connack: asyncio.Future[bytes] | None = None
        self._subacks: dict[int, asyncio.Future[bytes]] = {}
        self.unacked: set[int] = set()
        self.error: str | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(
        cls, host: str, port: int, client_id: str, on_message: MessageHandler,
        *, clean_session: bool = False,
    ) -> MqttClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: cls(on_message), host, port)
        client._connack = loop.create_future()
        client._write(connect_packet(client_id, clean_session=clean_session))
        body = await asyncio.wait_for(client._connack, 10)
        if body[1] != 0:
            raise MqttError(f"the broker refused the connection: return code {body[1]}")
        return client

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise MqttError(self.error or "the connection to the broker is closed")
        self.transport.write(data)

    async def subscribe(self, topic: str) -> None:
        packet_id = self._packet_id()
        future = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = future
        self._write(subscribe_packet(packet_id, topic))
        body = await asyncio.wait_for(future, 10)
        if body[2] == 0x80:
            raise MqttError(f"the broker refused the subscription to {topic}")

    def publish(self, topic: str, payload: bytes) -> None:
        """Send a QoS 1 PUBLISH; the broker's PUBACK clears it from :attr:`unacked`."""
        packet_id = self._packet_id()
        if packet_id in self.unacked:
            raise MqttError("65,535 publishes are waiting for the broker's PUBACK")
        self.unacked.add(packet_id)
        self._write(publish_packet(topic, payload, packet_id))

    async def disconnect(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes([DISCONNECT, 0]))
            self.transport.close()
        await self.closed.wait()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.error = f"connection lost: {exc}"
        self.closed.set()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        acks = []
        for first, body in split_packets(self._buffer):
            kind = first & 0xF0
            if kind == PUBLISH:
                (topic_len,) = struct.unpack_from("!H", body)
                topic = body[2 : 2 + topic_len].decode()
                qos = (first >> 1) & 0x03
                start = 2 + topic_len
                if qos:
                    acks.append(puback_packet(struct.unpack_from("!H", body, start)[0]))
                    start += 2
                self.on_message(topic, body[start:])
            elif kind == PUBACK:
                self.unacked.discard(struct.unpack("!H", body)[0])
            elif kind == CONNACK and self._connack is not None:
                self._connack.set_result(body)
            elif kind == SUBACK:
                future = self._subacks.pop(struct.unpack_from("!H", body)[0], None)
                if future is not None:
                    future.set_result(body)
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))
