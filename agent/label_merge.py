"""The labels of a sample: the thread's (or its running asyncio task's), plus the automatic ones.

:class:`LabelMerger` merges the label set recorded for a thread (:mod:`.threadlabels`) with the
automatic ``thread`` and ``asyncio_task`` labels, once per distinct combination: the merged key
is cached per thread until the thread's label set changes, and per (labels, thread name, task
name) for tasks, so that a sample costs a dict read.
"""

from __future__ import annotations

from . import threadlabels

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

    from .threadlabels import LabelKey

_CACHE_LIMIT = 10_000


class LabelMerger:
    """``labels_of(ident, raw, task)``: a sample's label key; with ``auto_labels`` the thread's name
    (``thread``) and its running task's (``asyncio_task``) are added, unless set by the program."""

    def __init__(self, auto_labels: bool) -> None:
        self._auto_labels = auto_labels
        self._names: Dict[int, str] = {}
        self._merged: Dict[Tuple[LabelKey, str, str], LabelKey] = {}
        self._by_thread: Dict[int, Tuple[LabelKey, LabelKey]] = {}  # ident -> (recorded, merged)

    def rename(self, names: Dict[int, str]) -> None:
        """The threads' names now (thread identifier -> name); the per-thread cache starts afresh."""
        self._names = names
        self._by_thread = {}

    def labels_of(self, ident: int, raw: LabelKey, task: Optional[object]) -> LabelKey:
        """The labels of a sample of thread ``ident``: its recorded set ``raw`` (or its running asyncio
        ``task``'s), with the automatic ones."""
        if task is not None:
            return self._merge(ident, raw, task)
        # Fast path: the merged labels of a thread outside tasks, until its label set changes.
        entry = self._by_thread.get(ident)
        if entry is None or entry[0] is not raw:
            entry = self._by_thread[ident] = (raw, self._merge(ident, raw, None))
        return entry[1]

    def _merge(self, ident: int, labels: LabelKey, task: Optional[object]) -> LabelKey:
        """Thread ``ident``'s ``labels`` (or its running asyncio ``task``'s), automatic ones included."""
        task_name = ""
        if task is not None:
            task_labels = threadlabels.for_task(task)
            if task_labels is not None:
                labels = task_labels
            get_name = getattr(task, "get_name", None)
            task_name = str(get_name()) if get_name is not None else ""
        if not self._auto_labels:
            return labels
        thread_name = self._names.get(ident, "")
        cache_key = (labels, thread_name, task_name)
        merged = self._merged.get(cache_key)
        if merged is None:
            if len(self._merged) >= _CACHE_LIMIT:
                self._merged.clear()
            values = dict(labels)
            if thread_name:
                values.setdefault("thread", thread_name)
            if task_name:
                values.setdefault("asyncio_task", task_name)
            merged = self._merged[cache_key] = tuple(sorted(values.items()))
        return merged
