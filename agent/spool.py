"""A bounded on-disk spool of reports that could not reach the server.

Each undelivered report is kept as its gzip-compressed body in one file named
``<unix ns>-<idempotency key>.json.gz``, so a replay sends the same bytes with the same key and
the server stores it once. The spool holds at most ``max_bytes``: the oldest reports are removed
first and each removal is counted as ``spool_full``. Processes may share a spool directory: a
sender claims a file by renaming it (an atomic step) before sending it, and puts it back when the
send fails; a claim whose process has died is released by the next listing.
"""

from __future__ import annotations

import os
import re
import tempfile
import time

from .drops import DropCounter

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple, Type


_NAME = re.compile(r"(\d+)-([A-Za-z0-9_-]{1,64})\.json\.gz")
_CLAIM = re.compile(r"(.+\.json\.gz)\.(\d+)\.claim")
_SUFFIX = ".json.gz"


def default_directory(group: str) -> str:
    """``<temp dir>/greenflame-spool-<uid>/<group>``: private to the user, one per group."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", group).strip("._") or "default"
    return os.path.join(tempfile.gettempdir(), f"greenflame-spool-{uid}", safe)


class Spool:
    """Reports waiting for the server, oldest first, within ``max_bytes`` on disk."""

    def __init__(self, directory: str, max_bytes: int, drops: DropCounter) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._drops = drops

    def rebind(self, drops: DropCounter) -> None:
        """Count drops into ``drops`` from now on (a forked child's fresh counter)."""
        self._drops = drops

    def put(self, body: bytes, key: str) -> bool:
        """Keep ``body`` (sent later with idempotency ``key``); False when it cannot be kept."""
        if len(body) > self.max_bytes:
            self._drops.add("spool_full")
            return False
        safe_key = re.sub(r"[^A-Za-z0-9_-]", "", key)[:64] or "report"
        path = os.path.join(self.directory, f"{time.time_ns()}-{safe_key}{_SUFFIX}")
        temporary = f"{path}.tmp{os.getpid()}"
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(body)
            os.replace(temporary, path)
        except OSError:
            _remove(temporary)
            self._drops.add("spool_failed")
            return False
        self._trim()
        return True

    def pending(self) -> List[str]:
        """The spooled files not claimed by a live process, oldest first."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found: List[Tuple[int, str]] = []
        for name in names:
            match = _NAME.fullmatch(name)
            if match is None:
                name = self._release_dead_claim(name) or ""
                match = _NAME.fullmatch(name)
            if match is not None:
                found.append((int(match.group(1)), name))
        return [os.path.join(self.directory, name) for _, name in sorted(found)]

    def size(self) -> int:
        """Bytes held by the spooled files."""
        return sum(_size(path) for path in self.pending())

    def replay(self, send: Callable[[bytes, str], None], deadline: float, rejected: Type[Exception]) -> int:
        """Send spooled reports oldest first until one fails or ``deadline``; the number delivered.

        ``send(body, key)`` raises ``rejected`` for an answer that will never change (the report is
        then removed and counted as ``spool_rejected``) or any other exception to stop replaying.
        """
        delivered = 0
        for path in self.pending():
            if time.monotonic() >= deadline:
                break
            claimed = f"{path}.{os.getpid()}.claim"
            try:
                os.rename(path, claimed)
                with open(claimed, "rb") as handle:
                    body = handle.read()
            except OSError:
                continue  # another process took it
            key = _NAME.fullmatch(os.path.basename(path)).group(2)  # type: ignore[union-attr]
            try:
                send(body, key)
            except rejected:
                self._drops.add("spool_rejected")
            except Exception:
                _rename(claimed, path)
                break
            else:
                delivered += 1
            _remove(claimed)
        return delivered

    def _trim(self) -> None:
        files = [(path, _size(path)) for path in self.pending()]
        total = sum(size for _, size in files)
        for path, size in files:
            if total <= self.max_bytes:
                break
            _remove(path)
            total -= size
            self._drops.add("spool_full")

    def _release_dead_claim(self, name: str) -> Optional[str]:
        match = _CLAIM.fullmatch(name)
        if match is None or _alive(int(match.group(2))):
            return None
        original = match.group(1)
        if _rename(os.path.join(self.directory, name), os.path.join(self.directory, original)):
            return original
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _rename(source: str, target: str) -> bool:
    try:
        os.rename(source, target)
    except OSError:
        return False
    return True
