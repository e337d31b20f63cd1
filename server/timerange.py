"""Parsing of the ``from`` and ``to`` query parameters into Unix nanoseconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Optional, Tuple

from .errors import ApiError

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NS = 1_000_000_000


def parse_time(name: str, text: Optional[str], now_ns: Optional[int] = None) -> Optional[int]:
    """``text`` as Unix nanoseconds, or None when absent.

    Accepted: Unix seconds (``1714557600``, fractions allowed), RFC 3339 (``2024-05-01T10:00:00Z``;
    UTC when no offset is given), and ``now`` or ``now-<N><s|m|h|d|w>``.
    """
    if text is None or text.strip() == "":
        return None
    text = text.strip()
    now = time.time_ns() if now_ns is None else now_ns
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return now - (int(amount) * _UNIT_SECONDS[unit] * _NS if amount else 0)
    try:
        return round(float(text) * _NS)
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be Unix seconds, an RFC 3339 time or now-<N><s|m|h|d|w>"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * _NS + moment.microsecond * 1000


def parse_range(start: Optional[str], end: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """The ``from``/``to`` pair as nanoseconds; 400 when ``from`` is not before ``to``."""
    now = time.time_ns()
    start_ns = parse_time("from", start, now)
    end_ns = parse_time("to", end, now)
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise ApiError(400, "invalid_parameter", "from must be before to")
    return start_ns, end_ns
