"""Masks for inpainting: what counts as painted in an uploaded mask (any mode; transparency = not painted) and in
the layers of gradio's ImageEditor. Moved out of engine.py unchanged (it outgrew 500 lines); engine re-exports them."""

from __future__ import annotations

import io

from hub.media.image import open_image, to_uint8


def mask_from(x):
    """A mask (any mode) -> "L", white = repaint; transparent pixels count as not painted."""
    from PIL import ImageChops

    gray = open_image(x, "the mask").convert("L")  # the hub decoder: sentences, pixel cap, EXIF, 16-bit
    alpha = alpha_channel(x)
    if alpha is not None:
        gray = ImageChops.multiply(gray, alpha)
    return gray.point(lambda v: 255 if v > 127 else 0)


def editor_mask(layers):
    """The mask drawn in gr.ImageEditor: every painted (non-transparent) pixel of its layers; None without layers."""
    from PIL import Image, ImageChops

    mask = None
    for layer in (x for x in layers or [] if x is not None):
        size = open_image(layer, "a mask layer").size
        alpha = alpha_channel(layer)
        alpha = Image.new("L", size, 255) if alpha is None else alpha  # a layer without alpha is painted all over
        mask = alpha if mask is None else ImageChops.lighter(mask, alpha.resize(mask.size))
    return None if mask is None else mask.point(lambda v: 255 if v > 0 else 0)


def alpha_channel(x):
    """The alpha channel of an upload the hub decoder already accepted, or None when it has none.

    Read with PIL directly: the hub decoder drops alpha (its policy for pictures), but in a mask transparency is
    meaning (not painted), so masks need it.
    """
    import numpy as np
    from PIL import Image

    if isinstance(x, dict):  # gradio FileData
        x = x.get("path")
    if isinstance(x, np.ndarray):
        return Image.fromarray(to_uint8(x[..., 3])) if x.ndim == 3 and x.shape[2] == 4 else None
    if isinstance(x, Image.Image):
        return _alpha_of(x)
    with Image.open(io.BytesIO(x) if isinstance(x, (bytes, bytearray)) else x) as im:
        return _alpha_of(im)


def _alpha_of(im):
    from PIL import ImageOps

    if im.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and not (im.mode == "P" and "transparency" in im.info):
        return None
    try:
        im = ImageOps.exif_transpose(im)  # as the hub decoder turned the colour
    except Exception:  # a broken EXIF block must not block the mask (the decoder ignores it too)
        pass
    return im.convert("RGBA").getchannel("A")
