"""What the SIGPROF handler recorded, waiting for the sampler thread to aggregate it in a batch.

The handler runs cold in the main thread, where every statement costs: it only appends plain
records (code objects, not frames, which would keep the locals of returned calls alive) to
:attr:`HandlerBuffer.pending`, and counts what it drops without a lock. The sampler thread records
its own samples of a lone main thread the same way, for the same reason (a cold sample costs tens
of microseconds, a record a few), marked as not the handler's. :meth:`HandlerBuffer.process`
turns a batch into counts per (stack, labels): the sampler thread does it at each tick, and the
profiler before each report.
"""

from __future__ import annotations

import threading
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from threading import Lock
    from types import CodeType
    from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

    from .aggregator import Aggregator
    from .drops import DropCounter
    from .idle import IdleClassifier
    from .label_merge import LabelMerger
    from .stacks import StackReader
    from .threadlabels import LabelKey

    #: What the handler records per thread: ident, code objects (leaf first), on a CPU, the leaf's
    #: code and instruction offset (for the idle test), the thread's labels, its running task.
    Captured = Tuple[int, List[CodeType], int, CodeType, int, LabelKey, Optional[object]]
    #: One sample: when (monotonic seconds), what of each thread, and how many samples the handler's
    #: record stands for (0: the sampler thread took it; more than 1: the due times that passed while
    #: the main thread was inside one C call, see :func:`~.signal_handler.build_handler`).
    Pending = Tuple[float, List[Captured], int]

#: Samples the handler may record before the sampler thread aggregates them; more are dropped
#: (``signal_backlog``).
PENDING_LIMIT = 1_000


class HandlerBuffer:
    """The handler's records (:attr:`pending`), its drops, and their aggregation under ``lock`` (the
    lock of whoever takes a sample, so that aggregation and sampling never overlap)."""

    def __init__(
        self, aggregator: Aggregator, stacks: StackReader, labels: LabelMerger, idle: IdleClassifier, lock: Lock
    ) -> None:
        self._aggregator = aggregator
        self._stacks = stacks
        self._labels = labels
        self._idle = idle
        self._lock = lock
        #: The samples recorded and not aggregated yet; always this one deque (the handler binds it).
        self.pending: Deque[Pending] = deque()
        #: Seen by the handler: asyncio's loop runs in the main thread.
        self.main_loop_running = False
        #: Samples the handler took and that were aggregated, since the start.
        self.taken = 0
        #: ... of which the main thread was in an idle call (a wait the signal interrupted).
        self.idle_taken = 0
        # Counted where the DropCounter's lock must not be waited for (the signal handler).
        self._drops: Dict[str, int] = {}

    def samples(self) -> int:
        """Samples the handler took since the start, aggregated or not."""
        return self.taken + sum(entry[2] for entry in list(self.pending))

    def count_drop(self, reason: str, count: int) -> None:
        """Count ``count`` samples (or threads) dropped for ``reason``, without a lock."""
        if count > 0:
            drops = self._drops
            drops[reason] = drops.get(reason, 0) + count

    def flush_drops(self, drops: DropCounter) -> None:
        """Move the drops counted so far into ``drops``."""
        counted, self._drops = self._drops, {}
        for reason, count in counted.items():
            drops.add(reason, count)

    def process(self, on_sample: Callable[[float, int], None]) -> None:
        """Aggregate the recorded samples; ``on_sample(taken_at, weight)`` for each the handler took, in order."""
        if not self.pending:
            return
        is_idle_at = self._idle.is_idle_at
        for _, records, _ in list(self.pending):  # classify new call sites first, outside the lock
            for record in records:
                is_idle_at(record[3], record[4])
        main = threading.main_thread().ident
        with self._lock:
            # Counted by the code objects' ids first (cheap to hash, and alive while their records
            # are), so that a stack of frame keys, slow to build and to hash, is made once per batch.
            counted: Dict[Tuple[Tuple[int, ...], int, LabelKey, Optional[object], int, int], List[Any]] = {}
            pending = self.pending
            while pending:
                taken_at, records, by_handler = pending.popleft()
                weight = by_handler or 1
                if by_handler:
                    self.taken += by_handler
                    on_sample(taken_at, by_handler)
                for ident, codes, cpu, leaf, offset, raw, task in records:
                    # A main thread that runs the handler on an idle call was in it when the timer
                    # fired (the handler runs once the call returns or is interrupted): not on a CPU.
                    idle = int(is_idle_at(leaf, offset))
                    if idle:
                        cpu = 0
                        if by_handler and ident == main:
                            self.idle_taken += 1
                    key = (tuple(map(id, codes)), ident, raw, task, cpu, idle)
                    entry = counted.get(key)
                    if entry is None:
                        counted[key] = [codes, weight]
                    else:
                        entry[1] += weight
            from_codes, labels_of = self._stacks.from_codes, self._labels.labels_of
            self._aggregator.add_counts(
                (from_codes(codes), labels_of(ident, raw, task), (count, count * cpu, count * idle))
                for (_, ident, raw, task, cpu, idle), (codes, count) in counted.items()
            )
