"""The protocol core and the Merkle/checkpoint code do no I/O and read no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hotline

PACKAGE = Path(hotline.__file__).parent
ENDPOINT_CORE = (
    "core", "deadlines", "witness", "compose", "events", "state", "errors", "records",
    "ratelimit", "correlation", "alarms", "guard", "refusals", "paths", "path_figures",
)
PURE_MODULES = sorted(
    [*(PACKAGE / "protocol").glob("*.py"), PACKAGE / "network.py", PACKAGE / "errors.py",
     PACKAGE / "lograte.py"]
    + [
        PACKAGE / "auditlog" / name
        for name in ("merkle.py", "note.py", "checkpoint.py", "cosignature.py", "tiles.py",
                     "leaf.py", "hashlevels.py", "rules.py")
    ]
    + [PACKAGE / "endpoint" / f"{name}.py" for name in ENDPOINT_CORE]
    + [PACKAGE / "relay" / name for name in ("core.py", "guard.py", "idmaps.py")]
    + [*(PACKAGE / "figures").glob("*.py"), *(PACKAGE / "cap").glob("*.py")]
)
FORBIDDEN_IMPORTS = {
    "aiohttp", "asyncio", "socket", "time", "datetime", "os", "pathlib", "io", "sqlite3",
    "shutil", "tempfile", "threading", "subprocess", "random", "secrets", "structlog",
}
FORBIDDEN_CALLS = {"open", "print", "input"}
# CAP times are parsed and written with datetime; the clock itself is never read there.
ALLOWED = {"times.py": {"datetime"}}


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_module_imports_no_io_and_no_clock(path: Path) -> None:
    """No pure module imports networking, file, clock or randomness modules, nor opens files."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name} calls {node.func.id}()"
            continue
        else:
            continue
        bad = FORBIDDEN_IMPORTS.intersection(names) - ALLOWED.get(path.name, set())
        assert not bad, f"{path.name} imports {bad}"
    if path.name in ALLOWED:
        text = path.read_text(encoding="utf-8")
        for reading_the_clock in (".now(", "utcnow", ".today("):
            assert reading_the_clock not in text


def test_importing_the_core_loads_no_network_or_event_loop() -> None:
    """A fresh interpreter importing the core has neither asyncio nor aiohttp loaded."""
    modules = ", ".join(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        for p in PURE_MODULES
        if p.stem != "__init__"
    )
    code = (
        "import sys, importlib\n"
        f"for m in '{modules}'.split(', '): importlib.import_module(m)\n"
        "print(sorted(m for m in ('asyncio', 'aiohttp', 'sqlite3', 'socket') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
