"""The /v1/images extensions beyond LoRAs: `controlnet` (a list of units, each with its control image as a base64
data URL) and `hires` (the hires fix, on generations). Their shape is checked here, with a sentence for each
mistake (an unknown key included: nothing is silently ignored); the values against the model (a listed ControlNet
for its base, the ranges) in the engine, as the tab's are.

    "controlnet": [{"model": "canny", "image": "data:image/png;base64,...", "preprocessor": "canny",
                    "strength": 0.8, "start": 0, "end": 1, "low": 100, "high": 200}],
    "hires": {"scale": 2, "upscaler": "latent", "denoise": 0.5, "steps": 10}
"""

from __future__ import annotations

import base64
import binascii
import json

from demos.stable_diffusion.controlnet import MAX_UNITS
from demos.stable_diffusion.types import ControlUnit, Hires
from hub.errors import UserError

UNIT_KEYS = ("model", "image", "preprocessor", "strength", "start", "end", "low", "high")
HIRES_KEYS = ("scale", "upscaler", "denoise", "steps")
MAX_IMAGE_MB = 20  # one control image's bytes (the body's own cap applies too)


def _json(value, what: str):
    """A form field arrives as text: JSON text is read as JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise UserError(f"'{what}' is not valid JSON; see the API page for its shape.") from None
    return value


def units(value) -> tuple:
    """The `controlnet` extension's units (types.ControlUnit with the image's bytes), or () for none."""
    value = _json(value, "controlnet")
    if value is None or value == []:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(u, dict) for u in value):
        raise UserError("'controlnet' must be a list of units like {\"model\": \"canny\", \"image\": "
                        "\"data:image/png;base64,...\"}.")
    if len(value) > MAX_UNITS:
        raise UserError(f"At most {MAX_UNITS} ControlNets at once; 'controlnet' has {len(value)}.")
    out = []
    for k, u in enumerate(value):
        where = f"controlnet[{k}]"
        unknown = sorted(set(u) - set(UNIT_KEYS))
        if unknown:
            raise UserError(f"{where} has {', '.join(map(repr, unknown))[:120]}, which this hub does not take; its "
                            f"keys are {', '.join(UNIT_KEYS)}.")
        if not isinstance(u.get("model"), str) or not u["model"].strip():
            raise UserError(f"{where} needs \"model\": a ControlNet name from GET /v1/images/controlnets.")
        out.append(ControlUnit(u["model"], _image(u.get("image"), where), u.get("preprocessor"),
                               *(u.get(key) for key in ("strength", "start", "end", "low", "high"))))
    return tuple(out)


def _image(value, where: str) -> bytes:
    """A control image: a base64 data URL (or bare base64), its size checked before it is decoded."""
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where} needs \"image\": the control picture as a data URL (data:image/png;base64,...).")
    text = value.strip()
    if text[:5].lower() == "data:":
        head, comma, text = text.partition(",")
        if not comma or not head.lower().endswith(";base64"):
            raise UserError(f"{where}'s image must be a base64 data URL: data:image/png;base64,<the file's bytes>.")
    elif text[:8].lower().startswith(("http://", "https://", "file:")):
        raise UserError(f"{where}'s image must be sent inline as a data URL; this hub does not download URLs.")
    if len(text) * 3 // 4 > MAX_IMAGE_MB * 2**20:
        raise UserError(f"{where}'s image is larger than {MAX_IMAGE_MB} MB; send a smaller picture.")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"{where}'s image is not valid base64; encode the file with standard base64.") from None


def hires(value) -> Hires | None:
    """The `hires` extension as a types.Hires, or None when it is left out."""
    value = _json(value, "hires")
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise UserError("'hires' must be an object like {\"scale\": 2, \"upscaler\": \"latent\", \"denoise\": 0.5}.")
    unknown = sorted(set(value) - set(HIRES_KEYS))
    if unknown:
        raise UserError(f"'hires' has {', '.join(map(repr, unknown))[:120]}, which this hub does not take; its keys "
                        f"are {', '.join(HIRES_KEYS)}.")
    return Hires(**{k: value[k] for k in HIRES_KEYS if value.get(k) is not None})
