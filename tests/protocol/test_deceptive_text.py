"""Text that reads otherwise than it is: refused in every free-text field, naming field and
character; ordinary text in every script the network speaks passes."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.errors import Rejected
from hotline.protocol.bodies import WarningBody
from hotline.protocol.schema import body_to_map, map_to_body
from tests.endpoint.builders import Author
from tests.factories import make_network

DECEPTIVE = {
    "\u202e": "RIGHT-TO-LEFT OVERRIDE", "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u200f": "RIGHT-TO-LEFT MARK", "\u200b": "ZERO WIDTH SPACE", "\ufeff": "ZERO WIDTH NO-BREAK",
    "\x85": "U+0085", "\x9b": "U+009B", "\x7f": "U+007F",
}


def _warning_map() -> dict[str, Any]:
    wire = body_to_map(Author(make_network()).warning())
    wire["text"], wire["lang"] = "Drone heading west", "en"
    return wire


def _set(wire: dict[str, Any], path: str, value: str) -> None:
    target = wire
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value


@pytest.mark.parametrize("char", sorted(DECEPTIVE))
@pytest.mark.parametrize("path", ["text", "track.sensor_id"])
def test_a_deceptive_character_is_refused_naming_the_field_and_the_character(
    path: str, char: str
) -> None:
    """Each bidi, zero-width or C1 character in a warning's free text or sensor name is a
    schema rejection at that field, saying which character and where."""
    wire = _warning_map()
    _set(wire, path, f"NOT{char}RECEIVED")
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == path
    assert f"U+{ord(char):04X}" in caught.value.sentence
    assert "position 3" in caught.value.sentence


def test_the_lying_note_is_refused_and_honest_text_in_every_script_passes() -> None:
    """"\\u202eDEVIECER TON\\u202c" as a warning's text is refused; Belarusian, Lithuanian,
    Latvian, Estonian, Polish and Russian text, tabs and new lines pass."""
    wire = _warning_map()
    wire["text"] = "\u202eDEVIECER TON\u202c"
    with pytest.raises(Rejected):
        map_to_body(wire)
    wire["text"] = "Дрон ідзе на захад\tŽąsų būrys\nDrons virzās; Ülelend. Żółw! Дрон"
    body = map_to_body(wire)
    assert isinstance(body, WarningBody)
    assert body.text == wire["text"]
