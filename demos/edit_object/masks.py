"""Masks of the Edit-by-object chain: union, grow and feather (so an edit blends in), the crop sent to inpainting,
the overlay the tab shows, and the compositing of the result. numpy and OpenCV (its exact distance transform)."""

from __future__ import annotations

import numpy as np

from hub.errors import UserError

MAX_GROW = 256  # px: growing or feathering a mask by more is a different edit (repaint the photo instead)
COLORS = ((255, 64, 64), (64, 160, 255), (64, 220, 96), (255, 200, 40), (200, 80, 255), (40, 220, 220))


def check_px(value, name: str) -> int:
    """A grow / feather distance in whole pixels, 0..MAX_GROW (the validator's sentence otherwise)."""
    from hub import validate

    return int(validate.number(value, name, 0, MAX_GROW, integer=True, default=0))


def union(masks) -> np.ndarray:
    out = None
    for m in masks:
        out = m.astype(bool) if out is None else out | m.astype(bool)
    return out


def grow_feather(mask: np.ndarray, grow: int, feather: int) -> np.ndarray:
    """Alpha (float32, 0..1): 1 on the mask and up to `grow` px around it, fading to 0 over the outer `feather` px
    of that band. 0 everywhere farther than `grow` px from the mask, so an edit through it changes nothing there."""
    import cv2

    m = mask.astype(bool)
    if grow <= 0 and feather <= 0:
        return m.astype(np.float32)
    # Euclidean distance of every pixel to the nearest mask pixel (0 on the mask)
    dist = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if feather <= 0:
        return (dist <= grow).astype(np.float32)
    alpha = np.clip((grow - dist) / float(feather), 0.0, 1.0).astype(np.float32)
    alpha[m] = 1.0
    return alpha


def crop_box(region: np.ndarray, context: float = 0.25, multiple: int = 8) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 around `region` (bool) with `context` of its size on each side, clamped to the image: the part
    sent to inpainting, so that a small object gets the model's whole resolution (crop and stitch)."""
    ys, xs = np.nonzero(region)
    h, w = region.shape
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    pad = int(round(max(x1 - x0, y1 - y0) * context)) + multiple
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


def cutout(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA: the object's pixels, fully transparent (and black) elsewhere."""
    alpha = mask.astype(np.uint8) * 255
    return np.dstack([rgb * (alpha[..., None] > 0), alpha]).astype(np.uint8)


def stitch(rgb: np.ndarray, painted: np.ndarray, box, alpha: np.ndarray) -> np.ndarray:
    """`rgb` with `painted` (resized to `box`) blended in through `alpha`; pixels where alpha is 0 are untouched."""
    from PIL import Image

    x0, y0, x1, y1 = box
    patch = np.asarray(Image.fromarray(painted).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS), np.float32)
    out = rgb.copy()
    a = alpha[y0:y1, x0:x1, None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    blended = np.rint(region * (1 - a) + patch * a).astype(np.uint8)
    keep = a[..., 0] <= 0
    blended[keep] = out[y0:y1, x0:x1][keep]
    out[y0:y1, x0:x1] = blended
    return out


def overlay(rgb: np.ndarray, rows: list[dict], picked: list[int], masks=()) -> np.ndarray:
    """The photo with the masks tinted and every detected box drawn (picked ones thick, numbered from 1)."""
    from PIL import Image, ImageDraw

    out = rgb.astype(np.float32)
    for i, m in enumerate(masks):
        color = np.array(COLORS[i % len(COLORS)], np.float32)
        out[m] = out[m] * 0.45 + color * 0.55
    img = Image.fromarray(out.astype(np.uint8))
    d = ImageDraw.Draw(img)
    width = max(2, max(img.size) // 300)
    for i, r in enumerate(rows):
        on = i in picked
        color = COLORS[picked.index(i) % len(COLORS)] if on else (200, 200, 200)
        d.rectangle([r["x1"], r["y1"], r["x2"], r["y2"]], outline=color, width=width * (2 if on else 1))
        d.text((r["x1"] + 4, r["y1"] + 2), f"{i + 1} {r['class']}", fill=color)
    return np.asarray(img)
