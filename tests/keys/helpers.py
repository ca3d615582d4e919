"""Networks whose parties have rotated keys: the old key closing, the new one current."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from hotline.network import Network
from hotline.protocol.keys import KeyPeriod, SigningKey
from tests.factories import TestNet

T_ROTATE = 1_780_000_000_000  # 2026-05-28T20:26:40Z: when the new key becomes current
OVERLAP = 3_600_000  # one hour
T_EXPIRE = T_ROTATE + OVERLAP


def next_key(party: str) -> SigningKey:
    """A second deterministic key for ``party``."""
    return SigningKey.from_seed(hashlib.sha256(b"next key " + party.encode()).digest())


@dataclass(frozen=True)
class Rotated:
    """The same network before and after ``party`` rotated, with every private key."""

    __test__ = False
    before: TestNet
    after: TestNet
    old: SigningKey
    new: SigningKey

    @property
    def network(self) -> Network:
        return self.after.network


def rotate(
    net: TestNet, party: str, *, at: int = T_ROTATE, overlap: int = OVERLAP
) -> Rotated:
    """``party`` gets :func:`next_key` at ``at``; its old key stays valid ``overlap`` ms more."""
    old, new = net.keys[party], next_key(party)
    keys = (KeyPeriod(old.public, not_after=at + overlap), KeyPeriod(new.public, not_before=at))
    network = net.network
    if party == network.relay.id:
        network = replace(network, relay=replace(network.relay, public_key=new.public, keys=keys))
    else:
        endpoint = replace(network.endpoints[party], public_key=new.public, keys=keys)
        network = replace(network, endpoints={**network.endpoints, party: endpoint})
    after = TestNet(network, {**net.keys, party: new})
    return Rotated(net, after, old, new)
