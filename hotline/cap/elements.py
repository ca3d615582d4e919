"""Reading CAP elements strictly, each with the path that names it in an error.

A :class:`Node` is one element of a CAP document and its path
(``info[0].area[0].circle``); its accessors refuse a missing, repeated or
badly coded child with :class:`~hotline.errors.Rejected` (``schema``) naming
that path. :class:`Fields` collects the body being built together with where
each field came from, so a rule of the hotline schema broken by a value is
reported at the CAP element the value was read from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from hotline.cap.codes import CAP_NS, PARAMETERS
from hotline.cap.geo import parse_number
from hotline.cap.times import parse_cap_time
from hotline.cap.xmlsafe import DOCUMENT
from hotline.errors import RejectCode, Rejected
from hotline.protocol.ids import format_id, parse_id

__all__ = [
    "Fields",
    "Node",
    "Param",
    "hotline_parameters",
    "integer_param",
    "number_param",
    "schema_error",
    "time_param",
    "uuid_text",
]

_INTEGER = re.compile(r"[+-]?\d{1,12}", re.ASCII)


def schema_error(path: str, sentence: str) -> Rejected:
    return Rejected(RejectCode.SCHEMA, sentence, path)


class Node:
    """One CAP element and its path, with strict accessors for its children."""

    def __init__(self, element: Element, path: str) -> None:
        self.element = element
        self.path = path

    def _child_path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _children(self, name: str) -> list[Element]:
        return [c for c in self.element if c.tag == f"{{{CAP_NS}}}{name}"]

    def all(self, name: str) -> list[Node]:
        return [
            Node(c, f"{self._child_path(name)}[{i}]") for i, c in enumerate(self._children(name))
        ]

    def opt(self, name: str) -> Node | None:
        found = self._children(name)
        if len(found) > 1:
            raise schema_error(self._child_path(name), "must appear at most once")
        return Node(found[0], self._child_path(name)) if found else None

    def req(self, name: str, why: str = "") -> Node:
        node = self.opt(name)
        if node is None:
            raise schema_error(self._child_path(name), f"is required{why}")
        return node

    @property
    def text(self) -> str:
        return self.element.text or ""

    def token(self) -> str:
        value = self.text.strip()
        if not value:
            raise schema_error(self.path, "must not be empty")
        return value

    def code(self, allowed: Sequence[str]) -> str:
        value = self.text.strip()
        if value not in allowed:
            raise schema_error(self.path, f"must be one of {', '.join(allowed)}")
        return value

    def time(self) -> int:
        try:
            return parse_cap_time(self.text)
        except ValueError as exc:
            raise schema_error(self.path, str(exc)) from None


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    value: str
    path: str


class Fields:
    """The body being built, and where in the CAP document each field came from."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.where: dict[str, tuple[str, str]] = {}

    def put(self, key: str, value: object, path: str, label: str = "") -> None:
        self.body[key] = value
        self.where[key] = (path, label)

    def put_in(self, sub: str, key: str, value: object, path: str, label: str = "") -> None:
        self.body.setdefault(sub, {})[key] = value
        self.where[f"{sub}.{key}"] = (path, label)

    def blame(self, exc: Rejected) -> Rejected:
        """``exc`` (a schema rejection of the built body) restated with the CAP path."""
        key = re.sub(r"\[\d+\]$", "", exc.path)
        path, label = self.where.get(key, (DOCUMENT, f"(hotline field {exc.path})"))
        return schema_error(path, f"{label} {exc.sentence}" if label else exc.sentence)


def hotline_parameters(info: Node) -> dict[str, Param]:
    """The ``hotline:*`` parameters of an info block; other parameters are ignored."""
    found: dict[str, Param] = {}
    for node in info.all("parameter"):
        name = node.req("valueName").text.strip()
        value = node.req("value").text
        if not name.startswith("hotline:"):
            continue
        if name not in PARAMETERS:
            known = ", ".join(sorted(PARAMETERS))
            raise schema_error(node.path, f"{name} is not a hotline parameter (known: {known})")
        if name in found:
            raise schema_error(node.path, f"{name} is given twice (first at {found[name].path})")
        found[name] = Param(name, value, node.path)
    return found


def number_param(param: Param) -> float:
    try:
        return parse_number(param.value)
    except ValueError as exc:
        raise schema_error(param.path, f"{param.name}: {exc}") from None


def integer_param(param: Param) -> int:
    if not _INTEGER.fullmatch(param.value.strip()):
        raise schema_error(param.path, f"{param.name} must be a whole number")
    return int(param.value)


def time_param(param: Param) -> int:
    try:
        return parse_cap_time(param.value)
    except ValueError as exc:
        raise schema_error(param.path, f"{param.name} {exc}") from None


def uuid_text(text: str) -> str | None:
    try:
        return format_id(parse_id(text.strip()))
    except ValueError:
        return None
