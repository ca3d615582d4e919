"""RFC 9162 §2.1 Merkle trees: proofs checked against a naive recursive reference."""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.auditlog import checkpoint, cosignature, merkle, note, tiles
from hotline.auditlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    ListHasher,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from hotline.errors import ProofError

# The eight leaves of RFC 6962's reference tests.
CLASSIC_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# Roots of each prefix of the classic tree, sizes 1 to 8.
CLASSIC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

MAX_EXHAUSTIVE = 64
ENTRIES = tuple(f"entry {i}".encode() for i in range(MAX_EXHAUSTIVE))
LEAVES = [leaf_hash(e) for e in ENTRIES]


# --- The reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 written recursively. ---


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(entries: tuple[bytes, ...]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: tuple[bytes, ...]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], b), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: tuple[bytes, ...]) -> list[bytes]:
    return ref_subproof(m, entries, True)


def flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


HASHER = ListHasher(LEAVES)


# --- Known answers. ---


def test_empty_root_is_sha256_of_nothing() -> None:
    """The root of the empty tree is SHA-256 of the empty string."""
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    assert ListHasher([])(0, 0) == EMPTY_ROOT


def test_classic_eight_leaf_tree_has_the_published_root() -> None:
    """The eight leaves of RFC 6962's tests hash to root 5dc9da79…4328."""
    leaves = [leaf_hash(e) for e in CLASSIC_LEAVES]
    expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert root_of(leaves).hex() == expected
    assert ListHasher(leaves)(0, 8).hex() == expected
    assert ref_mth(tuple(CLASSIC_LEAVES)).hex() == expected


@pytest.mark.parametrize("size", range(1, 9))
def test_classic_tree_prefix_roots_match_the_reference(size: int) -> None:
    """Every prefix of the classic tree has the root the reference computes, and the known one."""
    leaves = [leaf_hash(e) for e in CLASSIC_LEAVES[:size]]
    expected = ref_mth(tuple(CLASSIC_LEAVES[:size]))
    assert expected.hex() == CLASSIC_ROOTS[size - 1]
    assert root_of(leaves) == expected
    assert ListHasher(leaves)(0, size) == expected


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """Leaf hashes prefix 0x00 and node hashes 0x01, so a leaf never equals a node of its bytes."""
    a, b = LEAVES[0], LEAVES[1]
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)


# --- Exhaustive agreement with the reference for every size up to 64. ---


def test_list_hasher_agrees_with_the_reference_on_every_range() -> None:
    """ListHasher gives the reference MTH for every leaf range of a 64-leaf list."""
    for start in range(MAX_EXHAUSTIVE):
        for end in range(start + 1, MAX_EXHAUSTIVE + 1):
            assert HASHER(start, end) == ref_mth(ENTRIES[start:end])


def test_frontier_root_agrees_with_the_reference_for_every_size() -> None:
    """The frontier's root equals the reference MTH after every append."""
    frontier = Frontier()
    for size in range(1, MAX_EXHAUSTIVE + 1):
        frontier.append(LEAVES[size - 1])
        assert frontier.root() == ref_mth(ENTRIES[:size])


def test_every_inclusion_proof_up_to_64_matches_the_reference_and_verifies() -> None:
    """For every size up to 64 and every index, PATH equals the reference and verifies."""
    for size in range(1, MAX_EXHAUSTIVE + 1):
        root = ref_mth(ENTRIES[:size])
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER)
            assert proof == ref_path(index, ENTRIES[:size]), (index, size)
            verify_inclusion(LEAVES[index], index, size, proof, root)


def test_every_consistency_proof_up_to_64_matches_the_reference_and_verifies() -> None:
    """For every pair of sizes up to 64, PROOF equals the reference and verifies."""
    for new in range(1, MAX_EXHAUSTIVE + 1):
        new_root = ref_mth(ENTRIES[:new])
        for old in range(1, new + 1):
            proof = consistency_proof(old, new, HASHER)
            expected = ref_proof(old, ENTRIES[:new]) if old < new else []
            assert proof == expected, (old, new)
            verify_consistency(old, new, ref_mth(ENTRIES[:old]), new_root, proof)


def _is_tree_node(start: int, end: int, size: int) -> bool:
    count = end - start
    aligned = 1 << (count - 1).bit_length()  # smallest power of two >= count
    perfect = count & (count - 1) == 0
    return count > 0 and start % aligned == 0 and (perfect or end == size)


def test_proofs_ask_only_for_tree_nodes_once_per_hash() -> None:
    """Generation asks the hasher for exactly one node of the tree per proof hash."""
    size = 1 << 40 | 12345
    calls: list[tuple[int, int]] = []

    def hasher(start: int, end: int) -> bytes:
        calls.append((start, end))
        return hashlib.sha256(f"{start}:{end}".encode()).digest()

    proof = inclusion_proof(size - 7, size, hasher)
    assert len(calls) == len(proof) <= 41
    assert all(_is_tree_node(s, e, size) for s, e in calls)
    calls.clear()
    proof = consistency_proof(1 << 39 | 777, size, hasher)
    assert len(calls) == len(proof) <= 2 * 41
    assert all(_is_tree_node(s, e, size) for s, e in calls)


def test_ranges_name_the_nodes_the_proofs_hold() -> None:
    """inclusion_ranges and consistency_ranges list the leaf ranges behind each proof hash."""
    assert inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert consistency_ranges(3, 8) == [(2, 3), (3, 4), (0, 2), (4, 8)]
    assert consistency_ranges(4, 8) == [(4, 8)]
    assert consistency_ranges(5, 5) == []


# --- Mutated inclusion proofs. ---

SMALL = 16


def test_inclusion_proof_with_any_flipped_bit_fails() -> None:
    """Flipping a bit of any proof hash, of the leaf or of the root makes verification fail."""
    for size in range(1, SMALL + 1):
        root = HASHER(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER)
            for position in range(len(proof)):
                bad = list(proof)
                bad[position] = flip(bad[position], position % 8)
                with pytest.raises(ProofError, match="gives root"):
                    verify_inclusion(LEAVES[index], index, size, bad, root)
            with pytest.raises(ProofError):
                verify_inclusion(flip(LEAVES[index]), index, size, proof, root)
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[index], index, size, proof, flip(root))


def test_inclusion_proof_with_a_hash_dropped_or_added_fails() -> None:
    """A proof one hash short or one hash long is refused, naming both lengths."""
    for size in range(1, SMALL + 1):
        root = HASHER(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER)
            n = len(proof)
            with pytest.raises(ProofError, match=f"has {n + 1} hashes, expected {n}"):
                verify_inclusion(LEAVES[index], index, size, [*proof, root], root)
            if proof:
                with pytest.raises(ProofError, match=f"has {n - 1} hashes, expected {n}"):
                    verify_inclusion(LEAVES[index], index, size, proof[:-1], root)


def test_inclusion_proof_for_another_index_fails() -> None:
    """A valid proof presented for a different leaf index does not verify."""
    for size in range(2, SMALL + 1):
        root = HASHER(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER)
            for other in range(size):
                if other != index:
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAVES[index], other, size, proof, root)


def test_inclusion_proof_verifies_for_another_size_only_if_it_is_that_sizes_proof() -> None:
    """Against the true root of another size, a proof verifies only if it is that size's path."""
    for size in range(1, SMALL + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER)
            for other in range(index + 1, SMALL + 1):
                if other == size:
                    continue
                if proof == inclusion_proof(index, other, HASHER):
                    verify_inclusion(LEAVES[index], index, other, proof, HASHER(0, other))
                else:
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAVES[index], index, other, proof, HASHER(0, other))


def test_inclusion_proof_alone_does_not_pin_the_tree_size() -> None:
    """Leaf 5's path in the 8-leaf tree also verifies as a 7-leaf path: size must be signed."""
    root8 = HASHER(0, 8)
    proof = inclusion_proof(5, 8, HASHER)
    verify_inclusion(LEAVES[5], 5, 7, proof, root8)


def test_inclusion_index_outside_the_tree_is_refused() -> None:
    """An index at or beyond the size, a negative index and size 0 are refused."""
    root = HASHER(0, 4)
    with pytest.raises(ProofError, match="leaf index 4 is outside a tree of size 4"):
        verify_inclusion(LEAVES[4], 4, 4, [], root)
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(LEAVES[0], -1, 4, [], root)
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="outside"):
        inclusion_proof(4, 4, HASHER)


def test_inclusion_mismatch_names_both_roots_in_hex() -> None:
    """A root mismatch names the computed root and the expected root in hex."""
    proof = inclusion_proof(2, 8, HASHER)
    wrong = HASHER(0, 7)
    with pytest.raises(ProofError) as caught:
        verify_inclusion(LEAVES[2], 2, 8, proof, wrong)
    assert HASHER(0, 8).hex() in str(caught.value)
    assert wrong.hex() in str(caught.value)


def test_inclusion_refuses_hashes_of_the_wrong_length() -> None:
    """Leaf, root and proof hashes must all be 32 bytes."""
    proof = inclusion_proof(1, 4, HASHER)
    root = HASHER(0, 4)
    with pytest.raises(ProofError, match="leaf hash is 31 bytes, expected 32"):
        verify_inclusion(LEAVES[1][:31], 1, 4, proof, root)
    with pytest.raises(ProofError, match="root hash is 33 bytes"):
        verify_inclusion(LEAVES[1], 1, 4, proof, root + b"\x00")
    with pytest.raises(ProofError, match="inclusion proof hash 1 is 0 bytes"):
        verify_inclusion(LEAVES[1], 1, 4, [proof[0], b""], root)


def test_single_leaf_tree_has_an_empty_proof_whose_root_is_the_leaf() -> None:
    """In a one-leaf tree the proof is empty and the root is the leaf hash."""
    assert inclusion_proof(0, 1, HASHER) == []
    assert root_from_inclusion_proof(LEAVES[0], 0, 1, []) == LEAVES[0]


# --- Mutated consistency proofs. ---


def test_consistency_proof_with_any_flipped_bit_fails() -> None:
    """Flipping a bit of any proof hash or of either root makes verification fail."""
    for new in range(2, SMALL + 1):
        new_root = HASHER(0, new)
        for old in range(1, new):
            old_root = HASHER(0, old)
            proof = consistency_proof(old, new, HASHER)
            for position in range(len(proof)):
                bad = list(proof)
                bad[position] = flip(bad[position], position % 8)
                with pytest.raises(ProofError, match="gives"):
                    verify_consistency(old, new, old_root, new_root, bad)
            with pytest.raises(ProofError, match="root"):
                verify_consistency(old, new, flip(old_root), new_root, proof)
            with pytest.raises(ProofError, match="new root"):
                verify_consistency(old, new, old_root, flip(new_root), proof)


def test_consistency_proof_with_a_hash_dropped_or_added_fails() -> None:
    """A proof one hash short or one hash long is refused, naming both lengths."""
    for new in range(2, SMALL + 1):
        new_root = HASHER(0, new)
        for old in range(1, new):
            old_root = HASHER(0, old)
            proof = consistency_proof(old, new, HASHER)
            n = len(proof)
            with pytest.raises(ProofError, match=f"has {n + 1} hashes, expected {n}"):
                verify_consistency(old, new, old_root, new_root, [*proof, new_root])
            with pytest.raises(ProofError, match=f"has {n - 1} hashes, expected {n}"):
                verify_consistency(old, new, old_root, new_root, proof[1:])


def test_consistency_proof_verifies_for_other_sizes_only_if_it_is_their_proof() -> None:
    """Against the true roots of other sizes, a proof verifies only if it is their proof."""
    for new in range(2, SMALL + 1):
        for old in range(1, new):
            proof = consistency_proof(old, new, HASHER)
            for other_old in range(1, SMALL + 1):
                for other_new in range(other_old + 1, SMALL + 1):
                    if (other_old, other_new) == (old, new):
                        continue
                    roots = HASHER(0, other_old), HASHER(0, other_new)
                    if proof == consistency_proof(other_old, other_new, HASHER):
                        verify_consistency(other_old, other_new, *roots, proof)
                    else:
                        with pytest.raises(ProofError):
                            verify_consistency(other_old, other_new, *roots, proof)


def test_consistency_proof_alone_does_not_pin_the_sizes() -> None:
    """The proof [h1] from size 1 to 2 also verifies as 2 to 3 for fitting roots: sign sizes."""
    proof = consistency_proof(1, 2, HASHER)
    verify_consistency(2, 3, LEAVES[0], HASHER(0, 2), proof)


def test_consistency_from_the_empty_tree_is_refused() -> None:
    """A consistency proof from size 0 is refused, even to size 0."""
    with pytest.raises(ProofError, match="at least one leaf, not 0"):
        verify_consistency(0, 5, EMPTY_ROOT, HASHER(0, 5), [])
    with pytest.raises(ProofError, match="at least one leaf"):
        verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="at least one leaf"):
        consistency_proof(0, 5, HASHER)


def test_consistency_towards_a_smaller_tree_is_refused() -> None:
    """An old size larger than the new size is refused."""
    with pytest.raises(ProofError, match="size 6 cannot grow into a smaller tree of size 5"):
        verify_consistency(6, 5, HASHER(0, 6), HASHER(0, 5), [])
    with pytest.raises(ProofError, match="smaller"):
        consistency_proof(6, 5, HASHER)


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    """Equal sizes verify with no hashes and equal roots, and fail otherwise."""
    root = HASHER(0, 5)
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(ProofError, match="has 1 hashes, expected 0"):
        verify_consistency(5, 5, root, root, [root])
    with pytest.raises(ProofError, match="same size 5 have different roots"):
        verify_consistency(5, 5, root, flip(root), [])


def test_consistency_refuses_hashes_of_the_wrong_length() -> None:
    """Both roots and every proof hash must be 32 bytes."""
    proof = consistency_proof(3, 7, HASHER)
    old_root, new_root = HASHER(0, 3), HASHER(0, 7)
    with pytest.raises(ProofError, match="old root hash is 31 bytes"):
        verify_consistency(3, 7, old_root[:31], new_root, proof)
    with pytest.raises(ProofError, match="new root hash is 0 bytes"):
        verify_consistency(3, 7, old_root, b"", proof)
    with pytest.raises(ProofError, match="consistency proof hash 0 is 64 bytes"):
        verify_consistency(3, 7, old_root, new_root, [proof[0] * 2, *proof[1:]])


def test_list_hasher_refuses_ranges_outside_its_leaves() -> None:
    """Asking ListHasher for leaves it does not hold is a ProofError."""
    with pytest.raises(ProofError, match=r"\[3, 70\) lies outside a tree of 64 leaves"):
        HASHER(3, 70)
    with pytest.raises(ProofError):
        HASHER(5, 4)


# --- Properties. ---


@given(st.integers(min_value=1, max_value=700), st.data())
def test_inclusion_proofs_verify_for_random_trees(size: int, data: st.DataObject) -> None:
    """Any leaf's generated inclusion proof verifies against the tree's root."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    hasher = ListHasher(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, size, hasher)
    verify_inclusion(leaves[index], index, size, proof, root_of(leaves))


@given(st.integers(min_value=1, max_value=700), st.data())
def test_consistency_proofs_verify_for_random_trees(new: int, data: st.DataObject) -> None:
    """Any generated consistency proof between two prefixes verifies against both roots."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(new)]
    hasher = ListHasher(leaves)
    old = data.draw(st.integers(min_value=1, max_value=new))
    proof = consistency_proof(old, new, hasher)
    verify_consistency(old, new, root_of(leaves[:old]), root_of(leaves), proof)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=80), st.data())
def test_proofs_for_random_entries_match_the_reference(
    entries: list[bytes], data: st.DataObject
) -> None:
    """Generated proofs over arbitrary entries equal the recursive reference."""
    leaves = [leaf_hash(e) for e in entries]
    hasher = ListHasher(leaves)
    size = len(entries)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    assert inclusion_proof(index, size, hasher) == ref_path(index, tuple(entries))
    old = data.draw(st.integers(min_value=1, max_value=size))
    expected = ref_proof(old, tuple(entries)) if old < size else []
    assert consistency_proof(old, size, hasher) == expected
    assert root_of(leaves) == ref_mth(tuple(entries))


# --- Purity of the audit log's core modules. ---

PURE_MODULES = [merkle, note, checkpoint, cosignature, tiles]
FORBIDDEN_IMPORTS = {
    "aiohttp",
    "asyncio",
    "datetime",
    "io",
    "os",
    "pathlib",
    "shutil",
    "socket",
    "tempfile",
    "time",
}


@pytest.mark.parametrize("module", PURE_MODULES, ids=lambda m: m.__name__)
def test_core_modules_import_no_io_and_no_clock(module: ModuleType) -> None:
    """Merkle, note, checkpoint, cosignature and tile code import no I/O, event loop or clock."""
    tree = ast.parse(inspect.getsource(module))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print", "input"}, node.func.id
    assert not imported & FORBIDDEN_IMPORTS


def test_importing_the_core_modules_loads_no_event_loop_or_http() -> None:
    """Importing the pure audit-log modules alone leaves asyncio and aiohttp unloaded."""
    names = ", ".join(m.__name__ for m in PURE_MODULES)
    code = f"import sys, {names}; print(sorted({{'asyncio', 'aiohttp'}} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
