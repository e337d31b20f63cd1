"""Version 2's frames and samples, packed in columns (``docs/wire-format.md``), read with strict validation.

This is the reference reader (standard library only); ``wire_summary`` reads the same columns with
numpy and defers to this one whenever its checks fail, so errors are named here: a bad entry is
named as version 1 would name it (``samples[3].stack[1]: frame 9 does not exist ...``).
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from typing import Any, Dict, List

from ..model import Frame, ProfileError, Sample
from . import _check as check

#: Array type codes of 4- and 8-byte integers (``int`` and ``long long`` on every platform CPython runs on).
_U32 = "I"
_I64 = "q"


def column(value: Any, path: str, code: str) -> array:
    """The base64 text ``value`` as little-endian integers of ``code``'s size."""
    text = check.string(value, path)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProfileError(f"{path}: not valid base64") from None
    numbers = array(code)
    if len(raw) % numbers.itemsize:
        raise ProfileError(f"{path}: {len(raw)} bytes is not a whole number of {numbers.itemsize}-byte integers")
    numbers.frombytes(raw)
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers


def frames(value: Any) -> List[Frame]:
    """The frames of a version-2 ``frames`` object: as many functions, files and lines."""
    doc = check.obj(value, "frames")
    functions = check.array(check.field(doc, "functions", "frames"), "frames.functions")
    files = check.array(check.field(doc, "files", "frames"), "frames.files")
    if len(files) != len(functions):
        raise ProfileError(f"frames.files: has {len(files)} entries, expected one per function ({len(functions)})")
    lines = _sized(doc, "frames", "lines", _U32, len(functions))
    return [
        Frame(check.string(function, f"frames.functions[{i}]"), check.string(file, f"frames.files[{i}]"), line)
        for i, (function, file, line) in enumerate(zip(functions, files, lines))
    ]


def samples(value: Any, width: int, frame_count: int) -> List[Sample]:
    """The samples of a version-2 ``samples`` object (``width`` sample types, ``frame_count`` frames)."""
    doc = check.obj(value, "samples")
    count = check.integer(check.field(doc, "count", "samples"), "samples.count")
    depths = _sized(doc, "samples", "depths", _U32, count)
    label_ids = _sized(doc, "samples", "labels", _U32, count)
    values = _sized(doc, "samples", "values", _I64, count * width)
    stacks = _sized(doc, "samples", "stacks", _U32, sum(depths))
    raw_sets = check.array(check.field(doc, "label_sets", "samples"), "samples.label_sets")
    label_sets = [check.string_map(item, f"samples.label_sets[{i}]") for i, item in enumerate(raw_sets)]
    result = []
    start = 0
    for n, depth in enumerate(depths):
        stack = tuple(stacks[start : start + depth])
        start += depth
        row = values[n * width : (n + 1) * width].tolist()
        result.append(Sample(stack, row, _labels(label_sets, label_ids[n], n)))
        _check_row(stack, row, n, frame_count)
    return result


def _sized(doc: Dict[str, Any], parent: str, name: str, code: str, expected: int) -> array:
    path = f"{parent}.{name}"
    numbers = column(check.field(doc, name, parent), path, code)
    if len(numbers) != expected:
        raise ProfileError(f"{path}: holds {len(numbers)} integers, expected {expected}")
    return numbers


def _check_row(stack: tuple, row: List[int], n: int, frame_count: int) -> None:
    if stack and max(stack) >= frame_count:
        i, index = next((i, index) for i, index in enumerate(stack) if index >= frame_count)
        raise ProfileError(f"samples[{n}].stack[{i}]: frame {index} does not exist (there are {frame_count} frames)")
    if row and min(row) < 0:
        i, found = next((i, v) for i, v in enumerate(row) if v < 0)
        raise ProfileError(f"samples[{n}].values[{i}]: must be at least 0, got {found}")


def _labels(label_sets: List[Dict[str, str]], index: int, n: int) -> Dict[str, str]:
    if index >= len(label_sets):
        raise ProfileError(f"samples[{n}].labels: label set {index} does not exist (there are {len(label_sets)})")
    return dict(label_sets[index])
