"""Report renderers: one output format per module, each behind ``render(report) -> str``.

A report is the :class:`~greenflame.analyzer.report.Report` made by
:func:`greenflame.analyzer.report.analyze_profile`.
"""

from __future__ import annotations

from typing import Callable, Dict

from ..report import Report
from . import json_, markdown, text

Renderer = Callable[[Report], str]

#: Renderers by the name ``greenflame analyze --format`` takes.
RENDERERS: Dict[str, Renderer] = {"text": text.render, "json": json_.render, "markdown": markdown.render}


def render(report: Report, fmt: str) -> str:
    """``report`` rendered as ``fmt``; ValueError for an unknown format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(sorted(RENDERERS))}") from None
    return renderer(report)
