"""The relay's on-disk id index: lookups answer the same from memory, the previous flush,
or SQLite, and across a reopen and a cut."""

from __future__ import annotations

from pathlib import Path

from hotline.protocol.ids import make_id
from hotline.relay.idindex import ID_INDEX_FILE, MAX_AHEAD_IDS, IdIndex
from tests.factories import make_network

NET = make_network()


def _id(n: int) -> bytes:
    return n.to_bytes(2, "big") * 8


NOW = 1_764_000_000_000


def _open(tmp_path: Path, now: int = NOW) -> IdIndex:
    def unread(index: int) -> bytes:
        raise AssertionError(f"entry {index} should not be read")

    return IdIndex(tmp_path / ID_INDEX_FILE, NET.network, unread, lambda: now)


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


def _new(ms: int, n: int = 0) -> bytes:
    return make_id(ms, n.to_bytes(10, "big"))


def test_new_ids_need_no_query_even_after_an_id_far_in_the_future(tmp_path: Path) -> None:
    """An id whose time is far ahead of the clock (a sender may choose it) is found like
    any other, before and after a reopen, and ids made now still need no query."""
    index = _open(tmp_path)
    far = _new((1 << 48) - 1)
    index.add(_new(NOW), 0)
    index.maps.origins[_new(NOW)] = "BY"
    index.add(far, 1)
    index.maps.origins[far] = "LT"
    index.flush(2)
    index.flush(2)  # out of the previous flush's rows too: only on disk now
    assert index.maps.origins.get(far) == "LT"
    before = index.disk_lookups
    for n in range(100):
        assert index.maps.origins.get(_new(NOW + 1_000, n)) is None
    assert index.disk_lookups == before
    index.close()
    reopened = _open(tmp_path, now=NOW + 5_000)
    assert reopened.maps.origins.get(far) == "LT"
    assert reopened.maps.origins.get(_new(NOW)) == "BY"
    before = reopened.disk_lookups
    assert reopened.maps.origins.get(_new(NOW + 6_000)) is None
    assert reopened.disk_lookups == before
    reopened.close()


def test_too_many_ids_ahead_of_the_clock_fall_back_to_queries(tmp_path: Path) -> None:
    """Past MAX_AHEAD_IDS ids ahead of the clock the index keeps none of them in memory,
    and every one of them is still found (on disk), before and after a reopen."""
    index = _open(tmp_path)
    ahead = [_new(NOW + 3_600_000, n) for n in range(0, 2 * MAX_AHEAD_IDS + 2, 2)]
    for position, message_id in enumerate(ahead):
        index.add(message_id, position)
        index.maps.origins[message_id] = "PL"
    index.flush(len(ahead))
    index.flush(len(ahead))  # only on disk now
    sample = [*ahead[:: MAX_AHEAD_IDS // 10], ahead[-1]]
    assert {index.maps.origins.get(m) for m in sample} == {"PL"}
    assert index.maps.origins.get(_new(NOW + 3_600_000, 1)) is None  # between two of them
    index.close()
    reopened = _open(tmp_path)
    assert {reopened.maps.origins.get(m) for m in sample} == {"PL"}
    reopened.close()
