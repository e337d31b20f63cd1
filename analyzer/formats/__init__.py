"""Profile formats in and out, detected from content.

Read: :func:`read_profile` (bytes) and :func:`load_profile` (a path) accept greenflame JSON,
speedscope JSON, pprof (protobuf) and collapsed stacks (FlameGraph, ``py-spy --format raw``),
each optionally gzipped. Write: :func:`dump_profile` to ``json``, ``pprof``, ``collapsed`` or
``speedscope``. :func:`export_command` implements ``greenflame export``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import sys
from typing import Callable, Dict, Optional

from ..model import Profile, ProfileError
from . import collapsed, greenflame_json, pprof, speedscope
from ._common import GZIP_MAGIC, gunzip, json_document

__all__ = ["DEFAULT_MAX_BYTES", "FORMATS", "dump_profile", "export_command", "load_profile", "read_profile"]

#: Largest profile accepted, compressed or not (256 MiB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_MAX_GZIP_LAYERS = 2
# Patterns rather than bytes.strip(), which would copy a profile of up to max_bytes.
_BLANK = re.compile(rb"\s*")
_JSON_OBJECT = re.compile(rb"\s*\{")

_WRITERS: Dict[str, Callable[[Profile], bytes]] = {
    "json": greenflame_json.dumps,
    "pprof": pprof.dumps,
    "collapsed": collapsed.dumps,
    "speedscope": speedscope.dumps,
}
#: Formats :func:`dump_profile` writes.
FORMATS = tuple(_WRITERS)


def read_profile(data: bytes, source: str = "", max_bytes: int = DEFAULT_MAX_BYTES) -> Profile:
    """Parse a profile in any supported format, detected from its content.

    gzip data is decompressed first, up to ``max_bytes``. ``source`` (a file name) prefixes
    error messages. Raises ProfileError when the data is malformed or no format matches.
    """
    try:
        return _read(data, max_bytes)
    except ProfileError as error:
        if source:
            raise ProfileError(f"{source}: {error}") from None
        raise


def _read(data: bytes, max_bytes: int) -> Profile:
    if len(data) > max_bytes:
        raise ProfileError(f"profile is larger than the limit of {max_bytes} bytes")
    # Two layers happen in practice: a gzipped pprof file sent with Content-Encoding: gzip.
    for _ in range(_MAX_GZIP_LAYERS):
        if data.startswith(GZIP_MAGIC):
            data = gunzip(data, max_bytes)
    if data.startswith(GZIP_MAGIC):
        raise ProfileError(f"profile is gzipped more than {_MAX_GZIP_LAYERS} times")
    if _BLANK.fullmatch(data):
        raise ProfileError("profile is empty")
    if _JSON_OBJECT.match(data):
        return _read_json(data)
    message = pprof.parse_message(data)
    if message is not None:
        return pprof.profile_from_message(message)
    if collapsed.looks_like_collapsed(data):
        return collapsed.loads(data)
    raise ProfileError("could not recognise the data as a profile (greenflame JSON, speedscope, pprof or collapsed)")


def _read_json(data: bytes) -> Profile:
    document = json_document(data)
    if isinstance(document, dict) and "format" in document:
        return greenflame_json.profile_from_dict(document)
    if speedscope.is_speedscope(document):
        return speedscope.profile_from_document(document)
    raise ProfileError("could not recognise the JSON document as a profile (neither greenflame nor speedscope)")


def load_profile(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Profile:
    """Read the profile file at ``path``; any problem is a one-line ProfileError naming the path."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProfileError(f"{path}: is a directory, not a profile file") from None
    except OSError as error:
        raise ProfileError(f"{path}: cannot read ({error.strerror or error})") from None
    if len(data) > max_bytes:
        raise ProfileError(f"{path}: file is larger than the limit of {max_bytes} bytes")
    if not data:
        raise ProfileError(f"{path}: file is empty")
    return read_profile(data, source=path, max_bytes=max_bytes)


def dump_profile(p: Profile, fmt: str) -> bytes:
    """``p`` serialised as ``fmt``: ``json`` (greenflame, uncompressed), ``pprof`` (gzipped),
    ``collapsed`` (the preferred sample type) or ``speedscope``."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown profile format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return writer(p)


def export_command(file: str, fmt: str, out: Optional[str] = None) -> int:
    """``greenflame export FILE --format FMT [-o OUT]``: convert a profile file; returns the exit status.

    ``svg`` is a flame graph (see :func:`greenflame.analyzer.svg.render_svg`). Writes to
    standard output when ``out`` is None; ``-o NAME.gz`` gzips the output.
    """
    from greenflame.server.cli import CommandError

    if fmt == "svg":
        from ..svg import render_svg

        data = render_svg(load_profile(file)).encode("utf-8")
    elif fmt not in _WRITERS:
        raise CommandError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}, svg")
    else:
        data = dump_profile(load_profile(file), fmt)
    if out is None:
        _write_stdout(data, fmt, CommandError)
    else:
        _write_file(out, data, CommandError)
    return 0


def _write_stdout(data: bytes, fmt: str, error: Callable[[str], Exception]) -> None:
    if fmt == "pprof" and sys.stdout.isatty():
        raise error("pprof output is binary: give -o FILE or redirect standard output")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_file(out: str, data: bytes, error: Callable[[str], Exception]) -> None:
    if out.endswith(".gz") and not data.startswith(GZIP_MAGIC):
        data = gzip.compress(data, mtime=0)
    opened = False
    try:
        with open(out, "wb") as handle:
            opened = True
            handle.write(data)
    except OSError as problem:
        if opened:  # do not leave a truncated file that a later read would call corrupt
            with contextlib.suppress(OSError):
                os.remove(out)
        raise error(f"cannot write {out}: {problem.strerror or problem}") from None
