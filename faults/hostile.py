"""Hostile input against a real relay and five endpoints on loopback: every attack refused.

A fresh network in a temporary directory: the relay and BY, LT, LV, EE, PL as
real processes (``faults.procs``), plus two parties whose keys the attacker
holds and that run no endpoint: ``ZA`` (a compromised endpoint, linked to BY,
LT and ZS) and ``ZS`` (a client that authenticates and then stops reading).
The attacks, each expecting one code:

- frames on an authenticated session: forged and mis-keyed signatures, sending
  as another endpoint, an unknown sender, a replayed id and an old ``seq``,
  stale times, forbidden links, a schema break, oversize and garbage frames;
- authentication: unknown ids, wrong keys, anything but ``auth`` first, and the
  same again until the relay answers that address and claimed id rate_limited (4401);
- a slow client: it stops reading while traffic is sent to it; the relay drops
  it, and everything it was owed arrives when it connects again;
- a connection flood from one address: idle TCP sockets and WebSockets that
  never answer the challenge, while the real endpoints keep working;
- path tricks on the relay's tile, checkpoint and proof routes and on the
  endpoints' API and console routes;
- huge, deeply nested and mistyped bodies on an endpoint's ``POST /api/alerts``;
- a flood from ZA at three times its rate limit, during which the other
  endpoints' delivery p99 is measured against the same measurement without it.

Attacks come from 127.0.0.2 to 127.0.0.4, so the relay's per-address limits on
bad authentication fall on the attacker's addresses, not on the real endpoints
at 127.0.0.1.
``forged_accepted`` counts forged frames that were answered ``accepted`` or are
in the relay's published log (read back through its tiles) or in an inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import msgpack
from yarl import URL

from faults.procs import Proc, run_in_directory
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from hotline.bootstrap import create_network, key_path
from hotline.endpoint.feedconfig import FEEDS_FILE, token_sha256
from hotline.keyfile import load_signing_key
from hotline.protocol.bodies import TextBody
from hotline.protocol.envelope import seal_bytes
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    Accepted,
    Auth,
    Control,
    Deliver,
    RejectedNotice,
    Welcome,
    auth_signature,
    decode_control,
    encode_control,
)
from hotline.protocol.vocab import Precedence, Status
from hotline.testing.operators import LoggedIn, add_operator
from hotline.testing.ports import free_port

__all__ = ["HostileResult", "main", "run_hostile"]

ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
ATTACKER: Final = "ZA"
SLOW: Final = "ZS"
ATTACK_LINKS: Final = ((ATTACKER, "BY"), (ATTACKER, "LT"), (ATTACKER, SLOW))
ATTACK_ADDRESS: Final = "127.0.0.2"
FLOOD_ADDRESS: Final = "127.0.0.3"
GUESSING_ADDRESS: Final = "127.0.0.4"  # repeated bad authentication: refused once it has failed
FEED_TOKEN: Final = "hostile-harness-feed-token-0123456789abcdef"  # noqa: S105 - a test feed
ANSWER_TIMEOUT_S: Final = 10.0
SLOW_TEXT: Final = "\U0001f6a8" * 4000  # the longest text a body holds: 16 kB of UTF-8


def _say(text: str) -> None:
    print(f"hostile: {text}", file=sys.stderr, flush=True)  # noqa: T201 - a command's progress


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class HostileResult:
    """What the hostile phase counted. ``codes`` holds every refusal seen, by code."""

    cases: int
    rejected: int
    forged_accepted: int
    flood_p99_ratio: float
    baseline_p99_ms: float
    flood_p99_ms: float
    codes: dict[str, int] = field(default_factory=dict)
    failures: tuple[str, ...] = ()  # cases not refused with their expected code
    seconds: float = 0.0

    def line(self) -> str:
        return (f"hostile: cases={self.cases} rejected={self.rejected} "
                f"forged_accepted={self.forged_accepted} "
                f"flood_p99_ratio={self.flood_p99_ratio:.2f}")


@dataclass
class _Tally:
    cases: int = 0
    rejected: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    forged_ids: set[bytes] = field(default_factory=set)  # never in an inbox
    forged_hashes: set[bytes] = field(default_factory=set)  # never a body in the log
    forged_answered: int = 0  # forged frames answered "accepted"

    def record(self, case: str, observed: str, expected: str | Sequence[str]) -> None:
        allowed = (expected,) if isinstance(expected, str) else tuple(expected)
        self.cases += 1
        self.codes[observed] += 1
        if observed in allowed:
            self.rejected += 1
        else:
            self.failures.append(f"{case}: got {observed}, expected {' or '.join(allowed)}")
            _say(f"NOT REJECTED AS EXPECTED {case}: got {observed}, expected {allowed}")


# ----------------------------------------------------------------------------- the network


class _Net:
    """The network on disk and its processes; the attacker holds every key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        port = free_port()
        self.relay_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/v1/ws"
        parties = (*ENDPOINTS, ATTACKER, SLOW)
        links = [(a, b) for i, a in enumerate(ENDPOINTS) for b in ENDPOINTS[i + 1:]]
        self.network = create_network(root, endpoints=parties, links=[*links, *ATTACK_LINKS],
                                      relay_url=self.ws_url)
        self.keys: dict[str, SigningKey] = {
            p: load_signing_key(key_path(root, p)) for p in parties
        }
        self.relay = Proc("relay", ["relay", "--network", str(root), "--data",
                                    str(root / "relay"), "--host", "127.0.0.1",
                                    "--port", str(port)],
                          self.relay_url + "/healthz", root / "logs" / "relay.log")
        self.urls: dict[str, str] = {}
        self.endpoints: dict[str, Proc] = {}
        for party in ENDPOINTS:
            data = root / "endpoints" / party
            data.mkdir(parents=True)
            add_operator(data)  # the harness logs in as this officer (LoggedIn)
            (data / FEEDS_FILE).write_text(
                f'[[feeds]]\nname = "radar"\ntoken_sha256 = "{token_sha256(FEED_TOKEN).hex()}"\n'
                "rate_per_minute = 600\n", encoding="utf-8")
            http_port = free_port()
            self.urls[party] = f"http://127.0.0.1:{http_port}"
            self.endpoints[party] = Proc(
                party, ["endpoint", "--network", str(root), "--id", party, "--data", str(data),
                        "--host", "127.0.0.1", "--port", str(http_port),
                        "--relay-url", self.ws_url],
                self.urls[party] + "/healthz", root / "logs" / f"{party}.log")

    async def start(self, http: aiohttp.ClientSession) -> None:
        await self.relay.start(http)
        await asyncio.gather(*(p.start(http) for p in self.endpoints.values()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every endpoint connected to the relay
            async with http.get(self.relay_url + "/healthz") as r:
                online = set((await r.json())["online"])
            if online >= set(ENDPOINTS):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"endpoints not connected to the relay: {set(ENDPOINTS) - online}")

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        await self.relay.stop()


class _Author:
    """Fresh bodies for one party: new ids, rising seq, the current time."""

    def __init__(self, party: str, key: SigningKey) -> None:
        self.party = party
        self.key = key
        self.seq = _now_ms() * 1000

    def text(
        self, to: Sequence[str], words: str = "hostile harness", **changes: object
    ) -> TextBody:
        self.seq += 1
        now = _now_ms()
        body = TextBody(id=make_id(now, os.urandom(10)), sender=self.party, ts=now, seq=self.seq,
                        kid=self.key.public.kid, to=tuple(to), status=Status.EXERCISE,
                        precedence=Precedence.ROUTINE, text=words, lang="en")
        return dataclasses.replace(body, **changes)  # type: ignore[arg-type]


def _seal(body: TextBody, key: SigningKey) -> bytes:
    """Sign whatever the body says (its kid and sender included) with ``key``."""
    return seal_bytes(encode_body(body), key)


# ----------------------------------------------------------------------------- a raw session


class _Session:
    """A bare WebSocket session with the relay, from a chosen local address."""

    def __init__(self, url: str, address: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.controls: asyncio.Queue[Control] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def open(self, party: str, key: SigningKey, *, read: bool = True) -> None:
        self.ws = await self.http.ws_connect(self.url, autoping=read, heartbeat=None)
        challenge = await self.ws.receive_bytes(timeout=ANSWER_TIMEOUT_S)
        await self.ws.send_bytes(encode_control(Auth(party, auth_signature(challenge, party,
                                                                           key))))
        welcome = decode_control(await self.ws.receive_bytes(timeout=ANSWER_TIMEOUT_S))
        if not isinstance(welcome, Welcome):
            raise RuntimeError(f"{party} was not welcomed: {welcome}")  # noqa: TRY004
        if read:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                with contextlib.suppress(Exception):
                    await self.controls.put(decode_control(message.data))

    async def answer(self) -> Accepted | RejectedNotice:
        """The next accepted or rejected answer (deliveries and checkpoints skipped)."""
        while True:
            control = await asyncio.wait_for(self.controls.get(), ANSWER_TIMEOUT_S)
            if isinstance(control, Accepted | RejectedNotice):
                return control

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self.http.close()


# ----------------------------------------------------------------------------- frame attacks


async def _frame_cases(net: _Net, tally: _Tally) -> None:  # noqa: PLR0915 - one list of cases
    keys = net.keys
    za = _Author(ATTACKER, keys[ATTACKER])
    session = _Session(net.ws_url, ATTACK_ADDRESS)
    try:
        await session.open(ATTACKER, keys[ATTACKER])
        assert session.ws is not None

        async def attempt(case: str, frame: bytes, expected: str, body: TextBody | None) -> None:
            assert session.ws is not None
            if body is not None:
                tally.forged_ids.add(body.id)
                tally.forged_hashes.add(hashlib.sha256(encode_body(body)).digest())
            await session.ws.send_bytes(frame)
            answer = await session.answer()
            if isinstance(answer, Accepted):
                tally.forged_answered += 1
                tally.record(case, "accepted", expected)
            else:
                tally.record(case, answer.code, expected)

        def forged(body: TextBody) -> bytes:
            frame = bytearray(_seal(body, keys[ATTACKER]))
            frame[-1] ^= 0x01
            return bytes(frame)

        body = za.text(["BY"])
        await attempt("forged_signature", forged(body), "bad_signature", body)
        body = za.text(["BY"], sender="BY", kid=keys["BY"].public.kid)
        await attempt("mis_keyed_signature", _seal(body, keys[ATTACKER]), "bad_signature", body)
        body = za.text(["BY"], kid=keys["LT"].public.kid)
        await attempt("wrong_key_id", _seal(body, keys[ATTACKER]), "bad_signature", body)
        lt = _Author("LT", keys["LT"])
        body = lt.text(["BY"])
        await attempt("sent_as_another_endpoint", _seal(body, keys["LT"]), "sender_mismatch",
                      body)
        body = za.text(["BY"], sender="QQ")
        await attempt("unknown_sender", _seal(body, keys[ATTACKER]), "unknown_sender", body)

        original = za.text(["BY"], words="the original")
        await session.ws.send_bytes(_seal(original, keys[ATTACKER]))
        if not isinstance(await session.answer(), Accepted):
            raise RuntimeError("a valid message from the attacker was not accepted")  # noqa: TRY004
        body = za.text(["BY"], id=original.id, words="a replay under the same id")
        tally.forged_hashes.add(hashlib.sha256(encode_body(body)).digest())
        await attempt("replayed_id", _seal(body, keys[ATTACKER]), "replay", None)
        body = za.text(["BY"], seq=original.seq)
        await attempt("old_seq", _seal(body, keys[ATTACKER]), "replay", body)
        now = _now_ms()
        body = za.text(["BY"], ts=now + 3_600_000)
        await attempt("time_in_the_future", _seal(body, keys[ATTACKER]), "stale", body)
        body = za.text(["BY"], ts=now - 90_000_000)
        await attempt("time_too_old", _seal(body, keys[ATTACKER]), "stale", body)
        body = za.text(["LV"])
        await attempt("forbidden_link", _seal(body, keys[ATTACKER]), "link_forbidden", body)
        body = za.text(["BY", "EE"])
        await attempt("forbidden_link_among_allowed", _seal(body, keys[ATTACKER]),
                      "link_forbidden", body)
        body = za.text(["XX"])
        await attempt("unknown_recipient", _seal(body, keys[ATTACKER]), "link_forbidden", body)
        body = za.text(["BY"])
        fields = msgpack.unpackb(encode_body(body), raw=False)
        fields["lang"] = "not a language tag"
        raw = msgpack.packb(fields, use_bin_type=True)
        await attempt("schema_break", seal_bytes(raw, keys[ATTACKER]), "schema", None)

        limit = net.network.limits.max_frame_bytes
        await attempt("oversize_frame", b"\x93\x01\xc6" + b"\x00" * (limit + 16), "too_large",
                      None)
        rng = random.Random(7)  # noqa: S311 - reproducible garbage, not cryptography
        valid = _seal(za.text(["BY"]), keys[ATTACKER])
        garbage = {
            "garbage_random": b"\x93" + rng.randbytes(200),
            "garbage_truncated": valid[: len(valid) // 2],
            "garbage_trailing_bytes": valid + b"\x00",
            "garbage_version_2": b"\x93\x02" + valid[2:],
            "garbage_body_not_a_map": seal_bytes(msgpack.packb([1, 2, 3]), keys[ATTACKER]),
            "garbage_repeated_key": seal_bytes(b"\x82\xa1t\xa4text\xa1t\xa4text",
                                               keys[ATTACKER]),
            "garbage_control_map": b"\x81\xa1t\xa5bogus",
            "garbage_control_not_msgpack": b"\xc1\xc1\xc1",
        }
        for case, frame in garbage.items():
            expected = "schema" if case == "garbage_control_map" else "bad_frame"
            await attempt(case, frame, expected, None)
        await session.ws.send_str("plain text, not MessagePack")
        answer = await session.answer()
        tally.record("garbage_text_frame",
                     answer.code if isinstance(answer, RejectedNotice) else "accepted",
                     "bad_frame")
    finally:
        await session.close()


# ----------------------------------------------------------------------------- authentication


async def _auth_attempt(net: _Net, make: Callable[[bytes], tuple[str, bytes]]) -> str:
    """One connection that answers the challenge with ``make``: the code it is refused with."""
    session = _Session(net.ws_url, GUESSING_ADDRESS)
    try:
        try:
            session.ws = await session.http.ws_connect(net.ws_url)
        except aiohttp.WSServerHandshakeError as exc:
            return f"{exc.status} rate_limited" if exc.status == 429 else f"{exc.status}"
        challenge = await session.ws.receive_bytes(timeout=ANSWER_TIMEOUT_S)
        kind, data = make(challenge)
        if kind == "text":
            await session.ws.send_str(data.decode())
        else:
            await session.ws.send_bytes(data)
        message = await session.ws.receive(timeout=ANSWER_TIMEOUT_S)
        if message.type is aiohttp.WSMsgType.CLOSE:
            reason = str(message.extra or "").split(":")[0]
            return f"{message.data} {reason}"
        return f"answered {message.type.name}"
    finally:
        await session.close()


async def _auth_cases(net: _Net, tally: _Tally) -> None:
    keys = net.keys

    def stranger(c: bytes) -> tuple[str, bytes]:
        return "bin", encode_control(Auth("XX", auth_signature(c, "XX", keys[ATTACKER])))

    def wrong_key(c: bytes) -> tuple[str, bytes]:
        return "bin", encode_control(Auth("BY", auth_signature(c, "BY", keys[ATTACKER])))

    def envelope_first(c: bytes) -> tuple[str, bytes]:
        return "bin", _seal(_Author(ATTACKER, keys[ATTACKER]).text(["BY"]), keys[ATTACKER])

    def text_first(c: bytes) -> tuple[str, bytes]:
        return "text", b"hello"

    cases: list[tuple[str, Callable[[bytes], tuple[str, bytes]], str | tuple[str, ...]]] = [
        ("auth_unknown_id", stranger, "4401 unknown_sender"),
        ("auth_wrong_key", wrong_key, "4401 bad_signature"),
        ("auth_envelope_first", envelope_first, ("4401 not_authenticated", "4401 bad_frame")),
        ("auth_text_first", text_first, "4401 bad_frame"),
    ]
    for case, make, expected in cases:
        tally.record(case, await _auth_attempt(net, make), expected)
    # the same address keeps claiming BY with wrong keys: that pair is told rate_limited
    # (a valid answer from the same address would still be welcomed)
    refused_after = 0
    for attempt in range(1, 11):
        code = await _auth_attempt(net, wrong_key)
        if code == "4401 rate_limited":
            refused_after = attempt
            break
    tally.record("auth_repeated_failures",
                 "4401 rate_limited" if refused_after else "never refused", "4401 rate_limited")
    _say(f"repeated bad authentication refused after {len(cases) + refused_after} tries")


# ----------------------------------------------------------------------------- slow client


async def _slow_client(  # noqa: PLR0915 - one scenario, start to end
    net: _Net, tally: _Tally, http: aiohttp.ClientSession
) -> None:
    """ZS authenticates and stops reading; ZA sends it long texts until the relay drops it."""
    keys = net.keys
    slow = _Session(net.ws_url, ATTACK_ADDRESS)
    sender = _Session(net.ws_url, ATTACK_ADDRESS)
    za = _Author(ATTACKER, keys[ATTACKER])
    sent: list[bytes] = []
    try:
        await slow.open(SLOW, keys[SLOW], read=False)
        await sender.open(ATTACKER, keys[ATTACKER])
        assert sender.ws is not None
        assert slow.ws is not None
        for _ in range(60):
            body = za.text([SLOW], words=SLOW_TEXT)
            await sender.ws.send_bytes(_seal(body, keys[ATTACKER]))
            answer = await sender.answer()
            if isinstance(answer, Accepted):
                sent.append(body.id)
        deadline = time.monotonic() + 40
        dropped = False
        while time.monotonic() < deadline and not dropped:
            async with http.get(net.relay_url + "/healthz") as r:
                dropped = SLOW not in (await r.json())["online"]
            await asyncio.sleep(0.2)
        code = "still connected"
        if dropped:
            code = "dropped"
            with contextlib.suppress(Exception):
                while True:  # now read what was buffered, up to the close
                    message = await slow.ws.receive(timeout=10)
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                        aiohttp.WSMsgType.ERROR):
                        break
            close = slow.ws.close_code
            code = f"{close} slow_reader" if close in (4408, 1006) else f"{close} dropped"
        tally.record("slow_reader", code, ("4408 slow_reader", "1006 slow_reader", "None dropped"))
    finally:
        await slow.close()
    # connected again and reading: everything the relay owed it arrives, once
    again = _Session(net.ws_url, ATTACK_ADDRESS)
    try:
        await again.open(SLOW, keys[SLOW])
        missing = set(sent)
        end = time.monotonic() + 30
        while missing and time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                control = await asyncio.wait_for(again.controls.get(), 1)
                if isinstance(control, Deliver):
                    body = msgpack.unpackb(msgpack.unpackb(control.frame)[1], raw=False)
                    missing.discard(body["id"])
        tally.record("slow_reader_redelivered", "all" if not missing else f"{len(missing)} lost",
                     "all")
    finally:
        await again.close()
        await sender.close()


# ----------------------------------------------------------------------------- connection flood


async def _connection_flood(net: _Net, tally: _Tally, http: aiohttp.ClientSession,
                            count: int) -> None:
    """``count`` idle TCP sockets and ``count`` silent WebSockets from one address."""
    host, port = "127.0.0.1", int(URL(net.relay_url).port or 0)
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(host, port,
                                                           local_addr=(FLOOD_ADDRESS, 0))
            readers.append(reader)
            writers.append(writer)
    flood = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(FLOOD_ADDRESS, 0), limit=0),
        timeout=aiohttp.ClientTimeout(total=60))

    async def silent() -> str:
        async with asyncio.timeout(45):
            return await silent_socket()

    async def silent_socket() -> str:
        try:
            ws = await flood.ws_connect(net.ws_url, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            return f"{exc.status} rate_limited" if exc.status == 429 else str(exc.status)
        except (aiohttp.ClientError, OSError) as exc:
            return type(exc).__name__
        async with ws:
            while True:
                message = await ws.receive(timeout=40)
                if message.type is aiohttp.WSMsgType.CLOSE:
                    return f"{message.data} {str(message.extra or '').split(':')[0]}"
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return "closed"

    try:
        silent_tasks = [asyncio.create_task(silent()) for _ in range(count)]
        # meanwhile the real endpoints still talk: BY to LT through the API
        delivered = await _probe_delivery(net, http, "BY", "LT")
        tally.record("flood_service_kept", "delivered" if delivered else "not delivered",
                     "delivered")
        for code in await asyncio.gather(*silent_tasks):
            tally.record("flood_silent_websocket", code,
                         ("4401 not_authenticated", "429 rate_limited"))

        async def idle_closed(reader: asyncio.StreamReader) -> str:
            try:
                data = await asyncio.wait_for(reader.read(), 40)
            except (TimeoutError, OSError):
                return "held open"
            return "closed" if not data else "answered"

        for code in await asyncio.gather(*(idle_closed(r) for r in readers)):
            tally.record("flood_idle_socket", code, "closed")
    finally:
        for writer in writers:
            writer.close()
        await flood.close()


async def _probe_delivery(net: _Net, http: aiohttp.ClientSession, sender: str,
                          recipient: str) -> bool:
    """Post one message through ``sender``'s API; True once it is in ``recipient``'s inbox."""
    body = {"t": "text", "to": [recipient], "status": "exercise", "precedence": "flash",
            "text": "still there?", "lang": "en"}
    async with http.post(net.urls[sender] + "/api/messages", json=body) as r:
        if r.status != 202:
            return False
        message_id = (await r.json())["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        async with http.get(net.urls[recipient] + "/api/inbox") as r:
            if any(m["id"] == message_id for m in (await r.json())["messages"]):
                return True
        await asyncio.sleep(0.1)
    return False


# ----------------------------------------------------------------------------- HTTP attacks

_RELAY_PATHS: Final = (
    "/tile/..", "/tile/../checkpoint", "/tile/%2e%2e/%2e%2e/etc/passwd",
    "/tile/0/..%2f..%2fnetwork.toml", "/tile/0/%2e%2e%2f000", "/tile/0/000%00",
    "/tile/0/x001/..%2f000", "/tile/entries/..%5c000", "/tile/0/" + "x000/" * 2000 + "000",
    "/tile/64/000", "/tile/0/0000", "/tile/entries/000.p/256", "/tile/0/000.p/0",
    "/v1/proof/inclusion?index=-1&size=1", "/v1/proof/inclusion?index=%00&size=1",
    "/v1/proof/inclusion?index=0&size=99999999999999999999",
    "/v1/proof/consistency?old=2&new=1", "/v1/proof/consistency?old=..&new=%2e",
    "/checkpoint%00", "/checkpoint/..%2f..%2fkeys", "/%2e%2e/%2e%2e/keys/relay.key",
    "/" + "a" * 20_000,
)
_ENDPOINT_PATHS: Final = (
    ("GET", "/console/..%2f..%2fendpoint%2fapi.py"), ("GET", "/console/%2e%2e%2fservice.py"),
    ("GET", "/console/i18n/..%2f..%2fapi.json"), ("GET", "/console/index.html%00.js"),
    ("GET", "/api/messages/..%2f..%2fkeys%2fBY.key.cap"), ("GET", "/api/messages/%00.cap"),
    ("POST", "/api/messages/..%2finbox/ack"), ("POST", "/api/messages/%2e%2e/ack"),
    ("GET", "/%2e%2e/%2e%2e/network.toml"), ("GET", "/keys/BY.key"),
    ("GET", "/console/" + "b" * 20_000),
)


async def _status_of(
    http: aiohttp.ClientSession, method: str, url: str,
    data: bytes | None = None, headers: dict[str, str] | None = None,
) -> str:
    """``status error`` of a request (the error code when the answer is error JSON)."""
    try:
        async with http.request(method, URL(url, encoded=True), data=data,
                                headers=headers) as r:
            text = await r.text(errors="replace")
            error = ""
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                error = str(json.loads(text).get("error") or "")
            return f"{r.status} {error}".strip()
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def _http_cases(net: _Net, tally: _Tally, http: aiohttp.ClientSession) -> None:
    for path in _RELAY_PATHS:
        code = await _status_of(http, "GET", net.relay_url + path)
        ok = code.startswith(("400", "404", "414", "431"))
        tally.record(f"relay_path {path[:40]}", code, code if ok else "4xx")
    url = net.urls["LT"]
    for method, path in _ENDPOINT_PATHS:
        code = await _status_of(http, method, url + path)
        # a post without a JSON body is refused (415) before its path is looked at
        ok = code.startswith(("400", "404", "414", "415", "431"))
        tally.record(f"endpoint_path {path[:40]}", code, code if ok else "4xx")
    auth = {"Authorization": f"Bearer {FEED_TOKEN}"}
    json_type = {**auth, "Content-Type": "application/json"}
    bodies: list[tuple[str, dict[str, str], bytes, str]] = [
        ("alert_huge", json_type, b'{"pad": "' + b"x" * 200_000 + b'"}', "413 too_large"),
        ("alert_deeply_nested", json_type, b"[" * 30_000 + b"]" * 30_000, "400 bad_json"),
        ("alert_nested_objects", json_type, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
         "400 bad_json"),
        ("alert_nan", json_type, b'{"track": {"lat": NaN}}', "400 bad_json"),
        ("alert_repeated_key", json_type, b'{"to": ["BY"], "to": ["PL"]}', "400 bad_json"),
        ("alert_not_json", json_type, b"\xff\xfe<alert/>", "400 bad_json"),
        ("alert_text_plain", {**auth, "Content-Type": "text/plain"}, b"{}",
         "415 unsupported_media_type"),
        ("alert_form", {**auth, "Content-Type": "application/x-www-form-urlencoded"}, b"a=1",
         "415 unsupported_media_type"),
        ("alert_xml", {**auth, "Content-Type": "application/xml"}, b"<a/>",
         "415 unsupported_media_type"),
        ("alert_no_token", {"Content-Type": "application/json"}, b"{}", "401 not_authenticated"),
        ("alert_wrong_token", {"Authorization": "Bearer nope", "Content-Type":
                               "application/json"}, b"{}", "401 not_authenticated"),
        ("alert_schema", json_type, b'{"to": ["BY"], "track": {"lat": 999}}', "422 schema"),
    ]
    for case, headers, data, expected in bodies:
        code = await _status_of(http, "POST", url + "/api/alerts", data=data, headers=headers)
        tally.record(case, code, expected)
    code = await _status_of(http, "POST", url + "/api/messages", data=b"[" * 50_000,
                            headers={"Content-Type": "application/json"})
    tally.record("messages_deeply_nested", code, ("400 bad_json", "422 schema"))


# ----------------------------------------------------------------------------- flood and p99


async def _measure(net: _Net, http: aiohttp.ClientSession, seconds: float, rate: float,
                   rng: random.Random) -> list[float]:
    """Delivery latencies (ms, sent_ts → received_ms) of messages among the five endpoints."""
    posted: list[tuple[str, str]] = []  # (id, recipient)
    end = time.monotonic() + seconds
    interval = 1.0 / rate
    while time.monotonic() < end:
        sender = rng.choice(ENDPOINTS)
        recipient = rng.choice([p for p in ENDPOINTS if p != sender])
        body = {"t": "text", "to": [recipient], "status": "exercise", "precedence": "flash",
                "text": f"measure {rng.getrandbits(32):08x}", "lang": "en"}
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with http.post(net.urls[sender] + "/api/messages", json=body) as r:
                if r.status == 202:
                    posted.append(((await r.json())["id"], recipient))
        await asyncio.sleep(interval * rng.uniform(0.5, 1.5))
    latencies: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while len(latencies) < len(posted) and time.monotonic() < deadline:
        for party in ENDPOINTS:
            async with http.get(net.urls[party] + "/api/inbox") as r:
                for m in (await r.json())["messages"]:
                    latencies.setdefault(m["id"], float(m["received_ms"] - m["sent_ts"]))
        if len(latencies) < len(posted):
            await asyncio.sleep(0.3)
    return [latencies[i] for i, _ in posted if i in latencies]


def _p99(values: Sequence[float]) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


async def _flood(net: _Net, tally: _Tally, seconds: float, factor: float) -> tuple[int, int]:
    """ZA sends valid messages at ``factor`` times its rate limit: (accepted, rate_limited)."""
    keys = net.keys
    session = _Session(net.ws_url, ATTACK_ADDRESS)
    za = _Author(ATTACKER, keys[ATTACKER])
    accepted = limited = 0
    rate = net.network.limits.messages_per_minute / 60
    bucket = max(10.0, rate * 10)  # what the relay's token bucket holds (protocol §4.1)
    # at least ``factor`` times the rate, and enough to empty the bucket within the flood
    per_second = max(factor * rate, 2 * (bucket + rate * seconds) / seconds)
    try:
        await session.open(ATTACKER, keys[ATTACKER])
        assert session.ws is not None
        end = time.monotonic() + seconds
        sent = 0
        start = time.monotonic()
        while time.monotonic() < end:
            await session.ws.send_bytes(_seal(za.text(["BY", "LT"]), keys[ATTACKER]))
            sent += 1
            ahead = sent / per_second - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
        for _ in range(sent):
            try:
                answer = await session.answer()
            except TimeoutError:
                break
            if isinstance(answer, Accepted):
                accepted += 1
            else:
                tally.codes[answer.code] += 1
                limited += answer.code == "rate_limited"
    finally:
        await session.close()
    return accepted, limited


async def _flood_ratio(net: _Net, tally: _Tally, http: aiohttp.ClientSession,
                       seconds: float, rate: float) -> tuple[float, float]:
    rng = random.Random(11)  # noqa: S311 - a repeatable load
    baseline = await _measure(net, http, seconds, rate, rng)
    flood = asyncio.create_task(_flood(net, tally, seconds + 1, 3.0))
    flooded = await _measure(net, http, seconds, rate, rng)
    accepted, limited = await flood
    tally.record("flood_rate_limited", "rate_limited" if limited else "never limited",
                 "rate_limited")
    _say(f"flood: {accepted} accepted, {limited} rate_limited; "
         f"samples {len(baseline)} / {len(flooded)}")
    return _p99(baseline), _p99(flooded)


# ----------------------------------------------------------------------------- forged check


async def _published_bodies(net: _Net, http: aiohttp.ClientSession) -> list[bytes]:
    """The body bytes of every envelope in the relay's published log, read from its tiles."""
    async with http.get(net.relay_url + "/checkpoint") as r:
        size = int((await r.text()).split("\n")[1])
    bodies: list[bytes] = []
    for index in range(math.ceil(size / TILE_WIDTH)):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        async with http.get(f"{net.relay_url}/{entries_path(index, width)}") as r:
            bundle = await r.read()
        for entry in decode_entry_bundle(bundle, width):
            decoded = decode_entry(entry)
            if decoded.envelope is not None:
                bodies.append(msgpack.unpackb(decoded.envelope, raw=False)[1])
    return bodies


async def _forged_accepted(net: _Net, tally: _Tally, http: aiohttp.ClientSession) -> int:
    await asyncio.sleep(2.5)  # one checkpoint interval and more: the log is published
    found = tally.forged_answered
    bodies = await _published_bodies(net, http)
    found += sum(hashlib.sha256(b).digest() in tally.forged_hashes for b in bodies)
    forged = {format_id(i) for i in tally.forged_ids}
    for party in ENDPOINTS:
        async with http.get(net.urls[party] + "/api/inbox") as r:
            found += sum(m["id"] in forged for m in (await r.json())["messages"])
    _say(f"checked {len(bodies)} logged envelopes and {len(ENDPOINTS)} inboxes for "
         f"{len(tally.forged_hashes)} forged bodies")
    return found


# ----------------------------------------------------------------------------- the phase


async def _timed(what: str, step: Awaitable[None]) -> None:
    started = time.monotonic()
    await step
    _say(f"{what} done in {time.monotonic() - started:.1f} s")


async def run_hostile(
    root: Path,
    *,
    flood_seconds: float = 10.0,
    measure_rate: float = 8.0,
    connections: int = 150,
) -> HostileResult:
    """Start the network in ``root`` (an empty directory), attack it, stop it, count."""
    started = time.monotonic()
    net = _Net(root)
    tally = _Tally()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, middlewares=(LoggedIn(),)) as http:
        try:
            await net.start(http)
            await _timed("frame attacks", _frame_cases(net, tally))
            await _timed("authentication attacks", _auth_cases(net, tally))
            await _timed("path and body attacks", _http_cases(net, tally, http))
            await _timed("slow client and connection flood", _gather(
                _slow_client(net, tally, http),
                _connection_flood(net, tally, http, connections)))
            baseline, flooded = await _flood_ratio(net, tally, http, flood_seconds,
                                                   measure_rate)
            forged = await _forged_accepted(net, tally, http)
        finally:
            await net.stop()
    ratio = flooded / baseline if baseline > 0 else math.inf
    _say(f"delivery p99 {baseline:.0f} ms without the flood, {flooded:.0f} ms with it")
    for failure in tally.failures:
        _say(f"FAILED {failure}")
    return HostileResult(
        cases=tally.cases, rejected=tally.rejected, forged_accepted=forged,
        flood_p99_ratio=ratio, baseline_p99_ms=baseline, flood_p99_ms=flooded,
        codes=dict(sorted(tally.codes.items())), failures=tuple(tally.failures),
        seconds=time.monotonic() - started,
    )


async def _gather(*steps: Awaitable[None]) -> None:
    await asyncio.gather(*steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.hostile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--measure-rate", type=float, default=8.0,
                        help="messages per second among the five endpoints while measuring")
    parser.add_argument("--connections", type=int, default=150,
                        help="idle sockets and silent WebSockets each, in the connection flood")
    parser.add_argument("--keep", type=Path, help="keep the run's data in this directory")
    args = parser.parse_args(argv)

    async def run(root: Path) -> HostileResult:
        return await run_hostile(root, flood_seconds=args.flood_seconds,
                                 measure_rate=args.measure_rate, connections=args.connections)

    result = run_in_directory(args.keep, "hotline-hostile-", run)
    _say("codes: " + " ".join(f"{code}={n}" for code, n in result.codes.items()))
    print(result.line(), flush=True)  # noqa: T201 - the summary line is the command's output
    return 1 if result.failures or result.forged_accepted else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
