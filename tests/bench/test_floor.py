"""bench/peers/floor_relay.py: a real floor relay process on loopback carries hotline's frames."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgpack
import pytest

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.floor_peer import FloorClient, floor_peer, start_floor_relay
from peers.floor_relay import LENGTH_BYTES, UNKNOWN_PARTY_CLOSE
from peers.hotline_peer import RelayProcess, prepare_network
from peers.workload import Driver
from relay import Client, sealed_warning

from hotline.bootstrap import key_path
from hotline.keyfile import load_signing_key
from hotline.protocol.bodies import AcceptedBody, WarningBody
from hotline.protocol.envelope import body_hash, open_envelope
from hotline.protocol.session import Accepted, Control, Deliver, RejectedNotice, decode_control

TIMEOUT_S = 20.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return prepare_network(tmp_path / "net", "ws://127.0.0.1:9/v1/ws")


@pytest.fixture
def relay(config: Path, tmp_path: Path) -> Iterator[RelayProcess]:
    process = start_floor_relay(config, tmp_path / "data", tmp_path / "process")
    yield process
    process.server.stop()


def _frames(path: Path) -> list[bytes]:
    """The frames in the floor relay's file, each after its 4-byte length."""
    data, frames = path.read_bytes(), []
    while data:
        size = int.from_bytes(data[:LENGTH_BYTES], "big")
        frames.append(data[LENGTH_BYTES:LENGTH_BYTES + size])
        data = data[LENGTH_BYTES + size:]
    return frames


async def _next(client: Client) -> Control:
    assert client.ws is not None
    message = await asyncio.wait_for(client.ws.receive(), TIMEOUT_S)
    assert message.type is aiohttp.WSMsgType.BINARY, message
    return decode_control(message.data)


async def test_the_floor_peer_carries_round_trips_and_writes_every_frame(
    config: Path, tmp_path: Path,
) -> None:
    """With 1 and with 100 in flight every warning is acknowledged; the file holds each warning
    and each receipt, in the frames the clients sent."""
    peer = floor_peer(config, tmp_path / "floor")
    driver = Driver(peer)
    try:
        await driver.connect()
        one = await driver.measure(1, warmup=2, count=10, seconds=60, timeout_s=TIMEOUT_S)
        many = await driver.measure(100, warmup=0, count=300, seconds=60, timeout_s=TIMEOUT_S)
        assert (one.messages, many.messages) == (10, 300)
        assert peer.failure() is None
        assert peer.name == "floor"
        # connect() started run 1; each measure() starts the relay afresh: the w100 run is run 3.
        frames = _frames(tmp_path / "floor" / "run-3" / "log" / "frames.bin")
        assert peer.relay is not None
        kinds = [type(open_envelope(f, peer.relay.network).body).__name__ for f in frames]
        assert kinds.count("WarningBody") == kinds.count("ReceiptBody") == 300
    finally:
        await peer.close()


async def test_a_warning_is_accepted_with_a_signed_receipt_and_delivered(
    relay: RelayProcess, tmp_path: Path,
) -> None:
    """BY's warning is answered with an accepted that verifies under the relay's key and names
    its id, hash and index; LT is delivered the very frame at that index."""
    by, lt = relay.client("BY"), relay.client("LT")
    try:
        await by.connect()
        await lt.connect()
        frame, ident = sealed_warning(by)
        assert by.ws is not None
        await by.ws.send_bytes(frame)
        answer, delivered = await _next(by), await _next(lt)
        assert isinstance(answer, Accepted)
        accepted = open_envelope(answer.frame, relay.network).body
        assert isinstance(accepted, AcceptedBody)
        assert accepted.sender == relay.network.relay.id
        assert (accepted.ref, accepted.hash, accepted.index) == (
            ident, body_hash(open_envelope(frame, relay.network).body_bytes), 0)
        assert delivered == Deliver(0, frame)
        assert _frames(tmp_path / "data" / "frames.bin") == [frame]
    finally:
        await by.close()
        await lt.close()


async def test_a_warning_with_a_bad_signature_is_refused_not_written_nor_forwarded(
    relay: RelayProcess, tmp_path: Path,
) -> None:
    """One flipped signature byte: BY is refused, and the good warning sent next is the first
    thing LT is delivered, and the first frame in the file (index 0)."""
    by, lt = relay.client("BY"), relay.client("LT")
    try:
        await by.connect()
        await lt.connect()
        forged = bytearray(sealed_warning(by)[0])
        forged[-1] ^= 1
        good, ident = sealed_warning(by)
        assert by.ws is not None
        await by.ws.send_bytes(bytes(forged))
        refusal = await _next(by)
        assert isinstance(refusal, RejectedNotice)
        assert refusal.code == "bad_signature"
        await by.ws.send_bytes(good)
        answer = await _next(by)
        assert isinstance(answer, Accepted)
        body = open_envelope(answer.frame, relay.network).body
        assert isinstance(body, AcceptedBody)
        assert (body.ref, body.index) == (ident, 0)
        delivered = await _next(lt)
        assert delivered == Deliver(0, good)
        assert isinstance(open_envelope(delivered.frame, relay.network).body, WarningBody)
        assert _frames(tmp_path / "data" / "frames.bin") == [good]
    finally:
        await by.close()
        await lt.close()


async def test_a_frame_that_is_not_an_envelope_is_refused_as_bad_frame(
    relay: RelayProcess,
) -> None:
    """Bytes that are not [1, body, sig], and a body of BY's key whose id is a list, each get a
    bad_frame refusal; the connection still carries the warning sent next."""
    by = relay.client("BY")
    try:
        await by.connect()
        assert by.ws is not None
        odd_id = msgpack.packb({"from": "BY", "kid": by.key.public.kid, "id": [1]})
        for frame in (b"\x93\x01\xa3abc\x00", msgpack.packb([1, odd_id, bytes(64)])):
            await by.ws.send_bytes(frame)
            refusal = await _next(by)
            assert isinstance(refusal, RejectedNotice)
            assert refusal.code == "bad_frame"
        good, ident = sealed_warning(by)
        await by.ws.send_bytes(good)
        answer = await _next(by)
        assert isinstance(answer, Accepted)
        accepted = open_envelope(answer.frame, relay.network).body
        assert isinstance(accepted, AcceptedBody)
        assert accepted.ref == ident
    finally:
        await by.close()


async def test_a_client_that_does_not_name_a_party_is_closed(relay: RelayProcess) -> None:
    """A first frame naming no party of the network closes the socket with 4001."""
    key = load_signing_key(key_path(relay.config.parent, "BY"))
    stranger = FloorClient("XX", key, relay.network, relay.url)
    try:
        await stranger.connect()
        assert stranger.ws is not None
        message = await asyncio.wait_for(stranger.ws.receive(), TIMEOUT_S)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert stranger.ws.close_code == UNKNOWN_PARTY_CLOSE
    finally:
        await stranger.close()
