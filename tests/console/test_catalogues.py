"""Every coded value and every string of the console exists in every language."""

from __future__ import annotations

import enum
import re

import pytest

from hotline.endpoint.alarms import AlarmKind
from hotline.endpoint.events import _NAMES as EVENT_NAMES
from hotline.network import LANGUAGES
from hotline.protocol.vocab import (
    AckAction,
    Advice,
    AltRef,
    BodyType,
    CancelReason,
    ObjectKind,
    Precedence,
    Source,
    Stage,
    Status,
)
from tests.console.files import CONSOLE, catalogue, read_text

# the catalogue group for each enumerated wire field (the field's name on the wire)
CODE_GROUPS: dict[str, type[enum.StrEnum]] = {
    "t": BodyType,
    "status": Status,
    "precedence": Precedence,
    "alt_ref": AltRef,
    "object": ObjectKind,
    "source": Source,
    "advice": Advice,
    "reason": CancelReason,
    "stage": Stage,
    "action": AckAction,
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
ENGLISH = catalogue("en")


def _expected_codes() -> dict[str, list[str]]:
    codes = {group: [e.value for e in kind] for group, kind in CODE_GROUPS.items()}
    codes["event"] = [*EVENT_NAMES.values(), *(kind.value for kind in AlarmKind)]
    return codes


def _keys_the_page_uses() -> set[str]:
    """UI keys named in the page: data-i18n in the HTML, t("…") and i18n: … in the scripts."""
    html, js = read_text("index.html"), read_text("console.js") + read_text("login.js")
    keys = set(re.findall(r'data-i18n="(\w+)"', html))
    for expression in re.findall(r"(?:\bt\(|i18n: |dataset\.i18n = )([^,;)\n]+)", js):
        keys.update(re.findall(r'"(\w+)"', expression))
    return keys


def test_a_catalogue_ships_for_every_network_language() -> None:
    """The i18n folder holds exactly one catalogue per language a network may configure."""
    shipped = {p.name for p in CONSOLE.joinpath("i18n").iterdir() if p.name.endswith(".json")}
    assert shipped == {f"{lang}.json" for lang in LANGUAGES}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_code_of_every_vocabulary_is_translated(lang: str) -> None:
    """Each vocab enum value (and each event name) has a non-empty label, in wire order."""
    codes = catalogue(lang)["codes"]
    assert catalogue(lang)["meta"]["lang"] == lang
    for group, values in _expected_codes().items():
        assert list(codes[group]) == values, f"{lang}: codes.{group}"
        for value in values:
            label = codes[group][value]
            assert isinstance(label, str), f"{lang}: codes.{group}.{value}"
            assert label.strip(), f"{lang}: codes.{group}.{value} is empty"
    assert set(codes) == set(_expected_codes()), f"{lang}: unexpected code groups"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_ui_string_is_translated_with_the_same_placeholders(lang: str) -> None:
    """Each UI key of the English catalogue exists, non-empty, with the same {placeholders}."""
    ui = catalogue(lang)["ui"]
    assert list(ui) == list(ENGLISH["ui"]), f"{lang}: keys differ from en"
    for key, english in ENGLISH["ui"].items():
        text = ui[key]
        assert isinstance(text, str), f"{lang}: ui.{key}"
        assert text.strip(), f"{lang}: ui.{key} is empty"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english)), (
            f"{lang}: ui.{key} placeholders differ from en"
        )


def test_every_key_the_page_uses_is_in_the_catalogue_and_none_is_dead() -> None:
    """The page names only keys the catalogues hold, and every catalogue key is used."""
    used = _keys_the_page_uses()
    missing = used - set(ENGLISH["ui"])
    assert not missing, f"keys used by the page but not in the catalogues: {sorted(missing)}"
    sources = read_text("index.html") + read_text("console.js") + read_text("login.js")
    dead = [key for key in ENGLISH["ui"] if f'"{key}"' not in sources]
    assert not dead, f"catalogue keys the page never uses: {dead}"


def test_every_code_group_the_page_names_exists() -> None:
    """Code lookups in the page (code("group", …), data-code="group:…") name real groups."""
    html, js = read_text("index.html"), read_text("console.js")
    groups = set(re.findall(r'data-code="(\w+):', html))
    groups |= set(re.findall(r'data-codes="(\w+)"', html))
    groups |= set(re.findall(r'\bcode\("(\w+)"', js))
    groups |= set(re.findall(r"`(\w+):\$\{", js))
    assert groups, "the page names no code groups: the scan is broken"
    assert groups <= set(_expected_codes()), sorted(groups - set(_expected_codes()))


def test_the_console_listens_for_every_event_the_endpoint_streams() -> None:
    """Every event name on /api/events, alarm kinds included, is one the console subscribes to."""
    js = read_text("console.js")
    listed = re.search(r"const EVENT_NAMES = \[(.*?)\];", js, re.S)
    assert listed is not None
    names = set(re.findall(r'"(\w+)"', listed.group(1)))
    assert names == {*EVENT_NAMES.values(), *(kind.value for kind in AlarmKind)}
