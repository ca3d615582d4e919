"""Deterministic networks and keys for tests: no files, fixed seeds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from hotline.network import EndpointInfo, Limits, Network, RelayInfo
from hotline.protocol.bodies import Body
from hotline.protocol.envelope import seal
from hotline.protocol.keys import SigningKey


def seeded_key(party: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"test key " + party.encode()).digest())


@dataclass(frozen=True)
class TestNet:
    """A network with the private keys of all its parties."""

    __test__ = False  # not a test class
    network: Network
    keys: dict[str, SigningKey]

    def seal(self, body: Body, signer: str | None = None) -> bytes:
        key = self.keys[signer or body.sender]
        return seal(replace(body, kid=key.public.kid), key)


def make_network(
    endpoints: Sequence[str] = ("BY", "LT", "LV", "EE", "PL"),
    links: Iterable[tuple[str, str]] | None = None,
    limits: Limits | None = None,
) -> TestNet:
    keys = {p: seeded_key(p) for p in ("relay", *endpoints)}
    pairs = (
        [(a, b) for i, a in enumerate(endpoints) for b in endpoints[i + 1 :]]
        if links is None
        else list(links)
    )
    network = Network(
        name="test network",
        relay=RelayInfo(
            "relay", "hotline.test/log", "ws://127.0.0.1:1/v1/ws", keys["relay"].public
        ),
        endpoints={e: EndpointInfo(e, e, keys[e].public, "en") for e in endpoints},
        links=frozenset(frozenset(p) for p in pairs),
        limits=limits or Limits(),
    )
    return TestNet(network, keys)
