"""Upscale (AUTOMATIC1111's "Extras"): enlarge any picture 1 to 4 times with Real-ESRGAN, through spandrel.

- `spec.py`: the models (pinned by revision and SHA-256; how each pin was checked), the limits.
- `types.py`: the request, the per-tile progress item and the result (plain data: what crosses to a Ray replica).
- `engine.py`: `load` (spandrel's detection; .pth files only weights-only), `fetch` (`demohub fetch upscale`), the
  check step (`plan`), the run (model passes, Lanczos to the exact scale, alpha kept) and `WORK` (the `upscale`
  method: a Tile per tile, then the result); `upscale_image` for Stable Diffusion's hires fix.
- `tiles.py`: overlapping tiles cross-faded where they meet, so any picture size fits the model's memory.
- `formats.py`: the PNG, keeping the upload's generation parameters.
- `ui.py`: the tab; Stable Diffusion's gallery has an **Upscale** button that sends its picture here (hub.links).

Operator setting: DEMOHUB_UPSCALE_MAX_SIDE caps the result's longer side (4096 px by default: 4x of 1024 px).
"""

from hub.contract import Demo, Example, Option, Sample

from demos.upscale.spec import MAX_OUT_SIDE, SPEC

__all__ = ["DEMO", "SPEC"]

DEMO = Demo(
    spec=SPEC,
    load="demos.upscale.engine:load",
    ui="demos.upscale.ui:build",
    work="demos.upscale.engine:WORK",
    fetch="demos.upscale.engine:fetch",
    options=(
        Option("max_side", MAX_OUT_SIDE, "The longest side, in pixels, an upscaled picture may have (its weighted "
                                         "sums take 16 bytes per output pixel on the CPU: 268 MB at 4096 px).",
               lo=256, hi=16384),
    ),
    examples=(
        Example("upscale", {"model": "tiny-random", "image": Sample("image"), "scale": 2, "tile": 64},
                bad={"scale": 9}),
    ),
)
