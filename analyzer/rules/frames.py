"""Recognising frames: target functions of libraries, application code, and normalised names.

Frames come from the agent as ``(function, file, line)``: ``function`` is the code object's
qualified name on Python 3.11+ (``Session.client``) and its bare name before (``client``);
``file`` is the path the interpreter saw, absolute for most modules and ``<frozen ...>`` for
frozen ones. Matching is by file-path suffix and function name so that it holds on any
installation prefix (``/var/lang/lib/python3.11/site-packages``, a virtualenv, ``/opt/python``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..codekind import is_library
from ..model import Frame

_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})
#: Prefixes removed when a path is normalised, longest match first.
_PREFIXES = re.compile(
    r"^.*?/(site-packages|dist-packages)/|^.*?/lib/python\d+(\.\d+)?t?/|^/var/task/|^/var/runtime/|^/opt/python/"
)


def short_name(function: str) -> str:
    """The function's own name, without its class or enclosing scopes (``a.<locals>.b`` -> ``b``)."""
    return function.rpartition(".")[2] or function


def _posix(path: str) -> str:
    return path.replace("\\", "/")


#: A matcher name standing for every function of its file.
ANY = "*"


@dataclass(frozen=True)
class FrameMatcher:
    """Functions of one source file, matched by path suffix and (qualified) name.

    ``path`` is relative to the installation root (``ssl.py``, ``requests/sessions.py``) or a
    frozen module's name (``<frozen importlib._bootstrap>``). A name matches a frame whose
    function is that name, ends with ``.name`` (a qualified name), or whose bare name is the
    name's last component (Python before 3.11 records bare names).
    """

    path: str
    names: Tuple[str, ...]

    def matches_file(self, file: str) -> bool:
        """Whether ``file`` is this matcher's source file."""
        file = _posix(file)
        if self.path.startswith("<"):
            return file == self.path
        return file == self.path or file.endswith("/" + self.path)

    def matches_name(self, function: str) -> bool:
        """Whether ``function`` is one of the names (qualified or bare); ``*`` is any function."""
        for name in self.names:
            if name == ANY:
                return True
            if function == name or function.endswith("." + name) or function == short_name(name):
                return True
        return False

    def matches(self, frame: Frame) -> bool:
        """Whether ``frame`` is one of these functions in this file.

        A frame without a file (imported from a format that drops it) matches a dotted
        name such as ``boto3.session.Session.client``.
        """
        if not frame.file:
            module = self.path[: -len(".py")].replace("/", ".").replace(".__init__", "")
            return any(
                frame.function.startswith(module + ".") if name == ANY else frame.function == f"{module}.{name}"
                for name in self.names
            )
        return self.matches_file(frame.file) and self.matches_name(frame.function)

    def describe(self) -> str:
        """``path: name, name`` for the catalogue."""
        return f"{self.path}: {', '.join(self.names)}"


class MatcherIndex:
    """Finds, for a frame, the first of many ``(key, matcher)`` pairs that matches it.

    Indexed by the bare function name, so a profile's frames are checked in time
    independent of the number of matchers; results are memoised per frame.
    """

    def __init__(self, entries: Iterable[Tuple[str, FrameMatcher]]) -> None:
        self._by_name: Dict[str, List[Tuple[int, str, FrameMatcher]]] = {}
        self._any: List[Tuple[int, str, FrameMatcher]] = []
        for order, (key, matcher) in enumerate(entries):
            for name in matcher.names:
                if name == ANY:
                    self._any.append((order, key, matcher))
                else:
                    self._by_name.setdefault(short_name(name), []).append((order, key, matcher))
        self._memo: Dict[Frame, Optional[str]] = {}

    def key_for(self, frame: Frame) -> Optional[str]:
        """The key of the first matcher (in the order given) matching ``frame``, or None."""
        if frame in self._memo:
            return self._memo[frame]
        candidates = self._by_name.get(short_name(frame.function), [])
        if self._any:
            candidates = sorted(candidates + self._any, key=lambda item: item[0])
        found = next((key for _, key, matcher in candidates if matcher.matches(frame)), None)
        self._memo[frame] = found
        return found


def is_application(frame: Frame) -> bool:
    """Whether ``frame`` is the application's own code (not the standard library nor a package).

    The decision is :func:`~greenflame.analyzer.codekind.code_kind`'s, shared with the trees
    and the anomalies.
    """
    return not is_library(frame.file)


def normalised_file(file: str) -> str:
    """A path without its installation prefix: ``requests/sessions.py``, ``app.py``.

    Paths outside known roots keep their last component (and the package folder for an
    ``__init__.py``), so the same code deployed under another directory gets the same name.
    """
    path = _posix(file)
    if path.startswith("<"):
        return path
    stripped = _PREFIXES.sub("", path, count=1)
    if stripped != path:
        return stripped
    parts = [part for part in path.split("/") if part]
    if not parts:
        return ""
    if parts[-1] == "__init__.py" and len(parts) > 1:
        return "/".join(parts[-2:])
    return parts[-1]


def normalised(frame: Frame) -> str:
    """``file:function`` with no line number, no installation prefix and no class prefix."""
    return f"{normalised_file(frame.file)}:{short_name(frame.function)}"


def call_site(stack: Sequence[Frame], entry: int) -> Frame:
    """The application frame nearest to (rootward of) ``stack[entry]``, the code to fix.

    Falls back to the entry's caller, then the entry itself, when no application frame
    precedes it (a truncated stack, or code installed as a package).
    """
    for position in range(entry - 1, -1, -1):
        frame = stack[position]
        # Comprehensions are their own frames before Python 3.12 (inlined since): the site is
        # the function that holds them, so that the fingerprint does not depend on the version.
        if is_application(frame) and short_name(frame.function) not in _COMPREHENSIONS:
            return frame
    return stack[entry - 1] if entry > 0 else stack[entry]
