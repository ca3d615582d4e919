"""A second, independent reading of the audit log formats, for checking hotline's output.

Written from the published texts alone (RFC 9162 section 2.1; the C2SP specs signed-note,
tlog-checkpoint and tlog-tiles; docs/protocol.md for the envelope) and importing nothing from
``hotline``: only the standard library, ``cryptography`` for Ed25519 and ``msgpack``. Where
the two implementations agree on real output, a misreading of the specs would have to be the
same misreading twice.

Every check raises :class:`SpecViolation` naming what the spec expects and what was found.
Merkle functions take leaf hashes (``SHA-256(0x00 || entry)``), not entries, so one list of
leaf hashes serves every tree size.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "EMPTY_ROOT",
    "ENVELOPE_TAG",
    "TILE_WIDTH",
    "Checkpoint",
    "LogEntry",
    "NetworkKeys",
    "Note",
    "NoteSignature",
    "SpecViolation",
    "consistency_path",
    "decode_entry",
    "ed25519_key_id",
    "encode_tile_index",
    "expected_tile_paths",
    "inclusion_path",
    "leaf_hash",
    "load_network_keys",
    "mth",
    "node_hash",
    "open_checkpoint",
    "parse_checkpoint_text",
    "parse_note",
    "read_entries",
    "read_hash_tile",
    "split_entry_bundle",
    "tile_path",
    "verify_consistency",
    "verify_envelope",
    "verify_inclusion",
    "verify_leaf_hashes",
    "verify_note",
]


class SpecViolation(Exception):
    """The data breaks a rule of the published spec; the message says which and how."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _strict_b64decode(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise SpecViolation(f"{what} {text!r} is not standard base64") from exc
    if _b64(data) != text:
        raise SpecViolation(f"{what} {text!r} is not canonical base64 (expected {_b64(data)!r})")
    return data


# ----------------------------------------------------------------- RFC 9162 section 2.1

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the entries whose leaf hashes are ``leaves`` (recursive, as the RFC)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of section 2.1.3.1, for n = len(leaves)."""
    n = len(leaves)
    if not 0 <= m < n:
        raise ValueError(f"no leaf {m} in a tree of {n}")
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*inclusion_path(m, leaves[:k]), mth(leaves[k:])]
    return [*inclusion_path(m - k, leaves[k:]), mth(leaves[:k])]


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def consistency_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of section 2.1.4.1, for 0 < m <= n = len(leaves)."""
    if not 0 < m <= len(leaves):
        raise ValueError(f"no consistency proof from {m} to {len(leaves)}")
    return _subproof(m, leaves, True)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Section 2.1.3.2, step by step; returns only if ``proof`` proves ``leaf`` at ``index``."""
    if index >= size:
        raise SpecViolation(f"inclusion: leaf index {index} is not below the tree size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise SpecViolation(f"inclusion: the proof is longer than a tree of {size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise SpecViolation(f"inclusion: the proof is shorter than a tree of {size} needs "
                            f"(size counter ends at {sn}, expected 0)")
    if r != root:
        raise SpecViolation(f"inclusion: the proof leads to root {_b64(r)}, "
                            f"expected {_b64(root)}")


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: Sequence[bytes]
) -> None:
    """Section 2.1.4.2, step by step, for 0 < first < second."""
    if not 0 < first < second:
        raise SpecViolation(f"consistency: needs 0 < first < second, got {first}, {second}")
    path = list(proof)
    if not path:
        raise SpecViolation("consistency: the proof is empty")
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise SpecViolation(f"consistency: the proof is longer than {first} -> {second} needs")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if fr != first_hash:
        raise SpecViolation(f"consistency: old root recomputed as {_b64(fr)}, "
                            f"expected {_b64(first_hash)}")
    if sr != second_hash:
        raise SpecViolation(f"consistency: new root recomputed as {_b64(sr)}, "
                            f"expected {_b64(second_hash)}")
    if sn != 0:
        raise SpecViolation(f"consistency: the size counter ends at {sn}, expected 0")


# ----------------------------------------------------------------- C2SP signed-note

EM_DASH_SPACE: Final = "\u2014 "


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Note:
    """A signed note split into its text (with the final newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + public_key).digest()[:4]


def parse_note(data: bytes) -> Note:
    """Split a signed note per C2SP signed-note; refuses anything malformed."""
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecViolation("note: not valid UTF-8") from exc
    cut = whole.rfind("\n\n")
    if cut < 0:
        raise SpecViolation("note: no blank line between text and signatures")
    text, block = whole[: cut + 1], whole[cut + 2 :]
    for char in text:
        if (ord(char) < 0x20 and char != "\n") or ord(char) == 0x7F:
            raise SpecViolation(f"note: the text holds the control character {char!r}")
    if not block.endswith("\n"):
        raise SpecViolation(f"note: the signature block {block!r} does not end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(EM_DASH_SPACE):
            raise SpecViolation(f"note: signature line {line!r} does not start with '\u2014 '")
        fields = line[len(EM_DASH_SPACE) :].split(" ")
        if len(fields) != 2 or not fields[0] or "+" in fields[0]:
            raise SpecViolation(f"note: signature line {line!r} is not '\u2014 <name> <base64>'")
        raw = _strict_b64decode(fields[1], "note: signature")
        if len(raw) < 5:
            raise SpecViolation(f"note: signature of {fields[0]!r} is {len(raw)} bytes, "
                                "fewer than a key ID and one byte")
        signatures.append(NoteSignature(fields[0], raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


def verify_note(data: bytes, name: str, public_key: bytes) -> str:
    """The note's text, once the one known Ed25519 key (``name``, ``public_key``) verifies it.

    Signatures under other (name, key ID) pairs are ignored; a known one that fails, or no
    known one at all, rejects the note.
    """
    note = parse_note(data)
    key_id = ed25519_key_id(name, public_key)
    key = Ed25519PublicKey.from_public_bytes(public_key)
    known = [s for s in note.signatures if s.name == name and s.key_id == key_id]
    if not known:
        seen = [(s.name, s.key_id.hex()) for s in note.signatures]
        raise SpecViolation(f"note: no signature by ({name!r}, key ID {key_id.hex()}); "
                            f"found {seen}")
    for sig in known:
        if len(sig.signature) != 64:
            raise SpecViolation(f"note: Ed25519 signature of {name!r} is {len(sig.signature)} "
                                "bytes, expected 64")
        try:
            key.verify(sig.signature, note.text.encode("utf-8"))
        except InvalidSignature:
            raise SpecViolation(f"note: the signature of {name!r} does not verify over the "
                                f"text {note.text!r}") from None
    return note.text


# ----------------------------------------------------------------- C2SP tlog-checkpoint


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The three lines of a checkpoint's text."""

    origin: str
    size: int
    root: bytes


_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Origin, size, root from exactly "<origin>\\n<size>\\n<base64 root>\\n"."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise SpecViolation(f"checkpoint: text {text!r} is not exactly three lines")
    origin, size, root = lines[:3]
    if not origin:
        raise SpecViolation("checkpoint: empty origin line")
    if not _DECIMAL.fullmatch(size):
        raise SpecViolation(f"checkpoint: size {size!r} is not a decimal without leading zeros")
    digest = _strict_b64decode(root, "checkpoint: root")
    if len(digest) != 32:
        raise SpecViolation(f"checkpoint: root is {len(digest)} bytes, expected 32")
    return Checkpoint(origin, int(size), digest)


def open_checkpoint(data: bytes, origin: str, public_key: bytes) -> Checkpoint:
    """The checkpoint, verified under key name = origin, with the origin line checked."""
    checkpoint = parse_checkpoint_text(verify_note(data, origin, public_key))
    if checkpoint.origin != origin:
        raise SpecViolation(f"checkpoint: origin {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


# ----------------------------------------------------------------- C2SP tlog-tiles

TILE_WIDTH: Final = 256


def encode_tile_index(n: int) -> str:
    """N in 3-digit groups, all but the last prefixed with 'x': 1234067 -> x001/x234/067."""
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: str, n: int, width: int = TILE_WIDTH) -> str:
    """tile/<L>/<N>[.p/<W>]; ``level`` is a decimal level or "entries"."""
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is outside 1..256")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_tile_index(n)}{suffix}"


def expected_tile_paths(size: int) -> set[str]:
    """Every hash tile and entry bundle a tree of ``size`` entries is served as."""
    paths = set()
    level = 0
    while (hashes := size // TILE_WIDTH**level) > 0:
        for n in range(hashes // TILE_WIDTH):
            paths.add(tile_path(str(level), n))
        if hashes % TILE_WIDTH:
            paths.add(tile_path(str(level), hashes // TILE_WIDTH, hashes % TILE_WIDTH))
        level += 1
    for n in range(size // TILE_WIDTH):
        paths.add(tile_path("entries", n))
    if size % TILE_WIDTH:
        paths.add(tile_path("entries", size // TILE_WIDTH, size % TILE_WIDTH))
    return paths


def _widths(count: int) -> list[int]:
    """The widths of the tiles holding ``count`` hashes (or entries) at one level."""
    widths = [TILE_WIDTH] * (count // TILE_WIDTH)
    if count % TILE_WIDTH:
        widths.append(count % TILE_WIDTH)
    return widths


def split_entry_bundle(data: bytes, count: int, where: str = "entry bundle") -> list[bytes]:
    """Exactly ``count`` entries, each a big-endian uint16 length and that many bytes."""
    entries = []
    at = 0
    for i in range(count):
        if at + 2 > len(data):
            raise SpecViolation(f"{where}: ends at byte {at} before entry {i} of {count}")
        (length,) = struct.unpack_from(">H", data, at)
        at += 2
        if at + length > len(data):
            raise SpecViolation(f"{where}: entry {i} claims {length} bytes, "
                                f"{len(data) - at} remain")
        entries.append(data[at : at + length])
        at += length
    if at != len(data):
        raise SpecViolation(f"{where}: {len(data) - at} bytes left after {count} entries")
    return entries


def read_entries(bundle: Path, size: int) -> list[bytes]:
    """The first ``size`` entries, from the entry bundles a tree of ``size`` is served as."""
    entries: list[bytes] = []
    for n, width in enumerate(_widths(size)):
        path = tile_path("entries", n, width)
        entries += split_entry_bundle((bundle / path).read_bytes(), width, path)
    return entries


def read_hash_tile(bundle: Path, level: int, n: int, width: int) -> list[bytes]:
    """The ``width`` 32-byte hashes of one hash tile; its length must be exactly 32 * width."""
    path = tile_path(str(level), n, width)
    data = (bundle / path).read_bytes()
    if len(data) != 32 * width:
        raise SpecViolation(f"{path}: {len(data)} bytes, expected {32 * width}")
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def verify_leaf_hashes(bundle: Path, size: int) -> list[bytes]:
    """The leaf hashes of the entry bundles, once every level-0 tile hash equals them."""
    leaves = [leaf_hash(e) for e in read_entries(bundle, size)]
    for n, width in enumerate(_widths(size)):
        tile = read_hash_tile(bundle, 0, n, width)
        for i, served in enumerate(tile):
            index = n * TILE_WIDTH + i
            if served != leaves[index]:
                raise SpecViolation(
                    f"{tile_path('0', n, width)} hash {i}: {served.hex()}, but the leaf hash "
                    f"of entry {index} in the entry bundles is {leaves[index].hex()}"
                )
    return leaves


# ----------------------------------------------------------------- entries and envelopes

ENVELOPE_TAG: Final = b"hotline/v1/msg\x00"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log entry: MessagePack ``[kind, relay_ts, payload]``."""

    kind: str
    relay_ts: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class NetworkKeys:
    """What network.toml says about the log and who signs what."""

    origin: str
    relay_id: str
    relay_key: bytes
    party_keys: dict[str, bytes]


def _raw_key(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise SpecViolation(f"{where}: public_key is not a string")
    key = _strict_b64decode(text, f"{where}: public_key")
    if len(key) != 32:
        raise SpecViolation(f"{where}: public_key is {len(key)} bytes, expected 32")
    return key


def load_network_keys(path: Path) -> NetworkKeys:
    """The relay's origin, id and key and every party's key, from network.toml."""
    with path.open("rb") as file:
        config = tomllib.load(file)
    relay = config["relay"]
    origin, relay_id = relay["origin"], relay.get("id", "relay")
    if not isinstance(origin, str) or not isinstance(relay_id, str):
        raise SpecViolation(f"{path}: [relay] origin and id must be strings")
    relay_key = _raw_key(relay["public_key"], "[relay]")
    keys = {
        name: _raw_key(endpoint["public_key"], f"[endpoints.{name}]")
        for name, endpoint in config.get("endpoints", {}).items()
    }
    keys[relay_id] = relay_key  # `from` = the relay's id names the relay, whatever else does
    return NetworkKeys(origin, relay_id, relay_key, keys)


def _unpack(data: bytes, what: str) -> object:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SpecViolation(f"{what}: not exactly one MessagePack object ({exc})") from exc


def decode_entry(entry: bytes, index: int) -> LogEntry:
    """The entry's ``[kind (str), relay_ts (int), payload (bin)]``."""
    value = _unpack(entry, f"entry {index}")
    if not isinstance(value, list) or len(value) != 3:
        raise SpecViolation(f"entry {index}: {value!r:.60} is not a 3-item array")
    kind, relay_ts, payload = value
    if not isinstance(kind, str) or type(relay_ts) is not int or not isinstance(payload, bytes):
        raise SpecViolation(
            f"entry {index}: types {type(kind).__name__}, {type(relay_ts).__name__}, "
            f"{type(payload).__name__}; expected str, int, bin"
        )
    return LogEntry(kind, relay_ts, payload)


def verify_envelope(frame: bytes, keys: NetworkKeys, where: str) -> str:
    """The sender of an envelope ``[1, body, sig]``, once its Ed25519 signature verifies.

    The key is the one network.toml gives the body's ``from``; the body's ``kid`` must be the
    first 8 bytes of SHA-256 of that key (docs/protocol.md sections 1, 2 and 4).
    """
    value = _unpack(frame, where)
    if not isinstance(value, list) or len(value) != 3:
        raise SpecViolation(f"{where}: the envelope is not a 3-item array")
    version, body, signature = value
    if type(version) is not int or version != 1:
        raise SpecViolation(f"{where}: envelope version {version!r}, expected 1")
    if not isinstance(body, bytes) or not isinstance(signature, bytes) or len(signature) != 64:
        raise SpecViolation(f"{where}: the envelope is not [1, bin, bin(64)]")
    fields = _unpack(body, f"{where} body")
    if not isinstance(fields, dict):
        raise SpecViolation(f"{where}: the body is not a map")
    sender, kid = fields.get("from"), fields.get("kid")
    if not isinstance(sender, str) or sender not in keys.party_keys:
        raise SpecViolation(f"{where}: 'from' {sender!r} names no party of the network")
    public = keys.party_keys[sender]
    if kid != hashlib.sha256(public).digest()[:8]:
        raise SpecViolation(f"{where}: kid {kid!r} is not the key id of {sender}'s key")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, ENVELOPE_TAG + body)
    except InvalidSignature:
        raise SpecViolation(f"{where}: the signature of {sender} does not verify") from None
    return sender
