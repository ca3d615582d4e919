"""Signed envelopes: ``[1, body, sig]``, verified on the bytes as received.

Layout (MessagePack): a 3-element array of the integer version ``1``, the
body as ``bin`` (itself the MessagePack map of :mod:`hotline.protocol.schema`)
and the 64-byte Ed25519 signature as ``bin`` over ``MSG_TAG + body``.

Invariants kept by :func:`open_envelope`, in this order:

1. the frame is at most ``max_size`` bytes (``too_large``);
2. it is exactly one 3-array with version 1 and two ``bin`` items (``bad_frame``);
3. the body is a map with unique string keys whose ``from`` names a known
   party (``unknown_sender``) and whose ``kid`` is one of that party's keys,
   valid at the body's ``ts`` when the key has a period (``bad_signature``:
   a key rotated out verifies what it signed before, nothing after);
4. the signature verifies over the body bytes exactly as received
   (``bad_signature``) — nothing is re-encoded;
5. only then is the body checked against the full schema (``schema``).

The returned :class:`Envelope` holds only verified data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgpack

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import Body
from hotline.protocol.keys import KID_SIZE, SIGNATURE_SIZE, KeyPeriod, PublicKey, SigningKey
from hotline.protocol.schema import encode_body, map_to_body, unpack_map
from hotline.protocol.timetext import format_utc_ms

__all__ = [
    "AUTH_TAG",
    "DEFAULT_MAX_FRAME",
    "LARGEST_MAX_FRAME",
    "MSG_TAG",
    "VERSION",
    "Envelope",
    "KeyDirectory",
    "SignedFrame",
    "body_hash",
    "open_envelope",
    "period_problem",
    "read_envelope",
    "seal",
    "seal_bytes",
    "sealed",
]

VERSION: Final = 1
MSG_TAG: Final = b"hotline/v1/msg\x00"
AUTH_TAG: Final = b"hotline/v1/auth\x00"
DEFAULT_MAX_FRAME: Final = 60 * 1024
LARGEST_MAX_FRAME: Final = 65_513
"""The most ``max_frame_bytes`` may be: a frame and its log entry's header (22 bytes at
most: the array, the kind ``"envelope"``, a 64-bit ``relay_ts``, a bin16 length) fit one
log entry (65,535 bytes, C2SP tlog-tiles). A larger frame could be admitted but never
logged."""


class KeyDirectory(Protocol):
    """Who may sign, and when: the keys of a party with their periods, ``None`` for a stranger."""

    def periods_of(self, party: str) -> Sequence[KeyPeriod] | None: ...


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified envelope: the exact frame, its body bytes, signature and meaning."""

    frame: bytes
    body_bytes: bytes
    signature: bytes
    body: Body
    _hash: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def hash(self) -> bytes:
        """SHA-256 of the body bytes: what receipts refer to (computed once, when first asked)."""
        digest = self._hash
        if digest is None:
            digest = body_hash(self.body_bytes)
            object.__setattr__(self, "_hash", digest)  # a cache of what the fields determine
        return digest


def body_hash(body_bytes: bytes) -> bytes:
    return hashlib.sha256(body_bytes).digest()


def seal_bytes(body_bytes: bytes, key: SigningKey) -> bytes:
    """Sign already-encoded body bytes and wrap them into a frame."""
    signature = key.sign(MSG_TAG + body_bytes)
    frame: bytes = msgpack.packb([VERSION, body_bytes, signature], use_bin_type=True)
    return frame


def seal(body: Body, key: SigningKey) -> bytes:
    """Encode (checking the schema), sign and frame a body."""
    if body.kid != key.public.kid:
        raise ValueError("the body's kid is not the key id of the signing key")
    return seal_bytes(encode_body(body), key)


def sealed(body: Body, key: SigningKey) -> Envelope:
    """Encode (checking the schema), sign and frame a body: an envelope valid by construction."""
    if body.kid != key.public.kid:
        raise ValueError("the body's kid is not the key id of the signing key")
    body_bytes = encode_body(body)
    signature = key.sign(MSG_TAG + body_bytes)
    frame: bytes = msgpack.packb([VERSION, body_bytes, signature], use_bin_type=True)
    return Envelope(frame, body_bytes, signature, body)


def _split(frame: bytes, max_size: int) -> tuple[bytes, bytes]:
    if len(frame) > max_size:
        raise Rejected(
            RejectCode.TOO_LARGE, f"the frame is {len(frame)} bytes, more than {max_size}"
        )
    try:
        outer = msgpack.unpackb(frame, raw=False)
    except Exception as exc:
        raise Rejected(
            RejectCode.BAD_FRAME, f"the frame is not valid MessagePack ({type(exc).__name__})"
        ) from exc
    if not isinstance(outer, list) or len(outer) != 3:
        raise Rejected(RejectCode.BAD_FRAME, "the frame is not a 3-element array [1, body, sig]")
    version, body, signature = outer
    if type(version) is not int or version != VERSION:
        raise Rejected(RejectCode.BAD_FRAME, f"the envelope version is {version!r}, not 1")
    if not isinstance(body, bytes):
        raise Rejected(RejectCode.BAD_FRAME, "the envelope body is not bin")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise Rejected(RejectCode.BAD_FRAME, "the envelope signature is not 64 bytes of bin")
    return body, signature


def _signer_key(data: dict[str, Any], keys: KeyDirectory) -> tuple[str, PublicKey]:
    sender = data.get("from")
    if not isinstance(sender, str):
        raise Rejected(RejectCode.SCHEMA, "is required and must be a string", "from")
    kid = data.get("kid")
    if not isinstance(kid, bytes) or len(kid) != KID_SIZE:
        raise Rejected(RejectCode.SCHEMA, "must be a key id (8 bytes of bin)", "kid")
    known = keys.periods_of(sender)
    if known is None:
        raise Rejected(RejectCode.UNKNOWN_SENDER, f"{sender!r} is not a party of this network")
    for period in known:
        if period.key.kid == kid:
            if period.bounded:
                _check_period(period, sender, data.get("ts"))
            return sender, period.key
    raise Rejected(RejectCode.BAD_SIGNATURE, f"key id {kid.hex()} is not a key of {sender}")


def _check_period(period: KeyPeriod, sender: str, ts: object) -> None:
    """The key's period must hold the body's ``ts``: the time the signer claims to sign at."""
    if type(ts) is not int or ts < 0:
        raise Rejected(RejectCode.SCHEMA, "is required and must be a time", "ts")
    if not period.covers(ts):
        raise Rejected(RejectCode.BAD_SIGNATURE, period_problem(period, sender, ts))


def period_problem(period: KeyPeriod, party: str, ms: int) -> str:
    """The sentence for a key used outside its period (at ``ms``)."""
    kid = period.key.kid.hex()
    if period.not_before is not None and ms < period.not_before:
        return (
            f"key {kid} of {party} is valid only from {format_utc_ms(period.not_before)}, "
            f"not at {format_utc_ms(ms)}"
        )
    assert period.not_after is not None
    return (
        f"key {kid} of {party} expired at {format_utc_ms(period.not_after)}, "
        f"before {format_utc_ms(ms)}"
    )


@dataclass(frozen=True, slots=True)
class SignedFrame:
    """A frame taken apart but not yet verified: who claims to sign it, and with what.

    Splitting reading from verifying lets a caller verify many signatures in
    parallel threads (verification releases the GIL) and keep the rest in order.
    """

    frame: bytes
    body_bytes: bytes
    signature: bytes
    data: dict[str, Any]
    sender: str
    key: PublicKey

    def signature_valid(self) -> bool:
        return self.key.verify(self.signature, MSG_TAG + self.body_bytes)

    def verified(self, *, unsafe_signature_checked: bool = False) -> Envelope:
        """The envelope, once the signature holds and the body passes the schema.

        ``unsafe_signature_checked`` skips the signature: only for a caller that
        has just checked ``signature_valid()`` itself (on another thread).
        """
        if not unsafe_signature_checked and not self.signature_valid():
            raise Rejected(
                RejectCode.BAD_SIGNATURE, f"the signature is not {self.sender}'s over this body"
            )
        return Envelope(self.frame, self.body_bytes, self.signature, map_to_body(self.data))


def read_envelope(
    frame: bytes, keys: KeyDirectory, *, max_size: int = DEFAULT_MAX_FRAME
) -> SignedFrame:
    """Checks 1 to 3 of the module docstring; the signature is left to the caller."""
    body_bytes, signature = _split(frame, max_size)
    data = unpack_map(body_bytes)
    sender, key = _signer_key(data, keys)
    return SignedFrame(frame, body_bytes, signature, data, sender, key)


def open_envelope(
    frame: bytes, keys: KeyDirectory, *, max_size: int = DEFAULT_MAX_FRAME
) -> Envelope:
    """Verify a frame and return its meaning, or raise ``Rejected`` with the rule broken."""
    return read_envelope(frame, keys, max_size=max_size).verified()
