"""Signed bodies for audit tests: fresh ids, rising seq per sender, as log entries."""

from __future__ import annotations

from typing import Any

import msgpack

from hotline.auditlog.leaf import encode_envelope_entry
from hotline.protocol.bodies import Body, LinkTestBody, ReceiptBody, Recipients, Track, WarningBody
from hotline.protocol.envelope import body_hash, seal_bytes
from hotline.protocol.ids import make_id
from hotline.protocol.schema import encode_body
from hotline.protocol.vocab import ObjectKind, Precedence, Source, Stage, Status
from hotline.testing.traffic import START_MS
from tests.factories import TestNet, make_network

__all__ = ["LINKS", "NET", "T0", "LogBuilder"]

# BY-LT, BY-LV, LT-LV and LV-EE are linked; PL is linked to nobody.
LINKS = [("BY", "LT"), ("BY", "LV"), ("LT", "LV"), ("LV", "EE")]
NET = make_network(links=LINKS)
T0 = START_MS


class LogBuilder:
    """Signed bodies with fresh ids and rising seq per sender, as log entries."""

    def __init__(self, net: TestNet = NET) -> None:
        self.net = net
        self.counter = 0
        self.seq: dict[str, int] = {}

    def header(self, sender: str, ts: int = T0, seq: int | None = None) -> dict[str, Any]:
        self.counter += 1
        if seq is None:
            seq = self.seq.get(sender, 0) + 1
        self.seq[sender] = max(seq, self.seq.get(sender, 0))
        return {
            "id": make_id(ts, self.counter.to_bytes(10, "big")),
            "sender": sender,
            "ts": ts,
            "seq": seq,
            "kid": self.net.keys[sender].public.kid,
        }

    def warning_body(
        self, sender: str, to: Recipients, *, ts: int = T0, text: str | None = None
    ) -> WarningBody:
        return WarningBody(
            **self.header(sender, ts),
            to=to, status=Status.EXERCISE, precedence=Precedence.FLASH,
            incident=make_id(ts, b"\xee" * 10), expires=ts + 600_000,
            track=Track(lat=54.3, lon=25.9, observed_at=ts - 500, object=ObjectKind.UAV,
                        confidence=0.8, source=Source.RADAR),
            text=text, lang=None if text is None else "en",
        )

    def receipt(
        self, sender: str, of: Body, stage: Stage = Stage.DELIVERED, *, digest: bytes | None = None
    ) -> ReceiptBody:
        return ReceiptBody(
            **self.header(sender),
            ref=of.id, hash=body_hash(encode_body(of)) if digest is None else digest, stage=stage,
            reason="not ours to act on" if stage is Stage.REJECTED else None,
        )

    def test(self, to: str) -> LinkTestBody:
        return LinkTestBody(**self.header("relay"), to=(to,))

    def entry(self, body: Body, *, signer: str | None = None, relay_ts: int = T0) -> bytes:
        return encode_envelope_entry(relay_ts, self.net.seal(body, signer))

    def raw_entry(self, data: dict[str, Any], signer: str, relay_ts: int = T0) -> bytes:
        """An entry holding any map, signed by ``signer`` (the schema is not checked)."""
        body_bytes = msgpack.packb(data, use_bin_type=True)
        return encode_envelope_entry(relay_ts, seal_bytes(body_bytes, self.net.keys[signer]))
