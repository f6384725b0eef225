"""PNG files that carry their generation parameters, and reading them back.

Every image is written with two text chunks: "parameters" (AUTOMATIC1111's format, which many tools read) and
"demohub" (the exact parameters as JSON). `read_parameters` takes either, or ComfyUI's "prompt" graph (comfy.py),
so a PNG made here, by AUTOMATIC1111's web UI or by ComfyUI fills the tab's fields again. The hires fix is written
as A1111 writes it (`Denoising strength: 0.5, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent`) and read
back, from either chunk, as `params["hires"]` (hires.py checks it like any request's).
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

from hub.errors import UserError
from hub.media.image import open_image

NO_PARAMETERS = ("This image carries no generation parameters; use a PNG saved by this tab (or by AUTOMATIC1111 or "
                 "ComfyUI), not a screenshot or a re-encoded copy.")


def parameters_text(params: dict) -> str:
    """AUTOMATIC1111-style "parameters" text, which many tools read. LoRAs picked in the tab (not by a prompt tag)
    are written as `<lora:name:weight>` tags after the prompt, so A1111 applies them too, and every LoRA is named with
    its hash as A1111 writes it (`Lora hashes: "name: abcdef123456"`)."""
    loras = params.get("loras") or []
    prompt = params.get("prompt", "")
    extra = [f"<lora:{x['name']}:{x['weight']:g}>" for x in loras if f"<lora:{x['name']}:" not in prompt
             and f"<lora:{x['name']}>" not in prompt]
    lines = [" ".join([prompt, *extra]) if extra else prompt]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields = [("Steps", params.get("steps")), ("Sampler", params.get("scheduler")), ("CFG scale", params.get("guidance")),
              ("Seed", params.get("seed")), ("Size", f"{params.get('width')}x{params.get('height')}"),
              ("Model", params.get("model")), ("Model revision", params.get("revision")),
              ("Denoising strength", params.get("strength")), ("Mode", params.get("mode")),
              ("Lora hashes", ", ".join(f"{x['name']}: {x['hash']}" for x in loras) or None),
              *_hires_fields(params.get("hires")), *_controlnet_fields(params.get("controlnet"))]
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields if v is not None))
    return "\n".join(lines)


def _hires_fields(hires) -> list[tuple[str, object]]:
    """The hires fix as AUTOMATIC1111 writes it (its denoise is A1111's "Denoising strength" of a txt2img image)."""
    if not isinstance(hires, dict):
        return []
    scale = hires.get("scale")
    return [("Denoising strength", hires.get("denoise")),
            ("Hires upscale", f"{scale:g}" if isinstance(scale, (int, float)) else scale),
            ("Hires steps", hires.get("steps")), ("Hires upscaler", hires.get("upscaler"))]


CN_KEYS = (("Module", "preprocessor"), ("Model", "name"), ("Weight", "strength"), ("Guidance Start", "start"),
           ("Guidance End", "end"), ("Threshold A", "low"), ("Threshold B", "high"))


def _controlnet_fields(units) -> list[tuple[str, object]]:
    """Each ControlNet unit as sd-webui-controlnet writes it: `ControlNet 0: "Module: canny, Model: ..., Weight: 1,
    Guidance Start: 0, Guidance End: 1"` (canny's thresholds as Threshold A and B)."""
    if not isinstance(units, list):
        return []
    out = []
    for k, u in enumerate(x for x in units if isinstance(x, dict)):
        parts = [f"{label}: {u[key]:g}" if isinstance(u.get(key), float) else f"{label}: {u[key]}"
                 for label, key in CN_KEYS if u.get(key) is not None]
        out.append((f"ControlNet {k}", ", ".join(parts)))
    return out


def _read_controlnet(fields: dict, params: dict) -> None:
    """sd-webui-controlnet's "ControlNet 0" ... fields -> params["controlnet"] (what it names; the pictures are not
    in a PNG, so the tab cannot fill its units from it)."""
    names = dict(CN_KEYS)
    units = []
    for k in range(8):
        text = fields.get(f"ControlNet {k}")
        if text is None:
            break
        unit = {}
        for part in text.split(", "):
            label, _, value = part.partition(": ")
            if label in names:
                key = names[label]
                try:
                    unit[key] = (float(value) if key in ("strength", "start", "end")
                                 else int(float(value)) if key in ("low", "high") else value)
                except ValueError:
                    continue
        units.append(unit)
    if units:
        params["controlnet"] = units


def _quote(value) -> str:
    """A field value as AUTOMATIC1111 writes it: in JSON quotes when it holds a comma, colon or newline."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


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
    if "prompt" in text:  # ComfyUI's API-format graph
        from demos.stable_diffusion.comfy import parse_comfy

        found = parse_comfy(text["prompt"])
        if found:
            return found
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


MAX_PARAMETERS_CHARS = 64 * 1024  # AUTOMATIC1111 writes a few hundred characters; PIL lets a text chunk hold 1 MB
_CONVERT = {"Steps": ("steps", int), "Sampler": ("scheduler", str), "CFG scale": ("guidance", float),
            "Seed": ("seed", int), "Model": ("model", str), "Model revision": ("revision", str),
            "Denoising strength": ("strength", float), "Mode": ("mode", str)}


def parse_a1111(text: str) -> dict:
    """AUTOMATIC1111's "parameters" text -> this tab's parameter names (unreadable fields are left out).

    The text is: prompt lines, then lines after "Negative prompt:", then one line of `Key: value` fields joined by
    ", " (a value in double quotes may hold commas). Read by hand in one pass, in time linear in its length (a
    regex with overlapping repeats here once took 16 s for 1 KB), and refused beyond 64 KB."""
    if len(text) > MAX_PARAMETERS_CHARS:
        raise UserError(f"The PNG's parameters text is {len(text) // 1024} KB long; this tab reads at most "
                        f"{MAX_PARAMETERS_CHARS // 1024} KB of it: use an image saved by this tab (or by "
                        "AUTOMATIC1111), or type the settings in by hand.")
    *head, last = text.strip().split("\n")
    if not (last.startswith("Steps: ") or ", Steps: " in last):
        head, last = head + [last], ""
    prompt_lines, neg_lines, target = [], [], None
    for line in head:
        if line.startswith("Negative prompt:"):
            target = neg_lines
            line = line[len("Negative prompt:"):].strip()
        (target if target is not None else prompt_lines).append(line)
    params: dict = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(neg_lines)}
    fields = a1111_fields(last)
    for key, value in fields.items():
        if key in _CONVERT:
            name, typ = _CONVERT[key]
            try:
                params[name] = typ(value)
            except ValueError:
                pass  # a field we cannot read is left for the user to set
        elif key == "Size":
            w, _, h = value.partition("x")
            if w.isdecimal() and h.isdecimal() and w.isascii() and h.isascii():
                params["width"], params["height"] = int(w), int(h)
    if fields.get("Schedule type") == "Karras" and params.get("scheduler") == "DPM++ 2M":
        params["scheduler"] = "DPM++ 2M Karras"
    if "Hires upscale" in fields:
        _read_hires(fields, params)
    _read_controlnet(fields, params)
    return params


def _read_hires(fields: dict, params: dict) -> None:
    """A1111's hires fields -> params["hires"] (scale, upscaler, denoise, steps; a field that cannot be read is left
    out, so the request's defaults apply). "Denoising strength" then is the hires denoise, not an img2img strength;
    "Hires steps" 0 or missing means as many as the first pass, as A1111 writes it."""
    hires: dict = {"upscaler": fields.get("Hires upscaler") or "Latent"}
    for key, name, typ in (("Hires upscale", "scale", float), ("Denoising strength", "denoise", float),
                           ("Hires steps", "steps", int)):
        try:
            hires[name] = typ(fields[key])
        except (KeyError, ValueError):
            pass
    if not hires.get("steps"):
        hires["steps"] = None
    params.pop("strength", None)
    params["hires"] = hires


def _quoted_end(line: str, i: int) -> int:
    """Index just after the closing quote of the double-quoted value starting at line[i] (backslash escapes
    allowed), or -1 when it is never closed."""
    j = i + 1
    while j < len(line):
        c = line[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        else:
            j += 1
    return -1


def _unquote(value: str) -> str:
    try:
        text = json.loads(value)
    except ValueError:
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def a1111_fields(line: str) -> dict[str, str]:
    """The `Key: value, Key: "quoted, value", ...` fields of AUTOMATIC1111's last line, stripped and unquoted.

    One left-to-right pass: each step finds the next ": ", takes the key after the last ", " before it, and the value
    up to the next comma (or the closing quote); every character is looked at a bounded number of times."""
    fields: dict[str, str] = {}
    i, n, quotes = 0, len(line), True  # quotes: False once a quote was found never closed (no closing quote follows)
    while i < n:
        colon = line.find(": ", i)
        if colon < 0:
            break
        comma = line.rfind(",", i, colon)  # text without a key of its own (", x, Seed: 1"): skipped
        key = line[(comma + 1 if comma >= 0 else i):colon].strip()
        j = colon + 2
        close = _quoted_end(line, j) if quotes and line.startswith('"', j) else -1
        quotes = quotes and not (line.startswith('"', j) and close < 0)
        nxt = line.find(",", max(j, close))
        value = line[j:nxt if nxt >= 0 else n].strip()
        if close >= 0 and not line[close:nxt if nxt >= 0 else n].strip():
            value = _unquote(line[j:close])
        if key and all(c.isalnum() or c in " _-/" for c in key):
            fields[key] = value
        i = nxt + 1 if nxt >= 0 else n
    return fields
