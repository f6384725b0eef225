"""Stable Diffusion with a fused LoRA vs without (issue #29): a fused LoRA must add no time per denoising step.

Both sides are the hub's own `generate` on two engines loaded alike (the SD-Turbo architecture, the same seeded random
weights; the hub's dtype and tiny decoder on a CPU, fp16 on CUDA): "naive" runs without LoRAs, "hub" with a rank-16
LoRA on every attention projection of the UNet (diffusers key format, written here), fused into its weights once
(the warm-up call; later calls reuse the fused set). Two engines, because the harness alternates the sides: on one
engine every switch would unfuse and fuse again. The figure that matters is the step time: `items` are steps.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.harness import Case

PROMPT = "a photograph of an astronaut riding a horse on the moon, detailed, 35mm"
RANK = 16


def _write_lora(unet, path: Path) -> int:
    """A LoRA on every attention projection (to_q, to_k, to_v, to_out.0) of `unet`; returns how many layers."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, module in unet.named_modules():
        if name.endswith(("to_q", "to_k", "to_v", "to_out.0")) and isinstance(module, torch.nn.Linear):
            tensors[f"unet.{name}.lora_A.weight"] = torch.randn(RANK, module.in_features, generator=g) * 0.01
            tensors[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, RANK, generator=g) * 0.01
    save_file(tensors, str(path))
    return len(tensors) // 2


def _setup(size: int):
    def setup():
        import torch

        from demos.stable_diffusion import engine as sd
        from demos.stable_diffusion.fuse import LoraState
        from hub.device import detect
        from hub.settings import Settings
        from hub.weights import Weights

        cuda = torch.cuda.is_available()
        cache = Path(tempfile.mkdtemp(prefix="bench-sd-lora-"))
        choice = sd.SPEC.choice("stabilityai/sd-turbo")
        choice = replace(choice, source="random", options={**choice.options, "arch": "sd21"})
        device, dtype = ("cuda", "float16") if cuda else ("cpu", detect("cpu", cpu_prefers=choice.cpu_dtype).dtype)
        settings = replace(Settings.load({}), compile=False)
        plain, fused = (sd.load(Weights("stable_diffusion", choice, "random", None, cache), device, dtype,
                                settings=settings) for _ in range(2))
        folder = cache / "loras"
        folder.mkdir()
        layers = _write_lora(fused.pipe.unet, folder / "bench.safetensors")
        fused.loras = LoraState(str(folder), cache)
        return {"sd": sd, "plain": plain, "fused": fused, "cache": cache, "layers": layers}
    return setup


def _run(size: int, steps: int, loras: str):
    def run(ctx):
        engine = ctx["fused" if loras else "plain"]
        return ctx["sd"].generate(engine, PROMPT, seed=0, steps=steps, guidance=0.0, width=size, height=size,
                                  scheduler="Euler", safety_checker=False, loras=loras).images
    return run


def _teardown(ctx):
    ctx["plain"].close()
    ctx["fused"].close()
    shutil.rmtree(ctx["cache"], ignore_errors=True)


def cases() -> list[Case]:
    import torch

    size, steps = (512, 20) if torch.cuda.is_available() else (256, 4)
    return [Case(
        name=f"sd_turbo_arch_{size}px_{steps}steps_fused_lora", unit="step", items=steps, repeat=5, warmup=1,
        setup=_setup(size), naive=_run(size, steps, ""), hub=_run(size, steps, "bench:0.8"), teardown=_teardown,
        metrics=lambda ctx: {"lora_layers": ctx["layers"], "fused": bool(ctx["fused"].loras.fused)},
        notes="naive: no LoRA; hub: a rank-16 LoRA on every UNet attention projection, fused (its own engine, "
              "loaded as the plain one; the same request); per step includes the prompt encoding and decoding",
        goal="hub step time within noise of naive (fused: no extra work per step)",
    )]
