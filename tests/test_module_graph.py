"""The package's layout: rooms as subpackages, each reached only through its public surface, no cycles.

The tree shows the design (issue 23): a few shared modules at the top, one subpackage per room, each
room's private modules underscored and its surface in its ``__init__``'s ``__all__``. A room never reaches
into another room's private modules, the rooms import each other without a cycle, and every module
names its one responsibility in its docstring. No line count: a module is split by responsibility.

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
#: Modules directly in the package (its ``__init__`` included): the shared foundation, nothing more.
MAX_TOP_MODULES = 12
#: The rooms, each a subpackage a reader finds by its name alone.
ROOMS = {"archive", "cli", "durability", "embeddings", "index", "lifecycle", "models", "plugin", "store", "tenancy"}


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
    assert f"{PACKAGE}.index" in graph[f"{PACKAGE}.store._store"]  # the graph is read as intended
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_lifecycle_does_not_know_the_stores() -> None:
    graph = _import_graph()
    lifecycle = [name for name in graph if name.startswith(f"{PACKAGE}.lifecycle")]
    assert lifecycle
    assert all(_room(target) != "store" for name in lifecycle for target in graph[name])


def test_no_mixin_classes() -> None:
    mixins = [
        f"{path.relative_to(PACKAGE_ROOT)}:{node.name}"
        for path, _ in _modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Mixin")
    ]
    assert mixins == []


def _room(module: str) -> str:
    """The room a module belongs to: its subpackage, or the module itself when it is at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_private(module: str) -> bool:
    return any(part.startswith("_") and part not in {"__init__", "__main__"} for part in module.split(".")[2:])


def test_the_top_of_the_package_is_the_shared_foundation_only() -> None:
    top = sorted(path.name for path in PACKAGE_ROOT.glob("*.py"))
    rooms = sorted(path.name for path in PACKAGE_ROOT.iterdir() if (path / "__init__.py").is_file())
    assert set(rooms) == ROOMS
    assert len(top) <= MAX_TOP_MODULES, top


def test_every_room_states_what_it_owns_and_keeps_its_modules_private() -> None:
    for room in sorted(ROOMS):
        init = PACKAGE_ROOT / room / "__init__.py"
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{room}/__init__.py says what the room owns"
        exported = [node for node in tree.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)]
        assert exported, f"{room}/__init__.py has a public surface (__all__)"
        public = [path.name for path in (PACKAGE_ROOT / room).glob("*.py")
                  if not path.name.startswith("_")]
        assert public == [], f"{room}: modules are private (underscored); the surface is the __init__"


def test_every_module_names_its_responsibility() -> None:
    missing = [name for name, (path, _) in _modules().items()
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
               and not name.endswith("__main__")]
    assert missing == []


def test_no_room_reaches_into_another_rooms_private_modules() -> None:
    graph = _import_graph()
    reaching = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                      if _is_private(target) and _room(target) != _room(name))
    assert reaching == []


def test_the_rooms_import_each_other_without_a_cycle() -> None:
    rooms: dict[str, set[str]] = {}
    for name, targets in _import_graph().items():
        if name == PACKAGE:
            continue  # the package's own surface gathers every room
        rooms.setdefault(_room(name), set()).update(
            _room(target) for target in targets if target != PACKAGE and _room(target) != _room(name))
    assert rooms["index"] and "store" not in rooms["archive"]  # read as intended: the store reads the archive's rules
    assert _cycles(rooms) == []
