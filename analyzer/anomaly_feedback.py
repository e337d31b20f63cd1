"""User feedback on anomalies, and how it changes what the detector reports next.

The store is plain JSON-ready data, ``{group: {frame: entry}}``, with ``entry`` =
``{"useful": int, "not_useful": int, "last": "useful" | "not_useful", "since_unix_s": int}``.
Every function here is pure: recording returns a new store.

Effects, per (group, frame):

- each "not useful" multiplies the thresholds (score and minimum effect) by
  :data:`NOT_USEFUL_FACTOR`, up to :data:`MAX_FACTOR`; the baseline keeps learning, so the level the
  user called normal is absorbed.
- a "useful" resets the thresholds and freezes the baseline at the anomaly's start
  (``since_unix_s``): the regression keeps being reported until it goes away, instead of being
  learnt as the new normal.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Mapping, Optional

Feedback = Dict[str, Dict[str, Dict[str, Any]]]

NOT_USEFUL_FACTOR = 1.6
MAX_FACTOR = 6.0


def empty() -> Feedback:
    """A store with no feedback."""
    return {}


def record(feedback: Mapping[str, Any], group: str, frame: str, useful: bool, since_unix_s: int) -> Feedback:
    """A copy of ``feedback`` with one more vote on (group, frame); ``since_unix_s`` is the anomaly's start."""
    store: Feedback = copy.deepcopy(dict(feedback))
    entry = store.setdefault(group, {}).setdefault(frame, {"useful": 0, "not_useful": 0})
    kind = "useful" if useful else "not_useful"
    entry[kind] = int(entry.get(kind, 0)) + 1
    entry["last"] = kind
    entry["since_unix_s"] = int(since_unix_s)
    if useful:
        # A confirmation cancels the earlier dismissals' threshold increase.
        entry["not_useful"] = 0
    return store


def _entry(feedback: Optional[Mapping[str, Any]], group: str, frame: str) -> Mapping[str, Any]:
    if not feedback:
        return {}
    frames = feedback.get(group)
    if not isinstance(frames, Mapping):
        return {}
    entry = frames.get(frame)
    return entry if isinstance(entry, Mapping) else {}


def threshold_factor(feedback: Optional[Mapping[str, Any]], group: str, frame: str) -> float:
    """How much higher than the default the score and effect thresholds are for (group, frame)."""
    dismissals = int(_entry(feedback, group, frame).get("not_useful", 0))
    return float(min(MAX_FACTOR, NOT_USEFUL_FACTOR**dismissals))


def frozen_since(feedback: Optional[Mapping[str, Any]], group: str, frame: str) -> Optional[int]:
    """The time after which (group, frame)'s baseline must not learn, or None to keep learning."""
    entry = _entry(feedback, group, frame)
    if entry.get("last") != "useful":
        return None
    since = entry.get("since_unix_s")
    return int(since) if isinstance(since, (int, float)) else None


def validate(document: Any) -> Feedback:
    """Check a decoded feedback store's shape; ValueError with a one-line message if it is wrong."""
    if not isinstance(document, dict):
        raise ValueError("feedback must be a JSON object of group -> frame -> entry")
    for group, frames in document.items():
        if not isinstance(frames, dict):
            raise ValueError(f"feedback[{group!r}] must be an object of frame -> entry")
        for frame, entry in frames.items():
            if not isinstance(entry, dict):
                raise ValueError(f"feedback[{group!r}][{frame!r}] must be an object")
            for key in ("useful", "not_useful", "since_unix_s"):
                if key in entry and not isinstance(entry[key], int):
                    raise ValueError(f"feedback[{group!r}][{frame!r}].{key} must be an integer")
    return document
