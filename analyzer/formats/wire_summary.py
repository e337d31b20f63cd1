"""A wire-format document checked without building it: what a server needs to store a report.

:func:`greenflame_json.loads` builds one object per frame and per sample, which is most of what
an ingest request costs. :func:`summarize` accepts exactly the documents ``loads`` accepts (plus
:meth:`Profile.validate`) and returns their header, per-type totals, deepest stack and samples as
columns (:class:`SampleColumns`). msgspec decodes the bytes straight into typed structures
(:class:`WireDocument` for version 1, :class:`ColumnarDocument` for version 2, told apart by
``version``), checking every field's type and bounds as it reads; version 2's base64 columns
become numpy arrays without a copy. The checks that span fields (frame indices, widths, totals,
names, label sets, metadata) then run on the columns in numpy. Whenever msgspec refuses the
bytes or a check fails, the document goes through the full reader instead, so a rejected document
gets the same one-line error naming the first bad field as before, and a document the fast checks
cannot vouch for is judged by the full reader alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any, Dict, List, Optional, Sequence, Tuple, Union

import msgspec
import numpy as np

from ..model import WIRE_FORMAT, Frame, Profile, ProfileError, Sample, SampleType
from . import _check as check
from . import greenflame_json

__all__ = ["ColumnarDocument", "DocumentSummary", "SampleColumns", "WireDocument", "loads", "summarize"]

#: An integer the wire format accepts where it wants a natural number (see ``_check.integer``).
_Natural = Annotated[int, msgspec.Meta(ge=0, le=check.INT64_MAX)]


# Decoded JSON holds no reference cycles, so these need no garbage collector tracking (gc=False).
class WireSampleType(msgspec.Struct, gc=False):
    """``sample_types[i]``."""

    name: str
    unit: str


class WireFrame(msgspec.Struct, gc=False):
    """``frames[i]`` (version 1)."""

    function: str
    file: str
    line: _Natural


class WireSample(msgspec.Struct, gc=False):
    """``samples[i]`` (version 1)."""

    stack: List[_Natural]
    values: List[_Natural]
    labels: Dict[str, str] = {}


class WireFrameColumns(msgspec.Struct, gc=False):
    """``frames`` (version 2): the functions, the files, and the lines as a base64 column."""

    functions: List[str]
    files: List[str]
    lines: bytes


class WireColumns(msgspec.Struct, gc=False):
    """``samples`` (version 2): base64 columns of little-endian integers (msgspec decodes the base64)."""

    count: _Natural
    depths: bytes
    stacks: bytes
    values: bytes
    label_sets: List[Dict[str, str]]
    labels: bytes


class _WireHeader(msgspec.Struct, gc=False, tag_field="version"):
    """What both versions share (unknown fields ignored, as the format requires); the version is the tag."""

    format: str
    group: str
    start_time_unix_ns: _Natural
    duration_ns: _Natural
    sample_period_ns: _Natural
    sample_types: List[WireSampleType]


class WireDocument(_WireHeader, tag=1):
    """A version-1 document as msgspec reads it: one object per frame and per sample."""

    frames: List[WireFrame]
    samples: List[WireSample]
    metadata: Dict[str, Any] = {}

    @classmethod
    def of(cls, profile: Profile) -> WireDocument:
        """The document of a built profile."""
        return cls(
            format=WIRE_FORMAT,
            group=profile.group,
            start_time_unix_ns=profile.start_time_unix_ns,
            duration_ns=profile.duration_ns,
            sample_period_ns=profile.sample_period_ns,
            sample_types=[WireSampleType(t.name, t.unit) for t in profile.sample_types],
            frames=[WireFrame(f.function, f.file, f.line) for f in profile.frames],
            samples=[WireSample(list(s.stack), list(s.values), dict(s.labels)) for s in profile.samples],
            metadata=profile.metadata,
        )

    def frame_columns(self) -> Optional[FrameColumns]:
        """The frames' functions, files and lines as columns."""
        frames = self.frames
        return FrameColumns(
            list(map(_FUNCTION, frames)),
            list(map(_FILE, frames)),
            np.fromiter(map(_LINE, frames), dtype=np.int64, count=len(frames)),
        )

    def columns(self) -> Optional[SampleColumns]:
        """The samples as columns; None when a sample's values are not one per sample type."""
        samples = self.samples
        width = len(self.sample_types)
        stacks = list(map(_STACK, samples))
        values = list(map(_VALUES, samples))
        if samples and set(map(len, values)) != {width}:
            return None
        depths = np.fromiter(map(len, stacks), dtype=np.int64, count=len(stacks))
        return SampleColumns(
            depths=depths,
            stacks=np.fromiter(chain.from_iterable(stacks), dtype=np.int64, count=int(depths.sum())),
            values=np.fromiter(chain.from_iterable(values), dtype=np.int64, count=len(samples) * width).reshape(
                len(samples), width
            ),
            label_sets=list(map(_LABELS, samples)),
            label_ids=np.arange(len(samples), dtype=np.int64),
        )


class ColumnarDocument(_WireHeader, tag=2):
    """A version-2 document as msgspec reads it: the frames and the samples in columns."""

    frames: WireFrameColumns
    samples: WireColumns
    metadata: Dict[str, Any] = {}

    def frame_columns(self) -> Optional[FrameColumns]:
        """The frames' functions, files and lines as columns; None when their lengths differ."""
        frames = self.frames
        if len(frames.files) != len(frames.functions) or len(frames.lines) != 4 * len(frames.functions):
            return None
        return FrameColumns(frames.functions, frames.files, np.frombuffer(frames.lines, dtype="<u4").astype(np.int64))

    def columns(self) -> Optional[SampleColumns]:
        """The samples as columns; None when a column's length does not match the others."""
        packed = self.samples
        count, width = packed.count, len(self.sample_types)
        if (
            len(packed.depths) != 4 * count
            or len(packed.labels) != 4 * count
            or len(packed.values) != 8 * count * width
        ):
            return None
        depths = np.frombuffer(packed.depths, dtype="<u4").astype(np.int64)
        if len(packed.stacks) != 4 * int(depths.sum()):
            return None
        return SampleColumns(
            depths=depths,
            stacks=np.frombuffer(packed.stacks, dtype="<u4"),
            values=np.frombuffer(packed.values, dtype="<i8").reshape(count, width),
            label_sets=packed.label_sets,
            label_ids=np.frombuffer(packed.labels, dtype="<u4"),
        )


#: A frame as (function, file, line).
FrameFields = Tuple[str, str, int]


@dataclass(frozen=True)
class FrameColumns:
    """A document's frames as columns: each frame's function, file and line at the same position."""

    functions: Sequence[str]
    files: Sequence[str]
    lines: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.functions)

    def fields(self) -> List[FrameFields]:
        """Each frame as (function, file, line)."""
        return list(zip(self.functions, self.files, self.lines.tolist()))


_FUNCTION = attrgetter("function")
_FILE = attrgetter("file")
_LINE = attrgetter("line")
_STACK = attrgetter("stack")
_VALUES = attrgetter("values")
_LABELS = attrgetter("labels")

_DECODER = msgspec.json.Decoder(Union[WireDocument, ColumnarDocument])


@dataclass(frozen=True)
class SampleColumns:
    """A document's samples as columns, one entry per sample (version 1's are built from its objects)."""

    #: Each sample's stack depth.
    depths: np.ndarray
    #: Every sample's stack (frame indices, root first), end to end.
    stacks: np.ndarray
    #: One row per sample, one column per sample type.
    values: np.ndarray
    #: Label sets the samples refer to (version 1: one per sample).
    label_sets: List[Dict[str, str]]
    #: Each sample's index into :attr:`label_sets`.
    label_ids: np.ndarray

    def checked(self, frame_count: int) -> Optional[Tuple[Tuple[int, ...], int]]:
        """The totals per sample type and the deepest stack, when every entry is in range; else None."""
        if len(self.stacks) and int(self.stacks.max()) >= frame_count:
            return None
        if self.values.size and int(self.values.min()) < 0:
            return None
        if len(self.label_ids) and int(self.label_ids.max()) >= len(self.label_sets):
            return None
        # In floats first: an int64 sum of values up to 2^63 each could wrap.
        if self.values.size and float(self.values.sum(axis=0, dtype=np.float64).max()) > 2.0**62:
            return None
        totals = tuple(self.values.sum(axis=0).tolist())
        if totals and max(totals) > greenflame_json.MAX_COLUMN_TOTAL:
            return None
        return totals, int(self.depths.max()) if len(self.depths) else 0

    def stack_lists(self) -> List[List[int]]:
        """Each sample's stack as a list of frame indices."""
        flat = self.stacks.tolist()
        ends = np.cumsum(self.depths).tolist()
        return [flat[end - depth : end] for end, depth in zip(ends, self.depths.tolist())]


@dataclass(frozen=True)
class DocumentSummary:
    """A valid wire-format document's header, sample count, totals per sample type and deepest stack."""

    group: str
    start_time_unix_ns: int
    duration_ns: int
    sample_type_names: Tuple[str, ...]
    totals: Tuple[int, ...]
    sample_count: int
    max_depth: int
    metadata: Dict[str, Any]
    #: The checked document, for :meth:`profile` and the server's fold (not part of the summary's value).
    document: Optional[Union[WireDocument, ColumnarDocument]] = field(default=None, repr=False, compare=False)
    #: The document's samples as columns (with :attr:`document`).
    sample_columns: Optional[SampleColumns] = field(default=None, repr=False, compare=False)
    #: The document's frames as columns (with :attr:`document`).
    frame_columns: Optional[FrameColumns] = field(default=None, repr=False, compare=False)

    def has_type(self, name: str) -> bool:
        """Whether the profile has a sample type called ``name``."""
        return name in self.sample_type_names

    def total(self, name: str) -> int:
        """Sum of sample type ``name`` over all samples (the type must exist)."""
        return self.totals[self.sample_type_names.index(name)]

    def wire(self) -> Union[WireDocument, ColumnarDocument]:
        """The checked document; ValueError for a summary made without it (:meth:`of` a built profile)."""
        if self.document is None:
            raise ValueError("this summary was made without its document")
        return self.document

    def columns(self) -> SampleColumns:
        """The checked document's samples as columns; ValueError for a summary made without them."""
        if self.sample_columns is None:
            raise ValueError("this summary was made without its document")
        return self.sample_columns

    def frames(self) -> FrameColumns:
        """The checked document's frames as columns; ValueError for a summary made without them."""
        if self.frame_columns is None:
            raise ValueError("this summary was made without its document")
        return self.frame_columns

    def profile(self) -> Profile:
        """The document as a :class:`Profile` (built now: one object per frame and sample)."""
        doc = self.wire()
        columns = self.columns()
        label_sets = columns.label_sets
        samples = [
            Sample(tuple(stack), row, dict(label_sets[label]))
            for stack, row, label in zip(columns.stack_lists(), columns.values.tolist(), columns.label_ids.tolist())
        ]
        return Profile(
            sample_types=[SampleType(t.name, t.unit) for t in doc.sample_types],
            frames=[Frame(*fields) for fields in self.frames().fields()],
            samples=samples,
            group=doc.group,
            start_time_unix_ns=doc.start_time_unix_ns,
            duration_ns=doc.duration_ns,
            sample_period_ns=doc.sample_period_ns,
            metadata=copy.deepcopy(self.metadata),
        )

    @classmethod
    def of(cls, profile: Profile, document: Optional[WireDocument] = None) -> DocumentSummary:
        """The summary of a built profile (with ``document``, its version-1 document, also its columns)."""
        names = tuple(t.name for t in profile.sample_types)
        return cls(
            group=profile.group,
            start_time_unix_ns=profile.start_time_unix_ns,
            duration_ns=profile.duration_ns,
            sample_type_names=names,
            totals=tuple(profile.total(name) for name in names),
            sample_count=len(profile.samples),
            max_depth=max((len(s.stack) for s in profile.samples), default=0),
            metadata=profile.metadata,
            document=document,
            sample_columns=document.columns() if document is not None else None,
            frame_columns=document.frame_columns() if document is not None else None,
        )


def summarize(data: bytes) -> DocumentSummary:
    """Check a wire-format document (UTF-8 JSON bytes) as :func:`greenflame_json.loads` does; its summary."""
    found = _typed_summary(data)
    if found is not None:
        return found
    profile = greenflame_json.loads(data)  # raises the error naming the first bad field
    profile.validate()
    return DocumentSummary.of(profile, WireDocument.of(profile))


def _typed_summary(data: bytes) -> Optional[DocumentSummary]:
    """The summary when msgspec reads the document and every check passes; None when the full
    reader must judge."""
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if doc.format != WIRE_FORMAT:
        return None
    names = tuple(t.name for t in doc.sample_types)
    if not names or "" in names or len(set(names)) != len(names):
        return None
    frames = doc.frame_columns()
    if frames is None:
        return None
    columns = doc.columns()
    checked = columns.checked(len(frames)) if columns is not None else None
    if columns is None or checked is None:
        return None
    try:
        metadata = greenflame_json.validate_metadata(doc.metadata, "metadata")
    except ProfileError:
        return None
    totals, max_depth = checked
    return DocumentSummary(
        group=doc.group,
        start_time_unix_ns=doc.start_time_unix_ns,
        duration_ns=doc.duration_ns,
        sample_type_names=names,
        totals=totals,
        sample_count=len(columns.depths),
        max_depth=max_depth,
        metadata=metadata,
        document=doc,
        sample_columns=columns,
        frame_columns=frames,
    )


def loads(data: bytes) -> Profile:
    """:func:`greenflame_json.loads`, read through msgspec when the document passes :func:`summarize`'s checks."""
    found = _typed_summary(data)
    return found.profile() if found is not None else greenflame_json.loads(data)
