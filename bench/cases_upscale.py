"""Upscaling and Stable Diffusion's hires fix (issue #29).

upscale: the hub's tiled run (demos/upscale: 128 px tiles overlapping by 16, cross-faded) vs spandrel's own call on
the whole picture, on one 256 px picture to 1024 px, with Real-ESRGAN x4plus's architecture (spandrel's RRDBNet, 23
blocks, 64 features) and seeded random weights (the real weights are not on PyPI): the same network, so the figure
is the cost of tiling (9 tiles of 96 px read 1.27x the pixels, for a memory bound that no longer grows with the
picture). The metrics give the largest difference between the two pictures (levels of 255).

sd_hires: the hires fix (64 px, then Latent x2 to 128 px at denoise 0.5, as many hires steps as first-pass steps) vs
plain text to image at the final 128 px, on the tiny random SD engine, per denoising step: the metrics give each
side's milliseconds per step (the hires side runs twice the steps, half of them at a quarter of the pixels).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.harness import Case

SIDE, TILE = 256, 128
STEPS = 4


def _upscale_setup():
    import numpy as np
    import torch
    from PIL import Image

    from demos.upscale import engine as up
    from demos.upscale.spec import SPEC
    from hub.weights import Weights

    cuda = torch.cuda.is_available()
    cache = Path(tempfile.mkdtemp(prefix="bench-upscale-"))
    choice = replace(SPEC.choice("RealESRGAN_x4plus"), source="random")  # 23 blocks, 64 features
    engine = up.load(Weights("upscale", choice, "random", None, cache), "cuda" if cuda else "cpu",
                     "float16" if cuda else "float32")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    base = np.stack([x, y, (x + y) // 2], axis=-1) + rng.normal(0, 20, (SIDE, SIDE, 3))
    picture = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    return {"up": up, "engine": engine, "picture": picture, "cache": cache, "out": {}}


def _naive_upscale(ctx):
    """spandrel's documented call: the whole picture as one (1, 3, H, W) tensor in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    engine = ctx["engine"]
    x = torch.from_numpy(np.asarray(ctx["picture"], dtype=np.float32) / 255).permute(2, 0, 1)[None]
    y = engine.desc(x.to(engine.device, getattr(torch, engine.dtype)))
    ctx["out"]["naive"] = Image.fromarray((y[0].float().permute(1, 2, 0).cpu().numpy() * 255).round().astype("uint8"))


def _hub_upscale(ctx):
    picture = ctx["picture"]
    ctx["out"]["hub"] = ctx["up"].upscale_image(ctx["engine"], picture, (4 * SIDE, 4 * SIDE), TILE)


def _upscale_metrics(ctx) -> dict:
    import numpy as np

    a, b = (np.asarray(ctx["out"][k], dtype=np.int16) for k in ("naive", "hub"))
    p = ctx["up"].plan(ctx["engine"], (SIDE, SIDE), 4, TILE)
    return {"tiles": p.tiles, "max_diff_levels": int(np.abs(a - b).max()), "dtype": ctx["engine"].dtype}


def _hires_setup():
    from demos.stable_diffusion import engine as sd
    from hub.settings import Settings
    from hub.weights import Weights

    cache = Path(tempfile.mkdtemp(prefix="bench-hires-"))
    engine = sd.load(Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None, cache), "cpu",
                     "float32", settings=replace(Settings.load({}), compile=False))
    return {"sd": sd, "engine": engine, "cache": cache, "ms_per_step": {"naive": [], "hub": []}}


def _generate(side: str, **kw):
    def run(ctx):
        t0, steps = time.perf_counter(), []
        ctx["sd"].generate(ctx["engine"], "a lighthouse at dusk", seed=0, steps=STEPS, scheduler="Euler",
                           on_step=lambda i, n: steps.append(i), safety_checker=False, **kw)
        ctx["ms_per_step"][side].append((time.perf_counter() - t0) * 1e3 / len(steps))
    return run


def _hires_metrics(ctx) -> dict:
    import statistics

    return {f"{k}_ms_per_step": round(statistics.median(v), 1) for k, v in ctx["ms_per_step"].items()}


def _teardown(ctx):
    ctx["engine"].close()
    shutil.rmtree(ctx["cache"], ignore_errors=True)


def cases() -> list[Case]:
    import torch

    from demos.stable_diffusion.types import Hires

    cuda = torch.cuda.is_available()
    return [
        Case(name=f"upscale/realesrgan_x4_arch_{SIDE}px_tiled_{TILE}", setup=_upscale_setup, naive=_naive_upscale,
             hub=_hub_upscale, teardown=_teardown, metrics=_upscale_metrics, unit="image",
             warmup=1 if cuda else 0, repeat=5 if cuda else 1,
             notes=f"naive: spandrel's call on the whole {SIDE} px picture; hub: {TILE} px tiles, 16 px overlap, "
                   "cross-faded (the same random RRDBNet 23x64, x4)",
             goal="hub within 1.3x of naive (the extra pixels the overlaps read); max_diff_levels <= 1"),
        Case(name=f"sd_hires/tiny_64_to_128px_{STEPS}+{STEPS}steps_latent", setup=_hires_setup,
             naive=_generate("naive", width=128, height=128),
             hub=_generate("hub", width=64, height=64, hires=Hires(2, "latent", 0.5, STEPS)),
             teardown=_teardown, metrics=_hires_metrics, unit="image", repeat=5, warmup=1,
             notes=f"naive: plain txt2img at 128 px, {STEPS} steps; hub: the hires fix, {STEPS} steps at 64 px, "
                   f"Latent x2, {STEPS} steps at 128 px (denoise 0.5); tiny random SD on the CPU",
             goal="hub per step below naive per step (half its steps run at a quarter of the pixels)"),
    ]
