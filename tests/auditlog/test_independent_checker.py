"""hotline's exported audit log passes a checker written from RFC 9162 and C2SP alone.

The log is real: ``hotline init``, then ``bench/auditlog.py`` writes 3,000 signed envelopes
through the relay's store and signs a checkpoint, then ``hotline audit export`` writes the
tlog-tiles bundle and ``hotline audit prove`` prints proofs. Everything is then checked with
:mod:`tests.independent_tlog`, which imports nothing from ``hotline``. Where hotline and the
spec disagree, these tests assert the spec.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.independent_tlog import (
    EMPTY_ROOT,
    TILE_WIDTH,
    Checkpoint,
    NetworkKeys,
    SpecViolation,
    consistency_path,
    decode_entry,
    ed25519_key_id,
    encode_tile_index,
    expected_tile_paths,
    inclusion_path,
    leaf_hash,
    load_network_keys,
    mth,
    open_checkpoint,
    parse_checkpoint_text,
    parse_note,
    read_entries,
    read_hash_tile,
    tile_path,
    verify_consistency,
    verify_envelope,
    verify_inclusion,
    verify_leaf_hashes,
)

REPO: Final = Path(__file__).resolve().parents[2]
RECORDS: Final = 3000

INCLUSION_CASES: Final = sorted(
    {(i, size) for size in (3000, 1000, 2048, 2999) for i in (0, 1, 255, 256, 511, 2999)
     if i < size}
    | {(size - 1, size) for size in (1000, 2048, 2999)}
)
CONSISTENCY_CASES: Final = [(1, 3000), (256, 3000), (1000, 2999), (2048, 3000)]

# The eight test leaves of RFC 6962's reference tests and the root they give.
RFC6962_LEAVES: Final = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
RFC6962_ROOT: Final = bytes.fromhex(
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
)


@dataclass(frozen=True, slots=True)
class Produced:
    """What hotline made: the network file and the exported bundle."""

    network: Path
    bundle: Path


@dataclass(frozen=True, slots=True)
class InclusionOutput:
    """`hotline audit prove --index I --size N`, decoded."""

    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class ConsistencyOutput:
    """`hotline audit prove --consistency M N`, decoded."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


def _run(*args: str | Path) -> str:
    done = subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
        check=False,
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
    return done.stdout


def _int(value: object) -> int:
    assert type(value) is int, f"{value!r} is not an int"
    return value


def _hash(value: object) -> bytes:
    assert isinstance(value, str), f"{value!r} is not a string"
    digest = base64.b64decode(value, validate=True)
    assert len(digest) == 32, f"{value!r} is not a base64 32-byte hash"
    return digest


def _hashes(value: object) -> list[bytes]:
    assert isinstance(value, list), f"{value!r} is not a list"
    return [_hash(item) for item in value]


def _json_object(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict), f"{text!r} is not a JSON object"
    return value


def _prove_inclusion(bundle: Path, index: int, size: int) -> InclusionOutput:
    out = _json_object(_run("-m", "hotline", "audit", "prove", bundle,
                            "--index", str(index), "--size", str(size)))
    return InclusionOutput(_int(out["index"]), _int(out["size"]), _hash(out["leaf_hash"]),
                           _hash(out["root"]), _hashes(out["proof"]))


def _prove_consistency(bundle: Path, old: int, new: int) -> ConsistencyOutput:
    out = _json_object(_run("-m", "hotline", "audit", "prove", bundle,
                            "--consistency", str(old), str(new)))
    return ConsistencyOutput(_int(out["old_size"]), _int(out["new_size"]),
                             _hash(out["old_root"]), _hash(out["new_root"]),
                             _hashes(out["proof"]))


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Produced:
    """A 3,000-entry log written by the bench and exported by `hotline audit export`."""
    work = tmp_path_factory.mktemp("tlog")
    net, log, bundle = work / "NET", work / "LOG", work / "BUNDLE"
    _run("-m", "hotline", "init", net)
    _run("bench/auditlog.py", "--network", net, "--dir", log, "--records", str(RECORDS),
         "--open-sizes", "")
    _run("-m", "hotline", "audit", "export", log, "--out", bundle, "--network", net)
    return Produced(net / "network.toml", bundle)


@pytest.fixture(scope="module")
def keys(produced: Produced) -> NetworkKeys:
    """The keys network.toml names."""
    return load_network_keys(produced.network)


@pytest.fixture(scope="module")
def checkpoint(produced: Produced, keys: NetworkKeys) -> Checkpoint:
    """The bundle's checkpoint, verified under the relay's key."""
    return open_checkpoint((produced.bundle / "checkpoint").read_bytes(), keys.origin,
                           keys.relay_key)


@pytest.fixture(scope="module")
def leaves(produced: Produced, checkpoint: Checkpoint) -> list[bytes]:
    """The leaf hashes of every entry, checked against the level-0 tiles."""
    return verify_leaf_hashes(produced.bundle, checkpoint.size)


@pytest.fixture(scope="module")
def inclusion_outputs(produced: Produced) -> dict[tuple[int, int], InclusionOutput]:
    """Every inclusion proof the tests ask for, printed by `hotline audit prove`."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        outputs = pool.map(lambda case: _prove_inclusion(produced.bundle, *case),
                           INCLUSION_CASES)
        return dict(zip(INCLUSION_CASES, outputs, strict=True))


@pytest.fixture(scope="module")
def consistency_outputs(produced: Produced) -> dict[tuple[int, int], ConsistencyOutput]:
    """Every consistency proof the tests ask for, printed by `hotline audit prove`."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        outputs = pool.map(lambda case: _prove_consistency(produced.bundle, *case),
                           CONSISTENCY_CASES)
        return dict(zip(CONSISTENCY_CASES, outputs, strict=True))


@pytest.fixture
def bundle_copy(produced: Produced, tmp_path: Path) -> Iterator[Path]:
    """A copy of the bundle that a test may damage."""
    copy = tmp_path / "bundle"
    shutil.copytree(produced.bundle, copy)
    yield copy
    shutil.rmtree(copy)


# ----------------------------------------------------------------------------- the checker itself


def test_checker_mth_gives_the_rfc6962_known_answer() -> None:
    """The independent MTH gives the empty-tree hash and the RFC 6962 eight-leaf root."""
    assert mth([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert mth([leaf_hash(e) for e in RFC6962_LEAVES]) == RFC6962_ROOT


def test_checker_verifiers_accept_its_proofs_and_refuse_misplaced_ones() -> None:
    """The independent verifiers accept PATH and PROOF of small trees, not at another place.

    An inclusion proof is refused for another index. A consistency proof from 2 to 4 also
    leads to the right hashes when claimed as from 2 to 8: only the final "size counter is
    zero" check refuses it.
    """
    tree = [leaf_hash(bytes([i])) for i in range(40)]
    for n in range(1, len(tree) + 1):
        root = mth(tree[:n])
        for m in range(n):
            proof = inclusion_path(m, tree[:n])
            verify_inclusion(tree[m], m, n, proof, root)
            for other in range(n):
                if other != m:
                    with pytest.raises(SpecViolation):
                        verify_inclusion(tree[m], other, n, proof, root)
        for m in range(1, n):
            proof = consistency_path(m, tree[:n])
            verify_consistency(m, n, mth(tree[:m]), root, proof)
    proof = consistency_path(2, tree[:4])
    with pytest.raises(SpecViolation, match="size counter ends at 1, expected 0"):
        verify_consistency(2, 8, mth(tree[:2]), mth(tree[:4]), proof)


def test_checker_tile_layout_follows_the_spec_examples() -> None:
    """Tile indexes are 3-digit groups and 70,000 entries give the spec's example tiles."""
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert encode_tile_index(5) == "005"
    assert tile_path("0", 1000, 17) == "tile/0/x001/000.p/17"
    hashes = {p for p in expected_tile_paths(70_000) if "entries" not in p}
    assert {p for p in hashes if p.startswith("tile/0/")} == {
        *(tile_path("0", n) for n in range(273)), "tile/0/273.p/112"
    }
    assert {p for p in hashes if not p.startswith("tile/0/")} == {
        "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"
    }


# ----------------------------------------------------------------------------- the checkpoint


def test_checkpoint_is_a_c2sp_signed_note_by_the_relay(
    produced: Produced, keys: NetworkKeys
) -> None:
    """The checkpoint is "<origin>\\n<size>\\n<root>\\n", a blank line, the relay's signature."""
    data = (produced.bundle / "checkpoint").read_bytes()
    note = parse_note(data)
    body = parse_checkpoint_text(note.text)
    assert body.origin == keys.origin
    assert body.size == RECORDS
    assert data.decode("utf-8").startswith(f"{keys.origin}\n{RECORDS}\n")
    expected_id = ed25519_key_id(keys.origin, keys.relay_key)
    relay_lines = [s for s in note.signatures if s.name == keys.origin]
    assert [s.key_id for s in relay_lines] == [expected_id]
    assert len(relay_lines[0].signature) == 64
    raw = base64.b64encode(expected_id + relay_lines[0].signature).decode()
    assert f"\n\n\u2014 {keys.origin} {raw}\n".encode() in data
    assert open_checkpoint(data, keys.origin, keys.relay_key) == body


# ----------------------------------------------------------------------------- tiles


def test_bundle_holds_exactly_the_tiles_of_the_checkpoint_size(
    produced: Produced, checkpoint: Checkpoint
) -> None:
    """3,000 entries are served as 11 full tiles plus .p/184 at level 0, .p/11 at level 1."""
    tiles = produced.bundle / "tile"
    found = {p.relative_to(produced.bundle).as_posix() for p in tiles.rglob("*") if p.is_file()}
    full = [f"{n:03d}" for n in range(11)]
    assert expected_tile_paths(checkpoint.size) == {
        *(f"tile/0/{n}" for n in full), "tile/0/011.p/184",
        "tile/1/000.p/11",
        *(f"tile/entries/{n}" for n in full), "tile/entries/011.p/184",
    }
    assert found == expected_tile_paths(checkpoint.size)
    assert all((tiles / "0" / n).stat().st_size == 8192 for n in full)
    assert (tiles / "0" / "011.p" / "184").stat().st_size == 32 * 184
    assert (tiles / "1" / "000.p" / "11").stat().st_size == 32 * 11


def test_level0_tiles_hold_the_leaf_hashes_of_the_entry_bundles(
    produced: Produced, checkpoint: Checkpoint
) -> None:
    """Every level-0 hash is SHA-256(0x00 || entry) of the entry bundles' entry."""
    leaves = verify_leaf_hashes(produced.bundle, checkpoint.size)
    assert len(leaves) == checkpoint.size


def test_level1_tiles_hold_the_mth_of_each_level0_tile(
    produced: Produced, checkpoint: Checkpoint, leaves: list[bytes]
) -> None:
    """Level-1 hash i is the RFC 9162 MTH of the 256 hashes of level-0 tile i."""
    width = checkpoint.size // TILE_WIDTH
    assert width == 11
    level1 = read_hash_tile(produced.bundle, 1, 0, width)
    for i, served in enumerate(level1):
        level0 = read_hash_tile(produced.bundle, 0, i, TILE_WIDTH)
        assert served == mth(level0), f"tile/1/000.p/{width} hash {i}"
        assert served == mth(leaves[i * TILE_WIDTH : (i + 1) * TILE_WIDTH])


def test_root_recomputed_from_every_entry_is_the_checkpoint_root(
    produced: Produced, checkpoint: Checkpoint
) -> None:
    """The RFC 9162 MTH of all entries in the entry bundles equals the signed root."""
    entries = read_entries(produced.bundle, checkpoint.size)
    root = mth([leaf_hash(e) for e in entries])
    assert base64.b64encode(root) == base64.b64encode(checkpoint.root)


# ----------------------------------------------------------------------------- proofs


@pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
def test_inclusion_proof_verifies_against_the_recomputed_root(
    inclusion_outputs: dict[tuple[int, int], InclusionOutput], leaves: list[bytes],
    index: int, size: int,
) -> None:
    """`audit prove --index` prints PATH(index, D[size]), and it verifies per §2.1.3.2."""
    out = inclusion_outputs[index, size]
    root = mth(leaves[:size])
    assert (out.index, out.size) == (index, size)
    assert out.leaf_hash == leaves[index]
    assert out.root == root
    verify_inclusion(leaves[index], index, size, out.proof, root)
    assert out.proof == inclusion_path(index, leaves[:size])


@pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
def test_consistency_proof_verifies_between_the_recomputed_roots(
    consistency_outputs: dict[tuple[int, int], ConsistencyOutput], leaves: list[bytes],
    old: int, new: int,
) -> None:
    """`audit prove --consistency` prints PROOF(old, D[new]), and it verifies per §2.1.4.2."""
    out = consistency_outputs[old, new]
    old_root, new_root = mth(leaves[:old]), mth(leaves[:new])
    assert (out.old_size, out.new_size) == (old, new)
    assert (out.old_root, out.new_root) == (old_root, new_root)
    verify_consistency(old, new, old_root, new_root, out.proof)
    assert out.proof == consistency_path(old, leaves[:new])


def test_consistency_proof_to_3000_verifies_against_the_checkpoint_root(
    consistency_outputs: dict[tuple[int, int], ConsistencyOutput], leaves: list[bytes],
    checkpoint: Checkpoint,
) -> None:
    """A proof from 2,048 to the signed size 3,000 ends at the signed root."""
    out = consistency_outputs[2048, checkpoint.size]
    verify_consistency(2048, checkpoint.size, mth(leaves[:2048]), checkpoint.root, out.proof)


# ----------------------------------------------------------------------------- entries


def test_every_entry_is_an_envelope_signed_by_its_sender(
    produced: Produced, checkpoint: Checkpoint, keys: NetworkKeys
) -> None:
    """All 3,000 entries are [kind, relay_ts, payload] envelopes whose signatures verify."""
    senders: dict[str, int] = {}
    for index, entry in enumerate(read_entries(produced.bundle, checkpoint.size)):
        decoded = decode_entry(entry, index)
        assert decoded.kind == "envelope", f"entry {index} is a {decoded.kind!r}"
        assert decoded.relay_ts >= 0
        sender = verify_envelope(decoded.payload, keys, f"entry {index}")
        senders[sender] = senders.get(sender, 0) + 1
    assert sum(senders.values()) == RECORDS
    assert keys.relay_id in senders
    assert len(senders) > 2


# ----------------------------------------------------------------------------- not vacuous


def test_a_flipped_bit_in_an_entry_bundle_fails_the_leaf_hash_check(
    bundle_copy: Path, checkpoint: Checkpoint
) -> None:
    """One flipped bit inside entry 0 of tile/entries/000 breaks the level-0 comparison."""
    path = bundle_copy / "tile" / "entries" / "000"
    data = bytearray(path.read_bytes())
    data[2 + 20] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SpecViolation, match="leaf hash of entry 0 "):
        verify_leaf_hashes(bundle_copy, checkpoint.size)


def test_an_altered_root_line_fails_the_signature_check(
    bundle_copy: Path, keys: NetworkKeys
) -> None:
    """A checkpoint whose root line is changed still parses but its signature fails."""
    path = bundle_copy / "checkpoint"
    origin, size, root, rest = path.read_text("utf-8").split("\n", 3)
    other = bytearray(base64.b64decode(root))
    other[0] ^= 0x80
    altered = "\n".join([origin, size, base64.b64encode(bytes(other)).decode(), rest])
    path.write_text(altered, "utf-8")
    note = parse_note(path.read_bytes())
    assert parse_checkpoint_text(note.text).root == bytes(other)
    with pytest.raises(SpecViolation, match="does not verify"):
        open_checkpoint(path.read_bytes(), keys.origin, keys.relay_key)


def test_a_changed_proof_hash_fails_both_proof_checks(
    inclusion_outputs: dict[tuple[int, int], InclusionOutput],
    consistency_outputs: dict[tuple[int, int], ConsistencyOutput], leaves: list[bytes],
) -> None:
    """Replacing one hash of a printed proof makes the independent verifiers refuse it."""
    inclusion = inclusion_outputs[511, 3000]
    bad = [*inclusion.proof[:-1], leaf_hash(b"not in the log")]
    with pytest.raises(SpecViolation, match="root"):
        verify_inclusion(leaves[511], 511, 3000, bad, mth(leaves))
    consistency = consistency_outputs[1000, 2999]
    bad = [leaf_hash(b"not in the log"), *consistency.proof[1:]]
    with pytest.raises(SpecViolation, match="root"):
        verify_consistency(1000, 2999, mth(leaves[:1000]), mth(leaves[:2999]), bad)
