"""PNG files that carry their generation parameters, and reading them back.

Every image is written with two text chunks: "parameters" (AUTOMATIC1111's format, which many tools read) and
"demohub" (the exact parameters as JSON). `read_parameters` takes either, so a PNG made here or by AUTOMATIC1111's
web UI fills the tab's fields again.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from pathlib import Path

from hub.errors import UserError
from hub.media.image import open_image

NO_PARAMETERS = ("This image carries no generation parameters; use a PNG saved by this tab (or by AUTOMATIC1111), "
                 "not a screenshot or a re-encoded copy.")


def parameters_text(params: dict) -> str:
    """AUTOMATIC1111-style "parameters" text, which many tools read."""
    lines = [params.get("prompt", "")]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields = [("Steps", params.get("steps")), ("Sampler", params.get("scheduler")), ("CFG scale", params.get("guidance")),
              ("Seed", params.get("seed")), ("Size", f"{params.get('width')}x{params.get('height')}"),
              ("Model", params.get("model")), ("Model revision", params.get("revision")),
              ("Denoising strength", params.get("strength")), ("Mode", params.get("mode"))]
    lines.append(", ".join(f"{k}: {v}" for k, v in fields if v is not None))
    return "\n".join(lines)


def png_info(params: dict):
    """PIL PngInfo with both text chunks for `params`."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters_text(params))
    info.add_itxt("demohub", json.dumps(params, ensure_ascii=False))
    return info


class WritePNG:
    """Writes images as PNGs named `<stem>-<seed>-<random>.png` into `folder`, each with its parameters."""

    def __init__(self, folder: str | Path, stem: str = "sd"):
        self.folder, self.stem = Path(folder), stem

    def write(self, image, params: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.stem}-{params.get('seed')}-{secrets.token_hex(3)}.png"
        image.save(path, format="PNG", pnginfo=png_info(params))
        return path


def read_parameters(file, missing_ok: bool = False) -> dict:
    """Parameters from a PNG written by this tab (or by AUTOMATIC1111's web UI).

    A picture without parameters raises UserError, or gives {} with `missing_ok`.
    """
    text = _text_chunks(file)
    if "demohub" in text:
        try:
            params = json.loads(text["demohub"])
        except (ValueError, RecursionError):  # RecursionError: a crafted, deeply nested text
            raise UserError("The PNG's demohub parameters are damaged; use an image saved by this tab.") from None
        if isinstance(params, dict):
            return params
    if "parameters" in text:
        return parse_a1111(text["parameters"])
    if missing_ok:
        return {}
    raise UserError(NO_PARAMETERS)


def _text_chunks(file) -> dict:
    """The image's text chunks. The hub decoder checks the upload (readable, not too large, sentences for broken
    files); it returns RGB pixels without the PNG's metadata, so the text is read from the file itself."""
    from PIL import Image

    if file is None:
        raise UserError("Upload a PNG made by this tab (or by AUTOMATIC1111) to read its parameters.")
    open_image(file, "the PNG")
    if isinstance(file, dict):  # gradio FileData
        file = file.get("path")
    if isinstance(file, Image.Image):
        return _chunks(file)
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    elif not isinstance(file, (str, Path)):  # pixels without a file (a numpy array): no text chunks
        return {}
    with Image.open(file) as im:
        return _chunks(im)


def _chunks(im) -> dict:
    info = {k: v for k, v in im.info.items() if isinstance(v, str)}
    try:
        return {**getattr(im, "text", {}), **info}
    except (OSError, ValueError, SyntaxError):  # text chunks after the pixels, in a damaged tail
        return info


def parse_a1111(text: str) -> dict:
    """AUTOMATIC1111's "parameters" text -> this tab's parameter names (unreadable fields are left out)."""
    *head, last = text.strip().split("\n")
    if not re.search(r"(^|, )Steps: ", last):
        head, last = head + [last], ""
    prompt_lines, neg_lines, target = [], [], None
    for line in head:
        if line.startswith("Negative prompt:"):
            target = neg_lines
            line = line[len("Negative prompt:"):].strip()
        (target if target is not None else prompt_lines).append(line)
    params: dict = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(neg_lines)}
    fields = dict(m.groups() for m in re.finditer(r'\s*([\w ]+): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)', last))
    conv = {"Steps": ("steps", int), "Sampler": ("scheduler", str), "CFG scale": ("guidance", float),
            "Seed": ("seed", int), "Model": ("model", str), "Model revision": ("revision", str),
            "Denoising strength": ("strength", float), "Mode": ("mode", str)}
    for key, value in fields.items():
        key = key.strip()
        if key in conv:
            name, typ = conv[key]
            try:
                params[name] = typ(value.strip())
            except ValueError:
                pass  # a field we cannot read is left for the user to set
        elif key == "Size" and re.fullmatch(r"\d+x\d+", value.strip()):
            params["width"], params["height"] = map(int, value.strip().split("x"))
    if fields.get("Schedule type", "").strip() == "Karras" and params.get("scheduler") == "DPM++ 2M":
        params["scheduler"] = "DPM++ 2M Karras"
    return params
