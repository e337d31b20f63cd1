"""The report as one JSON document (what ``greenflame analyze --format json`` prints)."""

from __future__ import annotations

import json
from typing import Any, Dict


def render(report: Dict[str, Any]) -> str:
    """Indented JSON with a final newline; NaN and infinities are refused, not emitted."""
    return json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
