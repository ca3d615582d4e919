"""C2SP tlog-cosignature v1: a witness's timestamped Ed25519 signature on a checkpoint, pure.

A cosignature is one more signature line on a signed checkpoint, under the
witness's own name. Its key ID is ``SHA-256(name || 0x0A || 0x04 || public
key)[:4]``; its signature bytes are an 8-byte big-endian POSIX timestamp (in
seconds) followed by an Ed25519 signature over::

    cosignature/v1\\n
    time <timestamp, decimal>\\n
    <the checkpoint text, extension lines included>

It states: as of that time, this is the largest tree consistent with everything
the witness has seen for the origin.

Invariants this module keeps:

- The clock is never read: the timestamp is an argument to :func:`cosign`, and
  :func:`verify_cosignature` returns the signed one for the caller to judge.
- Timestamps lie in ``0 … 2**63 - 1``, as the spec requires; anything else is
  refused when signing (:class:`~hotline.errors.UsageError`) and when verifying
  (:class:`~hotline.errors.NoteError`).
- The Ed25519 message does not name the witness, so one witness key must never
  serve under two names; the key ID still binds the name for lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hotline.auditlog.checkpoint import parse_checkpoint_text
from hotline.auditlog.note import (
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    check_key_name,
    format_note,
    key_id_for,
    parse_note,
    split_verifier_key,
    verifier_key_string,
)
from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PublicKey, SigningKey

__all__ = [
    "COSIGNATURE_HEADER",
    "COSIGNATURE_SIZE",
    "COSIGNATURE_TYPE",
    "MAX_TIMESTAMP",
    "TIMESTAMP_SIZE",
    "CosignatureVerifier",
    "add_cosignature",
    "cosign",
    "cosignature_key_id",
    "cosignature_timestamp",
    "cosignature_verifier_key",
    "cosigned_message",
    "parse_cosignature_verifier_key",
    "verify_cosignature",
]

COSIGNATURE_TYPE: Final = 0x04
COSIGNATURE_HEADER: Final = "cosignature/v1\n"
TIMESTAMP_SIZE: Final = 8
COSIGNATURE_SIZE: Final = TIMESTAMP_SIZE + SIGNATURE_SIZE
MAX_TIMESTAMP: Final = 2**63 - 1


def cosignature_key_id(name: str, public_key_raw: bytes) -> bytes:
    """The key ID of an Ed25519 cosigner: type byte 0x04."""
    return key_id_for(name, COSIGNATURE_TYPE, public_key_raw)


def cosigned_message(checkpoint_text: str, timestamp_s: int) -> bytes:
    """The bytes a v1 cosignature signs: header, time line, then the checkpoint text."""
    return f"{COSIGNATURE_HEADER}time {timestamp_s}\n{checkpoint_text}".encode()


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The timestamp a v1 cosignature carries, unverified."""
    if len(signature.signature) != COSIGNATURE_SIZE:
        raise NoteError(
            f"cosignature by {signature.name} is {len(signature.signature)} bytes, "
            f"expected {COSIGNATURE_SIZE}"
        )
    timestamp = int.from_bytes(signature.signature[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise NoteError(f"cosignature by {signature.name} has timestamp {timestamp} above 2^63-1")
    return timestamp


def cosign(
    checkpoint_text: str, witness_name: str, key: SigningKey, timestamp_s: int
) -> NoteSignature:
    """The witness's cosignature on ``checkpoint_text`` at ``timestamp_s`` (POSIX seconds).

    Raises :class:`~hotline.errors.NoteError` if the text is not a checkpoint.
    """
    if not 0 <= timestamp_s <= MAX_TIMESTAMP:
        raise UsageError(f"cosignature timestamp {timestamp_s} is outside 0 to 2^63-1")
    parse_checkpoint_text(checkpoint_text)
    signature = key.sign(cosigned_message(checkpoint_text, timestamp_s))
    return NoteSignature(
        witness_name,
        cosignature_key_id(witness_name, key.public.raw),
        timestamp_s.to_bytes(TIMESTAMP_SIZE, "big") + signature,
    )


def add_cosignature(signed_note: bytes, signature: NoteSignature) -> bytes:
    """``signed_note`` with one more signature line appended.

    Refuses a second signature by the same (name, key ID) pair.
    """
    note = parse_note(signed_note)
    pair = (signature.name, signature.key_id)
    if any((s.name, s.key_id) == pair for s in note.signatures):
        raise NoteError(
            f"note already carries a signature by {signature.name} "
            f"(key ID {signature.key_id.hex()})"
        )
    if len(note.signatures) >= MAX_SIGNATURES:
        raise NoteError(f"note already carries the maximum of {MAX_SIGNATURES} signatures")
    return format_note(Note(note.text, (*note.signatures, signature)))


def verify_cosignature(
    checkpoint_text: str, signature: NoteSignature, witness_name: str, public_key: PublicKey
) -> int:
    """Check a witness's v1 cosignature on ``checkpoint_text``; return its timestamp.

    Raises :class:`~hotline.errors.NoteError` naming what did not match.
    """
    if signature.name != witness_name:
        raise NoteError(f"cosignature is by {signature.name}, expected {witness_name}")
    expected_id = cosignature_key_id(witness_name, public_key.raw)
    if signature.key_id != expected_id:
        raise NoteError(
            f"cosignature by {witness_name} has key ID {signature.key_id.hex()}, "
            f"expected {expected_id.hex()}"
        )
    timestamp = cosignature_timestamp(signature)
    message = cosigned_message(checkpoint_text, timestamp)
    if not public_key.verify(signature.signature[TIMESTAMP_SIZE:], message):
        raise NoteError(
            f"cosignature by {witness_name} at time {timestamp} does not verify for this checkpoint"
        )
    return timestamp


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness key as a note :class:`~hotline.auditlog.note.Verifier` (type 0x04).

    With it, :func:`~hotline.auditlog.note.verify_note` checks cosignatures too.
    """

    name: str
    public_key: PublicKey
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "key_id", cosignature_key_id(self.name, self.public_key.raw))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != COSIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = f"{COSIGNATURE_HEADER}time {timestamp}\n".encode() + text
        return self.public_key.verify(signature[TIMESTAMP_SIZE:], message)


def cosignature_verifier_key(name: str, public_key: PublicKey) -> str:
    """A witness's verifier key: ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
    return verifier_key_string(name, COSIGNATURE_TYPE, public_key.raw)


def parse_cosignature_verifier_key(text: str) -> CosignatureVerifier:
    """Parse a witness verifier key of type 0x04 with a 32-byte Ed25519 key."""
    name, key_type, raw = split_verifier_key(text)
    if key_type != COSIGNATURE_TYPE:
        raise NoteError(
            f"verifier key for {name} has type 0x{key_type:02x}, "
            "expected an Ed25519 cosignature key (0x04)"
        )
    if len(raw) != PUBLIC_KEY_SIZE:
        raise NoteError(f"verifier key for {name} holds {len(raw)} key bytes, expected 32")
    return CosignatureVerifier(name, PublicKey.from_raw(raw))
