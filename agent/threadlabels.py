"""Labels attached to samples: set through a context variable, readable from the sampler's thread.

``labels(...)`` blocks store the active label set in a :class:`contextvars.ContextVar`, so labels
follow the *context* of the code that set them: an asyncio task keeps its labels when the loop
switches to another task, and a task created inside a block inherits them (Python 3.12+).

The sampler runs on its own thread, and a context variable cannot be read from another thread's
context. So each ``labels`` enter and exit also records the new label set where the sampler can
look it up with one dict read, without any hook on task switches:

- outside asyncio tasks, per OS thread (``_by_thread``, keyed by ``threading.get_ident()``);
- inside a task, per task (``_by_task``): the sampler finds the task currently running on a
  thread from ``asyncio``'s own ``loop -> current task`` table, so a task switch needs no work
  from the agent at all. On Python 3.12+ the sampler reads the task's context directly
  (``Task.get_context()``), which also covers tasks that inherited labels from their creator.

A task factory or a wrapper around every task step was rejected: it would cost every task
switch in the user's threads (which counts in full against the agent's budget) and would replace
any task factory the program installs. Reads and writes of one dict key are atomic under the GIL.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Optional, Tuple, Union

    LabelKey = Tuple[Tuple[str, str], ...]
    #: Token returned by :func:`push`: (the context variable's token, where the set was recorded, previous set).
    Token = Tuple[contextvars.Token, Any, LabelKey]
else:  # run time: the aliases only name the shapes for readers of this module
    LabelKey = Token = tuple

_var: contextvars.ContextVar[LabelKey] = contextvars.ContextVar("greenflame_labels", default=())
_by_thread: Dict[int, LabelKey] = {}
_by_task: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def current() -> LabelKey:
    """The labels active in the calling context."""
    return _var.get()


def get(thread_id: int) -> LabelKey:
    """The labels recorded for thread ``thread_id`` outside asyncio tasks (empty when none)."""
    return _by_thread.get(thread_id, ())


def by_thread() -> Dict[int, LabelKey]:
    """The live table of thread identifier -> labels outside tasks (read-only, for the sampler's hot path)."""
    return _by_thread


def for_task(task: Any) -> Optional[LabelKey]:
    """The labels of asyncio ``task``: its context's on Python 3.12+, else those recorded for it.

    None when unknown (before 3.12, a task that never entered a ``labels`` block): the caller
    then uses its thread's labels, which the task inherited if they were set around the loop.
    """
    get_context = getattr(task, "get_context", None)
    if get_context is not None:
        labels: LabelKey = get_context().get(_var, ())
        return labels
    try:
        return _by_task.get(task)
    except TypeError:  # not weak-referenceable: a task type we do not know
        return None


def push(labels: Union[Dict[str, object], LabelKey]) -> Token:
    """Add ``labels`` (values made text) to the current context's; returns the token for :func:`pop`.

    ``labels`` may also be given in key form (a tuple of sorted text pairs, as :func:`current`
    returns): outside any other block it is then recorded as it is, with no conversion (the Lambda
    decorator's hot path).
    """
    previous = _var.get()
    if previous or not isinstance(labels, tuple):
        merged = dict(previous)
        items = labels if isinstance(labels, tuple) else labels.items()
        merged.update((str(key), str(value)) for key, value in items)
        labels = tuple(sorted(merged.items()))
    token = _var.set(labels)
    where = _running_task() or threading.get_ident()
    _record(where, labels)
    return token, where, previous


def pop(token: Token) -> None:
    """Restore the labels the context had before the matching :func:`push`."""
    var_token, where, previous = token
    try:
        _var.reset(var_token)
    except ValueError:  # exited in another context than entered (a generator moved across tasks)
        pass
    _record(where, previous)


def keep_only(thread_ids: Iterable[int]) -> None:
    """Forget the labels of threads not in ``thread_ids`` (after fork, for example)."""
    alive = set(thread_ids)
    for thread_id in list(_by_thread):
        if thread_id not in alive:
            _by_thread.pop(thread_id, None)


def _record(where: Any, key: LabelKey) -> None:
    table: Any = _by_thread if isinstance(where, int) else _by_task
    if key:
        table[where] = key
    else:
        table.pop(where, None)


def _running_task() -> Optional[Any]:
    """The asyncio task running on this thread, or None (asyncio is never imported for this)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        if asyncio.events._get_running_loop() is None:
            return None
        return asyncio.current_task()
    except (AttributeError, RuntimeError):
        return None


def running_tasks() -> Dict[int, Any]:
    """Thread identifier -> the asyncio task that thread is running right now (for the sampler).

    Reads asyncio's ``loop -> current task`` table and each loop's thread; empty when asyncio is
    not imported or its internals differ (then samples simply carry no task information).
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return {}
    table = getattr(getattr(asyncio, "tasks", None), "_current_tasks", None)
    if not table:
        return {}
    found: Dict[int, Any] = {}
    for loop, task in list(table.items()):
        thread_id = getattr(loop, "_thread_id", None)
        if thread_id is not None and task is not None:
            found[thread_id] = task
    return found
