"""Deterministic, valid traffic for tests and benchmarks.

:class:`Traffic` yields signed envelopes in an order a real relay could have
logged them: each warning, then its recipients' delivered and acknowledged
receipts, then a relay link test and its receipt. Ids are unique, ``seq`` rises
per sender, every receipt follows its message and carries its body hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from hotline.network import Network
from hotline.protocol.bodies import LinkTestBody, ReceiptBody, Track, WarningBody
from hotline.protocol.envelope import body_hash, seal
from hotline.protocol.ids import make_id
from hotline.protocol.keys import SigningKey
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import AckAction, ObjectKind, Precedence, Source, Stage, Status

__all__ = ["START_MS", "Traffic"]

START_MS = 1_764_000_000_000


@dataclass
class Traffic:
    """Signed envelopes of a plausible exchange; see the module docstring."""

    network: Network
    keys: dict[str, SigningKey]
    seq: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def _header(self, sender: str, ts: int) -> dict[str, object]:
        self.counter += 1
        self.seq[sender] = self.seq.get(sender, 0) + 1
        return {
            "id": make_id(ts, self.counter.to_bytes(10, "big")),
            "sender": sender,
            "ts": ts,
            "seq": self.seq[sender],
            "kid": self.keys[sender].public.kid,
        }

    def frames(self, count: int) -> Iterator[bytes]:
        senders = [e for e in self.network.endpoints if self.network.peers(e)]
        made = 0
        ts = START_MS
        while made < count:
            ts += 1000
            sender = senders[made % len(senders)]
            to = self.network.peers(sender)[:2]
            warning = WarningBody(
                **self._header(sender, ts),  # type: ignore[arg-type]
                to=to, status=Status.EXERCISE, precedence=Precedence.FLASH,
                incident=make_id(ts, b"\xee" * 10), expires=ts + 600_000,
                track=Track(lat=54.3, lon=25.9, observed_at=ts - 500, object=ObjectKind.UAV,
                            confidence=0.8, source=Source.RADAR, sensor_id="RAD-1"),
            )
            frame = seal(warning, self.keys[sender])
            digest = body_hash(encode_body(warning))
            batch = [frame]
            for recipient in to:
                for stage in (Stage.DELIVERED, Stage.ACKNOWLEDGED):
                    receipt = ReceiptBody(
                        **self._header(recipient, ts + 10),  # type: ignore[arg-type]
                        ref=warning.id, hash=digest, stage=stage,
                        action=AckAction.MONITORING if stage is Stage.ACKNOWLEDGED else None,
                    )
                    batch.append(seal(receipt, self.keys[recipient]))
            relay = self.network.relay.id
            test = LinkTestBody(**self._header(relay, ts + 20), to=(to[0],))  # type: ignore[arg-type]
            batch.append(seal(test, self.keys[relay]))
            answer = ReceiptBody(
                **self._header(to[0], ts + 25),  # type: ignore[arg-type]
                ref=test.id, hash=body_hash(encode_body(test)), stage=Stage.DELIVERED,
            )
            batch.append(seal(answer, self.keys[to[0]]))
            for item in batch[: count - made]:
                made += 1
                yield item
