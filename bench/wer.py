"""Word error rate (the tests' and benchmarks' one copy; bench runs where tests/ is not importable)."""

from __future__ import annotations

import re

import numpy as np


def wer(ref: str, hyp: str) -> float:
    """Word-level edit distance / reference words, after lower-casing and dropping punctuation."""
    norm = lambda s: re.sub(r"[^a-z' ]+", " ", s.lower().replace("’", "'")).split()  # noqa: E731
    r, h = norm(ref), norm(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(1, len(r))
