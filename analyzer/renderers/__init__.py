"""Report renderers: one output format per module, each behind ``render(report) -> str``.

A report is the dict made by :func:`greenflame.analyzer.report.analyze_profile`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from . import json_, markdown, text

Renderer = Callable[[Dict[str, Any]], str]

#: Renderers by the name ``greenflame analyze --format`` takes.
RENDERERS: Dict[str, Renderer] = {"text": text.render, "json": json_.render, "markdown": markdown.render}


def render(report: Dict[str, Any], fmt: str) -> str:
    """``report`` rendered as ``fmt``; ValueError for an unknown format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(sorted(RENDERERS))}") from None
    return renderer(report)
