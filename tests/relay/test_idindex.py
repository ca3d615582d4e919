"""The relay's on-disk id index: lookups answer the same from memory, the previous flush,
or SQLite, and across a reopen and a cut."""

from __future__ import annotations

from pathlib import Path

from hotline.relay.idindex import ID_INDEX_FILE, IdIndex
from tests.factories import make_network

NET = make_network()


def _id(n: int) -> bytes:
    return n.to_bytes(2, "big") * 8


def _open(tmp_path: Path) -> IdIndex:
    def unread(index: int) -> bytes:
        raise AssertionError(f"entry {index} should not be read")

    return IdIndex(tmp_path / ID_INDEX_FILE, NET.network, unread)


def _log(index: IdIndex, n: int, origin: str) -> None:
    index.add(_id(n), n)
    index.maps.origins[_id(n)] = origin


def test_an_origin_is_found_in_memory_after_one_flush_and_on_disk_after_two(
    tmp_path: Path,
) -> None:
    """Whether its row is unflushed, in the flush before, or only on disk, an id's origin reads
    the same; ids never logged (below and above the greatest on disk) read as absent."""
    index = _open(tmp_path)
    _log(index, 10, "BY")
    assert index.maps.origins.get(_id(10)) == "BY"
    index.flush(11)
    assert index.maps.origins.get(_id(10)) == "BY"
    _log(index, 20, "LT")
    index.flush(21)
    _log(index, 30, "LV")
    index.flush(31)
    assert [index.maps.origins.get(_id(n)) for n in (10, 20, 30)] == ["BY", "LT", "LV"]
    assert index.maps.origins.get(_id(15)) is None
    assert index.maps.origins.get(_id(40)) is None
    index.close()


def test_after_a_reopen_old_ids_are_found_and_new_ones_are_not(tmp_path: Path) -> None:
    """A reopened index finds what earlier runs flushed; an id greater than all of them,
    as a new message's is, reads as absent."""
    index = _open(tmp_path)
    for n in (5, 7, 9):
        _log(index, n, "BY")
    index.flush(10)
    index.close()
    reopened = _open(tmp_path)
    assert reopened.size == 10
    assert [reopened.maps.origins.get(_id(n)) for n in (5, 7, 9)] == ["BY"] * 3
    assert reopened.maps.origins.get(_id(6)) is None
    assert reopened.maps.origins.get(_id(11)) is None
    _log(reopened, 11, "EE")
    assert reopened.maps.origins.get(_id(11)) == "EE"
    reopened.close()


def test_a_cut_forgets_rows_from_the_cut_on_wherever_they_were_kept(tmp_path: Path) -> None:
    """cut(size) drops rows at or past size from disk, from the flush before and from memory;
    ids logged again afterwards are found with their new rows."""
    index = _open(tmp_path)
    for n in (1, 2):
        _log(index, n, "BY")
    index.flush(3)
    for n in (3, 4):
        _log(index, n, "LT")
    index.flush(5)
    _log(index, 5, "LV")
    index.cut(2)
    assert [index.maps.origins.get(_id(n)) for n in (1, 2, 3, 4, 5)] == [
        "BY", None, None, None, None,
    ]
    _log(index, 4, "PL")
    index.flush(5)
    assert index.maps.origins.get(_id(4)) == "PL"
    index.close()
    reopened = _open(tmp_path)
    assert [reopened.maps.origins.get(_id(n)) for n in (1, 2, 3, 4)] == ["BY", None, None, "PL"]
    reopened.close()
