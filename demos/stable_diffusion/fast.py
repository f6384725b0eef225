"""The CUDA fast path: torch.compile of the UNet (CUDA graphs), warmed up at load so no request pays for it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("demohub")


def compile_and_warm_up(engine, cache_dir: Path) -> None:
    """torch.compile the UNet (CUDA graphs) and run it once at the default size, so no request pays for compiling.

    Other sizes or batch sizes compile on their first request (a minute or more): the log says so.
    """
    import torch

    from demos.stable_diffusion.engine import generate

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(cache_dir) / "inductor"))  # warm restarts
    pipe = engine.pipe
    pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
    engine.img2img_pipe.unet = engine.inpaint_pipe.unet = pipe.unet
    size = engine.defaults["size"]
    log.info("Stable Diffusion: compiling the UNet for %dx%d (first time takes a minute or more)...", size, size)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    for _ in range(3):  # CUDA graphs record on the 2nd/3rd call
        generate(engine, "warm-up", steps=2, guidance=engine.defaults["guidance"], width=size, height=size, seed=0,
                 safety_checker=False)
    torch.cuda.empty_cache()
    engine.extra_bytes = max(0, torch.cuda.memory_reserved() - before)  # the graphs' memory pool, for the manager
    engine.compiled = True
    log.info("Stable Diffusion: UNet compiled; other sizes or image counts compile on their first request.")
