"""Import direction: lower layers never import upper ones, and hotline's modules form no cycle.

Every ``import`` counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). The layers, lowest first, are those of
docs/architecture.md:

0. ``hotline.errors``: the one error tree;
1. ``hotline.protocol``: envelopes, bodies, keys, admission, the recipient lifecycle;
2. ``hotline.network``: the network description (``network.toml`` as values);
3. the pure cores (the modules of ``tests/test_sans_io.py``): Merkle trees, notes and
   checkpoints, the relay and endpoint cores, figures, CAP;
4. the edges: stores, servers, connections, journals, TLS, key files;
5. the entry points: ``hotline.cli``, ``hotline.demo``, ``hotline.cluster``.

A module may import its own layer or lower ones; a pure core imports only pure modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import pytest

import hotline
from tests.test_sans_io import PURE_MODULES

PACKAGE: Final = Path(hotline.__file__).parent
ENTRY_POINTS: Final = ("hotline.cli", "hotline.demo", "hotline.cluster", "hotline.__main__")
LAYER_NAMES: Final = ("errors", "protocol", "network", "pure core", "edge", "entry point")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: Final = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PURE: Final = frozenset(module_name(p) for p in PURE_MODULES)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """Every dotted name ``source`` imports when it runs, functions' imports included."""
    package = module if is_package else module.rpartition(".")[0]
    pending: list[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the hotline modules it imports (a ``from m import f`` counts as ``m``)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        names = imported_names(
            path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
        )
        graph[name] = {n for n in names if n in modules and n != name}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def layer(module: str) -> int:
    """The layer of a hotline module (see the module docstring)."""
    if module in ("hotline", "hotline.errors"):
        return 0
    if module == "hotline.protocol" or module.startswith("hotline.protocol."):
        return 1
    if module == "hotline.network":
        return 2
    if module in PURE:
        return 3
    if module.startswith(ENTRY_POINTS):
        return 5
    return 4


GRAPH: Final = import_graph(MODULES)


def test_hotline_modules_import_one_another_without_a_cycle() -> None:
    """No chain of runtime imports, functions' imports included, leads back to where it began."""
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    """A module imports only modules of its own layer or lower ones."""
    above = sorted(t for t in GRAPH[module] if layer(t) > layer(module))
    assert not above, (
        f"{module} ({LAYER_NAMES[layer(module)]}) imports "
        + ", ".join(f"{t} ({LAYER_NAMES[layer(t)]})" for t in above)
    )


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_cores_import_only_pure_modules(module: str) -> None:
    """A sans-IO module never imports an edge (a store, a server, a journal, TLS)."""
    edges = sorted(t for t in GRAPH[module] if t not in PURE and layer(t) > 0)
    assert not edges, f"{module} imports the edges {edges}"


def test_the_layers_and_pure_set_cover_real_modules() -> None:
    """The checks look at the real package: cores, edges and entry points all exist."""
    assert {"hotline.relay.core", "hotline.endpoint.core", "hotline.protocol.lifecycle"} <= PURE
    layers = {layer(m) for m in MODULES}
    assert layers == set(range(len(LAYER_NAMES)))
    assert sum(len(targets) for targets in GRAPH.values()) > 300


# ----------------------------------------------------------------------------- the checker


def test_imports_inside_functions_count_and_type_checking_ones_do_not() -> None:
    """Imports in functions count, under ``if TYPE_CHECKING:`` none do; relative ones resolve."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hotline.endpoint.service import Endpoint\n"
        "def f() -> None:\n    from hotline.relay import server\n"
        "from .sibling import thing\n"
    )
    names = set(imported_names(source, "hotline.relay.core"))
    assert {"hotline.relay.server", "hotline.relay.sibling"} <= names
    assert "hotline.endpoint.service" not in names


def test_a_cycle_is_found_and_named() -> None:
    """The cycle finder reports a loop through three modules, and nothing for a tree."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
