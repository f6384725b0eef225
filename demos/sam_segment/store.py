"""The per-session store of image embeddings: a click runs only the decoder on the embedding kept here."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from demos.sam_segment.engine import Embedding, Picture, SamEngine


class EmbeddingStore:
    """Bounded, thread-safe store of image embeddings, keyed by (session, model instance, image content).

    At most `per_session` images per session and `total` overall (least recently used go first); the entries of a
    model are dropped when the model is unloaded. Two requests of one session for the same new image encode once.
    """

    # On the Ray backend the store lives where the model does: a closure that carries it reaches the replica's own
    # store, made once per replica (hub.cluster.shipping, resident objects).
    __replica_resident__ = True

    def __replica_args__(self) -> tuple[tuple, dict]:
        return (), {"per_session": self.per_session, "total": self.total}

    def __init__(self, per_session: int = 3, total: int = 32):
        self.per_session, self.total = per_session, total
        self._items: OrderedDict[tuple[str, str, str], Embedding] = OrderedDict()
        self._pending: dict[tuple[str, str, str], threading.Lock] = {}
        self._watched: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, session: str, engine: SamEngine, picture: Picture) -> tuple[Embedding, bool]:
        """(embedding, was it cached?) for `picture` on `engine`, computing it at most once."""
        key = (session or "", engine.uid, picture.key)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], True
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key], True
            try:
                emb = engine.embed(picture)
            finally:
                with self._lock:
                    self._pending.pop(key, None)
            self._put(key, emb, engine)
            return emb, False

    def _put(self, key, emb: Embedding, engine: SamEngine) -> None:
        with self._lock:
            self._items[key] = emb
            mine = [k for k in self._items if k[0] == key[0]]
            for k in mine[:-self.per_session]:
                del self._items[k]
            while len(self._items) > self.total:
                self._items.popitem(last=False)
            if engine.uid not in self._watched:
                self._watched.add(engine.uid)
                # Unloading a model must free its embeddings too (they may be GPU tensors).
                weakref.finalize(engine, self.drop_model, engine.uid)

    def drop_model(self, uid: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[1] == uid]:
                del self._items[k]
            self._watched.discard(uid)

    def drop_session(self, session: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == session]:
                del self._items[k]
