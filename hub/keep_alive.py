"""Keep-alive: an idle model unloads after `DEMOHUB_KEEP_ALIVE` (per demo `DEMOHUB_<DEMO>_KEEP_ALIVE`); demos in
`DEMOHUB_PINNED` stay loaded (never unloaded for time or for room). 0 unloads right after each request; -1 never.

One background thread per manager wakes while an idle model has a finite keep-alive, and ends when none has.
"""

from __future__ import annotations

import threading
import time
import weakref

TICK_S = 0.5  # the longest a model outlives its keep-alive


class KeepAlive:
    def __init__(self, manager):
        self._manager = weakref.ref(manager)  # the thread must not keep a dropped manager alive
        self._settings = manager.settings
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def pinned(self, demo: str) -> bool:
        return demo in self._settings.pinned

    def ttl(self, demo: str) -> float | None:
        """Seconds an idle model of `demo` stays loaded; None: until evicted for room or unloaded by hand."""
        if self.pinned(demo):
            return None
        seconds = self._settings.keep_alives.get(demo, self._settings.keep_alive)
        return None if seconds < 0 else seconds

    def left(self, demo: str, last_used: float, busy: bool, now: float) -> float | None:
        """Seconds until an idle model unloads (None: never, or busy now)."""
        ttl = self.ttl(demo)
        if ttl is None or busy or not last_used:
            return None
        return round(max(0.0, last_used + ttl - now), 1)

    def released(self, demo: str) -> None:
        """A request let go of a model of `demo`: make sure its keep-alive is being watched."""
        ttl = self.ttl(demo)
        if ttl is None:
            return
        if ttl == 0:
            manager = self._manager()
            if manager is not None:
                manager.expire()
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="demohub-keep-alive", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(TICK_S)
            manager = self._manager()
            if manager is None:
                return
            watching = manager.expire()
            del manager
            if not watching:
                with self._lock:
                    self._thread = None
                return
