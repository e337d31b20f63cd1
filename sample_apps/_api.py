"""Where the sample apps find the local stand-in API (see :mod:`stub_api`)."""

from __future__ import annotations

import os
from typing import Optional
from urllib.parse import urlsplit


class MissingApiError(RuntimeError):
    """The app needs ``SAMPLE_API_URL``: start ``stub_api`` first."""


def base_url() -> str:
    """``SAMPLE_API_URL`` without a trailing slash; a clear error when it is not set."""
    url = os.environ.get("SAMPLE_API_URL", "").rstrip("/")
    if not url:
        raise MissingApiError("set SAMPLE_API_URL to a running stand-in API: python -m greenflame.sample_apps.stub_api")
    return url


def host_port() -> tuple:
    """``(host, port)`` of the API."""
    parts = urlsplit(base_url())
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def ca_file() -> Optional[str]:
    """``SAMPLE_API_CA``: the certificate to trust for the HTTPS stand-in, if set."""
    return os.environ.get("SAMPLE_API_CA") or None
