"""Every bad input of the refusal corpus draws exactly the refusal recorded for it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.protocol.refusal_corpus import CORPUS_FILE, cases, render, verdict

EXPECTED: dict[str, Any] = json.loads(CORPUS_FILE.read_text(encoding="utf-8"))


def test_the_corpus_names_every_case_once() -> None:
    """The generator and the committed file hold the same cases (regenerate after a change)."""
    assert [name for name, _, _ in cases()] == list(EXPECTED)


@pytest.mark.parametrize("kind", ["body", "control", "frame"])
def test_every_case_gets_its_recorded_verdict(kind: str) -> None:
    """Same code, same sentence, same path for every bad body, control map and frame."""
    wrong = {
        name: (EXPECTED.get(name), got)
        for name, what, data in cases()
        if what == kind and (got := verdict(what, data)) != EXPECTED.get(name)
    }
    assert not wrong, f"{len(wrong)} cases differ, first: {next(iter(wrong.items()))}"


def test_the_committed_file_is_what_the_generator_writes() -> None:
    """The file is byte for byte the generator's output, so it can be diffed when rules change."""
    assert CORPUS_FILE.read_text(encoding="utf-8") == render()
