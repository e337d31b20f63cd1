"""The greenflame JSON wire format (``docs/wire-format.md``), read with strict validation.

Every field the document defines is type-checked; a bad one raises a one-line
:class:`~greenflame.analyzer.model.ProfileError` naming the field, e.g.
``samples[3].stack[1]: frame 9 does not exist (there are 4 frames)``.
Unknown fields are ignored, as the format requires of readers.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any, Callable, Dict, List, Mapping

from ..model import WIRE_FORMAT, WIRE_VERSION, Frame, Profile, ProfileError, Sample, SampleType
from . import _check as check
from . import _columns
from ._common import json_document, quote

__all__ = ["dumps", "loads", "profile_from_dict", "profile_to_dict", "validate_metadata"]

#: The version :func:`profile_to_dict` writes, with one object per frame and per sample (the agent
#: sends the server version 2, frames and samples in columns: ``greenflame.agent.columns``).
ROWS_VERSION = 1


# -- writing ------------------------------------------------------------------


def profile_to_dict(p: Profile) -> Dict[str, Any]:
    """The wire-format document for ``p`` (plain JSON-ready data); ProfileError if ``p`` is inconsistent."""
    p.validate()
    return {
        "format": WIRE_FORMAT,
        "version": ROWS_VERSION,
        "group": p.group,
        "start_time_unix_ns": p.start_time_unix_ns,
        "duration_ns": p.duration_ns,
        "sample_period_ns": p.sample_period_ns,
        "sample_types": [{"name": t.name, "unit": t.unit} for t in p.sample_types],
        "frames": [{"function": f.function, "file": f.file, "line": f.line} for f in p.frames],
        "samples": [_sample_to_dict(s) for s in p.samples],
        "metadata": copy.deepcopy(p.metadata),
    }


def _sample_to_dict(sample: Sample) -> Dict[str, Any]:
    out: Dict[str, Any] = {"stack": list(sample.stack), "values": list(sample.values)}
    if sample.labels:
        out["labels"] = dict(sample.labels)
    return out


def dumps(p: Profile) -> bytes:
    """``p`` as UTF-8 JSON bytes (not compressed)."""
    try:
        text = json.dumps(profile_to_dict(p), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ProfileError(f"metadata cannot be written as JSON: {error}") from None
    return text.encode("utf-8")


# -- reading ------------------------------------------------------------------


def loads(data: bytes) -> Profile:
    """Parse and validate a greenflame JSON document (UTF-8 bytes, not compressed)."""
    return profile_from_dict(json_document(data))


def profile_from_dict(d: Any) -> Profile:
    """Build a Profile from a decoded wire-format document, validating every field."""
    doc = check.obj(d, "profile")
    version = _check_header(doc)
    sample_types = _sample_types(check.field(doc, "sample_types", ""))
    frames = _frames(check.field(doc, "frames", ""), version)
    samples = _samples(check.field(doc, "samples", ""), version, len(sample_types), len(frames))
    _check_totals(samples, sample_types)
    metadata = validate_metadata(doc.get("metadata", {}), "metadata")
    return Profile(
        sample_types=sample_types,
        frames=frames,
        samples=samples,
        group=check.string(check.field(doc, "group", ""), "group"),
        start_time_unix_ns=check.integer(check.field(doc, "start_time_unix_ns", ""), "start_time_unix_ns"),
        duration_ns=check.integer(check.field(doc, "duration_ns", ""), "duration_ns"),
        sample_period_ns=check.integer(check.field(doc, "sample_period_ns", ""), "sample_period_ns"),
        metadata=copy.deepcopy(metadata),
    )


def _check_header(doc: Mapping[str, Any]) -> int:
    """The document's format version, checked."""
    fmt = check.field(doc, "format", "")
    if fmt != WIRE_FORMAT:
        raise ProfileError(f"format: expected {WIRE_FORMAT!r}, got {quote(fmt)}")
    version = check.integer(check.field(doc, "version", ""), "version", minimum=1)
    if version > WIRE_VERSION:
        raise ProfileError(
            f"version: profile is format version {version}, this greenflame reads up to {WIRE_VERSION}; "
            "upgrade greenflame"
        )
    return version


def _frames(value: Any, version: int) -> List[Frame]:
    if version >= 2:
        return _columns.frames(value)
    return [_frame(f, f"frames[{i}]") for i, f in enumerate(check.array(value, "frames"))]


def _samples(value: Any, version: int, width: int, frame_count: int) -> List[Sample]:
    if version >= 2:
        return _columns.samples(value, width, frame_count)
    raw_samples = check.array(value, "samples")
    return [_sample(s, f"samples[{i}]", width, frame_count) for i, s in enumerate(raw_samples)]


def _sample_types(value: Any) -> List[SampleType]:
    result: List[SampleType] = []
    for i, item in enumerate(check.array(value, "sample_types")):
        path = f"sample_types[{i}]"
        entry = check.obj(item, path)
        name = check.string(check.field(entry, "name", path), f"{path}.name")
        unit = check.string(check.field(entry, "unit", path), f"{path}.unit")
        if not name:
            raise ProfileError(f"{path}.name: must not be empty")
        if any(t.name == name for t in result):
            raise ProfileError(f"{path}.name: duplicate sample type {quote(name)}")
        result.append(SampleType(name, unit))
    if not result:
        raise ProfileError("sample_types: must list at least one sample type")
    return result


def _frame(value: Any, path: str) -> Frame:
    entry = check.obj(value, path)
    return Frame(
        function=check.string(check.field(entry, "function", path), f"{path}.function"),
        file=check.string(check.field(entry, "file", path), f"{path}.file"),
        line=check.integer(check.field(entry, "line", path), f"{path}.line"),
    )


def _sample(value: Any, path: str, width: int, frame_count: int) -> Sample:
    entry = check.obj(value, path)
    stack = check.array(check.field(entry, "stack", path), f"{path}.stack")
    if not _naturals_below(stack, frame_count):  # the checks below name the first bad entry
        for i, index in enumerate(stack):
            check.integer(index, f"{path}.stack[{i}]")
            if index >= frame_count:
                raise ProfileError(f"{path}.stack[{i}]: frame {index} does not exist (there are {frame_count} frames)")
    values = check.array(check.field(entry, "values", path), f"{path}.values")
    if len(values) != width:
        raise ProfileError(f"{path}.values: has {len(values)} values, expected one per sample type ({width})")
    if not _naturals_below(values, check.INT64_MAX + 1):
        for i, v in enumerate(values):
            check.integer(v, f"{path}.values[{i}]")
    labels = check.string_map(entry.get("labels", {}), f"{path}.labels")
    return Sample(tuple(stack), list(values), labels)


def _naturals_below(items: List[Any], limit: int) -> bool:
    """Whether every item is an int (not a bool) in ``[0, limit)``: the common case, checked in C loops."""
    if not items:
        return True
    return set(map(type, items)) == {int} and min(items) >= 0 and max(items) < limit


#: Largest total of one sample type in one profile: 2^53, the largest integer a JSON reader
#: using doubles (the browser) still reads exactly; sums of many profiles stay within int64.
MAX_COLUMN_TOTAL = 2**53


def _check_totals(samples: List[Sample], sample_types: List[SampleType]) -> None:
    for column, sample_type in enumerate(sample_types):
        if sum(sample.values[column] for sample in samples) > MAX_COLUMN_TOTAL:
            raise ProfileError(f"samples: the {sample_type.name} values add up to more than {MAX_COLUMN_TOTAL}")


# -- metadata -----------------------------------------------------------------

#: Deepest nesting of objects and arrays accepted in ``metadata`` (the top object is level 1).
MAX_METADATA_DEPTH = 32

Checker = Callable[[Any, str], Any]


def _non_negative_int(value: Any, path: str) -> int:
    return check.integer(value, path)


def _architecture(value: Any, path: str) -> str:
    arch = check.string(value, path)
    if arch not in ("x86_64", "arm64"):
        raise ProfileError(f"{path}: expected 'x86_64' or 'arm64', got {quote(arch)}")
    return arch


def _int_map(value: Any, path: str) -> Dict[str, int]:
    result = check.obj(value, path)
    for key, item in result.items():
        check.integer(item, check.join(path, key))
    return result


def _numbers(value: Any, path: str) -> List[float]:
    items = check.array(value, path)
    for i, item in enumerate(items):
        check.number(item, f"{path}[{i}]")
    return items


_LAMBDA_KEYS: Dict[str, Checker] = {
    "function_name": check.string,
    "function_arn": check.string,
    "memory_size_mb": _non_negative_int,
    "architecture": _architecture,
    "region": check.string,
    "runtime": check.string,
    "handler": check.string,
}

_INVOCATION_KEYS: Dict[str, Checker] = {
    "count": _non_negative_int,
    "cold_starts": _non_negative_int,
    "duration_ms_sum": check.number,
    "durations_ms": _numbers,
}


def _object_with(known: Mapping[str, Checker]) -> Checker:
    def checker(value: Any, path: str) -> Dict[str, Any]:
        result = check.obj(value, path)
        for key, key_check in known.items():
            if key in result:
                key_check(result[key], check.join(path, key))
        return result

    return checker


_METADATA_KEYS: Dict[str, Checker] = {
    "agent": check.string,
    "engine": check.string,
    "runtime": check.string,
    "hostname": check.string,
    "pid": _non_negative_int,
    "sample_rate_hz": check.number,
    "dropped": _int_map,
    "lambda": _object_with(_LAMBDA_KEYS),
    "invocations": _object_with(_INVOCATION_KEYS),
}

_check_metadata = _object_with(_METADATA_KEYS)


def validate_metadata(value: Any, path: str = "metadata") -> Dict[str, Any]:
    """Check the known metadata keys' types and every value's bounds; return the metadata object.

    Free-form keys are kept, but nothing in them may nest deeper than :data:`MAX_METADATA_DEPTH`,
    hold an integer outside int64, a non-finite number or a string that is not valid UTF-8.
    """
    result: Dict[str, Any] = _check_metadata(value, path)
    _check_free_form(result, path)
    return result


def _check_free_form(value: Any, path: str) -> None:
    """Walk ``value`` iteratively (no recursion however deep it is), checking every leaf."""
    pending = [(value, path, 1)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, (dict, list)) and depth > MAX_METADATA_DEPTH:
            raise ProfileError(f"{where}: nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                check.string(key, f"{where} key")
                pending.append((child, check.join(where, key), depth + 1))
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            check.string(item, where)
        elif isinstance(item, int) and not isinstance(item, bool):
            check.integer(item, where, minimum=None)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ProfileError(f"{where}: must be a finite number, got {item}")
