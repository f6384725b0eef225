"""AUTOMATIC1111's hires fix for text to image: a first pass at the request's width x height, the picture enlarged,
then repainted by img2img at a denoise strength, so a large picture keeps the composition the model draws well at
its own size.

The upscalers, as A1111 names them:
- "Latent" / "Latent (nearest-exact)": the first pass's latents themselves, enlarged with
  `torch.nn.functional.interpolate` (bilinear / nearest-exact), go straight into img2img (no decode, no encode).
- "Lanczos": the first pass decoded (no safety check on that intermediate picture), enlarged with PIL's Lanczos.
- an upscaler model of the Upscale tab (demos/upscale: "RealESRGAN_x4plus", ...): decoded, then enlarged tile by tile
  with that demo's engine; the model is loaded on first use from the same cache (`demohub fetch upscale`) and kept on
  the Stable Diffusion engine, its bytes counted as the engine's `extra_bytes`. A random Stable Diffusion (tests,
  `--weights random`) gets the upscaler with random weights at its real architecture.

The second pass runs A1111's way: "Hires steps: 10" means ten denoising steps are run, whatever the denoise (the
schedule is made 10 / denoise steps long and its last `denoise` part is run); 0 or None: as many as the first pass. It
uses the same prompt embeddings (LoRAs fused once), seeds (fresh generators from them), scheduler kind and
guidance. Progress counts both passes (`on_step(k, first + second)`), `should_stop` is read after every step of both
and between the tiles of a model upscaler (a stop yields a cancelled Result), and the final decode and the safety
checker are engine._decode's. Denoise 0 skips the second pass: the enlarged picture as it is (latent: decoded).

`check_hires` runs in plan_txt2img before any work; the checked dict is kept in the parameters (`params["hires"]`:
scale, upscaler, denoise, steps and the final width and height), so the record and the PNG carry it (formats.py
writes A1111's "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Denoising strength: 0.5").
"""

from __future__ import annotations

import math
from dataclasses import fields

from demos.stable_diffusion.spec import MAX_SIDE, MAX_STEPS
from demos.stable_diffusion.types import Hires
from demos.upscale import spec as upscale_spec
from hub import validate
from hub.errors import UserError

MIN_SCALE, MAX_SCALE = 1.0, 4.0
LATENT = {"latent": ("Latent", "bilinear"), "latent (nearest-exact)": ("Latent (nearest-exact)", "nearest-exact")}
LANCZOS = "Lanczos"


def upscalers(include_hidden: bool = False) -> list[tuple[str, str]]:
    """(label, value) for a picker: the two latent modes, Lanczos, then the Upscale tab's models."""
    return [*((name, name) for name, _ in LATENT.values()), (LANCZOS, LANCZOS),
            *((m.display, m.id) for m in upscale_spec.listed(include_hidden))]


def _hires(value) -> Hires:
    """A Hires from a Hires or a dict of its fields (a /v1 body; a PNG's parameters, whose final width and height
    follow from the scale and are not read)."""
    if isinstance(value, Hires):
        return value
    names = [f.name for f in fields(Hires)]
    if isinstance(value, dict) and set(value) <= {*names, "width", "height"}:
        return Hires(**{k: v for k, v in value.items() if k in names})
    raise UserError(f"The hires fix must be given as its settings ({', '.join(names)}), or left out to turn it off.")


def upscaler_name(value, random_weights: bool = False) -> str:
    """The canonical name of a hires upscaler ("Latent", "Lanczos", a model id); UserError listing them. The hidden
    test upscalers are names only for a model on random weights."""
    key = str(value or "latent").strip().lower()
    if key in LATENT:
        return LATENT[key][0]
    if key == LANCZOS.lower():
        return LANCZOS
    model = upscale_spec.by_name(key)
    if model is not None and (not model.hidden or random_weights):  # test upscalers for test models
        return model.id
    shown = ", ".join(value for _, value in upscalers())
    raise UserError(f"Hires upscaler {str(value)[:60]!r} is not one of the choices; use one of: {shown}.")


def check_hires(value, engine, params: dict) -> dict | None:
    """The checked hires fix for the checked parameters `params` (mode, width, height, steps), or None when off.
    Every bad value gets one sentence, before any work."""
    if value is None:
        return None
    if params.get("mode") != "txt2img":
        raise UserError("The hires fix is for text to image only; leave it off here (image to image already starts "
                        "from your picture: raise its size or strength instead).")
    if engine.family != "sd":
        raise UserError(f"The hires fix runs on Stable Diffusion 1.x/2.x models; {engine.model_id} makes its large "
                        "pictures in one pass: leave the hires fix off and set the width and height instead.")
    h = _hires(value)
    w, hgt = params["width"], params["height"]
    scale = validate.number(h.scale, "hires scale", MIN_SCALE, MAX_SCALE)
    size = _final(w, engine.multiple, scale), _final(hgt, engine.multiple, scale)
    if max(size) > MAX_SIDE:
        most = math.floor(MAX_SIDE / max(w, hgt) * 100) / 100
        raise UserError(f"Hires scale {validate.plain_number(scale)} would make {size[0]}x{size[1]} pixels from "
                        f"{w}x{hgt}; this tab makes at most {MAX_SIDE} px per side: use a hires scale of at most "
                        f"{validate.plain_number(most)}, or a smaller width and height.")
    name = upscaler_name(h.upscaler, engine.source == "random")
    denoise = validate.number(h.denoise, "hires denoise", 0, 1)
    zero = isinstance(h.steps, (int, float)) and not isinstance(h.steps, bool) and h.steps == 0  # A1111's "same"
    steps = validate.number(None if zero else h.steps, "hires steps", 1, MAX_STEPS, integer=True,
                            default=params["steps"])
    longest = int(engine.scheduler_config.get("num_train_timesteps", 1000))
    if denoise > 0 and (steps / denoise > longest or schedule(steps, denoise) > longest):  # (a denormal: inf)
        most = math.floor(longest * denoise)
        raise UserError(f"With a hires denoise of {validate.plain_number(denoise)}, at most {most} hires steps fit "
                        f"the model's {longest}-step schedule; use fewer hires steps or a higher denoise.")
    if name not in (*(n for n, _ in LATENT.values()), LANCZOS):
        _upscaler_weights(engine, name)  # not on this machine: its sentence now, before any work
    return {"scale": scale, "upscaler": name, "denoise": denoise, "steps": steps, "width": size[0], "height": size[1]}


def _final(side: int, multiple: int, scale: float) -> int:
    """A side after the hires fix: side x scale rounded down to the model's multiple (A1111 floors it to 8 too)."""
    return max(multiple, int(side * scale + 1e-6) // multiple * multiple)


def schedule(steps: int, denoise: float) -> int:
    """The img2img schedule length whose last `denoise` part is exactly `steps` steps (diffusers runs
    int(n x strength) of n)."""
    n = math.ceil(steps / denoise - 1e-9)
    while int(n * denoise) < steps:
        n += 1
    return n


# ---- the run ------------------------------------------------------------------------------------------------------


def run_hires(engine, plan, safety_checker: bool = True, on_step=None, should_stop=None, on_latents=None):
    """Both passes of a checked txt2img plan whose params hold "hires" (engine.run calls this); a Result."""
    import torch

    from demos.stable_diffusion import conditioning
    from demos.stable_diffusion.engine import MAX_SEED, Result, _decode, make_scheduler

    p, h, notes = plan.params, plan.params["hires"], plan.notes
    seeds = [(p["seed"] + i) % (MAX_SEED + 1) for i in range(p["num_images"])]
    first, second = p["steps"], (h["steps"] if h["denoise"] > 0 else 0)
    cancelled = Result([], seeds, p, notes, cancelled=True)
    if should_stop and should_stop():
        return cancelled
    common = dict(guidance_scale=p["guidance"], num_images_per_prompt=len(seeds), output_type="latent")
    control = plan.control
    if control:  # ControlNets act in both passes, as sd-webui-controlnet's: their maps at each pass's size
        from demos.stable_diffusion import control_run

        maps = (control_run.maps(engine, control, p["width"], p["height"]),
                control_run.maps(engine, control, h["width"], h["height"]))
    with engine.lock:
        pipe, extra = engine.pipe, plan.extra
        if control:
            pipe, extra = control_run.pipeline(engine, "txt2img", control, maps[0], extra)
        pipe.scheduler = make_scheduler(p["scheduler"], engine.scheduler_config, engine.scheduler_class)
        text = conditioning.prepare(engine, pipe, p)  # LoRAs fused, A1111-weighted embeddings: both passes use them
        with torch.inference_mode():
            latents = pipe(**text, **common, num_inference_steps=first, generator=_generators(seeds),
                           callback_on_step_end=_hook(0, first + second, on_step, should_stop, on_latents),
                           **extra).images
            if pipe.interrupt:
                return cancelled
            init = _enlarge(engine, pipe, latents, p, notes, should_stop)
            if init is None:
                return cancelled
            if second == 0:
                images, nsfw = _unchanged(engine, pipe, init, latents, safety_checker, notes, p["decoder"])
            else:
                pipe, extra = engine.img2img_pipe, {}
                if control:
                    pipe, extra = control_run.pipeline(engine, "img2img", control, maps[1], extra)
                pipe.scheduler = make_scheduler(p["scheduler"], engine.scheduler_config, engine.scheduler_class)
                latents = pipe(**text, **common, image=init, strength=h["denoise"],
                               num_inference_steps=schedule(second, h["denoise"]), generator=_generators(seeds),
                               callback_on_step_end=_hook(first, first + second, on_step, should_stop,
                                                          on_latents), **extra).images
                if pipe.interrupt:
                    return cancelled
                images, nsfw = _decode(engine, pipe, latents, safety_checker, notes, p["decoder"])
    if any(nsfw):
        notes.append(f"{sum(nsfw)} of {len(nsfw)} image(s) were blacked out by the model's safety checker.")
    return Result(images, seeds, p, notes, nsfw)


def _generators(seeds):
    import torch

    return [torch.Generator("cpu").manual_seed(s) for s in seeds]  # CPU noise: the same picture on any device


def _hook(done: int, total: int, on_step, should_stop, on_latents):
    """diffusers' step-end callback for one pass: progress counted over both passes, and the stop flag read."""
    def step_end(pl, i, t, kwargs):
        if on_step:
            on_step(done + i + 1, total)
        if on_latents:
            on_latents(done + i + 1, total, kwargs["latents"])
        if should_stop and should_stop():
            pl._interrupt = True  # diffusers skips the remaining steps
        return kwargs
    return step_end


def _enlarge(engine, pipe, latents, p: dict, notes: list[str], should_stop):
    """The first pass enlarged to the hires size: latents (latent upscalers) or PIL pictures; None when stopped."""
    import torch
    from PIL import Image

    from demos.stable_diffusion.engine import _decode

    h = p["hires"]
    size = (h["width"], h["height"])
    for name, mode in LATENT.values():
        if h["upscaler"] == name:
            f = pipe.vae_scale_factor
            return torch.nn.functional.interpolate(latents, size=(size[1] // f, size[0] // f), mode=mode)
    pictures, _ = _decode(engine, pipe, latents, False, notes, p["decoder"])  # the checker runs on the final ones
    if h["upscaler"] == LANCZOS:
        return [im.resize(size, Image.Resampling.LANCZOS) for im in pictures]
    from demos.upscale.engine import upscale_image

    model, out = upscaler(engine, h["upscaler"]), []
    for im in pictures:
        big = upscale_image(model, im, size, should_stop=should_stop)
        if big is None:
            return None
        out.append(big)
    return out


def _unchanged(engine, pipe, init, latents, safety_checker: bool, notes: list[str], decoder: str):
    """Denoise 0: the enlarged pictures as they are (latents decoded), after the safety checker."""
    from demos.stable_diffusion.engine import _checked, _decode

    if not isinstance(init, list):
        return _decode(engine, pipe, init, safety_checker, notes, decoder)
    pixels = pipe.image_processor.preprocess(init)  # [-1, 1], as a decoder's output, for the checker
    return _checked(engine, pipe, pixels, latents, safety_checker)


# ---- the upscaler model kept on the engine ------------------------------------------------------------------------


def _upscaler_weights(engine, model_id: str):
    """The upscaler's weights from the engine's cache (WeightsUnavailable's sentence when it is not there)."""
    from demos.upscale.engine import weights_for

    held = getattr(engine, "hires_upscaler", None)
    if held is not None and held.model_id == model_id:
        return None
    return weights_for(model_id, engine.loras.cache_dir, random=engine.source == "random")


def upscaler(engine, model_id: str):
    """The upscale engine `model_id`, loaded once and kept on the Stable Diffusion engine (one at a time; another
    replaces it), on the same device; its bytes are added to the engine's `extra_bytes`."""
    from demos.upscale.engine import load

    held = getattr(engine, "hires_upscaler", None)
    if held is not None and held.model_id == model_id:
        return held
    new = load(_upscaler_weights(engine, model_id), engine.device, engine.dtype)
    size = sum(t.numel() * t.element_size() for t in (*new.model.parameters(), *new.model.buffers()))
    if held is not None:
        held.close()
    engine.extra_bytes = int(getattr(engine, "extra_bytes", 0) or 0) - getattr(engine, "hires_upscaler_bytes", 0) + size
    engine.hires_upscaler, engine.hires_upscaler_bytes = new, size
    return new
