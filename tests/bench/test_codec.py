"""bench/codec.py: each timed step opens and encodes what a round trip carries."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from codec import bodies, measure

from hotline.protocol.schema import decode_body, encode_body


def test_the_timed_bodies_are_valid_and_every_step_is_timed() -> None:
    """The warning, receipt and accepted round trip, and each step yields a positive time."""
    for body in bodies().values():
        assert decode_body(encode_body(body)) == body
    figures = measure(0.001)
    assert set(figures) == {
        f"{verb}_{name}_us" for verb in ("open", "encode") for name in bodies()
    } | {f"{verb}_control_{name}_us" for verb in ("encode", "decode")
         for name in ("accepted", "deliver")}
    assert all(value > 0 for value in figures.values())
