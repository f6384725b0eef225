"""The upscaled picture as a PNG that keeps what the upload said about itself.

A PNG made by Stable Diffusion (this hub's tab, AUTOMATIC1111 or ComfyUI) carries its generation parameters in text
chunks; an upscaled copy keeps them ("parameters", "demohub", ComfyUI's "prompt" and "workflow"), so it can still be
read back in the Stable Diffusion tab, and adds AUTOMATIC1111's Extras line ("postprocessing": `Postprocess upscale
by: 4, Postprocess upscaler: RealESRGAN_x4plus`) and the request's record as JSON ("demohub-upscale").
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

KEPT = ("parameters", "demohub", "prompt", "workflow")


def source_text(source) -> dict[str, str]:
    """The kept text chunks of an upload (a path, bytes or PIL image the hub decoder already accepted); {} for a
    picture that has none or cannot say."""
    from PIL import Image

    if isinstance(source, dict):  # gradio FileData
        source = source.get("path")
    try:
        if isinstance(source, Image.Image):
            text = {**getattr(source, "text", {}), **source.info}
        elif isinstance(source, (str, Path, bytes, bytearray)):
            with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
                text = {**getattr(im, "text", {}), **im.info}
        else:
            return {}
    except (OSError, ValueError, SyntaxError):  # text after the pixels in a damaged tail: the picture is enough
        return {}
    return {k: v for k, v in text.items() if k in KEPT and isinstance(v, str)}


def write_png(image, folder: Path, source, record: dict, model: str) -> Path:
    """Write `image` as `upscaled-<w>x<h>-<random>.png` in `folder` with the source's text chunks and this step's."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in source_text(source).items():
        info.add_itxt(key, value)
    scale = record.get("scale")
    info.add_text("postprocessing", f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {model}"
                  if isinstance(scale, (int, float)) else f"Postprocess upscaler: {model}")
    info.add_itxt("demohub-upscale", json.dumps(record, ensure_ascii=False, default=str))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upscaled-{image.width}x{image.height}-{secrets.token_hex(3)}.png"
    image.save(path, format="PNG", pnginfo=info)
    return path
