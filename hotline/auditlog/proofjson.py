"""Proofs as the JSON that ``hotline audit prove`` prints and the relay serves.

Hashes are standard base64. The shapes are::

    {"index", "size", "leaf_hash", "root", "proof": [...]}
    {"old_size", "new_size", "old_root", "new_root", "proof": [...]}
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

__all__ = ["consistency_json", "inclusion_json"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def inclusion_json(
    index: int, size: int, leaf: bytes, root: bytes, proof: Sequence[bytes]
) -> dict[str, object]:
    return {
        "index": index,
        "size": size,
        "leaf_hash": _b64(leaf),
        "root": _b64(root),
        "proof": [_b64(h) for h in proof],
    }


def consistency_json(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> dict[str, object]:
    return {
        "old_size": old,
        "new_size": new,
        "old_root": _b64(old_root),
        "new_root": _b64(new_root),
        "proof": [_b64(h) for h in proof],
    }
