"""Collapsed ("folded") stacks: Brendan Gregg's FlameGraph input, also written by ``py-spy record --format raw``.

One line per distinct stack, frames root first separated by ``;``, then a space and a count::

    main (app.py:1);handler (app.py:10);json.dumps (json/__init__.py:183) 12

A frame is written ``function (file:line)`` when its file is known, else just ``function``,
and parsed back the same way. The format holds one value column and no labels.

Reading accepts what flamegraph.pl and speedscope accept: a blank frame name (FlameGraph's own
``perf-vertx-stacks-01-collapsed-*.txt`` end a stack with ``;  3``) is a frame named
``<unknown>``, and a line with nothing before its count (``py-spy record --format raw`` writes
`` 1`` for a sample without frames) is an empty stack: its count goes to the root.
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, List, Optional, Tuple

from ..model import CPU, Frame, Profile, ProfileError, SampleType
from ._common import column_index, folded_stacks, frame_of, quote

__all__ = ["dumps", "format_frame", "loads", "looks_like_collapsed", "parse_frame"]

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.+):(?P<line>\d+)\)$")
_FIRST_LINE = re.compile(rb"(?:[ \t\r\f\v]*\n)*([^\n]*)")
# The stack may be empty (a line of whitespace and a count); a line without whitespace has no count.
_LINE = re.compile(r"^(?P<stack>.*?)(?P<separator>\s+)(?P<count>\S+)$")
# Characters that would break the line format; written as look-alikes instead.
_REPLACEMENTS = str.maketrans({";": ",", "\n": " ", "\r": " "})


def format_frame(frame: Frame) -> str:
    """``function (file:line)``, or ``function`` when the file is unknown; safe for one folded line."""
    return frame.label().translate(_REPLACEMENTS)


def parse_frame(text: str) -> Frame:
    """The inverse of :func:`format_frame`."""
    match = _FRAME.match(text)
    if match is None:
        return frame_of(text, "", 0)
    return frame_of(match["function"], match["file"], int(match["line"]))


def dumps(p: Profile, sample_type: Optional[str] = None) -> bytes:
    """Folded stacks for one sample type (default: ``cpu`` if present and non-zero, else ``wall``).

    Samples that differ only by labels are summed; stacks whose value is zero, and empty
    stacks (which the format cannot express), are left out.
    """
    p.validate()
    column = column_index(p, sample_type)
    labels = [format_frame(frame) for frame in p.frames]
    totals = folded_stacks(p, column)
    lines = [f"{';'.join(labels[i] for i in stack)} {value}\n" for stack, value in totals.items() if stack]
    return "".join(lines).encode("utf-8")


def loads(data: bytes, sample_type: str = CPU) -> Profile:
    """Parse folded stacks into a one-column profile whose sample type is named ``sample_type``.

    Blank lines are skipped; any other line that is not ``frames count`` raises ProfileError.
    A blank frame name is read as ``<unknown>``; a line with no frames before its count adds an
    empty stack (the root).
    """
    profile = Profile(sample_types=[SampleType(sample_type)], sample_period_ns=0)
    cache: Dict[str, Frame] = {}
    for _, parts, count in _lines(_text(data)):
        frames: List[Frame] = []
        for part in parts:
            frame = cache.get(part)
            if frame is None:
                frame = cache[part] = parse_frame(part if part.strip() else "")
            frames.append(frame)
        profile.add(frames, [count])
    return profile


def looks_like_collapsed(data: bytes) -> bool:
    """Whether ``data`` starts like folded stacks: its first non-blank line is ``frames count``.

    Later lines are not checked, so that a bad one is reported by :func:`loads` with its number.
    """
    first = _FIRST_LINE.match(data)
    try:
        match = _LINE.match(first[1].decode("utf-8").rstrip()) if first else None
    except UnicodeDecodeError:
        return False
    return match is not None and match["count"].isdigit() and match["count"].isascii()


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProfileError(f"collapsed stacks are not valid UTF-8 (byte {error.start})") from None


def _fields(stack: str, separator: str) -> List[str]:
    """The frame names of a stack, as flamegraph.pl splits them.

    Empty fields at the end are dropped (old ``py-spy`` versions ended every stack with ``;``),
    except where the line, like FlameGraph's ``...;write0;  3``, has a blank name between the
    last ``;`` and the space before the count: flamegraph.pl takes one space as the separator,
    so that leaf is a frame with a blank name.
    """
    parts = stack.split(";") if stack else []
    blank_leaf = stack.endswith(";") and len(separator) > 1
    while parts and not parts[-1]:
        parts.pop()
    return [*parts, ""] if blank_leaf else parts


def _lines(text: str) -> Iterator[Tuple[int, List[str], int]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            got = quote(line.strip())
            raise ProfileError(f"collapsed stacks line {number}: expected 'frame;frame;... count', got {got}")
        count = match["count"]
        if not count.isdigit() or not count.isascii():
            raise ProfileError(f"collapsed stacks line {number}: count {quote(count)} is not a whole number")
        yield number, _fields(match["stack"].strip(), match["separator"]), int(count)
