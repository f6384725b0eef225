"""The Edit-by-object tab's own work as data: compositing a chain's result (no model; YOLO, SAM and Stable Diffusion
run in their own demos, hub.chain). Plain arrays and numbers: what crosses to a Ray replica with the standard pickle."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OPS = ("cutout", "mask", "stitch")


@dataclass(frozen=True)
class ComposeRequest:
    """op "cutout": the object alone on transparency (RGBA); "mask": the mask as a black-and-white picture (L);
    "stitch": `painted` (the inpainted crop, any size) put back into `box` of `image` through `alpha`, so that no
    pixel outside the grown mask changes."""

    op: str
    image: np.ndarray  # H x W x 3 uint8, the photo
    mask: np.ndarray  # H x W: bool (cutout, mask) or float32 alpha in [0, 1] (stitch)
    painted: np.ndarray | None = None  # h x w x 3 uint8 (stitch)
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 of the crop `painted` replaces (stitch)


@dataclass(frozen=True)
class ComposeResult:
    image: np.ndarray  # RGBA (cutout), L (mask) or RGB (stitch), uint8
    record: dict = field(default_factory=dict)
