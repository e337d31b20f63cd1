"""Stacks of frame keys from a thread's frames: incremental, bounded in depth.

A frame is identified by ``(qualified name, file, first line)`` (:data:`~.aggregator.FrameKey`);
a stack is root first and at most ``max_depth`` long, a deeper one ending in :data:`TRUNCATED`.
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set, Tuple

    from .aggregator import FrameKey, Stack

TRUNCATED: FrameKey = ("[truncated]", "", 0)

_FRAME_CACHE_LIMIT = 50_000

if sys.version_info >= (3, 11):

    def _code_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def _code_name(code: CodeType) -> str:
        return code.co_name


# CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR (stable values; ``inspect``
# has them but costs milliseconds to import).
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200


class _ThreadStack:
    """The frames and stack of one thread at its previous sample, for an incremental re-read."""

    __slots__ = ("frames", "index", "keys", "stack")

    def __init__(self) -> None:
        self.frames: List[FrameType] = []  # root first
        self.keys: List[FrameKey] = []
        self.index: Dict[int, int] = {}  # id(frame) -> position in ``frames``
        # The stack returned last time: the same object while nothing changed, so the aggregator's
        # dict compares it by identity instead of frame by frame.
        self.stack: Stack = ()


class StackReader:
    """Turns a thread's innermost frame into a root-first stack of frame keys, at most ``max_depth`` long.

    The hot path of the sampler, so it is incremental: a thread's stack rarely changes but at its
    leaf end between two samples. Walking up from the innermost frame, the first frame that was
    already on that thread's stack at its previous sample ends the walk, and the keys from there
    to the root are reused. That frame must be the very same object (identity, not just its code),
    and not a generator's or coroutine's frame (those can be resumed under another caller); an
    ordinary frame's callers cannot change while it is alive, so the reuse is exact.

    To make the identity check sound, the frames of each thread's previous sample are referenced
    until the next sample of that thread: a frame that returned in between (and the locals it
    held) is released at most one sampling interval later than without the agent.
    """

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        # id(code) -> (code, key, is a generator). Holding the code object keeps its id from being
        # reused while cached, and lets every sample share one key tuple per function.
        self._codes: Dict[int, Tuple[CodeType, FrameKey, bool]] = {}
        self._threads: Dict[int, _ThreadStack] = {}

    def read(self, frame: Optional[FrameType], thread: int = 0) -> Stack:
        """The stack of ``frame`` (the innermost frame of ``thread``), root first; a too-deep one keeps
        the root side and ends in ``[truncated]``."""
        state = self._threads.get(thread)
        if state is None:
            state = self._threads[thread] = _ThreadStack()
        codes, index, frames = self._codes, state.index, state.frames
        new: List[FrameType] = []
        keep = 0
        while frame is not None:
            code = frame.f_code
            entry = codes.get(id(code))
            if entry is None:
                entry = self._remember(code)
            position = index.get(id(frame))
            if position is not None and frames[position] is frame and not entry[2]:
                keep = position + 1
                break
            new.append(frame)
            frame = frame.f_back
        if keep < len(frames) or new:
            self._replace(state, keep, new)
            keys = state.keys
            if len(keys) > self._max_depth:
                state.stack = (*keys[: self._max_depth - 1], TRUNCATED)
            else:
                state.stack = tuple(keys)
        return state.stack

    def _replace(self, state: _ThreadStack, keep: int, new: List[FrameType]) -> None:
        """Keep the first ``keep`` frames of the previous stack and put ``new`` (leaf first) on top."""
        frames, index, keys, codes = state.frames, state.index, state.keys, self._codes
        for gone in frames[keep:]:
            index.pop(id(gone), None)
        del frames[keep:], keys[keep:]
        for frame in reversed(new):
            index[id(frame)] = len(frames)
            frames.append(frame)
            keys.append(codes[id(frame.f_code)][1])

    def from_codes(self, codes: List[CodeType]) -> Stack:
        """The stack of a thread recorded as its frames' code objects, leaf first (by the SIGPROF handler)."""
        known, remember = self._codes, self._remember
        keys = [(known.get(id(code)) or remember(code))[1] for code in reversed(codes)]
        if len(keys) > self._max_depth:
            return (*keys[: self._max_depth - 1], TRUNCATED)
        return tuple(keys)

    def forget_others(self, alive: Set[int]) -> None:
        """Release the frames of threads not in ``alive``."""
        for thread in [t for t in self._threads if t not in alive]:
            del self._threads[thread]

    def clear(self) -> None:
        """Release every frame held (when sampling stops)."""
        self._threads = {}

    def _remember(self, code: CodeType) -> Tuple[CodeType, FrameKey, bool]:
        if len(self._codes) >= _FRAME_CACHE_LIMIT:
            self._codes.clear()
        key = (_code_name(code), code.co_filename, code.co_firstlineno)
        entry = self._codes[id(code)] = (code, key, bool(code.co_flags & _GENERATOR_FLAGS))
        return entry
