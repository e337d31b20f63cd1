"""The ids of the profiles a bucket's sums hold, grown by one id at a time without copying them.

A bucket of a group that reports 100 times a second holds 360,000 profiles by the end of its hour;
copying a frozenset of that size for each new profile (``members | {id}``) cost 15 ms a report.
:class:`Members` is an immutable set whose :meth:`~Members.plus` shares one append-only log with
the set it came from: the newest set of a log grows in constant time, and every older set still
sees only its own first ``n`` ids (readers on other threads may hold one while the rollup worker
adds). Growing a set that is not its log's newest copies it once. Comparisons with other sets
(``==``, ``<``, ``-``) are the ``collections.abc.Set`` ones, in time linear in the sets' sizes.
"""

from __future__ import annotations

from collections.abc import Set
from itertools import islice
from typing import AbstractSet, Any, Dict, FrozenSet, Iterable, Iterator, List


class _Log:
    """Ids in the order they were added, each with its position (appended to, never changed)."""

    __slots__ = ("order", "position")

    def __init__(self) -> None:
        self.order: List[str] = []
        self.position: Dict[str, int] = {}


class Members(Set[str]):
    """An immutable set of profile ids: the first ``len`` ids of a log it may share."""

    __slots__ = ("_log", "_size")
    __hash__ = None  # type: ignore[assignment]  # like set: hashing would cost the whole set

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._log = _Log()
        self._size = 0
        for profile_id in ids:
            self._append(profile_id)

    @classmethod
    def of(cls, ids: AbstractSet[str]) -> Members:
        """``ids`` as Members (itself when it is one already)."""
        return ids if isinstance(ids, Members) else cls(ids)

    def plus(self, profile_id: str) -> Members:
        """This set and ``profile_id``: constant time when this is its log's newest set."""
        if profile_id in self:
            return self
        if self._size == len(self._log.order):
            grown = Members()
            grown._log, grown._size = self._log, self._size
        else:  # an older set: the log holds ids it does not
            grown = Members(self)
        grown._append(profile_id)
        return grown

    def _append(self, profile_id: str) -> None:
        log = self._log
        if profile_id not in log.position:
            log.position[profile_id] = len(log.order)
            log.order.append(profile_id)
            self._size += 1

    def __contains__(self, profile_id: object) -> bool:
        found = self._log.position.get(profile_id) if isinstance(profile_id, str) else None
        return found is not None and found < self._size

    def __iter__(self) -> Iterator[str]:
        return islice(self._log.order, self._size)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"Members({sorted(self)!r})"

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> FrozenSet[Any]:
        """What the set operators (``-``, ``&``, ``|``) give: a plain frozenset."""
        return frozenset(it)
