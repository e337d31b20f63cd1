"""A bounded folder of encoded reports waiting for the server, oldest first.

Each report is one file, ``<unix ns>-<idempotency key>.json.gz``, holding the exact bytes to POST,
so a later send repeats the same body under the same key and the server stores it once. This is
the format of both earlier queues (the service spool and the Lambda outbox), so files they left
are read as they are. A file is written to a temporary name and renamed: a kill mid-write leaves
no half report.

The queue keeps at most ``max_bytes`` and ``max_files`` (either may be None: no limit); beyond
them the oldest files go first, each counted in ``drops`` as ``<name>_full`` (and so is a report
larger than ``max_bytes`` on its own). Processes may share a folder: a sender claims a file by
renaming it to ``<file>.<pid>.claim`` (an atomic step) before sending it, and puts it back when
the send fails. A claim whose process has died is put back by the next listing, and so is one
that names this process but that it does not hold (a restarted Lambda runtime may get the pid of
the process that was killed).

``re`` loads on the first listing or write, not when the agent starts.
"""

from __future__ import annotations

import os
import time

from .drops import DropCounter

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import List, Optional, Set, Tuple

SUFFIX = ".json.gz"
_NAME = r"(\d{1,20})-([A-Za-z0-9_-]{1,64})\.json\.gz"
_CLAIM = r"(.+\.json\.gz)\.(\d+)\.claim"
_SAFE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _fullmatch(pattern: str, name: str) -> Optional[re.Match[str]]:
    import re

    return re.fullmatch(pattern, name)  # re caches the compiled pattern


def safe_segment(text: str, limit: Optional[int] = None) -> str:
    """``text`` as one file-name segment: runs of other characters than ``A-Za-z0-9._-`` become
    ``_``, leading and trailing dots and underscores go (so never ``..``), at most ``limit``
    characters, ``default`` if nothing is left. No ``re``: this runs on the Lambda start path."""
    kept: List[str] = []
    replacing = False  # inside a run of other characters, already replaced by one "_"
    for character in text:
        if character in _SAFE_CHARACTERS:
            kept.append(character)
            replacing = False
        elif not replacing:
            kept.append("_")
            replacing = True
    return "".join(kept).strip("._")[:limit] or "default"


def _key_in_name(key: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "", key)[:64] or "report"


def file_key(path: str) -> str:
    """The idempotency key a queued file is sent with; ValueError if ``path`` is not a queued file."""
    found = _fullmatch(_NAME, os.path.basename(path))
    if found is None:
        raise ValueError(f"not a queued report: {path}")
    return found.group(2)


class Claim:
    """A queued report taken by this process: its ``body``, ``key`` and where it is on disk."""

    __slots__ = ("body", "claimed", "key", "path")

    def __init__(self, path: str, claimed: str, body: bytes, key: str) -> None:
        self.path = path
        self.claimed = claimed
        self.body = body
        self.key = key


class DiskQueue:
    """Reports waiting in ``directory`` (see the module doc); drops counted as ``<name>_full``."""

    def __init__(
        self,
        directory: str,
        drops: DropCounter,
        name: str,
        max_bytes: Optional[int] = None,
        max_files: Optional[int] = None,
    ) -> None:
        self.directory = directory
        self.drops = drops
        self.name = name
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._held: Set[str] = set()  # claims of this process, so that a listing leaves them alone

    def rebind(self, drops: DropCounter) -> None:
        """Count drops into ``drops`` from now on (a forked child's fresh counter)."""
        self.drops = drops

    def reset_after_fork(self) -> None:
        """Forget the parent's claims: they carry the parent's pid and stay the parent's."""
        self._held = set()

    def put(self, body: bytes, key: str) -> bool:
        """Queue ``body`` (sent later with idempotency ``key``); False when it is over ``max_bytes``.

        Raises OSError when it cannot be written; the caller decides whether that loses the report.
        """
        if self.max_bytes is not None and len(body) > self.max_bytes:
            self.drops.add(f"{self.name}_full")
            return False
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        write_atomically(os.path.join(self.directory, f"{time.time_ns()}-{_key_in_name(key)}{SUFFIX}"), body)
        self._trim()
        return True

    def pending(self) -> List[str]:
        """The queued files not claimed by a live process, oldest first (full paths)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found: List[Tuple[int, str]] = []
        for name in names:
            match = _fullmatch(_NAME, name)
            if match is None:
                name = self._release_stale_claim(name) or ""
                match = _fullmatch(_NAME, name)
            if match is not None:
                found.append((int(match.group(1)), name))
        return [os.path.join(self.directory, name) for _, name in sorted(found)]

    def size(self) -> int:
        """Bytes held by the queued files."""
        return sum(_size(path) for path in self.pending())

    def claim(self, path: str) -> Optional[Claim]:
        """Take the queued file ``path`` for sending; None if another sender took it first."""
        claimed = f"{path}.{os.getpid()}.claim"
        self._held.add(claimed)  # before the rename: a listing by another thread must not undo it
        if not _rename(path, claimed):
            self._held.discard(claimed)
            return None
        try:
            with open(claimed, "rb") as handle:
                body = handle.read()
        except OSError:
            self.release(Claim(path, claimed, b"", ""))
            return None
        return Claim(path, claimed, body, file_key(path))

    def release(self, claim: Claim) -> None:
        """Put a claimed report back in the queue (its send failed, for now)."""
        _rename(claim.claimed, claim.path)
        self._held.discard(claim.claimed)

    def remove(self, claim: Claim) -> None:
        """Delete a claimed report (delivered, or refused for good)."""
        remove_quietly(claim.claimed)
        self._held.discard(claim.claimed)

    def _trim(self) -> None:
        files = [(path, _size(path)) for path in self.pending()]
        total = sum(size for _, size in files)
        count = len(files)
        for path, size in files:
            if not self._over(total, count):
                break
            if remove_quietly(path):
                self.drops.add(f"{self.name}_full")
            total -= size
            count -= 1

    def _over(self, total_bytes: int, count: int) -> bool:
        too_big = self.max_bytes is not None and total_bytes > self.max_bytes
        return too_big or (self.max_files is not None and count > self.max_files)

    def _release_stale_claim(self, name: str) -> Optional[str]:
        match = _fullmatch(_CLAIM, name)
        if match is None:
            return None
        path = os.path.join(self.directory, name)
        pid = int(match.group(2))
        if path in self._held or (pid != os.getpid() and _alive(pid)):
            return None
        original = match.group(1)
        if _rename(path, os.path.join(self.directory, original)):
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


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half of
    it, and a kill mid-write leaves only a ``.tmp<pid>`` file that nothing reads. Raises OSError."""
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError:
        remove_quietly(temporary)
        raise


def remove_quietly(path: str) -> bool:
    """Delete ``path``; whether it was there to delete."""
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def _rename(source: str, target: str) -> bool:
    try:
        os.rename(source, target)
    except OSError:
        return False
    return True
