"""Credentials: read from settings or ``GREENFLAME_*`` variables, never shown back.

A :class:`Secret` hides its value from ``repr``/``str`` and logs; :func:`redact` removes
known secret values, and every credential form it recognises (``Basic``/``Bearer`` values,
secrets in query strings, URL user information), from any text (a tracker's error body that
echoes the request) before it is stored, shown or logged.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Iterable, List, Mapping, Optional
from urllib.parse import quote

GITHUB_TOKEN_ENV = "GREENFLAME_GITHUB_TOKEN"
GITLAB_TOKEN_ENV = "GREENFLAME_GITLAB_TOKEN"
JIRA_EMAIL_ENV = "GREENFLAME_JIRA_EMAIL"
JIRA_TOKEN_ENV = "GREENFLAME_JIRA_TOKEN"
WEBHOOK_SECRET_ENV = "GREENFLAME_WEBHOOK_SECRET"

MASK = "***"


class Secret:
    """A credential whose value only :meth:`reveal` returns."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself, for building one request header."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")


def secret_from(value: Optional[str], env_name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Secret]:
    """``value`` if given, else the environment variable ``env_name``; None when neither is set."""
    if value:
        return Secret(value)
    text = (os.environ if environ is None else environ).get(env_name, "").strip()
    return Secret(text) if text else None


#: ``Basic xyz``, ``Bearer xyz``, ``Negotiate xyz``: the scheme is kept. A credential holds a digit or
#: a symbol, which tells it from prose ("basic configuration"); GitHub's ``token xyz`` form travels
#: in an ``Authorization`` header, which :data:`_CREDENTIAL_HEADER` covers whole.
_AUTH_SCHEME = re.compile(r"(?i)\b(basic|bearer|negotiate)(\s+)(?=[A-Za-z]*[0-9._~+/=:-])[A-Za-z0-9._~+/=:-]{4,}")
#: ``?token=...``, ``&access_token=...``, ``private_token``, ``api_key``, ``secret``, ``signature``...
_QUERY_SECRET = re.compile(
    r"(?i)(?<![\w-])([\w-]*(?:token|secret|password|passwd|api[_-]?key|apikey|signature|sig))"
    r"(=|%3D)([^&\s#\"'<>,;)}\]]+)"
)
#: ``scheme://user:password@host``: the user information goes.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
#: Header names whose value is a credential, as echoed in ``Name: value`` or ``'Name': 'value'``.
_CREDENTIAL_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|private-token|job-token|x-api-key|api-key|x-auth-token|cookie|set-cookie)"
    r"(['\"]?\s*[:=]\s*['\"]?)([^'\"\r\n,}]+)"
)


def redact(text: str, secrets: Iterable[Optional[Secret]] = ()) -> str:
    """``text`` with every credential it holds replaced by ``***``.

    Known ``secrets`` go in every form they travel in (raw, URL-encoded, and as the base64
    of a ``user:secret`` pair inside it); then any credential-shaped text goes too, known or not.
    """
    for value in _forms(secrets):
        text = text.replace(value, MASK)
    text = _CREDENTIAL_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def _forms(secrets: Iterable[Optional[Secret]]) -> List[str]:
    forms = set()
    for secret in secrets:
        if secret is None or len(secret.reveal()) < 4:
            continue
        value = secret.reveal()
        forms.update({value, quote(value, safe="")})
        if " " in value:  # a header value such as "Basic <base64>": its credential part alone
            forms.add(value.split(" ", 1)[1])
    # Longest first, so a value containing another is replaced whole.
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def header_secrets(headers: Mapping[str, str]) -> List[Secret]:
    """The values of the credential headers among ``headers`` (``Authorization: Basic ...``)."""
    return [Secret(value) for name, value in headers.items() if _CREDENTIAL_HEADER.fullmatch(f"{name}: {value}")]


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials from every record's formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
