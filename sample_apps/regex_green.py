"""The fixed twin of ``regex_brown``: one alternation of all the names, compiled once at init.

Must not trigger ``regex-compile-hot``.
"""

from __future__ import annotations

import re
from typing import Any, Dict

from ._support_tickets import NAMES, TICKETS

# Initialization code: compiled once per execution environment.
CUSTOMER_NAMES = re.compile(r"\b(?:" + "|".join(map(re.escape, NAMES)) + r")\b")


def redact(text: str) -> str:
    """``text`` with every known customer name replaced by ``[customer]``."""
    return CUSTOMER_NAMES.sub("[customer]", text)


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Redact the ticket texts of ``event`` (default: ``days`` days of tickets) before they are stored."""
    tickets = event.get("tickets", TICKETS * int(event.get("days", 1)))
    return {"tickets": [redact(text) for text in tickets]}
