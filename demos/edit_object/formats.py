"""What the Edit-by-object tab hands out: PNGs that carry the chain's one record, and the record as JSON.

A replaced or removed object's PNG carries Stable Diffusion's parameters in AUTOMATIC1111's "parameters" text and in
"demohub" JSON (so the Stable Diffusion tab's *Read parameters* fills its fields from it), with the whole chain under
"chain": every step's demo, model, revision, device, dtype, parameters, seed and time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def png_info(record: dict, sd_params: dict | None = None):
    from PIL.PngImagePlugin import PngInfo

    from demos.stable_diffusion.formats import parameters_text

    info = PngInfo()
    if sd_params:
        info.add_text("parameters", parameters_text(sd_params))
    else:
        models = " -> ".join(dict.fromkeys(str(s.get("model", "")) for s in record.get("steps", ())))
        info.add_text("parameters", f"Edit by object: {record.get('action', '')} ({models})")
    info.add_itxt("demohub", json.dumps({**(sd_params or {}), "chain": record}, ensure_ascii=False, default=str))
    return info


def write_png(folder: Path, name: str, pixels: np.ndarray, record: dict, sd_params: dict | None = None) -> str:
    from PIL import Image

    path = Path(folder) / name
    Image.fromarray(pixels).save(path, "PNG", pnginfo=png_info(record, sd_params), compress_level=3)
    return str(path)


def write_json(folder: Path, record: dict, name: str = "record.json") -> str:
    path = Path(folder) / name
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str))
    return str(path)


def read_record(path) -> dict:
    """The chain's record from a PNG this tab wrote (tests, and anyone re-running a chain)."""
    from PIL import Image

    with Image.open(path) as im:
        return json.loads(im.text["demohub"])["chain"]
