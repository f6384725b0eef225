"""The per-session store of image embeddings: a click runs only the decoder on the embedding kept here.

Each loaded engine owns one (`engine.embeddings`), so the embeddings live where the model runs (this process, or a
Ray replica), go when the model is unloaded, and are counted in its memory (`engine.extra_bytes`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

from hub.sessions import Sessions

if TYPE_CHECKING:
    from demos.sam_segment.engine import Embedding
    from demos.sam_segment.types import Picture

TTL_S = 1800.0  # a session's embeddings unused this long go (an idle tab re-encodes its image on the next click)
MAX_BYTES = 512 * 2**20  # all sessions together; a SAM embedding is 4 MiB, a SAM 2.1 one 8-16 MiB


def embedding_bytes(emb) -> int:
    """Bytes of an embedding's features (one tensor, or SAM 2.1's pyramid: a list of them)."""
    features = emb.features
    parts = features if isinstance(features, (list, tuple)) else [features]
    return sum(int(t.numel()) * int(t.element_size()) for t in parts if hasattr(t, "element_size"))


class _Session:
    """One session's embeddings: at most `keep` images, least recently used go first; a new image is encoded once
    even when two of the session's requests ask for it together."""

    def __init__(self, keep: int):
        self.keep = keep
        self.items: OrderedDict[str, Embedding] = OrderedDict()
        self.pending: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()
        self.nbytes = 0

    def cached(self, key: str):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def add(self, key: str, emb: Embedding) -> None:
        with self.lock:
            self.items[key] = emb
            while len(self.items) > self.keep:
                self.items.popitem(last=False)
            self.nbytes = sum(embedding_bytes(e) for e in self.items.values())


class EmbeddingStore:
    """Bounded, thread-safe store of image embeddings, keyed by (session, image content).

    At most `per_session` images per session, `sessions` sessions and `max_bytes` in all (least recently used
    sessions go first), and a session unused for `ttl_s` seconds is dropped (hub.sessions.Sessions).
    """

    def __init__(self, per_session: int = 3, sessions: int = 32, max_bytes: int = MAX_BYTES, ttl_s: float = TTL_S):
        self.per_session = per_session
        self._sessions: Sessions[_Session] = Sessions(ttl_s, max_bytes, sessions, size=lambda s: s.nbytes)

    def __len__(self) -> int:
        """How many sessions have embeddings kept."""
        return len(self._sessions)

    @property
    def nbytes(self) -> int:
        return self._sessions.nbytes

    def get(self, session: str, encode: Callable[[Picture], Embedding], picture: Picture) -> tuple[Embedding, bool]:
        """(embedding, was it cached?) for `picture` in `session`, running `encode(picture)` at most once."""
        session = session or ""
        entry = self._sessions.get(session, lambda: _Session(self.per_session))
        if (emb := entry.cached(picture.key)) is not None:
            return emb, True
        with entry.lock:
            gate = entry.pending.setdefault(picture.key, threading.Lock())
        with gate:
            if (emb := entry.cached(picture.key)) is not None:
                return emb, True
            try:
                emb = encode(picture)
                entry.add(picture.key, emb)
            finally:
                with entry.lock:
                    entry.pending.pop(picture.key, None)
        self._sessions.put(session, entry)  # counts its new bytes, and keeps every bound
        return emb, False

    def drop_session(self, session: str) -> None:
        self._sessions.drop(session)

    def clear(self) -> None:
        self._sessions.clear()
