"""Profile formats in and out, detected from content.

Read: :func:`read_profile` (bytes) and :func:`load_profile` (a path) accept greenflame JSON,
speedscope JSON, pprof (protobuf) and collapsed stacks (FlameGraph, ``py-spy --format raw``),
each optionally gzipped. Write: :func:`dump_profile` to ``json``, ``pprof``, ``collapsed`` or
``speedscope``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict

from ..model import Profile, ProfileError
from . import collapsed, greenflame_json, pprof, speedscope
from ._common import GZIP_MAGIC, gunzip, json_document

__all__ = ["DEFAULT_MAX_BYTES", "FORMATS", "dump_profile", "load_profile", "read_profile"]

#: Largest profile accepted, compressed or not (256 MiB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_MAX_GZIP_LAYERS = 2
# Patterns rather than bytes.strip(), which would copy a profile of up to max_bytes.
_BLANK = re.compile(rb"\s*")
_JSON_OBJECT = re.compile(rb"\s*\{")
#: Peers' text formats that greenflame does not read, told apart so that the message names them
#: instead of blaming a line of "collapsed stacks": (what it is, what to do, its signature).
_UNREAD_TEXT_FORMATS = (
    (
        "a legacy pprof text profile (Go debug=1 or gperftools)",
        "convert it with `go tool pprof -proto FILE > FILE.pb.gz`",
        re.compile(
            # a header (``heap profile: ...``, ``--- contentionz 1 ---``) or a sample (``1 @ 0x45a1c3 0x45b2d4``)
            rb"\A\s*(?:[a-z]+ profile: |--- ?[a-z]+z? ?\d* ?---)"
            rb"|^\s*\d+(?:: +\d+ \[ *\d+: +\d+\])? @(?: 0x[0-9a-f]+)+\s*$",
            re.M,
        ),
    ),
    (
        "a callgrind (valgrind) profile",
        "open it in speedscope and export it as speedscope JSON",
        re.compile(rb"\A\s*# callgrind format|^(?:events|creator|positions): .*\n(?:.*\n)*?fn=", re.M),
    ),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
#: How much of a text file the signatures above look at.
_SIGNATURE_BYTES = 4096

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
    data = _utf8(data)
    if _BLANK.fullmatch(data):
        raise ProfileError("profile is empty")
    if _JSON_OBJECT.match(data):
        return _read_json(data)
    message = pprof.parse_message(data)
    if message is not None:
        return pprof.profile_from_message(message)
    _refuse_unread_text_format(data)
    if collapsed.looks_like_collapsed(data):
        return collapsed.loads(data)
    raise ProfileError("could not recognise the data as a profile (greenflame JSON, speedscope, pprof or collapsed)")


def _utf8(data: bytes) -> bytes:
    """Text with a UTF-16 byte-order mark (Windows tools write folded stacks so; speedscope reads
    them) re-encoded as UTF-8, and a UTF-8 byte-order mark dropped; other data unchanged."""
    if data.startswith(_UTF8_BOM):
        return data[len(_UTF8_BOM) :]
    for bom, encoding in _UTF16_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding).encode("utf-8")
            except UnicodeDecodeError as error:
                message = f"text with a UTF-16 byte-order mark is not valid UTF-16 (byte {error.start})"
                raise ProfileError(message) from None
    return data


def _refuse_unread_text_format(data: bytes) -> None:
    """ProfileError naming the peer format of ``data`` when it is a text format greenflame does not read."""
    head = data[:_SIGNATURE_BYTES]
    for what, advice, signature in _UNREAD_TEXT_FORMATS:
        if signature.search(head):
            raise ProfileError(f"this is {what}, which greenflame does not read; {advice}")


def _read_json(data: bytes) -> Profile:
    document = json_document(data)
    if isinstance(document, dict) and "format" in document:
        return _named("greenflame JSON", greenflame_json.profile_from_dict, document)
    if speedscope.is_speedscope(document):
        return _named("speedscope file", speedscope.profile_from_document, document)
    raise ProfileError("could not recognise the JSON document as a profile (neither greenflame nor speedscope)")


def _named(fmt: str, parse: Callable[[Any], Profile], document: Any) -> Profile:
    """``parse(document)``, with the format's name in front of any error that does not name it."""
    try:
        return parse(document)
    except ProfileError as error:
        if str(error).startswith(fmt):
            raise
        raise ProfileError(f"{fmt}: {error}") from None


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
