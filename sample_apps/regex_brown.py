"""Lambda handler that redacts customer names with one ``re.sub`` pattern string per name.

Each name becomes its own pattern string, and there are more of them than the re module's cache
holds (512 in CPython 3.11): every ``re.sub`` misses the cache and parses and compiles its
pattern again, on every invocation. Triggers ``regex-compile-hot``; ``regex_green`` is the
fixed twin.

    greenflame lambda invoke greenflame.sample_apps.regex_brown.lambda_handler --invocations 60 --out regex_brown.json
"""

from __future__ import annotations

import re
from typing import Any, Dict

from ._support_tickets import NAMES, TICKETS


def redact(text: str) -> str:
    """``text`` with every known customer name replaced by ``[customer]``."""
    for name in NAMES:
        text = re.sub(rf"\b{re.escape(name)}\b", "[customer]", text)
    return text


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Redact the ticket texts of ``event`` (default: ``days`` days of tickets) before they are stored."""
    tickets = event.get("tickets", TICKETS * int(event.get("days", 1)))
    return {"tickets": [redact(text) for text in tickets]}
