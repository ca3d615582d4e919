"""Signed traffic, relay answers and checkpoints for the endpoint tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from hotline.auditlog.checkpoint import Checkpoint, sign_checkpoint
from hotline.auditlog.merkle import ListHasher, consistency_proof, leaf_hash, root_of
from hotline.endpoint.core import EndpointCore
from hotline.endpoint.state import CoreState
from hotline.endpoint.witness import ConsistencyProof
from hotline.errors import RejectCode
from hotline.protocol.bodies import (
    AcceptedBody,
    LinkTestBody,
    ReceiptBody,
    Recipients,
    RefusedBody,
    TextBody,
    Track,
    WarningBody,
)
from hotline.protocol.envelope import body_hash, open_envelope
from hotline.protocol.ids import make_id
from hotline.protocol.session import (
    Accepted,
    CheckpointNote,
    Deliver,
    RejectedNotice,
    encode_control,
)
from hotline.protocol.vocab import ObjectKind, Precedence, Source, Stage, Status
from tests.factories import TestNet

T0 = 1_764_000_000_000


@dataclass
class Ids:
    """Deterministic UUIDv7s: the time given, then a counter."""

    counter: int = 0

    def __call__(self, now_ms: int) -> bytes:
        self.counter += 1
        return make_id(now_ms, self.counter.to_bytes(10, "big"))


@dataclass
class Author:
    """Signs bodies as the parties of a test network, with rising seqs and unique ids."""

    net: TestNet
    ids: Ids = field(default_factory=lambda: Ids(10_000))
    seqs: dict[str, int] = field(default_factory=dict)

    def _head(self, sender: str, ts: int) -> dict[str, object]:
        self.seqs[sender] = self.seqs.get(sender, 0) + 1
        return {
            "id": self.ids(ts),
            "sender": sender,
            "ts": ts,
            "seq": self.seqs[sender],
            "kid": self.net.keys[sender].public.kid,
        }

    def warning(
        self,
        sender: str = "BY",
        to: Recipients = ("LT",),
        ts: int = T0,
        precedence: Precedence = Precedence.FLASH,
    ) -> WarningBody:
        return WarningBody(
            **self._head(sender, ts),  # type: ignore[arg-type]
            to=to,
            status=Status.EXERCISE,
            precedence=precedence,
            incident=make_id(ts, b"\x11" * 10),
            expires=ts + 3_600_000,
            track=Track(lat=54.3, lon=25.9, observed_at=ts - 500, object=ObjectKind.UAV,
                        confidence=0.8, source=Source.RADAR),
        )

    def text(self, sender: str = "BY", to: Recipients = ("LT",), ts: int = T0) -> TextBody:
        return TextBody(
            **self._head(sender, ts),  # type: ignore[arg-type]
            to=to,
            status=Status.TEST,
            precedence=Precedence.ROUTINE,
            text="line check",
            lang="en",
        )

    def link_test(self, to: str = "LT", ts: int = T0, sender: str = "relay") -> LinkTestBody:
        return LinkTestBody(**self._head(sender, ts), to=(to,))  # type: ignore[arg-type]

    def receipt(
        self, sender: str, frame: bytes, stage: Stage, ts: int = T0, digest: bytes | None = None
    ) -> bytes:
        envelope = open_envelope(frame, self.net.network)
        body = ReceiptBody(
            **self._head(sender, ts),  # type: ignore[arg-type]
            ref=envelope.body.id,
            hash=envelope.hash if digest is None else digest,
            stage=stage,
        )
        return self.net.seal(body)

    def accepted(self, frame: bytes, index: int, ts: int = T0, signer: str = "relay") -> bytes:
        """The relay's ``accepted`` control message for one of our frames."""
        envelope = open_envelope(frame, self.net.network)
        body = AcceptedBody(
            **self._head(signer, ts),  # type: ignore[arg-type]
            ref=envelope.body.id,
            hash=envelope.hash,
            index=index,
        )
        return encode_control(Accepted(self.net.seal(body, signer)))

    def refused(
        self,
        frame: bytes,
        code: str,
        sentence: str,
        path: str = "",
        ts: int = T0,
        retry_after_ms: int | None = None,
        signer: str = "relay",
    ) -> bytes:
        """The relay's ``rejected`` control for one of our frames, its refusal signed."""
        envelope = open_envelope(frame, self.net.network)
        reject_code = RejectCode(code)
        if reject_code.temporary and retry_after_ms is None:
            retry_after_ms = 1_000
        body = RefusedBody(
            **self._head(signer, ts),  # type: ignore[arg-type]
            ref=envelope.body.id,
            hash=envelope.hash,
            frame_hash=hashlib.sha256(frame).digest(),
            code=reject_code,
            sentence=sentence,
            path=path or None,
            retry_after_ms=retry_after_ms,
        )
        signed = self.net.seal(body, signer)
        return encode_control(RejectedNotice(envelope.body.id, code, sentence, path, signed))


def deliver(frame: bytes, index: int = 0) -> bytes:
    return encode_control(Deliver(index, frame))


def make_core(net: TestNet, me: str = "LT", state: CoreState | None = None) -> EndpointCore:
    return EndpointCore(net.network, me, net.keys[me], state or CoreState(), Ids())


def hash_of(frame: bytes, net: TestNet) -> bytes:
    return body_hash(open_envelope(frame, net.network).body_bytes)


@dataclass
class Log:
    """A toy log of the relay: leaves, signed checkpoints and consistency proofs."""

    net: TestNet
    leaves: list[bytes] = field(default_factory=list)

    def grow(self, count: int) -> None:
        start = len(self.leaves)
        self.leaves.extend(leaf_hash(f"entry {i}".encode()) for i in range(start, start + count))

    def root(self, size: int, leaves: Sequence[bytes] | None = None) -> bytes:
        return root_of((leaves or self.leaves)[:size])

    def note(self, size: int, root: bytes | None = None, signer: str = "relay") -> bytes:
        origin = self.net.network.relay.origin
        checkpoint = Checkpoint(origin, size, self.root(size) if root is None else root)
        return sign_checkpoint(checkpoint, origin, self.net.keys[signer])

    def control(self, size: int) -> bytes:
        return encode_control(CheckpointNote(self.note(size)))

    def proof(self, old: int, new: int) -> ConsistencyProof:
        hashes = consistency_proof(old, new, ListHasher(self.leaves[:new]))
        return ConsistencyProof(old, new, self.root(old), self.root(new), tuple(hashes))
