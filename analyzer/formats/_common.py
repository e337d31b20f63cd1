"""Helpers shared by the format modules (not public API)."""

from __future__ import annotations

import json
import zlib
from typing import Any, Dict, Tuple

from ..model import CPU, WALL, Frame, Profile, ProfileError

#: Longest piece of user data quoted in an error message.
_QUOTE_LIMIT = 60


def quote(value: Any) -> str:
    """``repr`` of ``value`` cut to a length that keeps an error message on one short line."""
    text = repr(value)
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3] + "..."
    return text


def preferred_type(profile: Profile) -> int:
    """The column to show when only one fits: ``cpu`` if present and non-zero, else ``wall``, else the first."""
    if profile.has_type(CPU) and profile.total(CPU) > 0:
        return profile.value_index(CPU)
    if profile.has_type(WALL):
        return profile.value_index(WALL)
    if not profile.sample_types:
        raise ProfileError("profile has no sample types")
    return 0


def column_index(profile: Profile, name: str | None) -> int:
    """The column called ``name``, or :func:`preferred_type` when ``name`` is None."""
    return preferred_type(profile) if name is None else profile.value_index(name)


def folded_stacks(profile: Profile, column: int) -> Dict[Tuple[int, ...], int]:
    """Non-zero totals of one column per stack (labels merged), in first-seen order."""
    totals: Dict[Tuple[int, ...], int] = {}
    for sample in profile.samples:
        value = sample.values[column]
        if value:
            totals[sample.stack] = totals.get(sample.stack, 0) + value
    return totals


def frame_of(function: str, file: str, line: int) -> Frame:
    """A frame with a non-empty function name (``<unknown>`` when a format gave none)."""
    return Frame(function or "<unknown>", file, line)


GZIP_MAGIC = b"\x1f\x8b"


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data`` (one or more members); ProfileError if corrupt or over ``limit`` bytes."""
    out = bytearray()
    rest = data
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            if rest.strip(b"\0"):
                raise ProfileError("unexpected data after the end of the gzip stream")
            break
        stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # Asking for one byte more than the limit tells "exactly at the limit" from "over it".
            out += stream.decompress(rest, limit + 1 - len(out))
        except zlib.error as error:
            raise ProfileError(f"corrupt gzip data ({error})") from None
        if len(out) > limit:
            raise ProfileError(f"decompressed data is larger than the limit of {limit} bytes")
        if not stream.eof:
            raise ProfileError("gzip data is truncated")
        rest = stream.unused_data
    return bytes(out)


def json_document(data: bytes) -> Any:
    """Decode a profile's UTF-8 JSON bytes; any problem is a one-line ProfileError."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ProfileError(f"profile JSON is not valid UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ProfileError(
            f"profile is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ProfileError("profile JSON is nested too deeply") from None
