"""Round trips through the whole relay pipeline, with 1 and with 100 in flight.

    python bench/relay.py [--round-trips 2000] [--json FILE]

A round trip: BY signs a ~400-byte warning and sends it; the relay verifies it,
appends it durably (group commit), answers BY with its signed ``accepted``
receipt and forwards the warning to LT; LT verifies it and answers a signed
``delivered`` receipt; the relay verifies and appends that, and forwards it to
BY, who verifies it. The clock stops when BY holds LT's receipt.

The relay runs as its own process (``hotline relay``) on a loopback port; the
two endpoints are minimal clients in this process that do what an endpoint
does on the wire (verify, sign) and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import aiohttp
import tomli_w

from hotline.bootstrap import create_network, key_path
from hotline.keyfile import load_signing_key
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.bodies import ReceiptBody, Track, WarningBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.ids import make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import (
    Accepted,
    Auth,
    Deliver,
    RejectedNotice,
    auth_signature,
    decode_control,
    encode_control,
)
from hotline.protocol.vocab import ObjectKind, Precedence, Source, Stage, Status
from hotline.testing.ports import free_port


def _now() -> int:
    return time.time_ns() // 1_000_000


class Client:
    def __init__(self, party: str, key: SigningKey, network: Network, url: str) -> None:
        self.party, self.key, self.network, self.url = party, key, network, url
        self.seq = 0
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url, max_msg_size=1 << 20)
        challenge = await self.ws.receive_bytes()
        signature = auth_signature(challenge, self.party, self.key)
        await self.ws.send_bytes(encode_control(Auth(self.party, signature, 1 << 62)))
        await self.ws.receive_bytes()

    def header(self) -> dict[str, object]:
        self.seq += 1
        now = _now()
        return {"id": make_id(now, os.urandom(10)), "sender": self.party, "ts": now,
                "seq": self.seq, "kid": self.key.public.kid}

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()


def _warning(client: Client) -> bytes:
    return sealed_warning(client)[0]


def sealed_warning(client: Client, to: tuple[str, ...] = ("LT",)) -> tuple[bytes, bytes]:
    """A fresh warning from ``client`` (to LT unless ``to`` says), sealed: frame and id."""
    head = client.header()
    body = WarningBody(
        **head,  # type: ignore[arg-type]
        to=to, status=Status.EXERCISE, precedence=Precedence.FLASH,
        incident=make_id(_now(), os.urandom(10)), expires=int(head["ts"]) + 600_000,  # type: ignore[call-overload]
        track=Track(lat=54.3512, lon=25.9041, observed_at=_now(), object=ObjectKind.UAV,
                    confidence=0.8, source=Source.RADAR, sensor_id="BY-RAD-07", pos_err_m=150.0,
                    alt_m=300.0, alt_ref=None, heading_deg=285.0, speed_mps=33.0),
        text="Bench warning " + "x" * 120, lang="en",
    )
    return seal(replace(body, track=replace(body.track, alt_m=None)), client.key), body.id


async def _recipient(lt: Client, stop: asyncio.Event) -> None:
    """LT: verify each delivered message, answer a signed delivered receipt."""
    assert lt.ws is not None
    async for message in lt.ws:
        if message.type is not aiohttp.WSMsgType.BINARY:
            continue
        control = decode_control(message.data)
        if isinstance(control, Deliver):
            envelope = open_envelope(control.frame, lt.network)
            receipt = ReceiptBody(**lt.header(), ref=envelope.body.id,  # type: ignore[arg-type]
                                  hash=envelope.hash, stage=Stage.DELIVERED)
            await lt.ws.send_bytes(seal(receipt, lt.key))
        if stop.is_set():
            return


async def run_mode(by: Client, lt: Client, round_trips: int, window: int) -> dict[str, float]:
    assert by.ws is not None
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    stop = asyncio.Event()
    slots = asyncio.Semaphore(window)
    recipient = asyncio.create_task(_recipient(lt, stop))

    async def reader() -> None:
        assert by.ws is not None
        async for message in by.ws:
            control = decode_control(message.data)
            if isinstance(control, RejectedNotice):
                raise SystemExit(f"the relay refused a benchmark message: {control}")
            if isinstance(control, Accepted):
                continue
            if isinstance(control, Deliver):
                body = open_envelope(control.frame, by.network).body
                if isinstance(body, ReceiptBody) and body.ref in sent_at:
                    latencies.append(time.perf_counter() - sent_at.pop(body.ref))
                    slots.release()
                    if len(latencies) == round_trips:
                        done.set()
                        return

    read = asyncio.create_task(reader())
    started = time.perf_counter()
    for _ in range(round_trips):
        await slots.acquire()
        frame = _warning(by)
        sent_at[open_envelope(frame, by.network).body.id] = time.perf_counter()
        await by.ws.send_bytes(frame)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    stop.set()
    read.cancel()
    recipient.cancel()
    ordered = sorted(latencies)
    return {
        "round_trips": round_trips, "window": window,
        "round_trips_per_s": round_trips / elapsed,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def main_async(round_trips: int, keep: Path | None) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as scratch:
        root = keep or Path(scratch)
        port = free_port()
        create_network(root / "net", relay_url=f"ws://127.0.0.1:{port}/v1/ws")
        config = root / "net" / "network.toml"
        doc = tomllib.loads(config.read_text())
        doc["limits"]["messages_per_minute"] = 100_000_000
        config.write_text(tomli_w.dumps(doc))
        network = load_network(config)
        relay = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline", "relay", "--network", str(config),
            "--data", str(root / "relay"), "--port", str(port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            url = f"ws://127.0.0.1:{port}/v1/ws"
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
            keys = {p: load_signing_key(key_path(root / "net", p)) for p in ("BY", "LT")}
            by = Client("BY", keys["BY"], network, url)
            lt = Client("LT", keys["LT"], network, url)
            await by.connect()
            await lt.connect()
            results = []
            for window, count in ((1, round_trips), (100, round_trips * 5)):
                results.append(await run_mode(by, lt, min(count, 20_000), window))
            await by.close()
            await lt.close()
            return results
        finally:
            relay.terminate()
            await asyncio.wait_for(relay.wait(), 15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the network and log here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.round_trips, args.keep))
    print("in flight  round trips/s   p50 ms   p99 ms")
    for row in results:
        print(f"{int(row['window']):>9}  {row['round_trips_per_s']:>13.0f}  {row['p50_ms']:>7.2f}"
              f"  {row['p99_ms']:>7.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
