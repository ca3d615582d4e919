"""The floor: a relay that does only the per-message work hotline's protocol requires.

    python bench/peers/floor_relay.py --network CONFIG --data DIR --port P

It runs in hotline's stack (CPython, an aiohttp WebSocket server on
127.0.0.1, msgpack, PyNaCl to verify, ``cryptography`` to sign, an fsynced
file) and carries the benchmark's round trips (``peers.floor_peer``) with the
same frames as hotline's relay, so that the CPU it spends per round trip is the
least a relay written this way can spend: the floor beneath hotline's relay.

What it does, for each binary frame (a signed envelope ``[1, body, sig]``):

1. unpacks the outer array and the body map (plain ``msgpack.unpackb``);
2. finds the sender's public key by the body's ``from`` and ``kid`` in a dict
   built at start from the network's keys, and verifies the signature over
   ``MSG_TAG + body`` (:meth:`hotline.protocol.keys.PublicKey.verify`);
3. appends the frame to one file through a group commit: one writer thread
   takes everything queued as a batch, writes it with ``os.write`` (each frame
   prefixed by its length, 4 bytes big-endian) and makes it durable with one
   ``os.fsync``; the batch comes back to the event loop in order;
4. once durable, signs an ``accepted`` body with the relay's key (the fields of
   hotline's ``AcceptedBody``: ``t id from ts seq kid ref hash index``,
   ``hash`` the SHA-256 of the body bytes, ``index`` the frame's place in the
   file counted from 0), packed with plain ``msgpack.packb``, and answers the
   sender's socket with it as the ``accepted`` control message;
5. forwards the frame as a ``deliver`` control message with that index: a
   warning (any body with ``to``) to each party in ``to``, a receipt to the
   party that sent the message it refers to (remembered by id).

A frame that does not unpack, has no ``id`` of bytes, names a key the network
does not list, or whose signature does not verify is answered with an unsigned
``rejected`` notice (code ``bad_frame`` or ``bad_signature``) and is neither
written nor forwarded.

What it does not do, and why leaving it out keeps this a floor: no
challenge/response authentication (a client's first frame is a text frame
naming its party; hotline's costs one signature per connection, not per
message); no schema check of the body, key periods, sender/connection match,
admission rules, rate limits or dedup; no leaf hashes, Merkle tree, index
file, frontier, checkpoints or cosignatures; no deadline tick, link tests,
figures or structured logging; no signed refusals; no replay at start (the
file is only ever appended to). It keeps two growing tables, the sockets by
party and the senders by message id, so a benchmark starts it afresh per run.

Why it is a floor: steps 1-5 are work the protocol requires of any relay for
every message (read the envelope, check its signature, make it durable before
answering, answer with a signed receipt, forward it), and it does them with
nothing around them. Two messages per round trip (a warning and its
``delivered`` receipt) make two verifications and two signatures, the relay's
mandatory signature CPU (``peers.signatures.relay_cpu_us``); the rest of this
relay's CPU per round trip is the least this stack adds to them. It is a lower
bound, not a relay: some of what it leaves out the protocol also requires of
every relay for every message (the body's schema, the sender matching its
authenticated connection, dedup by id, the log's leaf hashes), so a complete
relay in this stack costs more than this, never less.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack
from aiohttp import WSMsgType, web

from hotline.bootstrap import key_path
from hotline.keyfile import load_signing_key
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.envelope import MSG_TAG, VERSION
from hotline.protocol.ids import make_id
from hotline.protocol.keys import PublicKey, SigningKey
from hotline.protocol.session import Accepted, Deliver, RejectedNotice, encode_control

__all__ = ["FloorRelay", "GroupAppend", "Queued", "main"]

WS_PATH: Final = "/v1/ws"
LENGTH_BYTES: Final = 4
UNKNOWN_PARTY_CLOSE: Final = 4001


@dataclass(frozen=True, slots=True)
class Queued:
    """A verified frame on its way to the file, and the socket its ``accepted`` goes to."""

    ws: web.WebSocketResponse
    frame: bytes
    body: bytes
    data: dict[str, Any]


class GroupAppend:
    """One writer thread; a batch is all that is queued: one ``os.write``, one ``os.fsync``.

    ``durable(first_index, batch)`` is called on the writer thread after each
    fsync, with the batch in the order it was queued.
    """

    def __init__(self, path: Path, durable: Callable[[int, list[Queued]], None]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._durable = durable
        self._queue: list[Queued] = []
        self._wake = threading.Condition()
        self._closed = False
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="floor-append", daemon=True)
        self._thread.start()

    def append(self, entry: Queued) -> None:
        with self._wake:
            self._queue.append(entry)
            self._wake.notify()

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the file."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        os.close(self._fd)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            data = memoryview(b"".join(len(e.frame).to_bytes(LENGTH_BYTES, "big") + e.frame
                                       for e in batch))
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
            self._durable(self._size, batch)
            self._size += len(batch)


class FloorRelay:
    """The sockets by party, the keys, the file, and the two steps of a frame."""

    def __init__(self, network: Network, key: SigningKey, data: Path) -> None:
        self._relay_id = network.relay.id
        self._key = key
        self._keys: dict[tuple[str, bytes], PublicKey] = {
            (party, period.key.kid): period.key
            for party in network.endpoints
            for period in network.periods_of(party) or ()
        }
        self._parties = frozenset(network.endpoints)
        self._data = data
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._senders: dict[bytes, str] = {}
        self._outbox: asyncio.Queue[list[tuple[web.WebSocketResponse, bytes]]] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log: GroupAppend | None = None
        self._sender: asyncio.Task[None] | None = None

    async def start(self, _: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._data.mkdir(parents=True, exist_ok=True)
        self._log = GroupAppend(self._data / "frames.bin", self._from_writer)
        self._sender = asyncio.create_task(self._send(), name="floor-send")

    async def close_sockets(self, _: web.Application) -> None:
        for ws in list(self._sockets.values()):
            await ws.close()

    async def stop(self, _: web.Application) -> None:
        if self._log is not None:
            await asyncio.to_thread(self._log.close)
        if self._sender is not None:
            self._sender.cancel()

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        hello = await ws.receive()
        party = hello.data if hello.type is WSMsgType.TEXT else None
        if not isinstance(party, str) or party not in self._parties:
            await ws.close(code=UNKNOWN_PARTY_CLOSE, message=b"name a party of the network first")
            return ws
        self._sockets[party] = ws
        try:
            async for message in ws:
                if message.type is WSMsgType.BINARY:
                    self._receive(ws, message.data)
        finally:
            if self._sockets.get(party) is ws:
                del self._sockets[party]
        return ws

    def _receive(self, ws: web.WebSocketResponse, frame: bytes) -> None:
        """Steps 1-3: unpack, look up the key, verify, queue for the file."""
        try:
            version, body, signature = msgpack.unpackb(frame)
            data = msgpack.unpackb(body)
            key = self._keys[(data["from"], data["kid"])]
            ident = data["id"]
        except (ValueError, TypeError, KeyError):
            ident = None
        if not isinstance(ident, bytes):
            self._refuse(ws, b"", "bad_frame", "the frame is not a signed envelope of a party")
            return
        if (version != VERSION or not isinstance(signature, bytes)
                or not key.verify(signature, MSG_TAG + body)):
            self._refuse(ws, ident, "bad_signature",
                         f"the signature is not {data['from']}'s over this body")
            return
        self._senders[ident] = data["from"]
        assert self._log is not None
        self._log.append(Queued(ws, frame, body, data))

    def _refuse(self, ws: web.WebSocketResponse, ref: bytes, code: str, sentence: str) -> None:
        self._outbox.put_nowait([(ws, encode_control(RejectedNotice(ref, code, sentence)))])

    def _from_writer(self, first: int, batch: list[Queued]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._durable, first, batch)

    def _durable(self, first: int, batch: list[Queued]) -> None:
        """Steps 4-5: a signed ``accepted`` to the sender, the frame to its recipients."""
        now = time.time_ns() // 1_000_000
        out: list[tuple[web.WebSocketResponse, bytes]] = []
        for index, entry in enumerate(batch, start=first):
            digest = hashlib.sha256(entry.body).digest()
            body = msgpack.packb({
                "t": "accepted", "id": make_id(now, digest[:10]), "from": self._relay_id,
                "ts": now, "seq": index, "kid": self._key.public.kid, "ref": entry.data["id"],
                "hash": digest, "index": index,
            })
            signed = msgpack.packb([VERSION, body, self._key.sign(MSG_TAG + body)])
            out.append((entry.ws, encode_control(Accepted(signed))))
            deliver = encode_control(Deliver(index, entry.frame))
            for party in self._recipients(entry.data):
                recipient = self._sockets.get(party)
                if recipient is not None:
                    out.append((recipient, deliver))
        self._outbox.put_nowait(out)

    def _recipients(self, data: dict[str, Any]) -> list[str]:
        if data.get("t") == "receipt":
            ref = data.get("ref")
            sender = self._senders.get(ref) if isinstance(ref, bytes) else None
            return [] if sender is None else [sender]
        to = data.get("to")
        return [p for p in to if isinstance(p, str)] if isinstance(to, list) else []

    async def _send(self) -> None:
        """One sender for every socket, so that what is sent keeps the order it was made in."""
        while True:
            for ws, payload in await self._outbox.get():
                if ws.closed:
                    continue
                try:
                    await ws.send_bytes(payload)
                except ConnectionError:
                    continue


def app(network: Network, key: SigningKey, data: Path) -> web.Application:
    relay = FloorRelay(network, key, data)
    application = web.Application()
    application.router.add_get(WS_PATH, relay.socket)
    application.on_startup.append(relay.start)
    application.on_shutdown.append(relay.close_sockets)
    application.on_cleanup.append(relay.stop)
    return application


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", type=Path, required=True, help="the network's network.toml")
    parser.add_argument("--data", type=Path, required=True, help="where frames.bin is written")
    parser.add_argument("--port", type=int, required=True, help="the port on 127.0.0.1")
    args = parser.parse_args(argv)
    network = load_network(args.network)
    key = load_signing_key(key_path(args.network.parent, network.relay.id))
    web.run_app(app(network, key, args.data), host="127.0.0.1", port=args.port,
                print=None, access_log=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
