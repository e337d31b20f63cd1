"""The ids of the profiles a bucket's sums hold, grown by one id at a time without copying them.

A bucket of a group that reports 100 times a second holds 360,000 profiles by the end of its hour;
copying a frozenset of that size for each new profile (``members | {id}``) cost 15 ms a report.
:class:`Members` is an immutable set whose :meth:`~Members.plus` shares one append-only log (a
list in order and a set) with the set it came from: the newest set of a log grows in constant
time and answers ``in`` from the shared set. An older set (a reader may hold one while the rollup
worker adds) still holds only its own first ``n`` ids: it answers from a frozenset of them, made
once when first asked. Growing an older set copies it. Comparisons with plain sets run in C.
"""

from __future__ import annotations

from collections.abc import Set
from itertools import islice
from typing import AbstractSet, Any, FrozenSet, Iterable, Iterator, List, Optional


class _Log:
    """Ids in the order they were added, and as a set (appended to, never changed)."""

    __slots__ = ("ids", "order")

    def __init__(self, ids: Iterable[str]) -> None:
        self.order: List[str] = list(ids) if isinstance(ids, (set, frozenset)) else list(dict.fromkeys(ids))
        self.ids = set(self.order)


class Members(Set[str]):
    """An immutable set of profile ids: the first ``len`` ids of a log it may share."""

    __slots__ = ("_log", "_own", "_size")
    __hash__ = None  # type: ignore[assignment]  # like set: hashing would cost the whole set

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._log = _Log(ids)
        self._size = len(self._log.order)
        self._own: Optional[FrozenSet[str]] = None

    @classmethod
    def of(cls, ids: AbstractSet[str]) -> Members:
        """``ids`` as Members (itself when it is one already)."""
        return ids if isinstance(ids, Members) else cls(ids)

    def plus(self, profile_id: str) -> Members:
        """This set and ``profile_id``: constant time when this is its log's newest set."""
        if profile_id in self:
            return self
        log = self._log
        if len(log.order) != self._size:  # an older set: the log holds ids it does not
            return Members([*self, profile_id])
        grown = Members.__new__(Members)
        grown._log, grown._size, grown._own = log, self._size + 1, None
        log.order.append(profile_id)
        log.ids.add(profile_id)
        return grown

    def _own_ids(self) -> FrozenSet[str]:
        """This set's ids apart from the log's later ones (made once, for a set that is no longer the newest)."""
        if self._own is None:
            self._own = frozenset(islice(self._log.order, self._size))
        return self._own

    def __contains__(self, profile_id: object) -> bool:
        log = self._log
        if len(log.order) == self._size:
            # Still the newest after the lookup too: an id the worker added meanwhile is not ours.
            if profile_id not in log.ids:
                return False
            if len(log.order) == self._size:
                return True
        return profile_id in self._own_ids()

    def __iter__(self) -> Iterator[str]:
        return islice(self._log.order, self._size)

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (set, frozenset)):
            return len(other) == self._size and other.issuperset(self)
        return super().__eq__(other)

    def __le__(self, other: AbstractSet[Any]) -> bool:
        if isinstance(other, (set, frozenset)):
            return len(other) >= self._size and other.issuperset(self)
        return super().__le__(other)

    def __lt__(self, other: AbstractSet[Any]) -> bool:
        if isinstance(other, (set, frozenset)):
            return len(other) > self._size and other.issuperset(self)
        return super().__lt__(other)

    def __repr__(self) -> str:
        return f"Members({sorted(self)!r})"

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> FrozenSet[Any]:
        """What the set operators (``-``, ``&``, ``|``) give: a plain frozenset."""
        return frozenset(it)
