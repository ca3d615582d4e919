"""Unchecked text shown to a person: nothing in it can change how it reads."""

from __future__ import annotations

from hotline.protocol.schema import visible


def test_control_bidi_and_zero_width_characters_are_written_out() -> None:
    """U+202E, U+200B and a C1 control become \\uXXXX; plain text stays as it is."""
    assert visible("a\u202eb\u200bc\x85d\x01e") == "a\\u202eb\\u200bc\\u0085d\\u0001e"
    assert visible("Lietuva") == "Lietuva"


def test_long_text_is_cut_with_an_ellipsis() -> None:
    """At most ``limit`` characters of what was sent are kept."""
    assert visible("x" * 10, limit=4) == "xxxx…"
