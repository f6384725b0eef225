"""What the SAM tab shows and offers for download: mask PNGs, cut-outs, gallery thumbnails, the drawn prompts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from demos.sam_segment.prompts import POSITIVE
from demos.sam_segment.types import Picture


def mask_png(mask: np.ndarray):
    """The mask as a black-and-white PIL image (255 = object), the size of the input image."""
    from PIL import Image

    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


def cutout(picture: Picture, mask: np.ndarray):
    """The object on a transparent background (RGBA, the size of the input image)."""
    from PIL import Image

    alpha = mask.astype(np.uint8) * 255
    # fully transparent pixels carry no colour: zeros make the PNG smaller and ~5x faster to write
    return Image.fromarray(np.dstack([picture.rgb * (alpha[..., None] > 0), alpha]), mode="RGBA")


def thumbnail(mask: np.ndarray, side: int = 256):
    """A candidate mask, small enough for the gallery (the full-size mask comes when it is picked)."""
    img = mask_png(mask)
    factor = max(1, math.ceil(max(img.size) / side))
    return img.reduce(factor) if factor > 1 else img


def as_pil(picture: Picture):
    """The picture SAM saw, as a PIL RGB image."""
    from PIL import Image

    return Image.fromarray(picture.rgb)


def draw_prompts(picture: Picture, points=(), labels=(), box=None, corner=None):
    """The image with the clicks drawn on it: green positive, red negative, a blue box, a pending corner."""
    from PIL import ImageDraw

    img = as_pil(picture)
    d = ImageDraw.Draw(img)
    r = max(4, max(img.size) // 80)  # big enough to see on the page, where a photo is shown at ~half size
    for (x, y), lab in zip(points, labels):
        color = (40, 200, 60) if int(lab) == POSITIVE else (230, 40, 40)
        d.ellipse([x - r, y - r, x + r, y + r], fill=color, outline=(255, 255, 255), width=max(1, r // 3))
    if box is not None:
        d.rectangle([float(v) for v in box], outline=(30, 120, 255), width=max(2, r // 2))
    if corner is not None:
        x, y = corner
        d.line([x - 2 * r, y, x + 2 * r, y], fill=(30, 120, 255), width=max(2, r // 2))
        d.line([x, y - 2 * r, x, y + 2 * r], fill=(30, 120, 255), width=max(2, r // 2))
    return img


class WriteClickImages:
    """Write one click's images once, in cheap formats, for gradio to serve as they are.

    Left to gradio, a 1024x768 click costs ~0.5 s on 2 cores in PNG encoding alone (the picture as an RGB PNG, the
    cut-out at the highest compression). The pictures (the clicked image with its clicks drawn, the one under the
    mask) are only looked at (JPEG, 3 ms); the mask and cut-out are downloads and stay lossless PNG, written at a fast
    compression level.
    """

    drawing_name, mask_name, cutout_name = "image.jpg", "mask.png", "cutout.png"
    jpeg_quality = 90
    png_compress_level = 3

    def __call__(self, drawing, mask_img, cut_img, folder: Path) -> tuple[str, str, str]:
        """Paths of (the drawing, the mask PNG, the cut-out PNG) written into `folder`."""
        base, mask_path, cut_path = self.drawing(drawing, folder), folder / self.mask_name, folder / self.cutout_name
        mask_img.save(mask_path, "PNG", compress_level=self.png_compress_level)
        cut_img.save(cut_path, "PNG", compress_level=self.png_compress_level)
        return base, str(mask_path), str(cut_path)

    def drawing(self, drawing, folder: Path) -> str:
        """The path of `drawing` (the picture with the clicks, or under a mask) written into `folder` as a JPEG."""
        path = folder / self.drawing_name
        drawing.save(path, "JPEG", quality=self.jpeg_quality)
        return str(path)


save_for_display = WriteClickImages()
