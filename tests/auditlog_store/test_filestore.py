"""FileStore on disk: its layout, reopening, torn tails, damage, and what opening costs.

A "crash image" is a copy of the directory taken while the store is open: it
holds exactly what a killed process would leave (written, but no close).
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.merkle import leaf_hash, root_of
from hotline.errors import StoreError, UsageError
from tests.auditlog_store.crash_child import entry_for

OpenStore = Callable[..., FileStore]


@pytest.fixture
def open_store() -> Iterator[OpenStore]:
    """Open FileStores (small segments, frontier persisted only on close); close them after."""
    opened: list[FileStore] = []

    def open_(directory: Path, **options: Any) -> FileStore:
        options.setdefault("segment_bytes", 4096)
        options.setdefault("persist_entries", 1_000_000)
        store = FileStore(directory, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def fill(store: FileStore, count: int, batch: int = 10) -> None:
    """Append ``entry_for(i)`` from the store's size on, in batches."""
    start = store.size
    for first in range(start, start + count, batch):
        stop = min(first + batch, start + count)
        store.append_batch([entry_for(i) for i in range(first, stop)])


def crash_image(store: FileStore, target: Path) -> Path:
    """Copy the open store's directory: what the disk holds if the process dies now."""
    shutil.copytree(store.directory, target)
    return target


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def record_at(directory: Path, index: int) -> tuple[Path, int]:
    """The segment file and byte position of entry ``index``, read from offsets.idx."""
    raw = (directory / "offsets.idx").read_bytes()[16 + 16 * index : 32 + 16 * index]
    first, position = struct.unpack(">QQ", raw)
    return directory / f"{first:020d}.seg", position


def _record(index: int, payload: bytes) -> bytes:
    """A record as the segment docs draw it, built here independently of the store."""
    length = len(payload).to_bytes(4, "big")
    return (
        length
        + zlib.crc32(index.to_bytes(8, "big") + length + payload).to_bytes(4, "big")
        + payload
    )


def flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x5A
    path.write_bytes(bytes(data))


def cut_file(path: Path, remove: int) -> None:
    os.truncate(path, path.stat().st_size - remove)


def assert_holds_entries(store: FileStore, count: int) -> None:
    """The store holds exactly entry_for(0 .. count - 1), with the matching root."""
    assert store.size == count
    assert store.read_range(0, count) == [entry_for(i) for i in range(count)]
    assert store.frontier().root() == root_of([leaf_hash(entry_for(i)) for i in range(count)])
    store.verify()


# -- layout ------------------------------------------------------------------------------


def test_records_are_laid_out_byte_for_byte_as_documented(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """Segment header, record, offset, leaf hash and frontier bytes follow the module docs."""
    store = open_store(tmp_path / "log")
    store.append_batch([b"first", b"second"])
    store.close()
    segment = (tmp_path / "log" / f"{0:020d}.seg").read_bytes()
    assert segment[:16] == b"HLsg" + b"\x00\x01" + b"\x00\x00" + (0).to_bytes(8, "big")
    length = (5).to_bytes(4, "big")
    crc = zlib.crc32((0).to_bytes(8, "big") + length + b"first").to_bytes(4, "big")
    assert segment[16:29] == length + crc + b"first"
    crc1 = zlib.crc32((1).to_bytes(8, "big") + (6).to_bytes(4, "big") + b"second")
    assert segment[29:] == (6).to_bytes(4, "big") + crc1.to_bytes(4, "big") + b"second"
    offsets = (tmp_path / "log" / "offsets.idx").read_bytes()
    assert offsets[:8] == b"HLix\x00\x01\x00\x00"
    assert offsets[16:] == struct.pack(">QQQQ", 0, 16, 0, 29)
    level0 = (tmp_path / "log" / "level-0.hashes").read_bytes()
    assert level0[:8] == b"HLhs\x00\x01\x08\x00"
    assert level0[16:] == leaf_hash(b"first") + leaf_hash(b"second")
    frontier = (tmp_path / "log" / "frontier.bin").read_bytes()
    assert frontier[:32] == b"HLfr\x00\x01\x08\x00" + struct.pack(">QQQ", 2, 0, 43)
    assert frontier[32:64] == root_of([leaf_hash(b"first"), leaf_hash(b"second")])
    assert frontier[64:] == zlib.crc32(frontier[:64]).to_bytes(4, "big")


def test_segments_roll_at_the_size_limit_and_are_named_by_first_index(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """Once a segment reaches segment_bytes the next batch starts one named by its index."""
    store = open_store(tmp_path / "log", segment_bytes=2048)
    fill(store, 200)
    files = segments(tmp_path / "log")
    assert len(files) > 3
    for path in files:
        first = int(path.stem)
        assert path.read_bytes()[8:16] == first.to_bytes(8, "big")
        assert store.read(first) == entry_for(first)
    assert all(path.stat().st_size < 2048 + 10 * 300 for path in files)


def test_level_files_hold_the_tile_hashes(tmp_path: Path, open_store: OpenStore) -> None:
    """level-1.hashes holds MTH of each complete aligned run of 256 leaves."""
    store = open_store(tmp_path / "log")
    fill(store, 600, batch=50)
    leaves = [leaf_hash(entry_for(i)) for i in range(600)]
    level1 = (tmp_path / "log" / "level-1.hashes").read_bytes()[16:]
    assert level1 == root_of(leaves[:256]) + root_of(leaves[256:512])


# -- reopening ---------------------------------------------------------------------------


def test_reopening_gives_the_same_size_root_and_entries(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """A closed store reopens with the same size, root, entries and subtree hashes."""
    store = open_store(tmp_path / "log")
    fill(store, 700, batch=33)
    root, hashes = store.frontier().root(), [store.subtree_hash(0, n) for n in range(0, 700, 7)]
    store.close()
    again = open_store(tmp_path / "log")
    assert again.recovery.replayed == 0
    assert again.frontier().root() == root
    assert [again.subtree_hash(0, n) for n in range(0, 700, 7)] == hashes
    assert_holds_entries(again, 700)
    fill(again, 50)
    assert_holds_entries(again, 750)


def test_reopening_after_a_crash_replays_only_the_tail(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """After a crash, open re-reads just the entries written since the last persisted frontier."""
    store = open_store(tmp_path / "log", persist_entries=100, segment_bytes=1 << 20)
    fill(store, 250)
    image = crash_image(store, tmp_path / "image")
    again = open_store(image, persist_entries=100, segment_bytes=1 << 20)
    assert again.recovery.persisted_size == 200
    assert again.recovery.replayed == 50
    assert again.recovery.cut_bytes == 0
    assert_holds_entries(again, 250)


def test_opening_a_big_log_reads_only_a_bounded_amount(
    tmp_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening 20,000 entries preads about as many bytes as opening 1,000: none of the records."""
    read_bytes = 0
    real_pread = os.pread

    def counting_pread(fd: int, size: int, position: int) -> bytes:
        nonlocal read_bytes
        data = real_pread(fd, size, position)
        read_bytes += len(data)
        return data

    costs = {}
    for count in (1_000, 20_000):
        directory = tmp_path / f"log-{count}"
        store = open_store(directory, segment_bytes=64 * 1024 * 1024)
        fill(store, count, batch=1000)
        store.close()
        monkeypatch.setattr(os, "pread", counting_pread)
        read_bytes = 0
        again = open_store(directory)
        costs[count] = read_bytes
        monkeypatch.undo()
        assert again.recovery.replayed == 0
        again.close()
    log_bytes = sum(path.stat().st_size for path in segments(tmp_path / "log-20000"))
    assert costs[20_000] < 32 * 1024 < log_bytes
    assert costs[20_000] < 4 * costs[1_000]


def test_damage_below_the_frontier_is_found_by_read_not_by_open(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """Open does not read old records: a damaged early record opens fine and fails on read."""
    store = open_store(tmp_path / "log")
    fill(store, 300)
    store.close()
    path, position = record_at(tmp_path / "log", 5)
    flip_byte(path, position + 8 + 3)
    again = open_store(tmp_path / "log")
    assert again.recovery.replayed == 0
    assert again.read(4) == entry_for(4)
    with pytest.raises(StoreError, match=r"entry 5 at byte \d+ fails its CRC-32 check"):
        again.read(5)
    with pytest.raises(StoreError, match=r"entry 5 .* fails its CRC-32"):
        again.read_range(0, 10)
    with pytest.raises(StoreError, match=r"entry 5 .* fails its CRC-32"):
        again.verify()


# -- torn tails ----------------------------------------------------------------------------


def _torn_mid_header(record: bytes) -> bytes:
    return record[:5]


def _torn_mid_payload(record: bytes) -> bytes:
    return record[: 8 + (len(record) - 8) // 2]


def _torn_bad_crc(record: bytes) -> bytes:
    return record[:-1] + bytes([record[-1] ^ 1])


def _torn_zeros(record: bytes) -> bytes:
    return bytes(len(record) * 3)


@pytest.mark.parametrize("tear", [_torn_mid_header, _torn_mid_payload, _torn_bad_crc, _torn_zeros])
def test_a_torn_last_record_is_cut_on_open(
    tmp_path: Path, open_store: OpenStore, tear: Callable[[bytes], bytes]
) -> None:
    """A partly written last record (short header, short payload, bad CRC, zeros) is cut."""
    store = open_store(tmp_path / "log")
    fill(store, 123)
    image = crash_image(store, tmp_path / "image")
    last = segments(image)[-1]
    torn = tear(_record(123, entry_for(123)))
    with last.open("ab") as file:
        file.write(torn)
    with (image / "offsets.idx").open("ab") as file:
        file.write(struct.pack(">QQ", int(last.stem), last.stat().st_size - len(torn)))
    with (image / "level-0.hashes").open("ab") as file:
        file.write(leaf_hash(entry_for(123)) + b"\x01\x02")
    again = open_store(image)
    assert again.recovery.cut_bytes == len(torn)
    assert_holds_entries(again, 123)
    fill(again, 30)
    again.close()
    assert_holds_entries(open_store(image), 153)


def test_a_bad_record_followed_by_good_ones_is_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """A bad CRC in the middle of the replayed tail is damage: StoreError names the entry."""
    store = open_store(tmp_path / "log", segment_bytes=1 << 20)
    fill(store, 40)
    image = crash_image(store, tmp_path / "image")
    path, position = record_at(image, 31)
    flip_byte(path, position + 8)
    with pytest.raises(StoreError, match=r"\.seg: entry 31 at byte \d+ fails its CRC-32"):
        open_store(image)


def test_an_impossible_record_length_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """A record claiming more than 65,535 bytes in the replayed tail is damage, not a tear."""
    store = open_store(tmp_path / "log", segment_bytes=1 << 20)
    fill(store, 40)
    image = crash_image(store, tmp_path / "image")
    path, position = record_at(image, 39)
    data = bytearray(path.read_bytes())
    data[position : position + 4] = (70_000).to_bytes(4, "big")
    path.write_bytes(bytes(data) + bytes(70_000))
    with pytest.raises(StoreError, match=r"entry 39 .* claims 70,000 bytes"):
        open_store(image)


def test_an_empty_segment_left_by_a_crash_is_taken_up(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """A crash just after a new segment was created leaves it empty; appends continue in it."""
    store = open_store(tmp_path / "log")
    fill(store, 50)
    image = crash_image(store, tmp_path / "image")
    header = b"HLsg\x00\x01\x00\x00" + (50).to_bytes(8, "big")
    (image / f"{50:020d}.seg").write_bytes(header)
    again = open_store(image)
    fill(again, 5)
    assert again.read(50) == entry_for(50)
    assert (image / f"{50:020d}.seg").stat().st_size > 16
    assert_holds_entries(again, 55)


def test_leftover_temporary_files_are_removed(tmp_path: Path, open_store: OpenStore) -> None:
    """A *.tmp left by a crash during a file replacement is deleted on open."""
    store = open_store(tmp_path / "log")
    fill(store, 5)
    store.close()
    (tmp_path / "log" / "frontier.bin.tmp").write_bytes(b"half")
    open_store(tmp_path / "log")
    assert not (tmp_path / "log" / "frontier.bin.tmp").exists()


# -- damage ----------------------------------------------------------------------------------


def test_a_missing_middle_segment_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """Removing a segment other than the last raises StoreError naming that segment."""
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 100)
    store.close()
    victim = segments(tmp_path / "log")[2]
    victim.unlink()
    with pytest.raises(
        StoreError, match=rf"{victim.name}: the segment holding entry \d+ is missing"
    ):
        open_store(tmp_path / "log", segment_bytes=1024)


def test_a_missing_last_segment_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """Removing the last segment raises StoreError: the frontier says it holds entries."""
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 100)
    store.close()
    victim = segments(tmp_path / "log")[-1]
    victim.unlink()
    with pytest.raises(StoreError, match=f"{victim.name}: the segment is missing"):
        open_store(tmp_path / "log", segment_bytes=1024)


def _stale_frontier_image(tmp_path: Path, open_store: OpenStore) -> Path:
    """A crash image of 100 entries in many segments whose frontier.bin says 10."""
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 10)
    store.close()
    stale = (tmp_path / "log" / "frontier.bin").read_bytes()
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 90)
    image = crash_image(store, tmp_path / "image")
    (image / "frontier.bin").write_bytes(stale)
    return image


def test_the_replay_crosses_segments(tmp_path: Path, open_store: OpenStore) -> None:
    """Entries after the persisted frontier are replayed from every later segment."""
    image = _stale_frontier_image(tmp_path, open_store)
    again = open_store(image, segment_bytes=1024)
    assert again.recovery.replayed == 90
    assert_holds_entries(again, 100)


def test_a_missing_segment_in_the_replayed_tail_is_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """A gap between segments written after the persisted frontier raises StoreError."""
    image = _stale_frontier_image(tmp_path, open_store)
    segments(image)[-2].unlink()
    with pytest.raises(StoreError, match=r"segments before it end at entry .* missing"):
        open_store(image, segment_bytes=1024)


def test_a_segment_cut_below_the_frontier_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """Entries the frontier says were durable but the last segment lacks raise StoreError."""
    store = open_store(tmp_path / "log")
    fill(store, 30)
    store.close()
    cut_file(segments(tmp_path / "log")[-1], 10)
    with pytest.raises(StoreError, match="durable entries are missing"):
        open_store(tmp_path / "log")


def test_a_finished_segment_cut_short_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """A segment before the last that lost its tail raises StoreError naming it."""
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 100)
    store.close()
    victim = segments(tmp_path / "log")[1]
    cut_file(victim, 3)
    with pytest.raises(StoreError, match=f"{victim.name}: .* durable entries were cut off"):
        open_store(tmp_path / "log", segment_bytes=1024)


@pytest.mark.parametrize(
    ("name", "what"), [("offsets.idx", "offsets"), ("level-0.hashes", "hashes")]
)
def test_a_derived_file_cut_below_the_frontier_is_refused(
    tmp_path: Path, open_store: OpenStore, name: str, what: str
) -> None:
    """An offsets or hash file holding fewer items than the frontier vouches for is refused."""
    store = open_store(tmp_path / "log")
    fill(store, 30)
    store.close()
    cut_file(tmp_path / "log" / name, 32)
    with pytest.raises(StoreError, match=f"{name}: the file holds \\d+ {what}, .* truncated"):
        open_store(tmp_path / "log")


@pytest.mark.parametrize("name", ["offsets.idx", "level-0.hashes", "level-1.hashes"])
def test_a_missing_derived_file_is_refused(
    tmp_path: Path, open_store: OpenStore, name: str
) -> None:
    """Without the offsets index or a needed hash level the store does not open."""
    store = open_store(tmp_path / "log")
    fill(store, 300, batch=50)
    store.close()
    (tmp_path / "log" / name).unlink()
    with pytest.raises(StoreError, match=f"{name}: the file is missing"):
        open_store(tmp_path / "log")


def test_a_leaf_hash_disagreeing_with_the_last_record_is_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """A stored leaf hash of the last durable entry that is not its record's hash is refused."""
    store = open_store(tmp_path / "log")
    fill(store, 30)
    store.close()
    flip_byte(tmp_path / "log" / "level-0.hashes", 16 + 29 * 32)
    with pytest.raises(StoreError, match="leaf hash of entry 29 disagrees with its record"):
        open_store(tmp_path / "log")


def test_a_level_hash_disagreeing_with_the_frontier_is_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """An altered level-1 hash that the frontier covers is refused on open."""
    store = open_store(tmp_path / "log")
    fill(store, 300, batch=50)
    store.close()
    flip_byte(tmp_path / "log" / "level-1.hashes", 16)
    with pytest.raises(StoreError, match=r"level-1.hashes: the stored hashes of leaves \[0, 256\)"):
        open_store(tmp_path / "log")


def test_an_early_leaf_hash_altered_is_found_by_verify(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """verify() re-reads everything and names an altered leaf hash open did not look at."""
    store = open_store(tmp_path / "log")
    fill(store, 300, batch=50)
    store.close()
    flip_byte(tmp_path / "log" / "level-0.hashes", 16 + 3 * 32)
    again = open_store(tmp_path / "log")
    with pytest.raises(StoreError, match="leaf hash of entry 3 disagrees with its record"):
        again.verify()


def test_a_damaged_frontier_file_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """frontier.bin failing its CRC raises StoreError naming it."""
    store = open_store(tmp_path / "log")
    fill(store, 30)
    store.close()
    flip_byte(tmp_path / "log" / "frontier.bin", 12)
    with pytest.raises(StoreError, match=r"frontier.bin: the file fails its CRC-32 check"):
        open_store(tmp_path / "log")


def test_a_missing_frontier_file_is_refused_when_entries_exist(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """Without frontier.bin, a directory whose segments hold entries is not started afresh."""
    store = open_store(tmp_path / "log")
    fill(store, 30)
    store.close()
    (tmp_path / "log" / "frontier.bin").unlink()
    with pytest.raises(StoreError, match=r"frontier.bin: the file is missing, yet"):
        open_store(tmp_path / "log")


def test_a_renamed_segment_is_refused(tmp_path: Path, open_store: OpenStore) -> None:
    """A segment whose header names another first index than its file name is refused."""
    store = open_store(tmp_path / "log", segment_bytes=1024)
    fill(store, 100)
    store.close()
    last = segments(tmp_path / "log")[-1]
    last.rename(last.with_name(f"{int(last.stem) + 1:020d}.seg"))
    with pytest.raises(StoreError, match="segment"):
        open_store(tmp_path / "log", segment_bytes=1024)


# -- use -----------------------------------------------------------------------------------------


def test_a_directory_opens_in_one_store_at_a_time(tmp_path: Path, open_store: OpenStore) -> None:
    """A second FileStore on an open directory raises UsageError; after close it opens."""
    store = open_store(tmp_path / "log")
    with pytest.raises(UsageError, match="already open"):
        FileStore(tmp_path / "log")
    store.close()
    open_store(tmp_path / "log")


def test_reopening_with_another_tile_height_is_refused(
    tmp_path: Path, open_store: OpenStore
) -> None:
    """The tile height is part of the stored hashes; another one raises UsageError."""
    open_store(tmp_path / "log").close()
    with pytest.raises(UsageError, match="tile height 8, not 2"):
        FileStore(tmp_path / "log", tile_height=2)


def test_a_batch_is_one_write_per_file_and_one_fsync(
    tmp_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """append_batch of 100 entries: one pwrite each to segment, offsets, level 0; one fsync."""
    store = open_store(tmp_path / "log")
    fill(store, 3)
    calls: list[str] = []
    real_fsync, real_pwrite = os.fsync, os.pwrite

    def fsync(fd: int) -> None:
        calls.append(f"fsync {fd}")
        real_fsync(fd)

    def pwrite(fd: int, data: Any, position: int) -> int:
        calls.append(f"pwrite {fd}")
        return real_pwrite(fd, data, position)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "pwrite", pwrite)
    store.append_batch([entry_for(i) for i in range(3, 103)])
    monkeypatch.undo()
    assert len([call for call in calls if call.startswith("fsync")]) == 1
    assert len([call for call in calls if call.startswith("pwrite")]) == 3
    assert len(set(calls)) == 4


def test_a_failed_write_stops_further_writes_until_reopened(
    tmp_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When fsync fails the batch raises StoreError and later appends are refused; reads go on."""
    store = open_store(tmp_path / "log")
    fill(store, 10)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match="writing entries 10 to 11 failed: Input/output error"):
        store.append_batch([b"a", b"b"])
    monkeypatch.undo()
    with pytest.raises(StoreError, match="refuses writes since an earlier one failed"):
        store.append_batch([b"c"])
    assert store.size == 10
    assert store.read(9) == entry_for(9)
    store.close()
    again = open_store(tmp_path / "log")
    assert again.size in (10, 12)
    assert again.read_range(0, 10) == [entry_for(i) for i in range(10)]


def test_a_store_recovered_after_a_failed_fsync_holds_none_of_the_failed_batch(
    tmp_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recover() cuts the records a failed write left on disk (never acknowledged), takes
    writes again at the next index, and a reopened store holds exactly what was acknowledged."""
    store = open_store(tmp_path / "log")
    fill(store, 10)
    segment = max((tmp_path / "log").glob("*.seg"))
    length = segment.stat().st_size

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match="writing entries 10 to 11 failed"):
        store.append_batch([b"lost a", b"lost b"])
    assert segment.stat().st_size > length  # the records were written, only not synced
    with pytest.raises(StoreError, match=r"recovering from the failed write .* failed"):
        store.recover()  # the disk still refuses: so does the store
    with pytest.raises(StoreError, match="refuses writes since an earlier one failed"):
        store.append_batch([b"c"])
    monkeypatch.undo()
    store.recover()
    assert segment.stat().st_size == length
    assert store.append_batch([entry_for(10)]) == 10
    store.close()
    again = open_store(tmp_path / "log")
    assert again.recovery.cut_bytes == 0
    assert again.read_range(0, again.size) == [entry_for(i) for i in range(11)]


def test_a_failed_frontier_persist_keeps_its_durable_entries_through_recovery(
    tmp_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that failed after its entries were durable and counted (persisting the frontier)
    keeps them: recover() persists the frontier again and appends go on after them."""
    store = open_store(tmp_path / "log", persist_entries=2)
    fill(store, 4, batch=2)
    real_fsync = os.fsync
    segment_fds: set[int] = set()

    def fsync(fd: int) -> None:
        if Path(f"/proc/self/fd/{fd}").readlink().suffix == ".seg":
            segment_fds.add(fd)
            real_fsync(fd)
            return
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError, match="are durable, but persisting the frontier failed"):
        store.append_batch([entry_for(4), entry_for(5)])
    monkeypatch.undo()
    assert segment_fds
    assert store.size == 6
    store.recover()
    assert store.append_batch([entry_for(6)]) == 6
    store.close()
    again = open_store(tmp_path / "log")
    assert again.read_range(0, again.size) == [entry_for(i) for i in range(7)]
