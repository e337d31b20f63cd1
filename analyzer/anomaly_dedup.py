"""Reporting one anomaly per cause: callers and group totals that only echo a frame's change.

When ``handler.parse`` takes 10 more points of CPU, every frame above it (``handler.main``, the
Lambda bootstrap) and the group's total rise with it. Those echoes are folded into the anomaly of
the frame that explains them, and listed in its ``related_frames``:

- a frame's anomaly is explained by an overlapping one of a frame below it in the stacks whose
  change is at least :data:`EXPLAINED_FRACTION` of its own;
- when the remaining frame is library code (anything but the user's own: see ``codekind``), the
  deepest of its explained callers that is the user's own code is reported instead, since that is
  where the fix is; with no such caller, the library's entry point (``boto3.client`` rather than a
  botocore internal), which is the call the user's code makes;
- a library frame's anomaly inside a larger overlapping anomaly of one of its callers is a detail
  of that call (a credentials lookup inside a client creation);
- a group-total anomaly is explained by any overlapping frame anomaly in the same direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Mapping, Set, Tuple

from .timeseries import TOTAL

if TYPE_CHECKING:  # pragma: no cover
    from .anomalies import Anomaly

EXPLAINED_FRACTION = 0.5
TWIN_TOLERANCE = 0.15


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
    leader = {i: i for i in range(len(frames))}
    for i, j in [*echo_of.items(), *_twins(frames, ancestors)]:
        _union(leader, i, j)
    clusters: Dict[int, List[int]] = {}
    for i in range(len(frames)):
        clusters.setdefault(_find(leader, i), []).append(i)
    result: List[Anomaly] = []
    for members in clusters.values():
        survivor = frames[_representative(members, frames, ancestors, library)]
        survivor.related_frames = sorted({frames[j].frame for j in members} - {survivor.frame})
        result.append(survivor)
    result = _fold_library_details(result, ancestors, library)
    for total in totals:
        cause = next((a for a in result if _overlap(a, total)), None)
        if cause is None:
            result.append(total)
        elif TOTAL not in cause.related_frames:
            cause.related_frames.append(TOTAL)
    return result


def _fold_library_details(
    survivors: List[Anomaly], ancestors: Mapping[str, Set[str]], library: Set[str]
) -> List[Anomaly]:
    """Fold library anomalies that happen inside a larger, overlapping anomaly of one of their callers.

    Creating a client that suddenly takes 80% of the CPU also shows up as a credentials lookup at
    20%: an implementation detail of the call already reported, not a second cause.
    """
    kept: List[Anomaly] = []
    for anomaly in survivors:
        host = None
        if anomaly.frame in library:
            above = ancestors.get(anomaly.frame, set())
            hosts = [
                other
                for other in survivors
                if other is not anomaly
                and other.frame in above
                and _overlap(other, anomaly)
                and abs(other.delta) >= abs(anomaly.delta)
            ]
            host = max(hosts, key=lambda a: abs(a.delta), default=None)
        if host is None:
            kept.append(anomaly)
        else:
            host.related_frames = sorted({*host.related_frames, anomaly.frame, *anomaly.related_frames} - {host.frame})
    return kept


def _depth(anomaly: Anomaly, ancestors: Mapping[str, Set[str]]) -> int:
    return len(ancestors.get(anomaly.frame, ()))


def _representative(
    members: List[int], frames: List[Anomaly], ancestors: Mapping[str, Set[str]], library: Set[str]
) -> int:
    """The deepest frame of a cluster, unless it is library code: then the deepest user-code frame
    that moved with it, else the library's entry point (its shallowest frame), which is the call
    the user's code makes."""
    deepest = max(members, key=lambda j: (_depth(frames[j], ancestors), abs(frames[j].delta)))
    if frames[deepest].frame not in library:
        return deepest
    user = [j for j in members if frames[j].frame not in library]
    if user:
        return max(user, key=lambda j: _depth(frames[j], ancestors))
    return min(members, key=lambda j: _depth(frames[j], ancestors))


def _twins(frames: List[Anomaly], ancestors: Mapping[str, Set[str]]) -> List[Tuple[int, int]]:
    """Pairs of caller and callee whose changes are the same within :data:`TWIN_TOLERANCE`.

    A function that only calls another (``create_client`` -> ``boto3.client``) has the same
    series; which of the two looks a little larger at its peak is noise, so they are one cause.
    """
    pairs: List[Tuple[int, int]] = []
    for i, a in enumerate(frames):
        for j, b in enumerate(frames):
            if a.frame in ancestors.get(b.frame, set()) and _overlap(a, b):
                larger = max(abs(a.delta), abs(b.delta))
                if abs(abs(a.delta) - abs(b.delta)) <= TWIN_TOLERANCE * larger:
                    pairs.append((i, j))
    return pairs


def _find(leader: Dict[int, int], i: int) -> int:
    while leader[i] != i:
        leader[i] = leader[leader[i]]
        i = leader[i]
    return i


def _union(leader: Dict[int, int], i: int, j: int) -> None:
    leader[_find(leader, i)] = _find(leader, j)
