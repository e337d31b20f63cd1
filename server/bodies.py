"""Bounded reading and decompression of request bodies.

A small gzip body can expand a thousandfold, so bodies are decompressed in steps that
stop as soon as the output passes the limit; nothing is ever decompressed unbounded.
"""

from __future__ import annotations

import zlib
from typing import IO, Optional, Tuple

_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body, as sent or decompressed, is larger than allowed."""


class BadEncoding(Exception):
    """The body is not valid for its Content-Encoding."""


def read_limited(stream: IO[bytes], content_length: Optional[int], limit: int) -> bytes:
    """Read the whole body, raising BodyTooLarge as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length > limit:
        raise BodyTooLarge(f"the body is {content_length} bytes; the limit is {limit}")
    data = bytearray()
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data`` (one or more members); BodyTooLarge past ``limit`` output bytes."""
    return gunzip_members(data, limit)[0]


def gunzip_members(data: bytes, limit: int) -> Tuple[bytes, int]:
    """:func:`gunzip_limited`, and how many gzip members ``data`` holds (1: ``data`` is exactly one
    member holding the output, so it can be stored as it is without decompressing it again)."""
    out = bytearray()
    remaining = data
    members = 0
    try:
        while True:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = remaining
            while pending and not member.eof:
                out += member.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise BodyTooLarge(f"the body decompresses to more than the limit of {limit} bytes")
                pending = member.unconsumed_tail
            if not member.eof:
                raise BadEncoding("the gzip body is truncated")
            members += 1
            remaining = member.unused_data
            if not remaining:
                return bytes(out), members
    except zlib.error as error:
        raise BadEncoding(f"the body is not valid gzip: {error}") from None
