"""A real relay on a loopback port the OS picks, with its log in tmp_path."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.network import Limits, network_to_toml
from hotline.protocol.bodies import ReceiptBody, WarningBody
from hotline.protocol.envelope import body_hash
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import Precedence, Stage
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from tests.factories import TestNet, make_network, seeded_key
from tests.protocol.strategies import sample_warning

LINKS = [("BY", "LT"), ("BY", "LV"), ("BY", "PL"), ("LT", "LV"), ("LV", "EE")]


@pytest.fixture
def net() -> TestNet:
    return make_network(links=LINKS, limits=Limits(retry_interval_ms=300))


def relay_config(net: TestNet, data: Path) -> RelayConfig:
    return RelayConfig(
        network=net.network,
        network_toml=network_to_toml(net.network).encode(),
        data_dir=data,
        key=net.keys["relay"],
        port=0,
        checkpoint_every=8,
        checkpoint_interval_ms=200,
        tick_ms=50,
    )


@pytest.fixture
async def relay(net: TestNet, tmp_path: Path) -> AsyncIterator[RunningRelay]:
    running = await start_relay(relay_config(net, tmp_path / "relay"))
    try:
        yield running
    finally:
        await running.stop()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Author:
    """Makes fresh, valid bodies for one endpoint: new ids, rising seq, current time."""

    def __init__(self, party: str) -> None:
        self.party = party
        self.seq = 0

    def header(self) -> dict[str, object]:
        self.seq += 1
        now = now_ms()
        return {"id": make_id(now, os.urandom(10)), "sender": self.party, "ts": now,
                "seq": self.seq}

    def warning(
        self, to: tuple[str, ...] = ("LT",), precedence: Precedence = Precedence.FLASH
    ) -> WarningBody:
        head = self.header()
        base = sample_warning(sender=self.party, to=to)
        return replace(base, **head, precedence=precedence,  # type: ignore[arg-type]
                       expires=int(head["ts"]) + 600_000)  # type: ignore[call-overload]

    def receipt(self, message: WarningBody, stage: Stage = Stage.DELIVERED) -> ReceiptBody:
        """A receipt with the hash of ``message`` as its author signs it (with its seeded key)."""
        signed = replace(message, kid=seeded_key(message.sender).public.kid)
        return ReceiptBody(
            **self.header(),  # type: ignore[arg-type]
            kid=b"\x00" * 8, ref=message.id, hash=body_hash(encode_body(signed)), stage=stage,
        )
