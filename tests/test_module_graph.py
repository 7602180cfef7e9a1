"""The package's module graph: no import cycles, no mixins (composition is the rule), no big modules.

Read from the source with :mod:`ast`, so imports made only for type checking count too: a cycle
hidden behind ``TYPE_CHECKING`` still couples the modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import strands_s3_vectors_memory

PACKAGE_ROOT = Path(strands_s3_vectors_memory.__file__).parent
PACKAGE = PACKAGE_ROOT.name
#: Most lines of one module of the memory package: a module past it holds more than one job, and a
#: reader no longer finds things by file name (issue 12). The embedded engine is another package
#: (``s3vectors_engine``) and is exempt: its boto3-shaped client and storage mirror one service.
MAX_MODULE_LINES = 450


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = [PACKAGE, *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(name: str, path: Path, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The package's modules ``name`` imports (``from . import x`` counts as importing ``x``)."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:  # relative: level 1 is this package, 2 its parent...
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                if target in modules and target != name:
                    yield target


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imported(name, path, is_package, set(modules))) for name, (path, is_package) in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_among_the_package_modules() -> None:
    graph = _import_graph()
    assert f"{PACKAGE}.index" in graph[f"{PACKAGE}.store"]  # the graph is read as intended
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_lifecycle_does_not_know_the_stores() -> None:
    graph = _import_graph()
    lifecycle = [name for name in graph if name.startswith(f"{PACKAGE}.lifecycle")]
    assert lifecycle
    assert all(f"{PACKAGE}.store" not in graph[name] for name in lifecycle)


def test_no_mixin_classes() -> None:
    mixins = [
        f"{path.relative_to(PACKAGE_ROOT)}:{node.name}"
        for path, _ in _modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Mixin")
    ]
    assert mixins == []


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {
        str(path.relative_to(PACKAGE_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path, _ in _modules().values()
    }
    assert len(lengths) > 50  # every module was read
    assert {name: lines for name, lines in lengths.items() if lines > MAX_MODULE_LINES} == {}
