"""Bounded aggregation of samples into the wire format (``docs/wire-format.md``).

Samples are counted per distinct ``(stack, labels)`` key, each key holding ``[wall, cpu, idle]``
(the sample types :data:`SAMPLE_TYPES`).
At most ``max_stacks`` keys are kept per report: once full, samples of new keys are dropped and
counted as ``aggregator_full`` while existing keys still count, so memory stays bounded whatever
the program does. Frames are interned into indices only when a report is drained.
"""

from __future__ import annotations

import threading
import time

from .drops import DropCounter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

    from .threadlabels import LabelKey

    #: ``(function, file, first line)``: how the agent identifies a frame.
    FrameKey = Tuple[str, str, int]
    #: Frames root first.
    Stack = Tuple[FrameKey, ...]
    #: One observation: the stack, the thread's labels, 1 when it was on a CPU else 0, and 1 when
    #: it was off the CPU waiting in an idle call (:mod:`greenflame.agent.idle`) else 0.
    Observation = Tuple[Stack, LabelKey, int, int]
else:  # run time: the aliases only name the shapes (other modules import them)
    FrameKey = Stack = Observation = tuple

WIRE_FORMAT = "greenflame-profile"
WIRE_VERSION = 1

#: The value columns of every report, in order.
SAMPLE_TYPES = ("wall", "cpu", "idle")


class Aggregator:
    """Counts observations per ``(stack, labels)``, bounded to ``max_stacks`` distinct keys."""

    def __init__(self, max_stacks: int, drops: DropCounter, clock: Callable[[], int] = time.time_ns) -> None:
        self._max_stacks = max_stacks
        self._drops = drops
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Dict[Tuple[Stack, LabelKey], List[int]] = {}
        self._start_ns = clock()

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, observations: Iterable[Observation]) -> None:
        """Count a batch of observations (one sampler tick) under one lock acquisition."""
        full = 0
        with self._lock:
            counts = self._counts
            for stack, labels, cpu, idle in observations:
                key = (stack, labels)
                values = counts.get(key)
                if values is None:
                    if len(counts) >= self._max_stacks:
                        full += 1
                        continue
                    values = counts[key] = [0, 0, 0]
                values[0] += 1
                values[1] += cpu
                values[2] += idle
        if full:
            self._drops.add("aggregator_full", full)

    def add_counts(self, counted: Iterable[Tuple[Stack, LabelKey, Sequence[int]]]) -> None:
        """Add ``[wall, cpu, idle]`` counts per key (an engine that measures rather than samples)."""
        full = 0
        with self._lock:
            counts = self._counts
            for stack, labels, added in counted:
                key = (stack, labels)
                values = counts.get(key)
                if values is None:
                    if len(counts) >= self._max_stacks:
                        full += added[0]
                        continue
                    values = counts[key] = [0, 0, 0]
                for column, count in enumerate(added):
                    values[column] += count
        if full:
            self._drops.add("aggregator_full", full)

    def drain(self, group: str, sample_period_ns: int, metadata: Dict[str, Any]) -> Dict[str, Any]:
        """The wire-format document for everything counted since the last drain; starts afresh."""
        now = self._clock()
        with self._lock:
            counts, self._counts = self._counts, {}
            start, self._start_ns = self._start_ns, now
        frame_index: Dict[FrameKey, int] = {}
        frames: List[Dict[str, Any]] = []
        samples: List[Dict[str, Any]] = []
        label_dicts: Dict[LabelKey, Dict[str, str]] = {}
        # popitem() frees each key while the document grows, so the peak holds one copy, not two.
        while counts:
            (stack, labels), values = counts.popitem()
            ids = []
            for frame in stack:
                index = frame_index.get(frame)
                if index is None:
                    index = frame_index[frame] = len(frames)
                    frames.append({"function": frame[0], "file": frame[1], "line": frame[2]})
                ids.append(index)
            sample: Dict[str, Any] = {"stack": ids, "values": values}
            if labels:
                shared = label_dicts.get(labels)
                if shared is None:
                    shared = label_dicts[labels] = dict(labels)
                sample["labels"] = shared
            samples.append(sample)
        samples.reverse()  # popitem() went newest first
        return {
            "format": WIRE_FORMAT,
            "version": WIRE_VERSION,
            "group": group,
            "start_time_unix_ns": start,
            "duration_ns": max(0, now - start),
            "sample_period_ns": sample_period_ns,
            "sample_types": [{"name": name, "unit": "samples"} for name in SAMPLE_TYPES],
            "frames": frames,
            "samples": samples,
            "metadata": metadata,
        }
