"""The import-layers contract (ARCHITECTURE.md): a folder is a layer; a layer may import the
layers below it, never one above; no import cycles; each third-party library in its room.

Read from the source with ``ast`` (every import a module runs, at module level or inside a
function). Imports under ``if TYPE_CHECKING:`` are left out: they run only for the type
checker and make no dependency at run time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provision"

#: top to bottom; a module of layer i may import layers i..end only
LAYERS = (
    "provision",  # the public facade (provision/__init__.py)
    "cli",
    "testing",  # the pytest plugin (on the public API)
    "api",
    "doctor",
    "run",
    "load",
    "tasks",
    "cloud",
    "verify",
    "cluster",
    "sandbox",
    "aws",
    "connection",
    "models",
    "errors",
)

#: third-party library -> the only places that may import it
LIBRARIES = {
    "boto3": ("aws",),
    "botocore": ("aws",),
    "paramiko": ("connection.ssh", "connection.keys"),
    "cryptography": ("connection.keys",),
    "click": ("cli",),
    "rich": ("cli",),
    "jinja2": ("load.templating",),
    "redis": ("cluster.routes",),
    "moto": ("sandbox.moto_server",),
    "fabric": ("connection.fabric",),
    "pytest": ("testing.plugin",),
    # doctor reads compose files as YAML node trees (every key's position): PyYAML's own API
    # tasks.docker_stack: merges the compose files a host holds into a stack file
    "yaml": ("load.yamlsource", "load.inventory", "doctor._sources", "tasks.docker_stack"),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every runtime import in ``path``."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "provision"


def _graph() -> dict[str, list[tuple[str, int]]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in modules.items():
        graph[name] = _imports(path, name)
    return graph


def layer_violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    problems = []
    for module, imports in sorted(graph.items()):
        own = _layer(module)
        for target, line in imports:
            if not target.startswith("provision.") or target == "provision":
                continue
            other = _layer(target)
            if other not in rank:
                continue  # provision.X where X is a name, not a module (checked elsewhere)
            if rank[other] < rank[own]:
                problems.append(f"{module}:{line} imports {target} ({own} is below {other})")
    return problems


def test_every_folder_is_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    roots = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert roots == {"errors"}, f"the root holds only the facade, errors and models: {roots}"
    assert folders | roots == set(LAYERS) - {"provision"}


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert layer_violations(_graph()) == []


def test_the_check_catches_an_upward_import() -> None:
    # The contract can fail: an import of the CLI from the connection layer is reported.
    graph = {"provision.connection.ssh": [("provision.cli", 7)]}
    assert layer_violations(graph) == [
        "provision.connection.ssh:7 imports provision.cli (connection is below cli)"
    ]


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    modules = set(graph)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, imports in graph.items():
        for target, _ in imports:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a module importing its own package (``from provision.verify import probes``)
            # is the package's doing, not a cycle between modules
            if target and target != module and not module.startswith(target + "."):
                edges[module].add(target)
    cycles = _cycles(edges)
    assert cycles == [], cycles


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_each_library_is_imported_in_its_room(library: str) -> None:
    allowed = LIBRARIES[library]
    where = []
    for module, imports in _graph().items():
        if any(t == library or t.startswith(library + ".") for t, _ in imports):
            rel = module.removeprefix("provision.")
            if not any(rel == a or rel.startswith(a + ".") for a in allowed):
                where.append(module)
    assert where == [], f"{library} imported outside {allowed}: {where}"


def test_the_architecture_room_table_names_every_layer() -> None:
    """ARCHITECTURE.md's room table and LAYERS agree: a new folder is drawn where it is
    explained (``testing/`` was missing)."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+)(?:/|\.py)` \|", text, flags=re.MULTILINE))
    layers = {name for name in LAYERS if name != "provision"} | {"__init__"}
    assert rows == layers
