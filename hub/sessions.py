"""State that outlives one request lives in the engine, keyed by a session key the request carries.

`Sessions(ttl_s, max_bytes, max_items)` is a bounded, thread-safe map: an entry unused for `ttl_s` seconds is
dropped, and beyond `max_bytes` (its `size(value)`) or `max_items` the least recently used go first. An engine
keeps one per kind of state (a webcam's tracker, SAM's image embeddings) and reports `nbytes` to the manager through
its `extra_bytes`, so the memory budget counts it. On a Ray cluster each replica's engine has its own: a session's
requests reach the same state while they reach the same replica (a single replica, or session affinity); a request
that lands on another replica starts a fresh entry, which is correct, only slower.

A session key is chosen by the front end (gradio's session hash, a `/v1` caller's `user` field, a client's own key)
and is plain data in the request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

V = TypeVar("V")


class Sessions(Generic[V]):
    """Bounded per-session values: TTL, a byte budget and an item count; least recently used go first."""

    def __init__(self, ttl_s: float = 600.0, max_bytes: int = 256 * 2**20, max_items: int = 256,
                 size: Callable[[V], int] = lambda value: 0, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.max_bytes, self.max_items = ttl_s, max_bytes, max_items
        self._size, self._clock = size, clock
        self._items: OrderedDict[str, tuple[V, int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], V]) -> V:
        """The session's value, made by `make()` when it has none (or its entry expired)."""
        with self._lock:
            self._expire()
            if key in self._items:
                value, nbytes, _ = self._items.pop(key)
                self._items[key] = (value, nbytes, self._clock())
                return value
        value = make()
        self.put(key, value)
        return value

    def put(self, key: str, value: V) -> None:
        nbytes = int(self._size(value))
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (value, nbytes, self._clock())
            self._expire()
            while self._items and (len(self._items) > self.max_items or self.nbytes > self.max_bytes):
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            self._expire()
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        return sum(n for _, n, _ in self._items.values())

    def _expire(self) -> None:
        cutoff = self._clock() - self.ttl_s
        while self._items:
            key, (_, _, used) = next(iter(self._items.items()))
            if used >= cutoff:
                break
            self._items.popitem(last=False)
