"""Stable Diffusion with a ControlNet vs without (issue #29): what one ControlNet costs per denoising step.

Both sides are the hub's own `generate` on one engine (the SD 1.5 architecture, which the pinned ControlNets are made
for, with seeded random weights; the hub's CPU dtype and tiny decoder on a CPU, fp16 on CUDA): "naive" runs the
plain text-to-image pipeline, "hub" the same request with one canny ControlNet (diffusers' ControlNetModel at the SD
1.5 ControlNet's architecture, built from the UNet as diffusers' from_unet does; the canny map made by OpenCV). A
ControlNet runs a copy of the UNet's encoder at every step, so the expected cost is about 1.4-1.5x per step.
`items` are steps.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.harness import Case

PROMPT = "a photograph of a lighthouse on a cliff, detailed, 35mm"


def _picture(size: int):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(im).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), outline="black", width=6)
    return im


def _setup():
    import torch

    from demos.stable_diffusion import engine as sd
    from hub.device import detect
    from hub.settings import Settings
    from hub.weights import Weights

    cuda = torch.cuda.is_available()
    cache = Path(tempfile.mkdtemp(prefix="bench-sd-cn-"))
    choice = sd.SPEC.choice("stable-diffusion-v1-5/stable-diffusion-v1-5")
    choice = replace(choice, source="random")
    device, dtype = ("cuda", "float16") if cuda else ("cpu", detect("cpu", cpu_prefers=choice.cpu_dtype).dtype)
    engine = sd.load(Weights("stable_diffusion", choice, "random", None, cache), device, dtype,
                     settings=replace(Settings.load({}), compile=False))
    return {"sd": sd, "engine": engine, "cache": cache}


def _run(size: int, steps: int, control: bool):
    def run(ctx):
        from demos.stable_diffusion.types import ControlUnit

        units = [ControlUnit("canny", _picture(size))] if control else ()
        return ctx["sd"].generate(ctx["engine"], PROMPT, seed=0, steps=steps, guidance=0.0, width=size, height=size,
                                  scheduler="Euler", safety_checker=False, decoder="tiny", controlnet=units).images
    return run


def _teardown(ctx):
    ctx["engine"].close()
    shutil.rmtree(ctx["cache"], ignore_errors=True)


def _metrics(ctx) -> dict:
    nets = ctx["engine"].nets
    return {"controlnet_params_m": round(sum(p.numel() for m in nets.values() for p in m.parameters()) / 1e6, 1)}


def cases() -> list[Case]:
    import torch

    size, steps = (512, 20) if torch.cuda.is_available() else (256, 4)
    return [Case(
        name=f"sd15_arch_{size}px_{steps}steps_controlnet_canny", unit="step", items=steps, repeat=5, warmup=1,
        setup=_setup, naive=_run(size, steps, False), hub=_run(size, steps, True), teardown=_teardown,
        metrics=_metrics,
        notes="naive: plain text to image; hub: the same request with one canny ControlNet (SD 1.5 ControlNet "
              "architecture, random weights); per step includes the prompt encoding, the canny map and decoding",
        goal="the ControlNet's cost per step: about 1.4-1.5x plain (a second UNet encoder per step)",
    )]
