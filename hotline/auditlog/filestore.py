"""``FileStore``: the audit log in a directory of append-only files.

Directory layout (each file's bytes are drawn in the module named)::

    LOCK                       empty; flock()ed while a FileStore has the directory open
    frontier.bin               persisted size and tree frontier        (frontierfile)
    offsets.idx                segment and byte position of each entry (arrayfiles)
    level-0.hashes             leaf hashes, 32 bytes per entry         (arrayfiles)
    level-1.hashes             hash of each complete aligned run of 256 leaves
    level-2.hashes             ... of 65,536 leaves, and so on up
    00000000000000000000.seg   records of entries 0, 1, ...            (segments)
    00000000000000051234.seg   records from entry 51234 on (the name is the first index)
    *.tmp                      a file half way to replacing another; removed on open

Truth and derivation. The segments are the log; every other file is derived
from them and can be rebuilt from them. ``frontier.bin`` marks how far the
derived files are durable and agree with the segments.

Invariants:

- Entries below the persisted size (``frontier.bin``) are durable in the
  segments, the offsets index and the hash levels, which were synced before
  ``frontier.bin`` was replaced.
- Entries from the persisted size to ``size`` are durable in the segments (the
  segment is fsynced before ``append_batch`` returns); their offsets and
  hashes were written but not synced, and opening the store re-reads just
  these records to rebuild them. The frontier is persisted every
  ``persist_entries`` entries or ``persist_bytes`` bytes, after a batch that
  starts a new segment, and on ``close``, so that tail stays short.
- Per batch: one write to the active segment and one fsync of it (plus the
  directory's when the batch starts a new segment); one write each to the
  offsets index, level 0, and any level that gained a hash. Syncing the
  derived files is deferred to the next frontier persist: after a crash they
  are rebuilt from the fsynced segment anyway, so syncing them per batch would
  triple the fsyncs without making anything more durable.
- Memory does not grow with the log: the store keeps the frontier, fewer than
  256 pending hashes per level, and a few open file descriptors; offsets and
  hashes are read from their files when asked for.

Opening reads ``frontier.bin``, checks each file holds at least what it vouches
for, reads the last durable record and the frontier's hashes back from the
levels to confirm they agree, then replays the records after the persisted
size. A torn final record of the last segment (see ``segments``) is cut off.
Everything else that does not hold together raises ``StoreError`` naming the
file, the entry and the fault: a bad record followed by more data, a missing
or misnamed segment, a file shorter than the frontier says, hash files that
disagree with the records or the frontier. ``verify()`` re-reads the whole log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import structlog

from hotline.auditlog import hashlevels
from hotline.auditlog.arrayfiles import (
    OFFSET,
    OFFSETS_NAME,
    ArrayFile,
    level_header,
    level_name,
    offsets_header,
    parse_level_name,
)
from hotline.auditlog.diskio import TEMP_SUFFIX, create_file, read_at, sync_directory, write_at
from hotline.auditlog.frontierfile import (
    FRONTIER_NAME,
    PersistedFrontier,
    read_frontier,
    write_frontier,
)
from hotline.auditlog.merkle import HASH_SIZE, Frontier, leaf_hash
from hotline.auditlog.segments import (
    RECORD_HEADER,
    SEGMENT_HEADER,
    ScannedRecord,
    SegmentScan,
    check_segment_header,
    encode_record,
    encode_segment_header,
    parse_segment_name,
    read_record,
    read_records,
    segment_name,
)
from hotline.auditlog.store import (
    TILE_HEIGHT,
    check_batch,
    check_index,
    check_range,
    check_subtree,
    check_tile_height,
)
from hotline.errors import StoreError, UsageError

__all__ = ["DEFAULT_SEGMENT_BYTES", "LOCK_NAME", "FileStore", "Recovery"]

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
DEFAULT_PERSIST_ENTRIES: Final = 16_384
DEFAULT_PERSIST_BYTES: Final = 16 * 1024 * 1024
LOCK_NAME: Final = "LOCK"
_REPLAY_CHUNK: Final = 4096
_READER_FDS: Final = 8

_log = structlog.get_logger()

_Located = tuple[int, int, bytes]
"""An entry and where its record lies: (segment first index, byte position, payload)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening the store did beyond reading ``frontier.bin``."""

    persisted_size: int
    """The size ``frontier.bin`` recorded."""
    replayed: int
    """Records re-read after it (0 after a clean close)."""
    cut_bytes: int
    """Bytes of a torn, never acknowledged tail cut off the last segment."""


class FileStore:
    """A ``LogStore`` in ``directory``, created there if it holds no log yet.

    ``segment_bytes``: a segment is closed once it reaches this size.
    ``persist_entries``, ``persist_bytes``: persist the frontier after this many
    entries or record bytes since the last time; they bound the work of reopening.
    ``tile_height``: 8 (tiles of 256) unless a test wants deep levels from few
    entries; a store must be reopened with the height it was created with.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        persist_entries: int = DEFAULT_PERSIST_ENTRIES,
        persist_bytes: int = DEFAULT_PERSIST_BYTES,
        tile_height: int = TILE_HEIGHT,
    ) -> None:
        check_tile_height(tile_height)
        for name, value in (
            ("segment_bytes", segment_bytes),
            ("persist_entries", persist_entries),
            ("persist_bytes", persist_bytes),
        ):
            if value < 1:
                raise UsageError(f"{name} must be at least 1, not {value}")
        self.directory: Final = Path(directory)
        self.tile_height: Final = tile_height
        self._segment_bytes: Final = segment_bytes
        self._persist_entries: Final = persist_entries
        self._persist_bytes: Final = persist_bytes
        self._closed = False
        self._broken = ""
        self._reader_lock = threading.Lock()
        self._reader_fds: OrderedDict[int, int] = OrderedDict()
        self._levels: list[ArrayFile] = []
        self._offsets: ArrayFile | None = None
        self._active_fd = -1
        self._active_first = 0
        self._active_end = SEGMENT_HEADER.size
        self._size = 0
        self._persisted_size = 0
        self._last_segment = 0
        self._last_end = SEGMENT_HEADER.size
        self._since_entries = 0
        self._since_bytes = 0
        self._rolled = False
        self._frontier = Frontier()
        self._builder = hashlevels.LevelBuilder(tile_height)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_directory(self.directory)
        try:
            self.recovery: Final = self._open()
        except BaseException:
            self._release()
            raise

    # -- the LogStore protocol -------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def append_batch(self, entries: Sequence[bytes]) -> int:
        self._check_open()
        if self._broken:
            raise StoreError(
                f"{self.directory}: the store refuses writes since an earlier one failed "
                f"({self._broken}); reopen it to recover"
            )
        check_batch(entries)
        first = self._size
        last = first + len(entries) - 1
        try:
            if self._active_end >= self._segment_bytes and self._active_end > SEGMENT_HEADER.size:
                self._start_segment()
            located: list[_Located] = []
            records: list[bytes] = []
            position = self._active_end
            for offset, entry in enumerate(entries):
                record = encode_record(first + offset, entry)
                located.append((self._active_first, position, entry))
                records.append(record)
                position += len(record)
            write_at(self._active_fd, b"".join(records), self._active_end)
            os.fsync(self._active_fd)
            self._since_bytes += position - self._active_end
            self._active_end = position
            self._index(located)
        except OSError as exc:
            raise self._fail(f"writing entries {first} to {last} failed", exc) from exc
        self._since_entries += len(entries)
        if (
            self._rolled
            or self._since_entries >= self._persist_entries
            or self._since_bytes >= self._persist_bytes
        ):
            try:
                self._persist()
            except OSError as exc:
                what = f"entries {first} to {last} are durable, but persisting the frontier failed"
                raise self._fail(what, exc) from exc
        return first

    def read(self, index: int) -> bytes:
        self._check_open()
        check_index(index, self._size)
        segment, position = self._offset(index)
        with self._segment_reader(segment, index) as fd:
            return read_record(fd, self._segment_path(segment), index, position)

    def read_range(self, start: int, stop: int) -> list[bytes]:
        self._check_open()
        check_range(start, stop, self._size)
        if start == stop:
            return []
        raw = self._offsets_file().read(start, stop)
        entries: list[bytes] = []
        group_first, group_segment, positions = start, -1, list[int]()
        for index in range(start, stop):
            segment, position = self._checked_offset(
                index, OFFSET.unpack_from(raw, (index - start) * OFFSET.size)
            )
            if segment != group_segment and positions:
                entries.extend(self._read_group(group_segment, group_first, positions))
                positions = []
            if not positions:
                group_first, group_segment = index, segment
            positions.append(position)
        entries.extend(self._read_group(group_segment, group_first, positions))
        return entries

    def leaf_hash(self, index: int) -> bytes:
        self._check_open()
        check_index(index, self._size)
        return self._levels[0].read(index, index + 1)

    def subtree_hash(self, start: int, end: int) -> bytes:
        self._check_open()
        check_subtree(start, end, self._size)
        return hashlevels.subtree_hash(self, start, end, self.tile_height)

    def frontier(self) -> Frontier:
        self._check_open()
        return self._frontier.copy()

    def close(self) -> None:
        """Persist the frontier (unless a write failed) and release every file."""
        if self._closed:
            return
        try:
            if not self._broken and self._size != self._persisted_size:
                self._persist()
        finally:
            self._closed = True
            self._release()
        _log.info("store_closed", directory=str(self.directory), size=self._size)

    # -- beyond the protocol ---------------------------------------------------

    def recover(self) -> None:
        """Take writes again after a failed one (``Recoverable``), without reopening.

        A write that failed before its entries were counted (writing or syncing the
        segment, or indexing it) was acknowledged to no one and may have left any
        part of its records on disk, even all of them (a failed fsync does not say
        the bytes are not there, nor that they will stay): the active segment is cut
        back to the end of the last counted record and synced, so those entries are
        not in the log. A write that failed persisting the frontier left its entries
        counted and durable: they stay. Either way the frontier is then persisted.
        If any of it fails the store keeps refusing writes (``StoreError``).
        Called while no write is under way (the stopped committer's thread has ended).
        """
        self._check_open()
        if not self._broken:
            return
        keep = self._last_end if self._last_segment == self._active_first else SEGMENT_HEADER.size
        try:
            length = os.fstat(self._active_fd).st_size
            if length > keep:
                os.ftruncate(self._active_fd, keep)
            os.fsync(self._active_fd)
            self._active_end = keep
            self._persist()
        except OSError as exc:
            raise StoreError(
                f"{self.directory}: recovering from the failed write ({self._broken}) failed: "
                f"{exc.strerror or exc}; the store still refuses writes"
            ) from exc
        _log.warning("store_recovered", directory=str(self.directory), size=self._size,
                     cut_bytes=max(0, length - keep), failure=self._broken)
        self._broken = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def stored_hashes(self, level: int, start: int, stop: int) -> list[bytes]:
        """``hashlevels.LevelReader``: entries ``[start, stop)`` of one hash level."""
        data = self._levels[level].read(start, stop)
        return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]

    def verify(self) -> None:
        """Re-read every record and check the offsets, every stored hash and the root.

        O(size): meant for an operator's check or a test, not for every open.
        Run it with no append in progress.
        """
        self._check_open()
        size = self._size
        builder = hashlevels.LevelBuilder(self.tile_height)
        frontier = Frontier()
        index = 0
        for first in self._list_segments():
            if index >= size:
                break
            path = self._segment_path(first)
            if first != index:
                raise StoreError(
                    f"{path}: the segment starts at entry {first}, but the segments before "
                    f"it end at entry {index - 1}; a segment is missing or misnamed"
                )
            _check_header_of(path, first)
            chunk: list[ScannedRecord] = []
            scan = SegmentScan(path, first, SEGMENT_HEADER.size, may_be_torn=False)
            for record in scan.records():
                if record.index < size:
                    chunk.append(record)
                if len(chunk) == _REPLAY_CHUNK:
                    self._verify_chunk(first, chunk, builder, frontier)
                    chunk = []
            if chunk:
                self._verify_chunk(first, chunk, builder, frontier)
            index = scan.next_index
        if index < size:
            raise StoreError(
                f"{self.directory}: the segments hold {index} entries, but the store "
                f"counts {size}; entries are missing"
            )
        if frontier.root() != self._frontier.root():
            raise StoreError(
                f"{self.directory}: the root recomputed from the records differs from the "
                "store's frontier"
            )

    # -- opening -----------------------------------------------------------------

    def _open(self) -> Recovery:
        self._remove_temporaries()
        segments = self._list_segments()
        frontier_path = self.directory / FRONTIER_NAME
        if not frontier_path.exists():
            segments = self._initialise(segments)
        persisted = read_frontier(frontier_path)
        if persisted.tile_height != self.tile_height:
            raise UsageError(
                f"{self.directory} was created with tile height {persisted.tile_height}, "
                f"not {self.tile_height}"
            )
        size = persisted.size
        self._offsets = ArrayFile.open(self.directory / OFFSETS_NAME, offsets_header(), OFFSET.size)
        self._levels = self._open_levels(size)
        self._check_counts(size)
        self._check_segments(segments, persisted)
        self._check_frontier(persisted)
        self._builder = hashlevels.LevelBuilder.load(self, size, self.tile_height)
        self._frontier = Frontier(size, persisted.hashes)
        self._size = self._persisted_size = size
        self._last_segment, self._last_end = persisted.segment, persisted.position
        self._cut_derived_tails(size)
        replayed, cut = self._replay(segments, persisted)
        if replayed or cut:
            self._persist()
        _log.info(
            "store_opened",
            directory=str(self.directory),
            size=self._size,
            persisted_size=size,
            replayed=replayed,
            cut_bytes=cut,
        )
        return Recovery(persisted_size=size, replayed=replayed, cut_bytes=cut)

    def _initialise(self, segments: list[int]) -> list[int]:
        """Start an empty log, unless segments hold entries (then refuse)."""
        first_path = self._segment_path(0)
        if any(first != 0 for first in segments) or (
            segments and first_path.stat().st_size > SEGMENT_HEADER.size
        ):
            raise StoreError(
                f"{self.directory / FRONTIER_NAME}: the file is missing, yet the directory "
                "holds segments with entries; refusing to start a new log over them"
            )
        if not segments:
            create_file(first_path, encode_segment_header(0))
        create_file(self.directory / OFFSETS_NAME, offsets_header())
        create_file(self.directory / level_name(0), level_header(self.tile_height, 0))
        write_frontier(
            self.directory / FRONTIER_NAME,
            PersistedFrontier(self.tile_height, 0, 0, SEGMENT_HEADER.size, ()),
        )
        _log.info("store_created", directory=str(self.directory), tile_height=self.tile_height)
        return [0]

    def _open_levels(self, size: int) -> list[ArrayFile]:
        """Open ``level-0.hashes`` and up, as long as they exist; all needed ones must."""
        present = {
            level
            for path in self.directory.iterdir()
            if (level := parse_level_name(path.name)) is not None
        }
        height = self.tile_height
        top = 1
        while top in present or size >> (height * top):
            top += 1
        for level in range(top):
            if level not in present:
                raise StoreError(
                    f"{self.directory / level_name(level)}: the file is missing, yet "
                    f"{FRONTIER_NAME} says it holds {size >> (height * level)} hashes"
                )
        levels: list[ArrayFile] = []
        try:
            for level in range(top):
                path = self.directory / level_name(level)
                levels.append(ArrayFile.open(path, level_header(height, level), HASH_SIZE))
        except BaseException:
            for opened in levels:
                opened.close()
            raise
        return levels

    def _check_counts(self, size: int) -> None:
        """Each derived file holds at least what ``frontier.bin`` says is durable."""
        offsets = self._offsets_file()
        if offsets.count < size:
            raise StoreError(
                f"{offsets.path}: the file holds {offsets.count} offsets, but {FRONTIER_NAME} "
                f"says {size} entries are durable; it was truncated"
            )
        for level, hashes in enumerate(self._levels):
            needed = size >> (self.tile_height * level)
            if hashes.count < needed:
                raise StoreError(
                    f"{hashes.path}: the file holds {hashes.count} hashes, but {FRONTIER_NAME} "
                    f"says {needed} are durable; it was truncated"
                )

    def _check_segments(self, segments: list[int], persisted: PersistedFrontier) -> None:
        """The segments up to the persisted one are all there, whole, and chained."""
        size = persisted.size
        last_path = self._segment_path(persisted.segment)
        if segments[:1] != [0]:
            raise StoreError(
                f"{self._segment_path(0)}: the first segment, holding entries from 0, is missing"
            )
        if persisted.segment not in segments:
            raise StoreError(
                f"{last_path}: the segment is missing, yet {FRONTIER_NAME} says it holds "
                f"entries up to {size - 1}"
            )
        durable = [first for first in segments if first <= persisted.segment]
        for first in durable:
            _check_header_of(self._segment_path(first), first)
        for before, after in pairwise(durable):
            self._check_segment_joint(before, after, segments)
        actual = last_path.stat().st_size
        if actual < persisted.position:
            raise StoreError(
                f"{last_path}: the segment is {actual} bytes, but {FRONTIER_NAME} says "
                f"entries up to {size - 1} were durable and end at byte {persisted.position}; "
                "durable entries are missing"
            )
        if size == 0:
            return
        segment, position = self._offset(size - 1)
        with self._segment_reader(segment, size - 1) as fd:
            payload = read_record(fd, self._segment_path(segment), size - 1, position)
        end = position + RECORD_HEADER.size + len(payload)
        if (segment, end) != (persisted.segment, persisted.position):
            raise StoreError(
                f"{self._offsets_file().path}: entry {size - 1} ends in segment {segment} at "
                f"byte {end}, but {FRONTIER_NAME} says segment {persisted.segment} at byte "
                f"{persisted.position}"
            )
        if self._levels[0].read(size - 1, size) != leaf_hash(payload):
            raise StoreError(
                f"{self._levels[0].path}: the stored leaf hash of entry {size - 1} disagrees "
                f"with its record in {self._segment_path(segment)}"
            )

    def _check_segment_joint(self, before: int, after: int, segments: list[int]) -> None:
        """Segment ``before`` ends exactly with entry ``after - 1``; ``after`` starts next."""
        last = after - 1
        segment, position = self._offset(last)
        if segment != before:
            missing = segment not in segments
            raise StoreError(
                f"{self._segment_path(segment)}: the segment holding entry {last} is missing"
                if missing
                else f"{self._offsets_file().path}: entry {last} is recorded in segment "
                f"{segment}, but the segment before {segment_name(after)} is "
                f"{segment_name(before)}"
            )
        path = self._segment_path(before)
        with self._segment_reader(before, last) as fd:
            header = read_at(fd, RECORD_HEADER.size, position)
        length = RECORD_HEADER.unpack(header)[0] if len(header) == RECORD_HEADER.size else 0
        end = position + RECORD_HEADER.size + length
        actual = path.stat().st_size
        if actual < end:
            raise StoreError(
                f"{path}: the segment is {actual} bytes, but entry {last} ends at byte {end}; "
                "durable entries were cut off"
            )
        if actual > end:
            raise StoreError(
                f"{path}: {actual - end} bytes follow entry {last}, the last entry of a "
                "finished segment; the segment was altered"
            )

    def _check_frontier(self, persisted: PersistedFrontier) -> None:
        """The stored levels rebuild exactly the frontier ``frontier.bin`` holds."""
        size = persisted.size
        stored = hashlevels.frontier_from_levels(self, size, self.tile_height).hashes
        if stored == persisted.hashes:
            return
        start = piece = 0
        for bit in range(size.bit_length() - 1, -1, -1):
            if not size >> bit & 1:
                continue
            if stored[piece] != persisted.hashes[piece]:
                level = bit // self.tile_height
                raise StoreError(
                    f"{self._levels[level].path}: the stored hashes of leaves "
                    f"[{start}, {start + (1 << bit)}) disagree with the frontier in "
                    f"{FRONTIER_NAME}; a hash file or the frontier was altered"
                )
            start += 1 << bit
            piece += 1

    def _cut_derived_tails(self, size: int) -> None:
        """Cut offsets and hashes beyond the persisted size; the replay rewrites them."""
        height = self.tile_height
        wanted = [(self._offsets_file(), size)] + [
            (hashes, size >> (height * level)) for level, hashes in enumerate(self._levels)
        ]
        for file, keep in wanted:
            if file.file_items() != keep or file.count != keep:
                dropped = file.count - keep
                _log.info("store_index_tail_cut", file=str(file.path), kept=keep, dropped=dropped)
                file.truncate(keep)

    def _replay(self, segments: list[int], persisted: PersistedFrontier) -> tuple[int, int]:
        """Re-read the records after the persisted size; cut a torn tail. (replayed, cut)."""
        chain = [persisted.segment] + [first for first in segments if first > persisted.segment]
        index, position = persisted.size, persisted.position
        replayed = cut = 0
        for number, first in enumerate(chain):
            path = self._segment_path(first)
            if number:
                if first != index:
                    raise StoreError(
                        f"{path}: the segment starts at entry {first}, but the segments before "
                        f"it end at entry {index - 1}; a segment is missing or misnamed"
                    )
                _check_header_of(path, first)
                position = SEGMENT_HEADER.size
            scan = SegmentScan(path, index, position, may_be_torn=number == len(chain) - 1)
            batch: list[_Located] = []
            for record in scan.records():
                batch.append((first, record.position, record.payload))
                if len(batch) == _REPLAY_CHUNK:
                    self._index(batch)
                    replayed += len(batch)
                    batch = []
            if batch:
                self._index(batch)
                replayed += len(batch)
            index, position = scan.next_index, scan.end
            if scan.torn is not None:
                cut = path.stat().st_size - scan.torn.position
                fd = os.open(path, os.O_RDWR)
                try:
                    os.ftruncate(fd, scan.torn.position)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                _log.warning(
                    "store_tail_truncated",
                    file=str(path),
                    index=scan.torn.index,
                    position=scan.torn.position,
                    cut_bytes=cut,
                    reason=scan.torn.reason,
                )
        self._active_first, self._active_end = chain[-1], position
        self._active_fd = os.open(self._segment_path(chain[-1]), os.O_RDWR)
        return replayed, cut

    def _remove_temporaries(self) -> None:
        leftovers = [path for path in self.directory.iterdir() if path.name.endswith(TEMP_SUFFIX)]
        for path in leftovers:
            path.unlink()
            _log.info("store_temp_removed", file=str(path))
        if leftovers:
            sync_directory(self.directory)

    # -- writing -------------------------------------------------------------------

    def _index(self, located: Sequence[_Located]) -> None:
        """Write offsets and hashes for records already in a segment; then count them."""
        first = self._size
        builder = self._builder.copy()
        frontier = self._frontier.copy()
        offsets: list[bytes] = []
        leaves: list[bytes] = []
        completed: dict[int, list[bytes]] = {}
        for segment, position, payload in located:
            digest = leaf_hash(payload)
            frontier.append(digest)
            offsets.append(OFFSET.pack(segment, position))
            leaves.append(digest)
            for level, node in builder.add(digest):
                completed.setdefault(level, []).append(node)
        self._offsets_file().write(first, b"".join(offsets))
        self._levels[0].write(first, b"".join(leaves))
        for level in sorted(completed):
            self._level_file(level).write(
                first >> (self.tile_height * level), b"".join(completed[level])
            )
        segment, position, payload = located[-1]
        self._builder, self._frontier = builder, frontier
        self._last_segment = segment
        self._last_end = position + RECORD_HEADER.size + len(payload)
        self._size = first + len(located)

    def _level_file(self, level: int) -> ArrayFile:
        if level == len(self._levels):
            path = self.directory / level_name(level)
            self._levels.append(
                ArrayFile.create(path, level_header(self.tile_height, level), HASH_SIZE)
            )
            _log.info("store_level_created", file=str(path), level=level)
        return self._levels[level]

    def _start_segment(self) -> None:
        first = self._size
        path = self._segment_path(first)
        create_file(path, encode_segment_header(first))
        fd = os.open(path, os.O_RDWR)
        os.close(self._active_fd)
        self._active_fd, self._active_first, self._active_end = fd, first, SEGMENT_HEADER.size
        self._rolled = True
        _log.info("store_segment_started", file=str(path), first=first)

    def _persist(self) -> None:
        """Sync the derived files, then record size and frontier in ``frontier.bin``."""
        self._offsets_file().sync()
        for hashes in self._levels:
            hashes.sync()
        persisted = PersistedFrontier(
            self.tile_height,
            self._size,
            self._last_segment,
            self._last_end,
            self._frontier.hashes,
        )
        write_frontier(self.directory / FRONTIER_NAME, persisted)
        self._persisted_size = self._size
        self._since_entries = self._since_bytes = 0
        self._rolled = False
        _log.debug("store_frontier_persisted", directory=str(self.directory), size=self._size)

    # -- reading -------------------------------------------------------------------

    def _fail(self, what: str, error: OSError) -> StoreError:
        """Refuse writes from now on; the error to raise for ``what`` failing with ``error``."""
        self._broken = f"{what}: {error.strerror or error}"
        _log.error("store_write_failed", directory=str(self.directory), error=self._broken)
        return StoreError(
            f"{self.directory}: {self._broken}; the store refuses further writes until "
            "it is reopened"
        )

    def _offset(self, index: int) -> tuple[int, int]:
        raw = self._offsets_file().read(index, index + 1)
        return self._checked_offset(index, OFFSET.unpack(raw))

    def _checked_offset(self, index: int, offset: tuple[int, int]) -> tuple[int, int]:
        segment, position = offset
        if segment > index or position < SEGMENT_HEADER.size:
            raise StoreError(
                f"{self._offsets_file().path}: entry {index} is recorded in segment {segment} "
                f"at byte {position}, where it cannot be; the index is damaged"
            )
        return segment, position

    def _read_group(self, segment: int, first: int, positions: list[int]) -> list[bytes]:
        with self._segment_reader(segment, first) as fd:
            return read_records(fd, self._segment_path(segment), first, positions)

    @contextlib.contextmanager
    def _segment_reader(self, segment: int, index: int) -> Iterator[int]:
        """A read-only descriptor of a segment, held under the reader lock."""
        with self._reader_lock:
            fd = self._reader_fds.pop(segment, None)
            if fd is None:
                path = self._segment_path(segment)
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    raise StoreError(
                        f"{path}: the segment holding entry {index} is missing"
                    ) from None
            self._reader_fds[segment] = fd
            while len(self._reader_fds) > _READER_FDS:
                os.close(self._reader_fds.popitem(last=False)[1])
            yield fd

    def _verify_chunk(
        self,
        segment: int,
        chunk: list[ScannedRecord],
        builder: hashlevels.LevelBuilder,
        frontier: Frontier,
    ) -> None:
        first, stop = chunk[0].index, chunk[-1].index + 1
        offsets = self._offsets_file().read(first, stop)
        leaves = self._levels[0].read(first, stop)
        for number, record in enumerate(chunk):
            recorded = OFFSET.unpack_from(offsets, number * OFFSET.size)
            if recorded != (segment, record.position):
                raise StoreError(
                    f"{self._offsets_file().path}: entry {record.index} is recorded at "
                    f"segment {recorded[0]} byte {recorded[1]}, but its record is in segment "
                    f"{segment} at byte {record.position}"
                )
            digest = leaf_hash(record.payload)
            if leaves[number * HASH_SIZE : (number + 1) * HASH_SIZE] != digest:
                raise StoreError(
                    f"{self._levels[0].path}: the stored leaf hash of entry {record.index} "
                    f"disagrees with its record in {self._segment_path(segment)}"
                )
            frontier.append(digest)
            for level, node in builder.add(digest):
                number_at_level = ((record.index + 1) >> (self.tile_height * level)) - 1
                if self.stored_hashes(level, number_at_level, number_at_level + 1) != [node]:
                    span = 1 << (self.tile_height * level)
                    start = number_at_level * span
                    raise StoreError(
                        f"{self._levels[level].path}: hash {number_at_level} (leaves "
                        f"[{start}, {start + span})) disagrees with the hash of their records"
                    )

    # -- housekeeping --------------------------------------------------------------

    def _segment_path(self, first: int) -> Path:
        return self.directory / segment_name(first)

    def _list_segments(self) -> list[int]:
        return sorted(
            first
            for path in self.directory.iterdir()
            if (first := parse_segment_name(path.name)) is not None
        )

    def _offsets_file(self) -> ArrayFile:
        if self._offsets is None:
            raise UsageError(f"{self.directory}: the log store is not open")
        return self._offsets

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"{self.directory}: the log store is closed")

    def _release(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
        for hashes in self._levels:
            hashes.close()
        with self._reader_lock:
            while self._reader_fds:
                os.close(self._reader_fds.popitem()[1])
        if self._active_fd >= 0:
            os.close(self._active_fd)
            self._active_fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _lock_directory(directory: Path) -> int:
    """Take the directory's ``LOCK`` (released when the descriptor closes, or the process dies)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(
            f"{directory}: the log store is already open, in this process or another"
        ) from None
    return fd


def _check_header_of(path: Path, first: int) -> None:
    try:
        with path.open("rb") as file:
            header = file.read(SEGMENT_HEADER.size)
    except FileNotFoundError:
        raise StoreError(f"{path}: the segment is missing") from None
    check_segment_header(header, path, first)
