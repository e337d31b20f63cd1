"""speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json).

Writing produces one ``sampled`` profile per sample type, named after the sample type, over
shared frames; the file's ``name`` is the profile group and ``exporter`` starts with
``greenflame`` so that reading it back restores the sample types.

Reading accepts ``sampled`` and ``evented`` profiles from any exporter. For files written
by other tools, each profile's values become one column chosen by its unit (time units become
``wall`` in nanoseconds, ``none`` becomes ``wall`` in samples, ``bytes`` becomes ``memory``),
evented profiles weigh each stack by the time it was the open stack, and when the file holds
several profiles (py-spy writes one per thread) each sample is labelled ``speedscope_profile``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Tuple

from ..model import WALL, Frame, Profile, ProfileError, SampleType
from . import _check as check
from ._common import folded_stacks, frame_of, preferred_type, quote

__all__ = ["EXPORTER", "SCHEMA", "dumps", "is_speedscope", "loads", "profile_from_document"]

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
EXPORTER = "greenflame"
PROFILE_LABEL = "speedscope_profile"

# speedscope unit -> nanoseconds per unit, for time units.
_TIME_UNITS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000}
_UNITS = {"none", "bytes", *_TIME_UNITS}

Stack = Tuple[int, ...]


# -- writing ------------------------------------------------------------------


def dumps(p: Profile) -> bytes:
    """``p`` as a speedscope file: one sampled profile per sample type (labels are merged away)."""
    p.validate()
    document: Dict[str, Any] = {
        "$schema": SCHEMA,
        "shared": {"frames": [_frame_to_json(frame) for frame in p.frames]},
        "profiles": [_sampled_profile(p, column) for column in range(len(p.sample_types))],
        "activeProfileIndex": preferred_type(p),
        "exporter": EXPORTER,
    }
    if p.group:  # without a name, speedscope shows the file's name
        document["name"] = p.group
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _frame_to_json(frame: Frame) -> Dict[str, Any]:
    out: Dict[str, Any] = {"name": frame.function}
    if frame.file:
        out["file"] = frame.file
    if frame.line:
        out["line"] = frame.line
    return out


def _sampled_profile(p: Profile, column: int) -> Dict[str, Any]:
    sample_type = p.sample_types[column]
    totals = folded_stacks(p, column)
    weights = list(totals.values())
    return {
        "type": "sampled",
        "name": sample_type.name,
        "unit": _unit_out(sample_type.unit),
        "startValue": 0,
        "endValue": sum(weights),
        "samples": [list(stack) for stack in totals],
        "weights": weights,
    }


def _unit_out(unit: str) -> str:
    return unit if unit in _UNITS and unit != "none" else "none"


# -- reading ------------------------------------------------------------------


def is_speedscope(document: Any) -> bool:
    """Whether a decoded JSON document claims to be a speedscope file."""
    if not isinstance(document, dict):
        return False
    schema = document.get("$schema")
    if isinstance(schema, str) and "speedscope" in schema:
        return True
    return "shared" in document and "profiles" in document


def loads(data: bytes) -> Profile:
    """Parse a speedscope file (UTF-8 JSON bytes)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ProfileError(f"speedscope file is not valid JSON: {error}") from None
    return profile_from_document(document)


def profile_from_document(document: Any) -> Profile:
    """Build a Profile from a decoded speedscope file."""
    doc = check.obj(document, "speedscope file")
    shared = check.obj(check.field(doc, "shared", ""), "shared")
    raw_frames = check.array(check.field(shared, "frames", "shared"), "shared.frames")
    frames = [_frame(item, f"shared.frames[{i}]") for i, item in enumerate(raw_frames)]
    profiles = check.array(check.field(doc, "profiles", ""), "profiles")
    if not profiles:
        raise ProfileError("profiles: the speedscope file holds no profile")
    exporter = doc.get("exporter")
    ours = isinstance(exporter, str) and exporter.startswith(EXPORTER)
    result = Profile(sample_types=[], frames=frames, sample_period_ns=0)
    if ours and isinstance(doc.get("name"), str):
        result.group = doc["name"]
    for i, item in enumerate(profiles):
        _add_profile(result, item, f"profiles[{i}]", ours, labelled=len(profiles) > 1)
    if not result.sample_types:  # pragma: no cover - profiles is non-empty, each adds a type
        raise ProfileError("profiles: no sample type")
    return result


def _frame(value: Any, path: str) -> Frame:
    entry = check.obj(value, path)
    name = check.string(check.field(entry, "name", path), f"{path}.name")
    file = check.string(entry.get("file", ""), f"{path}.file")
    line = check.integer(entry.get("line", 0), f"{path}.line")
    return frame_of(name, file, line)


def _add_profile(result: Profile, value: Any, path: str, ours: bool, labelled: bool) -> None:
    entry = check.obj(value, path)
    name = check.string(entry.get("name", ""), f"{path}.name")
    unit = check.string(check.field(entry, "unit", path), f"{path}.unit")
    if unit not in _UNITS:
        raise ProfileError(f"{path}.unit: expected one of {', '.join(sorted(_UNITS))}, got {quote(unit)}")
    kind = check.field(entry, "type", path)
    if kind == "sampled":
        weights = _sampled_weights(entry, path, len(result.frames))
    elif kind == "evented":
        weights = _evented_weights(entry, path, len(result.frames))
    else:
        raise ProfileError(f"{path}.type: expected 'sampled' or 'evented', got {quote(kind)}")
    sample_type, scale = _column_for(name, unit, ours)
    column = _ensure_type(result, sample_type)
    labels = {PROFILE_LABEL: name} if labelled and not ours else {}
    for stack, weight in weights.items():
        amount = round(weight * scale)
        if amount:
            values = [0] * len(result.sample_types)
            values[column] = amount
            result.add_ids(stack, values, labels)


def _column_for(name: str, unit: str, ours: bool) -> Tuple[SampleType, float]:
    """The sample type a speedscope profile's values go to, and the factor to convert them."""
    if ours and name:
        return SampleType(name, "samples" if unit == "none" else unit), 1
    if unit in _TIME_UNITS:
        return SampleType(WALL, "nanoseconds"), _TIME_UNITS[unit]
    if unit == "bytes":
        return SampleType("memory", "bytes"), 1
    return SampleType(WALL, "samples"), 1


def _ensure_type(result: Profile, sample_type: SampleType) -> int:
    """The column for ``sample_type``, added if new; a name clash with another unit gets a suffix."""
    for i, existing in enumerate(result.sample_types):
        if existing == sample_type:
            return i
        if existing.name == sample_type.name:
            return _ensure_type(result, SampleType(f"{sample_type.name}_{sample_type.unit}", sample_type.unit))
    result.sample_types.append(sample_type)
    for sample in result.samples:
        sample.values.append(0)
    return len(result.sample_types) - 1


def _finite(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise check.fail(path, "a finite number", value)
    return value


def _frame_index(value: Any, path: str, frame_count: int) -> int:
    index = check.integer(value, path)
    if index >= frame_count:
        raise ProfileError(f"{path}: frame {index} does not exist (there are {frame_count} frames)")
    return index


def _sampled_weights(entry: Dict[str, Any], path: str, frame_count: int) -> Dict[Stack, float]:
    samples = check.array(check.field(entry, "samples", path), f"{path}.samples")
    weights = check.array(check.field(entry, "weights", path), f"{path}.weights")
    if len(weights) != len(samples):
        raise ProfileError(f"{path}.weights: has {len(weights)} entries but there are {len(samples)} samples")
    totals: Dict[Stack, float] = {}
    for i, (sample, weight) in enumerate(zip(samples, weights)):
        where = f"{path}.samples[{i}]"
        stack = tuple(_frame_index(x, f"{where}[{j}]", frame_count) for j, x in enumerate(check.array(sample, where)))
        totals[stack] = totals.get(stack, 0) + check.number(weight, f"{path}.weights[{i}]")
    return totals


def _evented_weights(entry: Dict[str, Any], path: str, frame_count: int) -> Dict[Stack, float]:
    """Time each stack was the innermost open stack, from balanced open/close events.

    Like speedscope, a profile that leaves a frame open at its last event is refused: its
    remaining time is unknown.
    """
    events = check.array(check.field(entry, "events", path), f"{path}.events")
    totals: Dict[Stack, float] = {}
    open_frames: List[int] = []
    last = None
    for i, item in enumerate(events):
        where = f"{path}.events[{i}]"
        event = check.obj(item, where)
        at = _finite(check.field(event, "at", where), f"{where}.at")
        if last is not None and at < last:
            raise ProfileError(f"{where}.at: events must be in non-decreasing time order ({at} < {last})")
        if open_frames and last is not None:
            stack = tuple(open_frames)
            totals[stack] = totals.get(stack, 0) + (at - last)
        last = at
        frame = _frame_index(check.field(event, "frame", where), f"{where}.frame", frame_count)
        _apply_event(open_frames, check.field(event, "type", where), frame, where)
    if open_frames:
        raise ProfileError(
            f"{path}.events: unbalanced, {len(open_frames)} frame(s) still open after the last event "
            f"(innermost: frame {open_frames[-1]}); every 'O' event needs its 'C'"
        )
    return totals


def _apply_event(open_frames: List[int], kind: Any, frame: int, where: str) -> None:
    if kind == "O":
        open_frames.append(frame)
    elif kind == "C":
        if not open_frames or open_frames[-1] != frame:
            raise ProfileError(f"{where}: closes frame {frame}, which is not the innermost open frame")
        open_frames.pop()
    else:
        raise ProfileError(f"{where}.type: expected 'O' or 'C', got {quote(kind)}")
