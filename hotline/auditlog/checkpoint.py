"""C2SP tlog-checkpoint: the signed head of the audit log's Merkle tree, pure.

A checkpoint is a signed note whose text is exactly::

    <origin>\\n
    <tree size, decimal, no leading zeros>\\n
    <base64 of the 32-byte root hash>\\n
    [<extension line>\\n ...]

Invariants this module keeps:

- A :class:`Checkpoint` value always holds a non-empty origin without control
  characters, a size in ``0 … 2**64 - 1``, a 32-byte root and non-empty
  extension lines; ``parse_checkpoint_text(cp.text()) == cp``.
- Parsing is strict: one spelling per checkpoint (no leading zeros, no sign, no
  non-ASCII digits, canonical padded base64) and failures are
  :class:`~hotline.errors.NoteError` sentences.
- :func:`open_checkpoint` returns a checkpoint only after the log's Ed25519
  signature verified *and* the origin line equals the origin the caller expected.
  A log that rotates its key signs with more than one key for a while; given
  several keys, a signature by any one of them suffices, and every signature
  by one of them must verify.
  The size and root it returns are the ones to pair with inclusion and
  consistency proofs: a proof does not pin the tree size on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hotline.auditlog.merkle import HASH_SIZE
from hotline.auditlog.note import (
    NoteSignature,
    NoteVerifier,
    decode_base64_canonical,
    encode_base64,
    parse_note,
    sign_note,
    verify_note,
)
from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import PublicKey, SigningKey

__all__ = [
    "MAX_TREE_SIZE",
    "Checkpoint",
    "LogKeys",
    "checkpoint_cosignatures",
    "open_checkpoint",
    "parse_checkpoint_text",
    "sign_checkpoint",
]

MAX_TREE_SIZE: Final = 2**64 - 1
_SIZE: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL: Final = re.compile(r"[\x00-\x1f]")


def _checkpoint_problem(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> str | None:
    if not origin:
        return "checkpoint origin must not be empty"
    if _CONTROL.search(origin):
        return f"checkpoint origin {origin!r} contains a control character"
    if not 0 <= size <= MAX_TREE_SIZE:
        return f"checkpoint tree size {size} is outside 0 to 2^64-1"
    if len(root) != HASH_SIZE:
        return f"checkpoint root hash is {len(root)} bytes, expected {HASH_SIZE}"
    for number, line in enumerate(extensions, start=1):
        if not line:
            return f"checkpoint extension line {number} is empty"
        if _CONTROL.search(line):
            return f"checkpoint extension line {number} contains a control character"
    return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: who (origin), how many leaves (size) and their Merkle root."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _checkpoint_problem(self.origin, self.size, self.root, self.extensions)
        if problem is not None:
            raise UsageError(problem)

    def text(self) -> str:
        """The note text: origin, size and root lines, then any extension lines."""
        lines = [self.origin, str(self.size), encode_base64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly; raise :class:`~hotline.errors.NoteError`."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint text has {len(lines)} lines, expected at least 3")
    origin, size_line, root_line, *extensions = lines
    if _SIZE.fullmatch(size_line) is None:
        raise NoteError(
            f"checkpoint tree size {size_line!r} is not a decimal number without leading zeros"
        )
    root = decode_base64_canonical(root_line)
    if root is None:
        raise NoteError(f"checkpoint root hash {root_line!r} is not canonical standard base64")
    problem = _checkpoint_problem(origin, int(size_line), root, tuple(extensions))
    if problem is not None:
        raise NoteError(problem)
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(
    checkpoint: Checkpoint, key_name: str, key: SigningKey | Sequence[SigningKey]
) -> bytes:
    """The checkpoint as a signed note, signed by the log's ``key`` under ``key_name``.

    The key name should be the origin; any valid key name is accepted. While the
    log rotates its key, ``key`` is the list of keys to sign with (one line each).
    """
    return sign_note(checkpoint.text(), key_name, key)


LogKeys = PublicKey | Sequence[PublicKey]
"""The log's key, or its keys while it rotates (any one of them may sign)."""


def _open(
    data: bytes, origin: str, log_public_key: LogKeys, key_name: str | None
) -> tuple[Checkpoint, list[NoteVerifier]]:
    keys = [log_public_key] if isinstance(log_public_key, PublicKey) else list(log_public_key)
    if not keys:
        raise NoteError("no key of the log is valid for this checkpoint")
    name = origin if key_name is None else key_name
    logs = [NoteVerifier(name, key) for key in dict.fromkeys(keys)]
    note = verify_note(data, logs)
    checkpoint = parse_checkpoint_text(note.text)
    if checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint, logs


def open_checkpoint(
    data: bytes, origin: str, log_public_key: LogKeys, *, key_name: str | None = None
) -> Checkpoint:
    """Verify the log's signature on a signed checkpoint and return the checkpoint.

    The log's key is known under ``key_name`` (the origin unless given). Other
    signatures, such as witness cosignatures, are ignored here; see
    :func:`checkpoint_cosignatures`. Raises :class:`~hotline.errors.NoteError`.
    """
    checkpoint, _ = _open(data, origin, log_public_key, key_name)
    return checkpoint


def checkpoint_cosignatures(
    data: bytes, origin: str, log_public_key: LogKeys, *, key_name: str | None = None
) -> tuple[NoteSignature, ...]:
    """The signature lines of a signed checkpoint other than the log's own.

    The checkpoint is first opened as :func:`open_checkpoint` does, so nothing
    is returned for a checkpoint the log did not sign. The lines returned are
    in order and *unverified*: check each with
    :func:`hotline.auditlog.cosignature.verify_cosignature` against the
    checkpoint's text.
    """
    _, logs = _open(data, origin, log_public_key, key_name)
    own = {(log.name, log.key_id) for log in logs}
    return tuple(s for s in parse_note(data).signatures if (s.name, s.key_id) not in own)
