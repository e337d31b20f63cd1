"""How responses travel: gzip for JSON and pages, and cache headers for versioned static files.

Static files are linked as ``/static/<file>?v=<hash of its content>`` (:func:`asset_url`), so a
browser may keep them for a year: a changed file gets a new URL. Unversioned requests for a
static file are revalidated on every use. Compression is Flask-Compress's job.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, Response, request, url_for
from flask_compress import Compress

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Responses smaller than this are sent as they are (gzip would barely shrink them).
COMPRESS_MIN_BYTES = 500
_COMPRESSED_TYPES = [
    "application/json",
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
]


def init_app(app: Flask) -> None:
    """Compress JSON, pages, scripts and styles; mark versioned static files as immutable."""
    app.config.setdefault("COMPRESS_MIMETYPES", _COMPRESSED_TYPES)
    app.config.setdefault("COMPRESS_MIN_SIZE", COMPRESS_MIN_BYTES)
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip"])
    Compress(app)
    app.after_request(_static_cache_headers)
    app.add_template_global(asset_url)


def asset_url(filename: str) -> str:
    """The URL of a static file with its content hash, so it can be cached for good."""
    from flask import current_app

    folder = current_app.static_folder or ""
    return url_for("static", filename=filename, v=file_version(str(Path(folder) / filename)))


@lru_cache(maxsize=64)
def file_version(path: str) -> str:
    """The first 12 hex digits of the SHA-256 of a file (files do not change while serving)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _static_cache_headers(response: Response) -> Response:
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    response.headers["Cache-Control"] = IMMUTABLE if request.args.get("v") else REVALIDATE
    return response
