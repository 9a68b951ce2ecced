"""The layout docs/architecture.md describes, kept: the package's folders are layers, and
every import (at run time, under TYPE_CHECKING or inside a function alike) goes to the
same folder or down; no module imports itself back through others; no module is over
400 lines; and only tests/support/seams.py reaches offload's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = CHECKOUT / "offload"

# Bottom first: a folder may import from its own layer's folder and from those below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_base",),
    ("_calls", "_watchdog"),
    ("_pool",),
    ("_submitters",),
    ("_inside",),
    ("_integrations",),
    ("_fronts",),
    ("",),  # the public face: __init__.py, __main__.py, pytest_plugin.py
)
RANK = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}
LONGEST = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(CHECKOUT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder_of(module: str) -> str:
    """The folder of offload a module is in (a folder's __init__ is in it); "" for the
    top level: offload itself, __main__ and pytest_plugin."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else ""


def imports_of(path: Path) -> set[str]:
    """The modules of offload that ``path`` imports, by any import statement in it."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _is_module(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "offload" or name.startswith("offload.")}


def _is_module(name: str) -> bool:
    path = CHECKOUT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def test_the_import_graph_is_read() -> None:
    # Guards the tests below against passing on an empty graph.
    assert "offload._calls.submit" in GRAPH["offload._pool.pool"]  # Pool.run()
    assert "offload._calls.delivery" in GRAPH["offload._pool.contract"]  # under TYPE_CHECKING
    assert "offload._fronts.dask" in GRAPH["offload._fronts.via"]


def test_every_folder_is_a_layer() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == set(RANK) - {""}
    described = (CHECKOUT / "docs" / "architecture.md").read_text()
    for folder in folders:
        assert f"`{folder}/`" in described, f"docs/architecture.md does not describe {folder}/"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_or_across_a_folder(module: str) -> None:
    here = folder_of(module)
    for target in GRAPH[module]:
        there = folder_of(target)
        assert there == here or RANK[there] < RANK[here], f"{module} imports {target}, a layer up or across"


def test_no_module_imports_itself_back() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("an import circle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(GRAPH.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= LONGEST, f"{module} has {lines} lines"


def test_only_the_seams_reach_private_modules() -> None:
    tests = CHECKOUT / "tests"
    seams = tests / "support" / "seams.py"
    for path in tests.rglob("*.py"):
        if path == seams:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            private = [n for n in names if n.startswith("offload.") and n.split(".")[1].startswith("_")]
            assert not private, (
                f"{path.relative_to(CHECKOUT)} imports {private[0]}: go through tests/support/seams.py"
            )
