"""The people who may use an endpoint's console: ``DATA/operators.json``.

Each operator has a name (the stable id written into every body they sign,
1 to 32 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit), a role and
an Argon2id hash of their password (argon2-cffi's defaults: 64 MiB, 3 passes).

========  =====================================================================
officer   reads everything, sends and acknowledges in the endpoint's name
viewer    reads everything, sends nothing
admin     what an officer may do (the role for whoever runs the endpoint)
========  =====================================================================

The file is ``{"operators": [{"name", "role", "hash"}]}``, written 0600 in one
atomic replace by ``hotline operator add``. The endpoint reads it again at
every login, so an operator added to a running endpoint can log in at once.
"""

from __future__ import annotations

import enum
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hotline.errors import ConfigError, UsageError
from hotline.protocol.schema import OPERATOR_NAME

__all__ = [
    "MIN_PASSWORD",
    "OPERATORS_FILE",
    "OPERATOR_NAME",
    "Operator",
    "OperatorStore",
    "Role",
]

OPERATORS_FILE: Final = "operators.json"
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 1024

_HASHER: Final = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the name is unknown, so a wrong name costs what a wrong password
    does (made at the first login, not at import: every ``hotline`` command imports this)."""
    return _HASHER.hash("no operator has this password")


class Role(enum.StrEnum):
    OFFICER = "officer"
    VIEWER = "viewer"
    ADMIN = "admin"

    @property
    def may_send(self) -> bool:
        return self is not Role.VIEWER


@dataclass(frozen=True, slots=True)
class Operator:
    """A logged-in person: ``name`` is what signed bodies carry as ``operator``."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    role: Role
    hash: str


class OperatorStore:
    """``DATA/operators.json``: read at every login, written whole by :meth:`add`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / OPERATORS_FILE

    def _entries(self) -> list[_Entry]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw)
            entries = [_Entry(str(e["name"]), Role(e["role"]), str(e["hash"]))
                       for e in data["operators"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path} is not a valid operators file: {exc}") from exc
        return entries

    def names(self) -> list[str]:
        return [e.name for e in self._entries()]

    def add(self, name: str, password: str, role: Role) -> Operator:
        """Add ``name`` (or replace its password and role). Raises UsageError."""
        if not OPERATOR_NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not an operator name: 1 to 32 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit")
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"the password must be at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise UsageError(f"the password must be at most {MAX_PASSWORD} characters")
        entries = [e for e in self._entries() if e.name != name]
        entries.append(_Entry(name, role, _HASHER.hash(password)))
        data = {"operators": [{"name": e.name, "role": e.role.value, "hash": e.hash}
                              for e in entries]}
        self._write(json.dumps(data, indent=2).encode() + b"\n")
        return Operator(name, role)

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.path)

    def verify(self, name: str, password: str) -> Operator | None:
        """The operator if ``password`` is theirs; None otherwise (same cost either way)."""
        entry = next((e for e in self._entries() if e.name == name), None)
        if len(password) > MAX_PASSWORD:
            return None
        try:
            _HASHER.verify(_dummy_hash() if entry is None else entry.hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return None if entry is None else Operator(entry.name, entry.role)
