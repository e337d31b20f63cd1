"""The report as one JSON document (what ``greenflame analyze --format json`` prints)."""

from __future__ import annotations

import json

from ..report import Report


def render(report: Report) -> str:
    """Indented JSON with a final newline; NaN and infinities are refused, not emitted."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"
