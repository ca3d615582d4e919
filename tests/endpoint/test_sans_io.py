"""The endpoint's protocol core does no I/O: no sockets, event loop, database or clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hotline.endpoint

PACKAGE = Path(hotline.endpoint.__file__).parent
PURE = ("core", "deadlines", "witness", "compose", "events", "state", "errors", "records")
FORBIDDEN = {
    "aiohttp", "asyncio", "socket", "time", "datetime", "os", "pathlib", "io", "sqlite3",
    "threading", "random", "secrets", "structlog",
}


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports_no_io_and_no_clock(name: str) -> None:
    """No sans-IO endpoint module imports networking, files, a clock or randomness."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        else:
            continue
        assert not FORBIDDEN & names, f"{name}.py imports {FORBIDDEN & names}"


def test_importing_the_core_loads_no_event_loop_or_database() -> None:
    """A fresh interpreter importing the endpoint core has no asyncio, aiohttp or sqlite3."""
    modules = ",".join(f"hotline.endpoint.{name}" for name in PURE)
    code = (
        "import importlib, sys\n"
        f"for m in '{modules}'.split(','): importlib.import_module(m)\n"
        "print(sorted(m for m in ('asyncio', 'aiohttp', 'sqlite3', 'socket') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
