"""Segment files: the log's entries as length-prefixed, checksummed records.

A segment is named by the index of its first record, as 20 decimal digits:
``00000000000000004096.seg`` holds entries 4096, 4097, ... Its bytes::

    offset  size  field
    0       4     magic b"HLsg"
    4       2     format version, big-endian uint16 (1)
    6       2     zero
    8       8     index of the first record, big-endian uint64 (equals the name)
    16      ...   records, back to back, to the end of the file

    record (at byte p of the segment, holding entry i):
    p       4     payload length n, big-endian uint32, 0 <= n <= 65,535
    p+4     4     CRC-32 (zlib.crc32), big-endian, of: i as a big-endian uint64,
                  then the 4 length bytes, then the payload
    p+8     n     the payload, the entry's exact bytes

The index inside the CRC makes a record copied or renamed to another place
fail its check. Segments only grow: records are appended, never rewritten;
the store starts a new segment once the current one reaches its size limit,
so every segment but the last ends exactly after its last record.

Reading after a crash (``SegmentScan``): only the last segment may end in a
torn tail, the one record being written when the process died, which was
never acknowledged. It is recognised by exactly one of: the file ends inside
the record's header; the file ends inside its payload; it is the very last
record and fails its CRC; or it and every byte after it are zero (a file system
that grew the file before writing the data). Anything else that does not parse
is damage, reported as ``StoreError`` naming the file, the entry and the fault.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from hotline.auditlog.diskio import read_at
from hotline.auditlog.store import MAX_ENTRY_SIZE
from hotline.errors import StoreError

__all__ = [
    "RECORD_HEADER",
    "SEGMENT_HEADER",
    "SEGMENT_SUFFIX",
    "ScannedRecord",
    "SegmentScan",
    "TornTail",
    "check_segment_header",
    "encode_record",
    "encode_segment_header",
    "parse_segment_name",
    "read_record",
    "read_records",
    "segment_name",
]

SEGMENT_MAGIC: Final = b"HLsg"
SEGMENT_VERSION: Final = 1
SEGMENT_SUFFIX: Final = ".seg"
SEGMENT_HEADER: Final = struct.Struct(">4sHHQ")
RECORD_HEADER: Final = struct.Struct(">II")
_INDEX: Final = struct.Struct(">Q")
_NAME_DIGITS: Final = 20
_ZERO_CHECK_CHUNK: Final = 1 << 20


def segment_name(first: int) -> str:
    """The file name of the segment whose first record is entry ``first``."""
    return f"{first:0{_NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first index a segment file name stands for, or None if it is no segment name."""
    stem, suffix = name[: -len(SEGMENT_SUFFIX)], name[-len(SEGMENT_SUFFIX) :]
    if suffix != SEGMENT_SUFFIX or len(stem) != _NAME_DIGITS or not stem.isdigit():
        return None
    return int(stem)


def encode_segment_header(first: int) -> bytes:
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, 0, first)


def check_segment_header(header: bytes, path: Path, first: int) -> None:
    """Refuse a segment whose header is short, foreign, or names another first index."""
    if len(header) < SEGMENT_HEADER.size:
        raise StoreError(
            f"{path}: the segment is {len(header)} bytes, too short for its "
            f"{SEGMENT_HEADER.size}-byte header"
        )
    magic, version, _, stored_first = SEGMENT_HEADER.unpack_from(header)
    if magic != SEGMENT_MAGIC:
        raise StoreError(f"{path}: not a hotline log segment (magic {magic!r})")
    if version != SEGMENT_VERSION:
        raise StoreError(f"{path}: segment format version {version} is not supported")
    if stored_first != first:
        raise StoreError(
            f"{path}: the header says the segment starts at entry {stored_first}, "
            f"its name says {first}"
        )


def _crc(index: int, length_field: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(length_field, zlib.crc32(_INDEX.pack(index))))


def encode_record(index: int, payload: bytes) -> bytes:
    """The record holding entry ``index``: length, CRC-32, payload."""
    length_field = len(payload).to_bytes(4, "big")
    return length_field + _crc(index, length_field, payload).to_bytes(4, "big") + payload


def _verified(path: Path, index: int, position: int, header: bytes, payload: bytes) -> bytes:
    """``payload`` if the record parsed from ``header`` and ``payload`` is whole and intact."""
    if len(header) < RECORD_HEADER.size:
        raise StoreError(
            f"{path}: entry {index} at byte {position} is cut short: the file ends "
            "inside its header"
        )
    length, stored = RECORD_HEADER.unpack_from(header)
    if length > MAX_ENTRY_SIZE:
        raise StoreError(
            f"{path}: entry {index} at byte {position} claims {length:,} bytes, more than "
            f"the {MAX_ENTRY_SIZE:,} an entry may hold; the record is damaged"
        )
    if len(payload) < length:
        raise StoreError(
            f"{path}: entry {index} at byte {position} is cut short: {len(payload)} of its "
            f"{length} bytes are in the file"
        )
    payload = payload[:length]
    computed = _crc(index, header[:4], payload)
    if computed != stored:
        raise StoreError(
            f"{path}: entry {index} at byte {position} fails its CRC-32 check (stored "
            f"{stored:08x}, computed {computed:08x}); the record is damaged"
        )
    return payload


def read_record(fd: int, path: Path, index: int, position: int) -> bytes:
    """The payload of the record for entry ``index`` at ``position``, checked."""
    header = read_at(fd, RECORD_HEADER.size, position)
    length = RECORD_HEADER.unpack_from(header)[0] if len(header) == RECORD_HEADER.size else 0
    payload = read_at(fd, min(length, MAX_ENTRY_SIZE), position + RECORD_HEADER.size)
    return _verified(path, index, position, header, payload)


def read_records(fd: int, path: Path, first: int, positions: list[int]) -> list[bytes]:
    """The payloads of consecutive records ``first, first + 1, ...`` at ``positions``.

    One read for the whole span. ``positions`` come from the offsets index; a
    record that does not end where the next begins means that index is wrong.
    """
    last = positions[-1]
    tail = read_at(fd, RECORD_HEADER.size, last)
    tail_length = RECORD_HEADER.unpack_from(tail)[0] if len(tail) == RECORD_HEADER.size else 0
    span_end = last + RECORD_HEADER.size + min(tail_length, MAX_ENTRY_SIZE)
    base = positions[0]
    span = read_at(fd, span_end - base, base)
    payloads: list[bytes] = []
    for offset, position in enumerate(positions):
        index = first + offset
        start = position - base
        header = span[start : start + RECORD_HEADER.size]
        body_start = start + RECORD_HEADER.size
        length = RECORD_HEADER.unpack_from(header)[0] if len(header) == RECORD_HEADER.size else 0
        payload = _verified(path, index, position, header, span[body_start : body_start + length])
        payloads.append(payload)
        if offset + 1 < len(positions):
            end = position + RECORD_HEADER.size + len(payload)
            if positions[offset + 1] != end:
                raise StoreError(
                    f"{path}: the offsets index puts entry {index + 1} at byte "
                    f"{positions[offset + 1]}, but entry {index} ends at byte {end}"
                )
    return payloads


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    """One intact record found by a scan."""

    index: int
    position: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class TornTail:
    """A never-acknowledged partial record at the end of the last segment."""

    index: int
    position: int
    reason: str


class SegmentScan:
    """Walk a segment's records from a known record boundary to the end of the file.

    ``records()`` yields each intact record. If the segment may end in a torn
    tail (it is the last one), a torn final record ends the walk and is
    described in ``torn``; the caller cuts the file there. Any other fault
    raises ``StoreError``. After the walk, ``end`` is the byte after the last
    intact record and ``next_index`` the index the next record would have.
    """

    def __init__(self, path: Path, index: int, position: int, *, may_be_torn: bool) -> None:
        self.path: Final = path
        self.may_be_torn: Final = may_be_torn
        self.next_index = index
        self.end = position
        self.torn: TornTail | None = None

    def records(self) -> Iterator[ScannedRecord]:
        with self.path.open("rb") as file:
            file_size = file.seek(0, 2)
            file.seek(self.end)
            while self.end < file_size:
                index, position = self.next_index, self.end
                header = file.read(RECORD_HEADER.size)
                if len(header) < RECORD_HEADER.size:
                    self._torn(index, position, "the file ends inside its header")
                    return
                length, _ = RECORD_HEADER.unpack(header)
                if length <= MAX_ENTRY_SIZE and position + RECORD_HEADER.size + length > file_size:
                    have = file_size - position - RECORD_HEADER.size
                    self._torn(index, position, f"only {have} of its {length} bytes are written")
                    return
                payload = file.read(min(length, MAX_ENTRY_SIZE))
                try:
                    _verified(self.path, index, position, header, payload)
                except StoreError:
                    end = position + RECORD_HEADER.size + length
                    if end == file_size and length <= MAX_ENTRY_SIZE:
                        self._torn(index, position, "it is the last record and fails its CRC-32")
                        return
                    if _zero_from(file, position):
                        self._torn(index, position, "it and all bytes after it are zero")
                        return
                    raise
                self.end = position + RECORD_HEADER.size + length
                self.next_index = index + 1
                yield ScannedRecord(index, position, payload)

    def _torn(self, index: int, position: int, reason: str) -> None:
        if not self.may_be_torn:
            raise StoreError(
                f"{self.path}: entry {index} at byte {position} is not whole ({reason}), "
                "yet later segments exist; the segment is damaged"
            )
        self.torn = TornTail(index, position, reason)


def _zero_from(file: BinaryIO, position: int) -> bool:
    """Whether every byte from ``position`` to the end of ``file`` is zero."""
    file.seek(position)
    while chunk := file.read(_ZERO_CHECK_CHUNK):
        if chunk.count(0) != len(chunk):
            return False
    return True
