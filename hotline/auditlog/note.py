"""C2SP signed notes: text signed by one or more named keys, pure.

A signed note is UTF-8 text ending in a newline, one blank line, then one or
more signature lines ``— <key name> <base64(4-byte key ID || signature)>\\n``
(U+2014 EM DASH and a space). The text ends at the *last* blank line and
includes its final newline; signatures cover exactly those bytes.

Invariants this module keeps:

- Parsing is strict: valid UTF-8, no control character but ``\\n`` anywhere,
  every signature line well formed with canonical base64, key names non-empty
  and free of Unicode spaces and ``+``, at most :data:`MAX_SIGNATURES` lines and
  :data:`MAX_NOTE_SIZE` bytes. Anything else is a :class:`~hotline.errors.NoteError`.
- ``format_note(parse_note(data)) == data`` for every note ``parse_note`` accepts.
- :func:`verify_note` ignores signatures whose (name, key ID) pair it does not
  know, verifies every one it does know, refuses the whole note if any of those
  fails, and refuses it if none of them is present. It returns only what it
  verified: the text and the known signatures.
- Key IDs bind a name, a signature type byte and a public key:
  ``SHA-256(name || 0x0A || type || public key)[:4]``.
- Building a note from bad local input (a name with a space, text without its
  final newline) is a :class:`~hotline.errors.UsageError`: the caller's mistake,
  not a remote party's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from hotline.errors import NoteError, UsageError
from hotline.protocol.keys import PUBLIC_KEY_SIZE, PublicKey, SigningKey

__all__ = [
    "ED25519_TYPE",
    "KEY_ID_SIZE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIGNATURE_PREFIX",
    "Note",
    "NoteSignature",
    "NoteVerifier",
    "Verifier",
    "check_key_name",
    "decode_base64_canonical",
    "ed25519_key_id",
    "encode_base64",
    "format_note",
    "key_id_for",
    "parse_note",
    "parse_verifier_key",
    "sign_note",
    "split_verifier_key",
    "verifier_key_string",
    "verify_note",
]

KEY_ID_SIZE: Final = 4
ED25519_TYPE: Final = 0x01
SIGNATURE_PREFIX: Final = "\u2014 "  # EM DASH, SPACE
# The spec asks verifiers to accept at least 16 signatures; beyond 100 a note is
# not a checkpoint with witnesses but an attempt to make us work.
MAX_SIGNATURES: Final = 100
# Ample for 100 post-quantum signatures of about 5 kB each.
MAX_NOTE_SIZE: Final = 1 << 20

_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID: Final = re.compile(r"[0-9a-f]{8}")


def key_id_for(name: str, key_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || key_type || public_key)[:4]``, the recommended key ID."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def ed25519_key_id(name: str, public_key_raw: bytes) -> bytes:
    """The key ID of an Ed25519 note key: type byte 0x01."""
    return key_id_for(name, ED25519_TYPE, public_key_raw)


def _is_utf8(text: str) -> bool:
    """False for strings holding lone surrogates, which no UTF-8 byte string decodes to."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name_problem(name: str) -> str | None:
    if not name:
        return "a key name must not be empty"
    if not _is_utf8(name):
        return f"key name {name!r} is not valid UTF-8"
    for ch in name:
        if ch == "+" or ch.isspace():
            return f"key name {name!r} contains a space or '+'"
        if ch < "\x20":
            return f"key name {name!r} contains a control character"
    return None


def check_key_name(name: str) -> None:
    """Raise :class:`~hotline.errors.UsageError` unless ``name`` is a valid key name."""
    problem = _name_problem(name)
    if problem is not None:
        raise UsageError(problem)


def _text_problem(text: str) -> str | None:
    if not text.endswith("\n"):
        return "note text must end with a newline"
    if not _is_utf8(text):
        return "note text is not valid UTF-8"
    found = _CONTROL.search(text)
    if found is not None:
        return f"note text contains control character {found.group()!r}"
    return None


def _signature_problem(name: str, key_id: bytes, signature: bytes) -> str | None:
    problem = _name_problem(name)
    if problem is not None:
        return problem
    if len(key_id) != KEY_ID_SIZE:
        return f"a key ID is {KEY_ID_SIZE} bytes, not {len(key_id)}"
    if not signature:
        return f"signature by {name} is empty"
    return None


def encode_base64(data: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4), as text."""
    return base64.b64encode(data).decode("ascii")


def decode_base64_canonical(text: str) -> bytes | None:
    """Standard padded base64, refusing any other spelling of the same bytes."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if encode_base64(data) != text:
        return None
    return data


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key's name, its 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        problem = _signature_problem(self.name, self.key_id, self.signature)
        if problem is not None:
            raise UsageError(problem)

    def line(self) -> str:
        """The signature line, with its final newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (with its final newline) and its signatures, in order."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    def __post_init__(self) -> None:
        problem = _text_problem(self.text)
        if problem is not None:
            raise UsageError(problem)


def format_note(note: Note) -> bytes:
    """The wire form of ``note``: text, blank line, signature lines."""
    if not note.signatures:
        raise UsageError("a signed note needs at least one signature")
    if len(note.signatures) > MAX_SIGNATURES:
        raise UsageError(
            f"a note carries at most {MAX_SIGNATURES} signatures, not {len(note.signatures)}"
        )
    data = (note.text + "\n" + "".join(s.line() for s in note.signatures)).encode("utf-8")
    if len(data) > MAX_NOTE_SIZE:
        raise UsageError(f"note is {len(data)} bytes, more than the {MAX_NOTE_SIZE} allowed")
    return data


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    where = f"signature line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"{where} does not start with an em dash and a space")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise NoteError(f"{where} is not '— <name> <base64 signature>'")
    name, encoded = parts
    raw = decode_base64_canonical(encoded)
    if raw is None:
        raise NoteError(f"{where} does not hold canonical standard base64")
    if len(raw) <= KEY_ID_SIZE:
        raise NoteError(
            f"{where} holds {len(raw)} bytes, but a key ID and a signature need at least "
            f"{KEY_ID_SIZE + 1}"
        )
    problem = _signature_problem(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])
    if problem is not None:
        raise NoteError(f"{where}: {problem}")
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signatures, checking syntax only (no signature)."""
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError(f"note is {len(data)} bytes, more than the {MAX_NOTE_SIZE} accepted")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"note is not valid UTF-8 (byte {exc.start})") from exc
    found = _CONTROL.search(whole)
    if found is not None:
        raise NoteError(f"note contains control character {found.group()!r}")
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line between its text and its signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines after its blank line")
    if not block.endswith("\n"):
        raise NoteError("note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(
            f"note carries {len(lines)} signatures; at most {MAX_SIGNATURES} are accepted"
        )
    signatures = tuple(_parse_signature_line(line, i + 1) for i, line in enumerate(lines))
    return Note(text, signatures)


class Verifier(Protocol):
    """A key a note may be signed with: its name, its key ID and a check of its signatures."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without the key ID) is valid for the note text ``text``."""
        ...


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """An Ed25519 note key (signature type 0x01) known under ``name``."""

    name: str
    public_key: PublicKey
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key.raw))

    def verify(self, text: bytes, signature: bytes) -> bool:
        return self.public_key.verify(signature, text)


def verifier_key_string(name: str, key_type: int, public_key: bytes) -> str:
    """A verifier key: ``<name>+<hex key ID>+<base64(type byte || public key)>``."""
    check_key_name(name)
    kid = key_id_for(name, key_type, public_key).hex()
    return f"{name}+{kid}+{encode_base64(bytes([key_type]) + public_key)}"


def split_verifier_key(text: str) -> tuple[str, int, bytes]:
    """Parse a verifier key into (name, type byte, public key), checking its key ID."""
    parts = text.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise NoteError("a verifier key is '<name>+<hex key ID>+<base64 key>'")
    name, hex_id, encoded = parts
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"verifier key: {problem}")
    if _HEX_KEY_ID.fullmatch(hex_id) is None:
        raise NoteError(f"verifier key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = decode_base64_canonical(encoded)
    if raw is None or len(raw) < 2:
        raise NoteError("verifier key material is not canonical base64 of a type and a key")
    key_type, public_key = raw[0], raw[1:]
    expected = key_id_for(name, key_type, public_key).hex()
    if hex_id != expected:
        raise NoteError(f"verifier key ID is {hex_id}, but its name and key give {expected}")
    return name, key_type, public_key


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse an Ed25519 verifier key ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
    name, key_type, public_key = split_verifier_key(text)
    if key_type != ED25519_TYPE:
        raise NoteError(
            f"verifier key for {name} has type 0x{key_type:02x}, expected Ed25519 (0x01)"
        )
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise NoteError(f"verifier key for {name} holds {len(public_key)} key bytes, expected 32")
    try:
        return NoteVerifier(name, PublicKey.from_raw(public_key))
    except ValueError as exc:
        raise NoteError(f"verifier key for {name} is not an Ed25519 public key") from exc


def sign_note(text: str, name: str, key: SigningKey | Sequence[SigningKey]) -> bytes:
    """A note with ``text`` signed by Ed25519 ``key`` under ``name``.

    Given several keys (a key being rotated and its successor), the note carries
    one signature line per key, in the order given.
    """
    problem = _text_problem(text) or _name_problem(name)
    if problem is not None:
        raise UsageError(problem)
    keys = [key] if isinstance(key, SigningKey) else list(key)
    if not keys:
        raise UsageError("a signed note needs at least one key to sign it")
    message = text.encode("utf-8")
    signatures = tuple(
        NoteSignature(name, ed25519_key_id(name, k.public.raw), k.sign(message)) for k in keys
    )
    return format_note(Note(text, signatures))


def verify_note(data: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse ``data`` and verify it; return the text and only the signatures that verified.

    Signatures by unknown (name, key ID) pairs are ignored. Raises
    :class:`~hotline.errors.NoteError` if a known key's signature fails or if
    no known key signed.
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        pair = (verifier.name, verifier.key_id)
        if pair in known and known[pair] != verifier:
            raise UsageError(
                f"two different verifiers share the name {verifier.name} "
                f"and key ID {verifier.key_id.hex()}"
            )
        known[pair] = verifier
    if not known:
        raise UsageError("verifying a note needs at least one known key")
    note = parse_note(data)
    message = note.text.encode("utf-8")
    verified: list[NoteSignature] = []
    for signature in note.signatures:
        signer = known.get((signature.name, signature.key_id))
        if signer is None:
            continue
        if not signer.verify(message, signature.signature):
            raise NoteError(
                f"signature by {signature.name} (key ID {signature.key_id.hex()}) does not verify"
            )
        if signature not in verified:
            verified.append(signature)
    if not verified:
        names = ", ".join(sorted(f"{name}+{kid.hex()}" for name, kid in known))
        raise NoteError(f"note carries no signature by a known key ({names})")
    return Note(note.text, tuple(verified))
