"""Secrets at rest: values sealed with Fernet (``cryptography``), keys rotated with MultiFernet.

The keys come from ``GREENFLAME_SECRET_KEYS`` (comma-separated Fernet keys: the first seals,
every one opens, so a new key goes first and the old one stays until the stored values have
been re-sealed), or else from a key file beside the SQLite database (in the data folder for
other databases), generated on first use with mode 0600. A sealed value is text starting with
:data:`SEALED_PREFIX`, so clear values written by older versions are told apart and sealed at
the next start (``PipelineStore.reseal_channels``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from greenflame.analyzer.errors import UserError

from .private_files import FILE_MODE, private_dir

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret-key"
SEALED_PREFIX = "fernet:"


class SecretBox:
    """Seals and opens text with the first of several Fernet keys (all of them open)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise UserError("no secret key: set GREENFLAME_SECRET_KEYS or let the server create its key file")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise UserError("GREENFLAME_SECRET_KEYS must be Fernet keys (32 url-safe base64-encoded bytes)") from None

    def seal(self, text: str) -> str:
        """``text`` encrypted and authenticated with the first key."""
        return SEALED_PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, value: str) -> str:
        """The text inside a sealed ``value``; a clear (unsealed) value is returned as it is."""
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value[len(SEALED_PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UserError("a stored secret cannot be opened with the configured secret keys") from None

    def reseal(self, value: str) -> str:
        """``value`` sealed with the first key: a clear value sealed, a sealed one re-encrypted."""
        if not is_sealed(value):
            return self.seal(value)
        try:
            token = self._fernet.rotate(value[len(SEALED_PREFIX) :].encode("ascii"))
        except InvalidToken:
            raise UserError("a stored secret cannot be opened with the configured secret keys") from None
        return SEALED_PREFIX + token.decode("ascii")


def is_sealed(value: str) -> bool:
    """Whether ``value`` is a sealed secret (not clear text)."""
    return value.startswith(SEALED_PREFIX)


def secret_box(secret_keys: Optional[str], key_dir: Path) -> SecretBox:
    """The box for ``GREENFLAME_SECRET_KEYS`` when set, else for the key file in ``key_dir``."""
    if secret_keys:
        return SecretBox(parse_keys(secret_keys))
    return SecretBox([load_or_create_key(key_dir)])


def key_folder(database_url: str, data_dir: Path) -> Path:
    """Where the key file lives: beside a SQLite database file (so every process sharing the
    database shares the key), else in the data folder."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent
    return data_dir


def parse_keys(text: str) -> List[bytes]:
    """Comma-separated keys, first (sealing) key first; blanks ignored."""
    return [part.strip().encode("ascii") for part in text.split(",") if part.strip()]


def load_or_create_key(data_dir: Path) -> bytes:
    """The key kept in ``data_dir``; on first use generate one and write it with mode 0600."""
    path = private_dir(data_dir) / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        key = path.read_bytes().strip()
        if not key:
            raise UserError(f"{path} is empty; restore it from a backup (stored secrets need it)") from None
        return key
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    log.warning("generated a secret key for stored credentials in %s (back it up with the database)", path)
    return key
