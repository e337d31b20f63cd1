"""The server's OpenAPI document: ``openapi.yaml`` with the pipeline's ``openapi_pipeline.yaml`` merged in.

The two files are kept apart so that their owners can change them separately; anything that
reads the API description (tests, a docs build) should use :func:`merged_spec`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

HERE = Path(__file__).resolve().parent
BASE = HERE / "openapi.yaml"
PARTS = (HERE / "openapi_pipeline.yaml",)


def merged_spec(base: Optional[Path] = None, parts: Sequence[Path] = PARTS) -> Dict[str, Any]:
    """The base document with every part's paths and components added; ValueError on a name clash."""
    yaml: Any = importlib.import_module("yaml")  # PyYAML: a test and docs dependency, untyped
    spec: Dict[str, Any] = yaml.safe_load((base or BASE).read_text(encoding="utf-8"))
    for part in parts:
        merge_into(spec, yaml.safe_load(part.read_text(encoding="utf-8")), part.name)
    return spec


def merge_into(spec: Dict[str, Any], part: Dict[str, Any], name: str = "part") -> None:
    """Add ``part``'s paths and components to ``spec`` in place; a name both define is an error."""
    _add(spec.setdefault("paths", {}), part.get("paths") or {}, f"{name}: paths")
    components = spec.setdefault("components", {})
    for section, entries in (part.get("components") or {}).items():
        _add(components.setdefault(section, {}), entries or {}, f"{name}: components.{section}")


def _add(into: Dict[str, Any], entries: Dict[str, Any], where: str) -> None:
    clash = sorted(set(into) & set(entries))
    if clash:
        raise ValueError(f"{where} defines {', '.join(clash)} already in the base document")
    into.update(entries)
