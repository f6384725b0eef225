"""Tiled super-resolution: a picture too large for one model call is cut into overlapping tiles, each tile goes through
the model alone, and the tiles' outputs are cross-faded where they overlap, so no seam shows.

Along each side the tiles are as few as cover it with at most `tile` pixels each, all of one size (a 256 px picture
with 128 px tiles and a 16 px overlap gets three 96 px tiles per side, not two of 128 and a sliver), overlapping their
neighbours by at least `overlap` pixels. In the output each tile's weight rises linearly from near 0 at an edge it
shares with a neighbour to 1 at the far side of the overlap (edges on the picture's border keep weight 1): a tile's
edge pixels, which saw the least context, count least, and the weights of two neighbours sum to one. The result is
the weighted sum divided by the summed weights. It matches one untiled call closely (tests/test_upscale.py bounds the
difference on a random model) while the model only ever sees one tile: its memory is that of the tile, whatever the
picture's size. The weighted sums live on the CPU (float32: 268 MB for a 4096 x 4096 result); a GPU holds one tile.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator


def spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """(start, end) of the tiles along one side of `length` pixels: at most about `tile` each, all the same size but
    the last, the first at 0 and the last ending at `length`, neighbours overlapping by about `overlap` (one span when
    it fits). Starts and sizes are multiples of `align`: a model that first folds 2x2 pixels into channels (Real-ESRGAN
    x2plus) must see each tile on the same grid as the whole picture."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = -(-math.ceil((length + (n - 1) * overlap) / n) // align) * align
    starts = [round(i * (length - size) / (n - 1)) // align * align for i in range(n)]
    return [(s, s + size) for s in starts[:-1]] + [(starts[-1], length)]


def count(width: int, height: int, tile: int, overlap: int, align: int = 1) -> int:
    """How many tiles a width x height picture is cut into."""
    return len(spans(width, tile, overlap, align)) * len(spans(height, tile, overlap, align))


def _ramp(parts: list[tuple[int, int]], i: int, scale: int):
    """The weights along one side of tile `i` (in output pixels): a linear rise over the overlap with each neighbour."""
    import torch

    start, end = parts[i]
    n = (end - start) * scale
    w = torch.ones(n)
    pos = torch.arange(n, dtype=torch.float32) + 0.5
    if i > 0:
        ov = (parts[i - 1][1] - start) * scale
        w = torch.minimum(w, pos / ov)
    if i < len(parts) - 1:
        ov = (end - parts[i + 1][0]) * scale
        w = torch.minimum(w, pos.flip(0) / ov)
    return w


def upscale_tiled(model: Callable, image, scale: int, tile: int, overlap: int, align: int = 1) -> Iterator[None]:
    """Yield once per tile done; return (`out = yield from upscale_tiled(...)`) the upscaled picture.

    `model(x)` takes a (1, C, h, w) float tensor in [0, 1] on the CPU and returns (1, C', h * scale, w * scale) on the
    CPU; `image` is (1, C, H, W). Closing the generator between tiles stops the work (nothing more runs)."""
    import torch

    _, _, height, width = image.shape
    ys, xs = spans(height, tile, overlap, align), spans(width, tile, overlap, align)
    out = weights = None
    for i, (y0, y1) in enumerate(ys):
        wy = _ramp(ys, i, scale)
        for j, (x0, x1) in enumerate(xs):
            pred = model(image[:, :, y0:y1, x0:x1])
            if pred.shape[-2:] != ((y1 - y0) * scale, (x1 - x0) * scale):
                raise RuntimeError(f"the model made {tuple(pred.shape[-2:])} from a {(y1 - y0, x1 - x0)} tile, "
                                   f"not {scale}x")
            if out is None:
                out = torch.zeros(1, pred.shape[1], height * scale, width * scale)
                weights = torch.zeros(1, 1, height * scale, width * scale)
            w = wy[:, None] * _ramp(xs, j, scale)[None, :]
            rows, cols = slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale)
            out[:, :, rows, cols] += pred * w
            weights[:, :, rows, cols] += w
            yield
    return out.div_(weights)
