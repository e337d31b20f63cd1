"""A thread-safe least-recently-used cache bounded by a total cost, shared by the server's parts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Optional, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A thread-safe least-recently-used cache bounded by a total cost (entries by default)."""

    def __init__(self, capacity: int, cost: Callable[[V], int] = lambda _value: 1) -> None:
        self.capacity = capacity
        self._cost = cost
        self._items: OrderedDict[K, V] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> Optional[V]:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries beyond the capacity."""
        cost = self._cost(value)
        if cost > self.capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._cost(old)
            self._items[key] = value
            self._used += cost
            while self._used > self.capacity:
                _, evicted = self._items.popitem(last=False)
                self._used -= self._cost(evicted)
