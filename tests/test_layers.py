"""The dependency rule of the package, checked on the source of every module.

Layers, from the bottom: the base (errors, optional imports, score summaries),
the run directories (``rundir``, the only place that knows file names and
formats), the index (``pyhermes.index``, the only place that knows SQL), the
library objects (``Experiment`` and its lists, results, plots), presentation
(``present``), the front ends (CLI, web app, notebook views), and the package
itself. A module imports only from its own layer or below, and no group of
modules imports itself round: every ``import`` counts, at the top of a module,
inside a function or under ``TYPE_CHECKING`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pyhermes"

#: Layers from the bottom up: a module belongs to the first whose prefix names it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("pyhermes.errors", "pyhermes._optional", "pyhermes._version", "pyhermes.summary")),
    ("run directories", ("pyhermes.rundir",)),
    # The index in stages: what every stage shares, where it lives, answering, syncing, one folder's index.
    ("index: shared rules", ("pyhermes.index.rules",)),
    ("index: store", ("pyhermes.index.store",)),
    ("index: query", ("pyhermes.index.query",)),
    ("index: sync", ("pyhermes.index.sync",)),
    ("index: one folder", ("pyhermes.index.run_index", "pyhermes.index.maintenance")),
    ("index", ("pyhermes.index",)),
    # The documented objects: lists (runlist), a run (experiment imports runlist), the catalog
    # (imports both) and their facade storage; results, plots and curves.
    ("library objects", (
        "pyhermes.runlist", "pyhermes.experiment", "pyhermes.catalog", "pyhermes.storage",
        "pyhermes.result", "pyhermes.plot", "pyhermes.curves", "pyhermes.curation",
    )),
    ("presentation", ("pyhermes.present",)),
    ("front ends", ("pyhermes.cli", "pyhermes.web", "pyhermes.notebook")),
    ("package", ("pyhermes",)),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports, wherever the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                wanted.add(submodule if submodule in modules else source)
    return {target for target in wanted if target in modules and target != name}


def _layer(name: str) -> int:
    for number, (_, prefixes) in enumerate(LAYERS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            if prefixes in {("pyhermes",), ("pyhermes.index",)} and name not in prefixes:
                continue
            return number
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another round (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_module_imports_only_its_own_layer_or_below() -> None:
    graph = _graph()
    upward = [
        f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer(target) > _layer(name)
    ]
    assert upward == []


def test_no_modules_import_one_another_round() -> None:
    assert _cycles(_graph()) == []


def test_the_check_finds_what_it_looks_for() -> None:
    """The checks fail on a made-up upward import and a made-up cycle."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _layer("pyhermes.index.run_index") < _layer("pyhermes.present") < _layer("pyhermes.cli.ls")
    assert _layer("pyhermes.index.store.engine") < _layer("pyhermes.index.query.frame") < _layer("pyhermes.index.sync.syncer")
    graph = _graph()
    assert "pyhermes.result" in graph["pyhermes.experiment"]  # function-local imports count
    assert "pyhermes.storage" in graph["pyhermes.web.state"]  # TYPE_CHECKING imports count


def _private_imports() -> list[str]:
    """``from pyhermes... import _name`` statements: a module reaching into another's privates."""
    found = []
    for name, path in sorted(_modules().items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyhermes"):
                found += [
                    f"{name} imports {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    assert _private_imports() == []


#: The most lines a module of the package may hold: a module that grows past it holds
#: more than one thing and is split (see docs/architecture.md).
MAX_MODULE_LINES = 600


def test_no_module_is_over_the_size_of_one_thing() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in _modules().items()}
    assert {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES} == {}
