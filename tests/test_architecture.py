"""The house's shape, kept by tests: no import cycle among the project's modules, and FastAPI or
Starlette only in the web layer (the apps, routers, route and dependency modules, the console and
``shared/web/``), so engines, backends, workers and tools never load a web framework."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

PACKAGES = ("services", "shared")
WEB_FRAMEWORKS = ("fastapi", "starlette")
# Where a web framework belongs: a service's app and router, its routes and dependencies, the
# gateway's console, and the shared web layer.
WEB_LAYER = re.compile(r"^services\.\w+\.(app|router|deps|routes(\..+)?|console(\..+)?)$"
                       r"|^shared\.web(\..+)?$")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(tree: ast.Module, modules: set[str]) -> set[str]:
    """Every module a file imports, at its top or inside a function (a lazy import still ties
    the two), except under ``if TYPE_CHECKING:`` (never run). ``from package import module``
    imports that module (the package's ``__init__`` runs for any of its modules, as Python
    means it to, and is no edge of its own)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _graph() -> tuple[nx.DiGraph, dict[str, set[str]]]:
    modules = _modules()
    graph: nx.DiGraph = nx.DiGraph()
    imports = {}
    for name, path in modules.items():
        imports[name] = _imported(ast.parse(path.read_text(), str(path)), set(modules))
        graph.add_node(name)
        for target in imports[name]:
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph, imports


def test_no_import_cycle_among_the_projects_modules() -> None:
    graph, _ = _graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"modules that import each other, directly or not: {cycles}"


def test_the_cycle_check_finds_a_cycle() -> None:
    graph: nx.DiGraph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1] == [
        ["a", "b", "c"]]


def test_only_the_web_layer_imports_a_web_framework() -> None:
    _, imports = _graph()
    outside = sorted(name for name, targets in imports.items()
                     if any(t.split(".")[0] in WEB_FRAMEWORKS for t in targets)
                     and not WEB_LAYER.match(name))
    assert not outside, f"web framework imported outside the web layer: {outside}"


def test_the_web_layer_pattern() -> None:
    for name in ("services.gateway.app", "services.embedder.router", "services.gateway.deps",
                 "services.gateway.routes.predict", "services.gateway.console",
                 "shared.web", "shared.web.errors"):
        assert WEB_LAYER.match(name), name
    for name in ("shared.errors", "services.gateway.service", "services.trainer.worker",
                 "services.cli.main", "shared.webhooks"):
        assert not WEB_LAYER.match(name), name
