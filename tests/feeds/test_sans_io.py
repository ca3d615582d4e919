"""The feed rules are sans-IO: rate limits and track correlation take the time as an argument."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hotline.endpoint

PACKAGE = Path(hotline.endpoint.__file__).parent
PURE = ("ratelimit", "correlation")
FORBIDDEN = {
    "aiohttp", "asyncio", "socket", "time", "datetime", "os", "pathlib", "io", "sqlite3",
    "threading", "random", "secrets", "structlog",
}


@pytest.mark.parametrize("name", PURE)
def test_the_feed_rules_import_no_io_clock_or_randomness(name: str) -> None:
    """ratelimit and correlation import no networking, files, clock or randomness."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        else:
            continue
        assert not FORBIDDEN & names, f"{name}.py imports {FORBIDDEN & names}"


def test_importing_the_feed_rules_loads_no_event_loop_or_database() -> None:
    """A fresh interpreter importing them has no asyncio, aiohttp, sqlite3 or socket loaded."""
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
