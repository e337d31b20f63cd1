"""Reporting one anomaly per cause: callers and group totals that only echo a frame's change.

When ``handler.parse`` takes 10 more points of CPU, every frame above it (``handler.main``, the
Lambda bootstrap) and the group's total rise with it. Those echoes are folded into the anomaly of
the frame that explains them, and listed in its ``related_frames``:

- a frame's anomaly is explained by an overlapping one of a frame below it in the stacks whose
  change is at least :data:`EXPLAINED_FRACTION` of its own;
- when the remaining frame is library code (site-packages, the standard library), the deepest of
  its explained callers that is the user's own code is reported instead: that is where the fix is;
- a group-total anomaly is explained by any overlapping frame anomaly in the same direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Mapping, Set

from .timeseries import TOTAL

if TYPE_CHECKING:  # pragma: no cover
    from .anomalies import Anomaly

EXPLAINED_FRACTION = 0.5


def _overlap(a: Anomaly, b: Anomaly) -> bool:
    a_end = a.end_unix_s if a.end_unix_s is not None else float("inf")
    b_end = b.end_unix_s if b.end_unix_s is not None else float("inf")
    return a.direction == b.direction and a.start_unix_s < b_end and b.start_unix_s < a_end


def _explains(child: Anomaly, parent: Anomaly, ancestors: Mapping[str, Set[str]]) -> bool:
    if parent.frame not in ancestors.get(child.frame, set()) or not _overlap(child, parent):
        return False
    return abs(child.delta) >= EXPLAINED_FRACTION * abs(parent.delta)


def fold(anomalies: List[Anomaly], ancestors: Mapping[str, Set[str]], library: Set[str]) -> List[Anomaly]:
    """The anomalies of one group with echoes folded into the anomaly that explains them."""
    frames = [a for a in anomalies if a.frame != TOTAL]
    totals = [a for a in anomalies if a.frame == TOTAL]
    echo_of: Dict[int, int] = {}
    for i, parent in enumerate(frames):
        children = [j for j, child in enumerate(frames) if j != i and _explains(child, parent, ancestors)]
        if children:
            echo_of[i] = max(children, key=lambda j: _depth(frames[j], ancestors))
    for i, leaf in enumerate(frames):
        if i in echo_of or leaf.frame not in library:
            continue
        callers = [j for j, other in enumerate(frames) if _user_caller(other, leaf, ancestors, library)]
        if callers:
            chosen = max(callers, key=lambda j: _depth(frames[j], ancestors))
            echo_of.pop(chosen, None)
            echo_of[i] = chosen
    result: List[Anomaly] = []
    for i, survivor in enumerate(frames):
        if i in echo_of:
            continue
        echoes = {frames[j].frame for j in range(len(frames)) if j != i and _root(j, echo_of) == i}
        survivor.related_frames = sorted(echoes - {survivor.frame})
        result.append(survivor)
    for total in totals:
        cause = next((a for a in result if _overlap(a, total)), None)
        if cause is None:
            result.append(total)
        elif TOTAL not in cause.related_frames:
            cause.related_frames.append(TOTAL)
    return result


def _depth(anomaly: Anomaly, ancestors: Mapping[str, Set[str]]) -> int:
    return len(ancestors.get(anomaly.frame, ()))


def _user_caller(caller: Anomaly, leaf: Anomaly, ancestors: Mapping[str, Set[str]], library: Set[str]) -> bool:
    """Whether ``caller`` is the user's code above library frame ``leaf`` and moved with it."""
    if caller.frame in library or caller.frame not in ancestors.get(leaf.frame, set()) or not _overlap(caller, leaf):
        return False
    return abs(caller.delta) >= EXPLAINED_FRACTION * abs(leaf.delta)


def _root(index: int, explained_by: Mapping[int, int]) -> int:
    seen: Set[int] = set()
    while index in explained_by and index not in seen:
        seen.add(index)
        index = explained_by[index]
    return index
