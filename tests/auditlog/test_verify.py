"""``audit verify`` on exported bundles: sound ones pass, each tampering is named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest

from hotline.auditlog.bundle import Bundle
from hotline.auditlog.checkpoint import Checkpoint, sign_checkpoint
from hotline.auditlog.cosignature import add_cosignature, cosign
from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.merkle import leaf_hash
from hotline.auditlog.tiles import decode_entry_bundle, encode_entry_bundle
from hotline.auditlog.verify import verify_bundle
from hotline.errors import VerificationFailed
from hotline.protocol.envelope import seal_bytes
from tests.auditlog.logs import entries_for, export, write_log
from tests.factories import make_network

NET = make_network()
SIZE = 600  # two full entry bundles and a partial one
ENTRIES = entries_for(NET, SIZE)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("log")
    write_log(root / "log", NET, ENTRIES)
    export(root / "log", NET, root / "bundle")
    return root / "bundle"


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(pristine, copy)
    return copy


def _verify(path: Path, **kwargs: object) -> None:
    verify_bundle(Bundle(path, NET.network), **kwargs)  # type: ignore[arg-type]


def _edit_bundle(path: Path, name: str, change: Callable[[list[bytes]], list[bytes]]) -> None:
    file = path / "tile" / "entries" / name
    file.write_bytes(encode_entry_bundle(change(decode_entry_bundle(file.read_bytes()))))


def _failure(path: Path) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as caught:
        _verify(path)
    return caught.value


def test_a_sound_bundle_verifies(pristine: Path) -> None:
    """Every entry, signature, receipt hash, tile and the signed root check out."""
    report = verify_bundle(Bundle(pristine, NET.network))
    assert report.size == SIZE
    assert report.envelopes + report.events == SIZE
    assert report.events == len([i for i in range(SIZE) if i % 50 == 7])


def test_the_bundle_layout_follows_tlog_tiles(pristine: Path) -> None:
    """600 entries: entry bundles 000, 001, 002.p/88; tiles 0/000, 0/001, 0/002.p/88, 1/000.p/2."""
    files = sorted(str(p.relative_to(pristine)) for p in pristine.rglob("*") if p.is_file())
    assert files == [
        "checkpoint", "network.toml",
        "tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2",
        "tile/entries/000", "tile/entries/001", "tile/entries/002.p/88",
    ]


def test_a_flipped_byte_in_the_second_bundle_is_named(bundle: Path) -> None:
    """A byte flipped inside entry 300 is reported at index 300 (bundle 256 to 511)."""
    def flip(entries: list[bytes]) -> list[bytes]:
        damaged = bytearray(entries[44])
        damaged[len(damaged) // 2] ^= 0x01
        entries[44] = bytes(damaged)
        return entries

    _edit_bundle(bundle, "001", flip)
    failure = _failure(bundle)
    assert failure.index == 300
    assert "leaf hash" in str(failure)


def test_a_raw_flipped_byte_anywhere_in_the_second_bundle_is_in_its_range(bundle: Path) -> None:
    """Flipping a raw byte of tile/entries/001 (length prefixes included) names 256..511."""
    file = bundle / "tile" / "entries" / "001"
    original = file.read_bytes()
    for position in (0, 1, 2, len(original) // 3, len(original) - 1):
        damaged = bytearray(original)
        damaged[position] ^= 0x40
        file.write_bytes(bytes(damaged))
        assert 256 <= _failure(bundle).index <= 511
    file.write_bytes(original)
    _verify(bundle)


def test_a_deleted_entry_is_named(bundle: Path) -> None:
    """Removing entry 10 shows at index 10, where the next entry does not fit the tile."""
    _edit_bundle(bundle, "000", lambda e: e[:10] + e[11:])
    assert _failure(bundle).index == 10


def test_swapped_entries_are_named(bundle: Path) -> None:
    """Swapping entries 20 and 21 is caught at 20."""
    def swap(entries: list[bytes]) -> list[bytes]:
        entries[20], entries[21] = entries[21], entries[20]
        return entries

    _edit_bundle(bundle, "000", swap)
    assert _failure(bundle).index == 20


def test_an_appended_forged_entry_is_named(bundle: Path) -> None:
    """An entry added after the signed size is named at that size."""
    forged = encode_envelope_entry(0, b"\x93\x01\xc4\x00\xc4\x00")
    _edit_bundle(bundle, "002.p/88", lambda e: [*e, forged])
    failure = _failure(bundle)
    assert failure.index == SIZE
    assert "beyond the checkpoint" in str(failure)


def test_a_truncated_bundle_is_named(bundle: Path) -> None:
    """Cutting the last bundle short names the first entry that is missing or cut."""
    file = bundle / "tile" / "entries" / "002.p/88"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 5])
    assert _failure(bundle).index == SIZE - 1
    (bundle / "tile" / "entries" / "002.p/88").unlink()
    assert _failure(bundle).index == 512


def test_a_forged_entry_with_matching_tiles_fails_its_signature(bundle: Path) -> None:
    """Rewriting an envelope and its tile hash still fails: the signature is BY's."""
    original = ENTRIES[3]
    kind, ts, frame = msgpack.unpackb(original)
    version, body, signature = msgpack.unpackb(frame)
    forged_body = body[:-1] + bytes([body[-1] ^ 0x01])
    forged = msgpack.packb([kind, ts, msgpack.packb([version, forged_body, signature])])
    _edit_bundle(bundle, "000", lambda e: [forged if x == original else x for x in e])
    tile = bundle / "tile" / "0" / "000"
    hashes = bytearray(tile.read_bytes())
    hashes[3 * 32 : 4 * 32] = leaf_hash(forged)
    tile.write_bytes(bytes(hashes))
    failure = _failure(bundle)
    assert failure.index == 3
    assert "signature" in str(failure)


def test_an_entry_signed_by_a_stranger_is_named(bundle: Path) -> None:
    """An envelope whose signature is not its sender's is named by index."""
    original = ENTRIES[1]
    kind, ts, frame = msgpack.unpackb(original)
    _, body, _ = msgpack.unpackb(frame)
    forged = msgpack.packb([kind, ts, seal_bytes(body, NET.keys["LV"])])
    _edit_bundle(bundle, "000", lambda e: [forged if x == original else x for x in e])
    tile = bundle / "tile" / "0" / "000"
    hashes = bytearray(tile.read_bytes())
    hashes[32:64] = leaf_hash(forged)
    tile.write_bytes(bytes(hashes))
    failure = _failure(bundle)
    assert failure.index == 1
    assert "signature" in str(failure)


def test_a_checkpoint_not_signed_by_the_relay_is_refused(bundle: Path) -> None:
    """A checkpoint signed by anyone but the relay does not verify."""
    note = Bundle(bundle, NET.network).checkpoint()
    (bundle / "checkpoint").write_bytes(sign_checkpoint(note, note.origin, NET.keys["BY"]))
    failure = _failure(bundle)
    assert failure.index == -1
    assert "checkpoint" in str(failure)


def test_an_earlier_checkpoint_must_agree_with_the_log(bundle: Path) -> None:
    """An extra checkpoint for a smaller size passes only if it signs that prefix's root."""
    b = Bundle(bundle, NET.network)
    origin = NET.network.relay.origin
    good = Checkpoint(origin, 300, b.subtree_hash(0, 300))
    _verify(bundle, extra_checkpoints=[sign_checkpoint(good, origin, NET.keys["relay"])])
    fork = Checkpoint(origin, 300, b.subtree_hash(0, 299))
    with pytest.raises(VerificationFailed, match="checkpoint #1 signs root"):
        _verify(bundle, extra_checkpoints=[sign_checkpoint(fork, origin, NET.keys["relay"])])


def test_endpoint_cosignatures_are_counted_and_checked(bundle: Path) -> None:
    """Cosignatures by endpoints verify; a cosignature made over another tree fails."""
    path = bundle / "checkpoint"
    text = Bundle(bundle, NET.network).checkpoint().text()
    cosigned = add_cosignature(path.read_bytes(), cosign(text, "LT", NET.keys["LT"], 1_764_000_000))
    path.write_bytes(cosigned)
    assert verify_bundle(Bundle(bundle, NET.network)).cosignatures == 1
    other = text.replace("\n600\n", "\n599\n")
    path.write_bytes(add_cosignature(cosigned, cosign(other, "LV", NET.keys["LV"], 1)))
    with pytest.raises(VerificationFailed, match="LV's cosignature"):
        _verify(bundle)


def test_worker_processes_give_the_same_verdicts(bundle: Path) -> None:
    """The parallel path (worker processes) passes a sound bundle and names the same entry."""
    assert verify_bundle(Bundle(bundle, NET.network), workers=2, parallel_from=1).size == SIZE
    _edit_bundle(bundle, "001", lambda e: e[:5] + e[6:])
    with pytest.raises(VerificationFailed) as caught:
        verify_bundle(Bundle(bundle, NET.network), workers=2, parallel_from=1)
    assert caught.value.index == 256 + 5
