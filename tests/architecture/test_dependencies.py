"""The packages depend on each other one way, as docs/architecture.md draws it, and no module
import cycle exists among top-level imports.

cli -> devtools -> server -> analyzer, and the agent imports nothing else of greenflame's (it
installs alone into a user's Lambda package). Imports inside functions count for the package
rules (a lazy import is still a dependency); only module-level imports count for cycles, since
a cycle among those is what breaks at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from support.paths import ROOT

PACKAGES = ("agent", "analyzer", "server", "cli", "devtools", "sample_apps")

#: What each package may import of greenflame's, besides itself.
ALLOWED: Dict[str, Set[str]] = {
    "agent": set(),
    "analyzer": set(),
    "server": {"analyzer", "agent"},
    "devtools": {"server", "analyzer", "agent"},
    "cli": {"devtools", "server", "analyzer", "agent"},
    "sample_apps": {"agent"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "greenflame." + ".".join(parts)


def _sources() -> Iterator[Tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


def _imports(module: str, path: Path, top_level_only: bool, known: Set[str] = frozenset()) -> Iterator[str]:
    """What ``module`` imports: ``from P import name`` is ``P.name`` where that is a module in ``known``."""
    tree = ast.parse(path.read_text("utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    is_package = path.name == "__init__.py"
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield submodule if submodule in known else target


def _package(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "greenflame" else ""


def test_packages_depend_one_way() -> None:
    wrong: List[str] = []
    for module, path in _sources():
        own = _package(module)
        for target in set(_imports(module, path, top_level_only=False)):
            other = _package(target)
            if other and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def _graph() -> Dict[str, Set[str]]:
    modules = dict(_sources())
    graph: Dict[str, Set[str]] = {}
    for module, path in modules.items():
        imported = _imports(module, path, top_level_only=True, known=set(modules))
        graph[module] = {t for t in imported if t in modules and t != module}
    return graph


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle of ``graph`` (a list of modules, first repeated last), or []."""
    state: Dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: List[Tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return []


def test_no_import_cycles() -> None:
    assert _cycle(_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: Dict[str, Set[str]], expected: List[str]) -> None:
    assert _cycle(graph) == expected


def test_relative_imports_resolve_to_their_package(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from . import guard\nfrom ..analyzer.model import Frame\nimport greenflame.server.app\n")
    known = {"greenflame.agent.guard", "greenflame.analyzer.model"}
    found = set(_imports("greenflame.agent.m", source, top_level_only=True, known=known))
    assert found == {"greenflame.agent.guard", "greenflame.analyzer.model", "greenflame.server.app"}
