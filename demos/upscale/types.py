"""The Upscale work's request, progress item and result: plain data (numbers, text, a file path or PIL image), so they
cross to a Ray replica as they are. The engine checks every field with hub.validate's sentences before any work.

`upscale` streams `Tile(0, n)` once the model is loaded and the request checked, one `Tile(k, n)` per tile done (k of
n, over every pass of the model), then the `UpscaleResult`. A run stopped between tiles yields no result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from hub.work import FILE, FilePath, Progress

Number = Any  # int | float | str | None as it came: the engine checks it and refuses a bad one with a sentence


@dataclass(frozen=True)
class UpscaleRequest:
    """`image`: an upload's path (or a PIL image); `scale`: 1 to 4 times (a scale the model does not make itself is
    reached with Lanczos, as AUTOMATIC1111 does); `tile`: the model's input per call, 64 to 1024 px a side (None:
    512 on a GPU, 256 on a CPU)."""

    image: Annotated[Any, FILE]
    scale: Number = 4
    tile: Number = None


@dataclass(frozen=True)
class Tile(Progress):
    """Tile `done` of `total` is upscaled."""

    done: int
    total: int


@dataclass
class UpscaleResult:
    """The upscaled picture as a PNG (RGBA when the upload had transparency), its size, notes and the record."""

    path: FilePath
    width: int
    height: int
    record: dict
    notes: list[str] = field(default_factory=list)
