"""Where the console's shipped files are, read as the package ships them."""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from hotline.network import LANGUAGES

CONSOLE: Traversable = resources.files("hotline.endpoint").joinpath("console")
ASSETS = ("index.html", "console.js", "console.css")


def read_text(*parts: str) -> str:
    return CONSOLE.joinpath(*parts).read_text(encoding="utf-8")


def catalogue(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_text("i18n", f"{lang}.json"))
    return data


def shipped_texts() -> dict[str, str]:
    """Every file of the console by its path under console/ (assets and catalogues)."""
    texts = {name: read_text(name) for name in ASSETS}
    texts.update({f"i18n/{lang}.json": read_text("i18n", f"{lang}.json") for lang in LANGUAGES})
    return texts
