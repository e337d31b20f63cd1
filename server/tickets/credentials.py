"""Credentials: read from settings or ``GREENFLAME_*`` variables, never shown back.

A :class:`Secret` hides its value from ``repr``/``str`` and logs; :func:`redact` removes
known secret values from any text (a tracker's error body) before it is stored or shown.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional

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


def redact(text: str, secrets: Iterable[Optional[Secret]]) -> str:
    """``text`` with every non-trivial secret value replaced by ``***``."""
    for secret in secrets:
        if secret is not None and len(secret.reveal()) >= 4:
            text = text.replace(secret.reveal(), MASK)
    return text
