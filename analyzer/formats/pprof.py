"""pprof ``profile.proto`` (gzipped), as read by Pyroscope, Parca, Datadog and ``go tool pprof``.

Writing maps each frame to one Function and one Location (ids are frame index + 1), each
sample to a Sample with its location ids leaf first, labels to string labels, the sample
period to ``period_type``/``period`` (wall, nanoseconds) and the group and metadata to
``greenflame.group=`` / ``greenflame.metadata=`` comments. The unit ``samples`` is written
as pprof's ``count`` and read back as ``samples``.

Reading accepts any valid profile, gzipped or not: inlined functions (several Lines per
Location) become separate frames, numeric labels are ignored and a Location without
Lines becomes a frame named after its address.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from google.protobuf.message import DecodeError

from ..model import Frame, Profile, ProfileError, SampleType
from ._common import GZIP_MAGIC, frame_of, gunzip, preferred_type, quote
from ._pprof_schema import ProfileMessage
from .greenflame_json import validate_metadata

__all__ = ["DEFAULT_MAX_BYTES", "dumps", "loads", "parse_message", "profile_from_message"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
GROUP_COMMENT = "greenflame.group="
METADATA_COMMENT = "greenflame.metadata="
#: Metadata key that keeps the comments of an imported pprof file that greenflame does not map.
COMMENTS_KEY = "pprof_comments"
_TIME_UNITS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000}


# -- writing ------------------------------------------------------------------


class _Strings:
    """The pprof string table: ``""`` at index 0, each distinct string once."""

    def __init__(self) -> None:
        self.table: List[str] = [""]
        self._index: Dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.table)
            self.table.append(text)
        return index


def dumps(p: Profile, compress: bool = True) -> bytes:
    """``p`` as a serialised pprof Profile, gzipped unless ``compress`` is False."""
    p.validate()
    message = ProfileMessage()
    strings = _Strings()
    for sample_type in p.sample_types:
        message.sample_type.add(type=strings(sample_type.name), unit=strings(_unit_out(sample_type.unit)))
    message.mapping.add(id=1, has_functions=True, has_filenames=True, has_line_numbers=True)
    for number, frame in enumerate(p.frames, start=1):
        name = strings(frame.function)
        message.function.add(
            id=number, name=name, system_name=name, filename=strings(frame.file), start_line=frame.line
        )
        location = message.location.add(id=number, mapping_id=1)
        location.line.add(function_id=number, line=frame.line)
    for sample in p.samples:
        entry = message.sample.add(value=sample.values)
        entry.location_id.extend(index + 1 for index in reversed(sample.stack))
        for key, value in sorted(sample.labels.items()):
            entry.label.add(key=strings(key), str=strings(value))
    message.time_nanos = p.start_time_unix_ns
    message.duration_nanos = p.duration_ns
    message.period_type.type = strings("wall")
    message.period_type.unit = strings("nanoseconds")
    message.period = p.sample_period_ns
    message.default_sample_type = strings(p.sample_types[preferred_type(p)].name)
    message.comment.extend(strings(text) for text in _comments(p))
    message.string_table.extend(strings.table)
    raw: bytes = message.SerializeToString()
    return gzip.compress(raw, mtime=0) if compress else raw


def _unit_out(unit: str) -> str:
    return "count" if unit == "samples" else unit


def _comments(p: Profile) -> List[str]:
    comments = []
    if p.group:
        comments.append(GROUP_COMMENT + p.group)
    if p.metadata:
        try:
            comments.append(METADATA_COMMENT + json.dumps(p.metadata, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise ProfileError(f"metadata cannot be written as JSON: {error}") from None
    return comments


# -- reading ------------------------------------------------------------------


def parse_message(data: bytes) -> Optional[Any]:
    """The decoded pprof message if ``data`` (not compressed) is one, else None.

    Many byte strings decode as *some* protobuf, so a message only counts as a profile when
    it has sample types and a string table starting with ``""``, as profile.proto requires.
    """
    message = ProfileMessage()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError):
        return None
    if not message.sample_type or not message.string_table or message.string_table[0] != "":
        return None
    return message


def loads(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Profile:
    """Parse a pprof profile, gzipped or not (decompressed size capped at ``max_bytes``)."""
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data, max_bytes)
    message = parse_message(data)
    if message is None:
        raise ProfileError("not a pprof profile (no sample types, or a string table that does not start with '')")
    return profile_from_message(message)


def profile_from_message(message: Any) -> Profile:
    """Convert a decoded pprof Profile message."""
    reader = _Reader(message)
    profile = Profile(
        sample_types=reader.sample_types(),
        start_time_unix_ns=max(0, message.time_nanos),
        duration_ns=max(0, message.duration_nanos),
        sample_period_ns=reader.period_ns(),
    )
    reader.apply_comments(profile)
    for number, sample in enumerate(message.sample):
        stack, values, labels = reader.sample(sample, number, len(profile.sample_types))
        profile.add(stack, values, labels)
    return profile


class _Reader:
    """Resolves one message's string indices and ids, raising ProfileError on dangling ones."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.strings: Sequence[str] = message.string_table
        self.functions = {f.id: f for f in message.function}
        self.locations = {loc.id: loc for loc in message.location}
        self.mappings = {m.id: m for m in message.mapping}
        self._location_frames: Dict[int, Tuple[Frame, ...]] = {}

    def string(self, index: int, what: str) -> str:
        if not 0 <= index < len(self.strings):
            raise ProfileError(f"pprof {what}: string index {index} is out of range (table has {len(self.strings)})")
        return self.strings[index]

    def sample_types(self) -> List[SampleType]:
        result: List[SampleType] = []
        for i, value_type in enumerate(self.message.sample_type):
            name = self.string(value_type.type, f"sample_type[{i}].type") or f"value{i}"
            unit = self.string(value_type.unit, f"sample_type[{i}].unit")
            while any(t.name == name for t in result):
                name += "_"
            result.append(SampleType(name, "samples" if unit == "count" else unit))
        return result

    def period_ns(self) -> int:
        unit = self.string(self.message.period_type.unit, "period_type.unit")
        return max(0, self.message.period * _TIME_UNITS[unit]) if unit in _TIME_UNITS else 0

    def apply_comments(self, profile: Profile) -> None:
        others = []
        for i, index in enumerate(self.message.comment):
            text = self.string(index, f"comment[{i}]")
            if text.startswith(GROUP_COMMENT):
                profile.group = text[len(GROUP_COMMENT) :]
            elif text.startswith(METADATA_COMMENT):
                profile.metadata.update(_metadata(text[len(METADATA_COMMENT) :]))
            else:
                others.append(text)
        if others:
            profile.metadata[COMMENTS_KEY] = others

    def sample(self, sample: Any, number: int, width: int) -> Tuple[List[Frame], List[int], Dict[str, str]]:
        values = list(sample.value)
        if len(values) != width:
            raise ProfileError(f"pprof sample {number} has {len(values)} values but there are {width} sample types")
        if any(v < 0 for v in values):
            raise ProfileError(f"pprof sample {number} has a negative value (a diff profile cannot be imported)")
        leaf_first: List[Frame] = []
        for location_id in sample.location_id:
            leaf_first.extend(self.frames(location_id, number))
        labels = {}
        for label in sample.label:
            key = self.string(label.key, f"sample {number} label key")
            if key and label.str:
                labels[key] = self.string(label.str, f"sample {number} label {quote(key)}")
        return leaf_first[::-1], values, labels

    def frames(self, location_id: int, number: int) -> Tuple[Frame, ...]:
        """A location's frames, innermost (inlined) first, as pprof lists its lines."""
        cached = self._location_frames.get(location_id)
        if cached is not None:
            return cached
        location = self.locations.get(location_id)
        if location is None:
            raise ProfileError(f"pprof sample {number} refers to location {location_id}, which does not exist")
        if location.line:
            frames = tuple(self._line_frame(line, location_id) for line in location.line)
        else:
            mapping = self.mappings.get(location.mapping_id)
            binary = self.string(mapping.filename, "mapping filename") if mapping is not None else ""
            frames = (Frame(f"0x{location.address:x}", binary, 0),)
        self._location_frames[location_id] = frames
        return frames

    def _line_frame(self, line: Any, location_id: int) -> Frame:
        function = self.functions.get(line.function_id)
        if function is None:
            raise ProfileError(
                f"pprof location {location_id} refers to function {line.function_id}, which does not exist"
            )
        name = self.string(function.name, f"function {function.id} name") or self.string(
            function.system_name, f"function {function.id} system_name"
        )
        filename = self.string(function.filename, f"function {function.id} filename")
        return frame_of(name, filename, max(0, function.start_line))


def _metadata(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProfileError("pprof comment greenflame.metadata is not valid JSON") from None
    return validate_metadata(value, "pprof comment greenflame.metadata")
