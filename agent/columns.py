"""A report's frames and samples as columns: wire format version 2 (``docs/wire-format.md``).

The aggregator drains a report with one object per frame and per sample (version 1), which is
what tests and files show. What goes to the server carries them as columns instead: the frames'
functions, files and lines, and for the samples each one's stack depth, all stacks' frame indices
end to end, the values row by row, and each sample's index into a table of distinct label sets.
Numbers are little-endian and base64-encoded, so a reader takes each column in one step instead of
one object per frame, sample or number.

Only ``array`` and ``sys`` are imported with this module; ``base64`` is one of the scheduler
thread's imports (:data:`~greenflame.agent.thread_imports.REPORTS`).
"""

from __future__ import annotations

import sys
from array import array

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Tuple

#: Format version of a columnar report.
COLUMNAR_VERSION = 2


#: Array type codes of 4- and 8-byte integers (``int`` and ``long long`` on every platform CPython runs on).
_U32 = "I"
_I64 = "q"


def _packed(code: str, numbers: Iterable[int]) -> str:
    """``numbers`` as little-endian integers of ``code``'s size, base64-encoded."""
    import base64  # with the scheduler thread's imports (thread_imports.REPORTS), not at start-up

    packed = array(code, numbers)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def columnar(report: Mapping[str, Any]) -> Dict[str, Any]:
    """``report`` (version 1: a list of frames, a list of samples) with both as columns (version 2)."""
    document = dict(report)
    document["version"] = COLUMNAR_VERSION
    if "frames" in report:
        document["frames"] = _frame_columns(report["frames"])
    if "samples" in report:
        document["samples"] = _sample_columns(report["samples"])
    return document


def _frame_columns(frames: List[Mapping[str, Any]]) -> Dict[str, Any]:
    return {
        "functions": [frame["function"] for frame in frames],
        "files": [frame["file"] for frame in frames],
        "lines": _packed(_U32, [frame["line"] for frame in frames]),
    }


def _sample_columns(samples: List[Mapping[str, Any]]) -> Dict[str, Any]:
    label_sets: List[Dict[str, str]] = []
    label_index: Dict[Tuple[Tuple[str, str], ...], int] = {}
    labels = []
    for sample in samples:
        key = tuple(sample.get("labels", {}).items())
        index = label_index.get(key)
        if index is None:
            index = label_index[key] = len(label_sets)
            label_sets.append(dict(key))
        labels.append(index)
    return {
        "count": len(samples),
        "depths": _packed(_U32, [len(sample["stack"]) for sample in samples]),
        "stacks": _packed(_U32, [index for sample in samples for index in sample["stack"]]),
        "values": _packed(_I64, [value for sample in samples for value in sample["values"]]),
        "label_sets": label_sets,
        "labels": _packed(_U32, labels),
    }
