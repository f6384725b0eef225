"""Where a Stable Diffusion pipeline goes: all of it on the device, or on a GPU with too little room diffusers' model
or sequential CPU offload (offload_plan decides from the components' sizes and the free memory)."""

from __future__ import annotations

import logging

log = logging.getLogger("demohub")

OFFLOADS = ("auto", "model", "sequential", "none")


def offload_plan(sizes: list[int], room: int, setting: str = "auto") -> str:
    """How to place a pipeline on a GPU: "none" (all of it on the GPU), "model" (diffusers' model CPU offload: one
    component on the GPU at a time) or "sequential" (layer by layer: fits almost any GPU, much slower). "auto" picks
    the fastest that fits `room` free bytes, from the components' weight bytes `sizes`: all of them need 1.6x their
    weights (activations, the VAE decode); one at a time, the largest needs 1.1x its weights plus 1 GiB (Z-Image-Turbo's
    12.3 GB transformer: 14.6 GB, inside a 16 GB GPU)."""
    if setting != "auto":
        return setting
    if room >= int(1.6 * sum(sizes)):
        return "none"
    return "model" if room >= int(1.1 * max(sizes)) + 2**30 else "sequential"


def _place(pipe, device: str, vram_budget: int | None, setting: str = "auto") -> bool | str:
    """Move the pipeline to `device`; on a GPU with too little room offload (offload_plan). Returns False, or the
    kind of offload ("model" or "sequential"), which the record shows."""
    import torch

    if not device.startswith("cuda"):
        pipe.to(device)
        return False
    torch.backends.cudnn.benchmark = True
    sizes = [sum(p.numel() * p.element_size() for p in m.parameters())
             for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    room = torch.cuda.mem_get_info(torch.device(device))[0]
    if vram_budget is not None:
        room = min(room, vram_budget)
    plan = offload_plan(sizes, room, setting)
    if plan == "none":
        pipe.to(device)
        return False
    log.warning("Stable Diffusion: %.1f GB free on %s, %.1f GB needed; using %s CPU offload (slower).",
                room / 1e9, device, 1.6 * sum(sizes) / 1e9, plan)
    if plan == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return plan
