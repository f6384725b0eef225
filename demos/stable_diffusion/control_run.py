"""ControlNet at run time: the ControlNets a request names, loaded once onto the engine's device and dtype and kept
(at most KEEP; the least recently used goes first), the preprocessors' maps, and the diffusers ControlNet pipeline of
the request's mode built from the engine's own modules (no second copy of the UNet, VAE or text encoder; the LoRAs
fused into them apply here too). controlnet.py lists and checks; control_maps.py makes the maps.

Runs under the engine's lock (engine._run), as every pipeline call does.
"""

from __future__ import annotations

import logging
import zlib

log = logging.getLogger("demohub")

KEEP = 2  # ControlNets kept loaded per engine (each is ~0.7 GB in float16 for SD 1.5)


def maps(engine, units: list[dict], width: int, height: int) -> list:
    """The map of each checked unit at width x height (PIL RGB)."""
    from demos.stable_diffusion import control_maps

    depth = depth_model(engine) if any(u["preprocessor"] == "depth" for u in units) else None
    return [control_maps.make(u, width, height, depth) for u in units]


def depth_model(engine):
    """The depth preprocessor's model, loaded on first use and kept on the engine (on the CPU: ~25M parameters; the
    GPU stays for the denoising)."""
    from demos.stable_diffusion import control_maps
    from demos.stable_diffusion.controlnet import DEPTH_ESTIMATOR

    if getattr(engine, "depth", None) is None:
        if engine.source == "random":
            engine.depth = control_maps.random_depth()
        else:
            from hub.weights import cached_snapshot

            folder = cached_snapshot(engine.loras.cache_dir, DEPTH_ESTIMATOR)
            if folder is None:
                from hub.errors import UserError

                raise UserError("The depth preprocessor's model (Depth Anything V2 Small) is not on this machine: "
                                "the operator gets it with `demohub fetch stable_diffusion --model "
                                f"{DEPTH_ESTIMATOR.id}`. Meanwhile upload a depth map with the preprocessor none.")
            from hub.weights import verify_file

            verify_file(folder / "model.safetensors", DEPTH_ESTIMATOR.sha256, "stable_diffusion")  # its pinned hash
            engine.depth = control_maps.load_depth(folder)
        _count(engine, engine.depth.model)
    return engine.depth


def _count(engine, model, sign: int = 1) -> None:
    """Add (or take away) a model's bytes to what the engine holds beside its weights (`extra_bytes`), which the
    model manager reads again after every request, so its memory budget counts the ControlNets kept."""
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    engine.extra_bytes = max(0, int(getattr(engine, "extra_bytes", 0) or 0) + sign * n)


def net(engine, name: str):
    """The loaded ControlNet `name` (controlnet.available), loading it on first use."""
    from demos.stable_diffusion.controlnet import available

    kept = engine.nets
    if name in kept:
        kept[name] = kept.pop(name)  # most recently used last
        return kept[name]
    entry = available(engine)[name]
    model = _random(engine, name) if entry.path is None else _load(engine, entry.path)
    while len(kept) >= KEEP:
        _count(engine, kept.pop(next(iter(kept))), -1)
    kept[name] = model
    _count(engine, model)
    return model


def _load(engine, folder):
    import torch
    from diffusers import ControlNetModel

    dtype = getattr(torch, engine.dtype)
    fp16 = any(p.name.endswith(".fp16.safetensors") for p in folder.iterdir())
    model = ControlNetModel.from_pretrained(folder, torch_dtype=dtype, variant="fp16" if fp16 else None)
    return model.to(engine.device).eval()


def _random(engine, name: str):
    """A ControlNet at the loaded UNet's architecture (diffusers' from_unet copies its encoder), whose zero
    convolutions (the outputs a trained ControlNet learns) get small random values seeded by the name, so that it
    visibly steers the tests' random model."""
    import torch
    from diffusers import ControlNetModel

    model = ControlNetModel.from_unet(engine.pipe.unet)
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    with torch.no_grad():
        for block in (*model.controlnet_down_blocks, model.controlnet_mid_block):
            for p in block.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    dtype = engine.pipe.unet.dtype
    return (model if model.dtype == dtype else model.to(dtype=dtype)).to(engine.device).eval()


def pipeline(engine, mode: str, units: list[dict], control_maps: list, extra: dict) -> tuple:
    """(the ControlNet pipeline for `mode` over the engine's modules, the call's extra arguments with the maps and
    each unit's strength and step window)."""
    import diffusers

    models = [net(engine, u["name"]) for u in units]
    cls = {"txt2img": diffusers.StableDiffusionControlNetPipeline,
           "img2img": diffusers.StableDiffusionControlNetImg2ImgPipeline,
           "inpaint": diffusers.StableDiffusionControlNetInpaintPipeline}[mode]
    from diffusers import MultiControlNetModel

    shared = {k: v for k, v in engine.pipe.components.items() if k != "controlnet"}
    one = len(models) == 1
    pipe = cls(**shared, controlnet=models[0] if one else MultiControlNetModel(models),
               requires_safety_checker=engine.pipe.safety_checker is not None)
    pipe.set_progress_bar_config(disable=True)

    def per_unit(key):
        values = [u[key] for u in units]
        return values[0] if one else values

    args = {**extra, "controlnet_conditioning_scale": per_unit("strength"),
            "control_guidance_start": per_unit("start"), "control_guidance_end": per_unit("end")}
    args["image" if mode == "txt2img" else "control_image"] = control_maps[0] if one else control_maps
    return pipe, args


# ---- the work method: a preprocessor's map, to look at before generating ------------------------------------------

from demos.stable_diffusion.engine import WORK  # noqa: E402  (engine.py imports this module at its end)
from demos.stable_diffusion.types import ControlMapRequest  # noqa: E402


@WORK.method(ControlMapRequest, name="control_map")
def control_map(lease, req: ControlMapRequest, job):
    """The preprocessor's map of the request's picture (a PIL RGB image), checked as a unit's would be."""
    from demos.stable_diffusion import control_maps, controlnet
    from demos.stable_diffusion.checks import check_side
    from hub.errors import UserError
    from hub.media.image import open_image

    engine = lease.engine
    if req.image is None:
        raise UserError("Upload the picture to make a ControlNet map from first.")
    picture = open_image(req.image, "the control image")
    pre, low, high = controlnet.map_settings(req.preprocessor, req.low, req.high)
    size = engine.defaults["size"]
    w, h = check_side(req.width, "width", size, engine.multiple), check_side(req.height, "height", size,
                                                                             engine.multiple)
    unit = {"image": picture, "preprocessor": pre, "low": low, "high": high}
    return control_maps.make(unit, w, h, depth_model(engine) if pre == "depth" else None)
