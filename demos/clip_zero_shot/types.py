"""The CLIP tab's work as data: the requests and results of the engine's work methods (engine.WORK).

Plain data only (strings, numbers, lists, dicts, bytes, numpy arrays, uploaded files' paths as `str`): what crosses to
a Ray replica and back with the standard pickle. The engine's check step (checks.py) turns a request into checked
values or a sentence; the caps (labels, images per request) are the operator's options the engine was loaded with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from hub.work import FILE


@dataclass(frozen=True)
class ClassifyRequest:
    """classify: images (gallery items: (path, caption) pairs, paths, arrays) against candidate labels (text, commas
    or one per line, or a list)."""

    images: Annotated[Any, FILE]
    labels: Any
    template: Any = "a photo of a {}."
    ensemble: Any = "none"
    mode: Any = "single"
    threshold: Any = 0.5


@dataclass(frozen=True)
class SearchRequest:
    """search_images: a gallery (as classify's images) ranked by a text query."""

    images: Annotated[Any, FILE]
    query: Any


@dataclass(frozen=True)
class ImageInput:
    """An image data URL's decoded bytes (the pixels are decoded in the worker, by the hub's decoder)."""

    data: bytes
    what: str


@dataclass(frozen=True)
class EmbedRequest:
    """/v1/embeddings: texts (str) and images (ImageInput) in the caller's order."""

    items: list
    dimensions: int | None = None
    truncate: bool = True


@dataclass
class Classification:
    """Scores of every image (rows) against every label (columns), and the reproducibility record."""

    labels: list[str]
    scores: Any  # numpy float32 array (n_images, n_labels)
    mode: str
    threshold: float | None = None
    notes: list[str] = field(default_factory=list)
    scoring: str = "softmax"  # "sigmoid": each label scored on its own (SigLIP, or any model in multi-label mode)
    record: dict = field(default_factory=dict)

    def top(self, image: int = 0, k: int | None = None) -> dict[str, float]:
        """{label: score} of one image, best first, at most k."""
        pairs = sorted(zip(self.labels, self.scores[image].tolist()), key=lambda p: -p[1])
        return dict(pairs[:k] if k else pairs)

    def present(self, image: int = 0) -> list[str]:
        """Multi-label mode: the labels at or above the threshold, best first."""
        if self.threshold is None:
            return [max(self.top(image), key=self.top(image).get)]
        return [lab for lab, s in self.top(image).items() if s >= self.threshold]


@dataclass
class SearchResult:
    """Gallery ranking for a text query: `order` lists image indices best first; `similarities` is per input."""

    query: str
    order: list[int]
    similarities: Any  # numpy float32 (n_images,), cosine similarity
    notes: list[str] = field(default_factory=list)
    record: dict = field(default_factory=dict)


@dataclass
class Embeddings:
    """One request's vectors, the tokens read, which inputs were cut (texts) or embedded as images; `model` and
    `warnings` (the lease's: random weights, a CPU fallback) for the answer."""

    vectors: Any  # numpy float32 (n, D), rows L2-normalised
    tokens: int
    truncated: list[int] = field(default_factory=list)
    images: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model: str = ""
    warnings: list[str] = field(default_factory=list)
