"""The layer ships an explicit list of agent modules: closed under import, and every module decided."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

import greenflame.agent
from greenflame.devtools.lambda_layer import LAYER_MODULES, SERVICE_ONLY_MODULES, layer_entries

AGENT = Path(greenflame.agent.__file__).resolve().parent


def _agent_imports(source: Path, known: Set[str]) -> Set[str]:
    """The agent modules ``source`` imports, at its top or inside functions."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
            elif node.level == 0 and (node.module or "").startswith("greenflame.agent"):
                rest = (node.module or "")[len("greenflame.agent") :].lstrip(".")
                names = [rest] if rest else [alias.name for alias in node.names]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("greenflame.agent."))
    return found & known


def _modules() -> Dict[str, Path]:
    return {path.stem: path for path in AGENT.glob("*.py")}


def test_every_agent_module_is_in_the_layer_or_service_only() -> None:
    modules = set(_modules())
    assert set(LAYER_MODULES) | set(SERVICE_ONLY_MODULES) == modules
    assert not set(LAYER_MODULES) & set(SERVICE_ONLY_MODULES)


def test_the_layer_modules_import_only_layer_modules() -> None:
    modules = _modules()
    for name in LAYER_MODULES:
        missing = _agent_imports(modules[name], set(modules)) - set(LAYER_MODULES)
        assert not missing, f"agent/{name}.py imports {sorted(missing)}, which the layer does not ship"


def test_the_import_check_sees_lazy_and_absolute_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from . import guard\ndef f():\n    from greenflame.agent.runner import x\n    import json\n")
    assert _agent_imports(source, {"guard", "runner", "config"}) == {"guard", "runner"}


def test_the_layer_holds_exactly_the_listed_sources() -> None:
    names = {name for name, _data, _mode in layer_entries() if name.endswith(".py")}
    assert names == {f"python/greenflame/agent/{module}.py" for module in LAYER_MODULES}
