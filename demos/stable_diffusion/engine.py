"""Stable Diffusion: text-to-image, img2img and inpainting with diffusers, on one set of weights per model.

One `StableDiffusionPipeline` is loaded per model; the img2img and inpaint pipelines are built from its
components, so they share the same UNet, VAE and text encoder (no second copy of the weights). The pipelines
return latents; this file decodes them itself so it can catch NaN/black images from a float16 VAE (and decode
again in float32), run the model's safety checker when the operator leaves it on, and stamp every PNG with its
parameters. A callback on every denoising step reports progress and stops the loop when the user cancels.

GPU fast path (CUDA only): fp16 weights, PyTorch SDPA attention (diffusers' default processor), cuDNN autotune,
optional `torch.compile(mode="reduce-overhead")` of the UNet with its warm-up done at load time (never inside a
request; fast.py), and model CPU offload when the GPU has too little room. channels_last is deliberately not used:
on the H100 it made the eager SD 1.5 UNet slower (54 vs 42 ms per step, see shared/GPU.md).

Every work function checks all its inputs (`check_*`) before any work: out-of-range numbers are refused with
hub.validate's sentence, and so is a width or height that is not a multiple of 8 (the sentence names the nearest
valid sizes): nothing is clamped or rounded behind the user's back.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from demos.stable_diffusion import masks, zimage
from demos.stable_diffusion.decoder import check_decoder, decode_tiny, load_tiny
from demos.stable_diffusion.formats import WritePNG
from demos.stable_diffusion.pipelines import build_pipeline
from demos.stable_diffusion.spec import (  # noqa: F401  (re-exported: the limits belong to the engine's API)
    DEFAULTS, FAMILY_SCHEDULERS, MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS, SPEC)
from hub import validate
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.media.image import open_image

log = logging.getLogger("demohub")

# The masks live in masks.py; the UI, /v1/images/edits and the tests reach them here, as before.
mask_from, editor_mask, alpha_channel = masks.mask_from, masks.editor_mask, masks.alpha_channel

# ---- loading ------------------------------------------------------------------------------------------------------


class Engine:
    """A loaded model: the text-to-image pipeline and the img2img / inpaint pipelines that share its modules.

    family: "sd" (Stable Diffusion 1.x/2.x: UNet, CLIP, TAESD available) or "zimage" (zimage.py: a flow-matching
    transformer, Qwen3 text encoder, 16-channel VAE, sides multiples of 16, no safety checker, no tiny decoder).
    """

    def __init__(self, pipe, model_id: str, revision: str | None, source: str, device: str, dtype: str,
                 defaults: dict, offloaded: bool | str = False, compiled: bool = False, family: str = "sd"):
        self.pipe, self.family = pipe, family
        self.img2img_pipe, self.inpaint_pipe = _companions(pipe, family)
        for p in (self.pipe, self.img2img_pipe, self.inpaint_pipe):
            p.set_progress_bar_config(disable=True)
        self.scheduler_config = dict(pipe.scheduler.config)
        self.scheduler_class = type(pipe.scheduler).__name__
        self.model_id, self.revision, self.source = model_id, revision, source
        self.device, self.dtype = device, dtype
        self.defaults = {**DEFAULTS, **{k: v for k, v in defaults.items() if k in DEFAULTS}}
        self.offloaded, self.compiled = offloaded, compiled
        self.tiny, self.tiny_missing = None, ""  # the tiny decoder (TAESD), or why there is none
        self.schedulers = FAMILY_SCHEDULERS[family]
        self.multiple = zimage.MULTIPLE if family == zimage.FAMILY else 8  # sides: a multiple of this
        # prompt tokens the text encoder reads (CLIP: 77 less start and end; Z-Image: 512 less its chat template)
        self.prompt_limit = (zimage.prompt_limit(pipe.tokenizer) if family == zimage.FAMILY
                             else pipe.tokenizer.model_max_length - 2)
        self.lock = threading.Lock()  # one request at a time per pipeline (schedulers and `_interrupt` are state)

    @property
    def has_safety_checker(self) -> bool:
        return getattr(self.pipe, "safety_checker", None) is not None

    @property
    def is_inpainting_model(self) -> bool:
        return self.family == "sd" and self.pipe.unet.config.in_channels == 9

    def close(self) -> None:
        self.pipe = self.img2img_pipe = self.inpaint_pipe = self.tiny = None


def _companions(pipe, family: str):
    """(img2img, inpaint) pipelines built from the same module objects (not `from_pipe`, which casts the shared
    modules to float32 by default)."""
    if family == zimage.FAMILY:
        return zimage.companions(pipe)
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

    shared = {**pipe.components, "requires_safety_checker": pipe.safety_checker is not None}
    return StableDiffusionImg2ImgPipeline(**shared), StableDiffusionInpaintPipeline(**shared)


def load(weights, device: str, dtype: str, options=None, settings=None) -> Engine:
    """Load a Stable Diffusion 1.x/2.x pipeline (diffusers folder, single .safetensors file, or random weights), or a
    Z-Image pipeline (zimage.py) for the models whose spec says `family: zimage` and for Z-Image folders.

    options: the demo's options (hub.options.DemoOptions; None: the declared defaults). settings: the hub's
    Settings (None: no VRAM budget, no compile); `settings.compile or options.compile` compiles the UNet at load.
    """
    import torch

    if options is None:
        from demos.stable_diffusion import DEMO
        from hub.options import defaults

        options = defaults(DEMO)
    family = _family(weights)
    if family == zimage.FAMILY:
        pipe = zimage.build_pipeline(weights, device, getattr(torch, dtype))
    else:
        pipe = build_pipeline(weights, device, getattr(torch, dtype))
    pipe.set_progress_bar_config(disable=True)
    offloaded = _place(pipe, device, getattr(settings, "vram_budget", None), getattr(options, "offload", "auto"))
    # the spec's settings; a local Z-Image folder (no spec entry) gets Z-Image-Turbo's
    choice = {**(zimage.DEFAULTS if family == zimage.FAMILY else {}), **weights.choice.options}
    size = choice.get("size") or pipe.vae_scale_factor * pipe.unet.config.sample_size
    cpu_channels_last(device, *([pipe.unet] if family == "sd" else []), pipe.vae)
    engine = Engine(pipe, weights.choice.id, weights.choice.revision, weights.source, device, dtype,
                    {**choice, "size": size}, offloaded=offloaded, family=family)
    if family == zimage.FAMILY:
        engine.tiny_missing = zimage.NO_TINY
    else:
        engine.tiny, engine.tiny_missing = load_tiny(weights, device, getattr(torch, dtype), settings)
    if (family == "sd" and device.startswith("cuda") and not offloaded
            and (getattr(settings, "compile", False) or options.compile)):
        from demos.stable_diffusion.fast import compile_and_warm_up

        compile_and_warm_up(engine, weights.cache_dir)
    return engine


def _family(weights) -> str:
    """The model's family: its spec's `family` option, else "zimage" for a Z-Image diffusers folder, else "sd"."""
    named = weights.choice.options.get("family")
    if named:
        return named
    path = Path(weights.path) if weights.source != "random" and weights.path is not None else None
    return zimage.FAMILY if path is not None and path.is_dir() and zimage.is_zimage_folder(path) else "sd"


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


# ---- the work ---------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """Images and the parameters that made them (one seed per image: seed, seed+1, ...)."""

    images: list
    seeds: list[int]
    params: dict
    notes: list[str] = field(default_factory=list)
    nsfw: list[bool] = field(default_factory=list)
    cancelled: bool = False

    def image_params(self, i: int) -> dict:
        return {**self.params, "seed": self.seeds[i]}

    def save(self, folder: str | Path, stem: str = "sd") -> list[Path]:
        """Write each image as a PNG with its parameters in text chunks; returns the paths."""
        writer = WritePNG(folder, stem)
        return [writer.write(im, self.image_params(i)) for i, im in enumerate(self.images)]


def record(lease, res: Result, safety_checker: bool) -> dict:
    """The reproducibility record of one request (the tab and /v1/images answer the same one)."""
    return lease.record(**{k: v for k, v in res.params.items() if k not in ("model", "revision")},
                        seeds=res.seeds, notes=res.notes, compiled=lease.engine.compiled,
                        safety_checker=safety_checker and lease.engine.has_safety_checker,
                        offloaded=lease.engine.offloaded)


OnStep = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def generate(engine: Engine, prompt: str, negative_prompt: str = "", *, seed: int | None = None,
             steps: int | None = None, guidance: float | None = None, width: int | None = None,
             height: int | None = None, scheduler: str | None = None, num_images: int = 1,
             decoder: str | None = None, safety_checker: bool = True, on_step: OnStep | None = None,
             should_stop: ShouldStop | None = None) -> Result:
    """Text to image. Bad values (a size not a multiple of 8 included) raise UserError; a long prompt gets a note."""
    notes: list[str] = []
    check_text_model(engine)
    size = engine.defaults["size"]
    w = check_side(width, "width", size, engine.multiple)
    h = check_side(height, "height", size, engine.multiple)
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder)
    p.update(mode="txt2img", width=w, height=h)
    return _run(engine, engine.pipe, p, dict(height=h, width=w), notes, safety_checker, on_step, should_stop)


def img2img(engine: Engine, image, prompt: str, negative_prompt: str = "", *, strength: float = 0.75,
            seed: int | None = None, steps: int | None = None, guidance: float | None = None,
            width: int | None = None, height: int | None = None, scheduler: str | None = None, num_images: int = 1,
            decoder: str | None = None, safety_checker: bool = True, on_step: OnStep | None = None,
            should_stop: ShouldStop | None = None) -> Result:
    """Image to image: `image` (any upload the hub decoder takes) is fitted into width x height keeping its shape."""
    notes: list[str] = []
    check_text_model(engine)
    init = check_fit(open_image(image, "the init image"), width, height, engine, notes)
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder)
    p.update(mode="img2img", width=init.width, height=init.height, strength=check_strength(strength))
    p["steps"] = check_steps_for_strength(p["steps"], p["strength"], notes)
    return _run(engine, engine.img2img_pipe, p, dict(image=init, strength=p["strength"]), notes, safety_checker,
                on_step, should_stop)


def inpaint(engine: Engine, image, mask, prompt: str, negative_prompt: str = "", *, strength: float = 1.0,
            seed: int | None = None, steps: int | None = None, guidance: float | None = None,
            width: int | None = None, height: int | None = None, scheduler: str | None = None, num_images: int = 1,
            decoder: str | None = None, safety_checker: bool = True, on_step: OnStep | None = None,
            should_stop: ShouldStop | None = None) -> Result:
    """Repaint the white part of `mask` (any mode; alpha counts as coverage). Pixels far from it stay unchanged."""
    from PIL import Image, ImageFilter

    notes: list[str] = []
    init = check_fit(open_image(image, "the image to inpaint"), width, height, engine, notes)
    m = check_mask(mask_from(mask).resize(init.size, Image.Resampling.NEAREST))
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder)
    p.update(mode="inpaint", width=init.width, height=init.height, strength=check_strength(strength))
    p["steps"] = check_steps_for_strength(p["steps"], p["strength"], notes)
    result = _run(engine, engine.inpaint_pipe, p, dict(image=init, mask_image=m, height=init.height,
                                                        width=init.width, strength=p["strength"]),
                  notes, safety_checker, on_step, should_stop)
    # Keep the unmasked pixels exactly (the VAE round trip blurs them), with a soft edge like AUTOMATIC1111's mask blur.
    soft = m.filter(ImageFilter.GaussianBlur(4))
    result.images = [im if flagged else Image.composite(im, init, soft)
                     for im, flagged in zip(result.images, result.nsfw or [False] * len(result.images))]
    return result


def _run(engine: Engine, pipe, p: dict, extra: dict, notes: list[str], safety_checker: bool,
         on_step: OnStep | None, should_stop: ShouldStop | None) -> Result:
    import torch

    seeds = [(p["seed"] + i) % (MAX_SEED + 1) for i in range(p["num_images"])]
    if should_stop and should_stop():
        return Result([], seeds, p, notes, cancelled=True)

    def step_end(pl, i, t, kwargs):
        if on_step:
            on_step(i + 1, pl.num_timesteps)
        if should_stop and should_stop():
            pl._interrupt = True  # diffusers skips the remaining steps
        return kwargs

    with engine.lock:
        pipe.scheduler = make_scheduler(p["scheduler"], engine.scheduler_config, engine.scheduler_class)
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]  # CPU noise: same image on any device
        with torch.inference_mode():
            latents = pipe(prompt=p["prompt"], negative_prompt=p["negative_prompt"] or None,
                           num_inference_steps=p["steps"], guidance_scale=p["guidance"], num_images_per_prompt=len(seeds),
                           generator=generators, output_type="latent", callback_on_step_end=step_end, **extra).images
            if pipe.interrupt:
                return Result([], seeds, p, notes, cancelled=True)
            images, nsfw = _decode(engine, pipe, latents, safety_checker, notes, p["decoder"])
    if any(nsfw):
        notes.append(f"{sum(nsfw)} of {len(nsfw)} image(s) were blacked out by the model's safety checker.")
    return Result(images, seeds, p, notes, nsfw)


def _decode(engine: Engine, pipe, latents, safety_checker: bool, notes: list[str], decoder: str = "full"):
    """Decode with the tiny decoder or the VAE; on NaN/inf or an all-black image from a half-precision VAE, decode
    again in float32."""
    import torch

    if not torch.isfinite(latents).all():
        raise UserError("The model produced invalid numbers (NaN) while denoising, a float16 overflow. Try another "
                        "seed or fewer guidance, or ask the operator to run this model in float32 (--dtype float32).")
    if decoder == "tiny":
        return _checked(engine, pipe, decode_tiny(engine.tiny, latents), latents, safety_checker)
    vae = pipe.vae
    scale = vae.config.scaling_factor
    shift = vae.config.get("shift_factor") or 0.0  # the FLUX-style VAE (Z-Image) has one; SD's has none
    own_dtype = vae.dtype
    image = vae.decode(latents.to(own_dtype) / scale + shift, return_dict=False)[0]
    if own_dtype != torch.float32 and _bad(image):
        vae.to(torch.float32)
        try:
            image = vae.decode(latents.float() / scale + shift, return_dict=False)[0]
        finally:
            vae.to(own_dtype)
        notes.append("The half-precision VAE produced a broken (NaN/black) image; it was decoded again in float32.")
    return _checked(engine, pipe, image, latents, safety_checker)


def _checked(engine: Engine, pipe, image, latents, safety_checker: bool):
    """PIL images from decoded pixels, after the model's safety checker (when on): (images, flagged)."""
    nsfw = [False] * image.shape[0]
    if safety_checker and getattr(pipe, "safety_checker", None) is not None:
        image, flags = pipe.run_safety_checker(image, image.device, latents.dtype)
        nsfw = [bool(f) for f in flags]
    pil = pipe.image_processor.postprocess(image.float(), output_type="pil", do_denormalize=[not f for f in nsfw])
    return pil, nsfw


def _bad(image) -> bool:
    import torch

    return bool((~torch.isfinite(image)).any()) or bool((image.float() <= -0.99).all())


def make_scheduler(name: str, config: dict, own_class: str):
    """A fresh scheduler of the named kind, keeping the model's betas and timestep spacing."""
    import diffusers

    kinds = {"Euler a": ("EulerAncestralDiscreteScheduler", {}), "Euler": ("EulerDiscreteScheduler", {}),
             "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
             "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                                 "use_karras_sigmas": True}),
             "DDIM": ("DDIMScheduler", {}), "FlowMatch Euler": ("FlowMatchEulerDiscreteScheduler", {})}
    cls, kw = kinds[name]
    return getattr(diffusers, cls).from_config(config, **kw)


# ---- input checks (all run before any work) -----------------------------------------------------------------------


def check_text_model(engine: Engine) -> None:
    if engine.is_inpainting_model:
        raise UserError("This is an inpainting model: use the Inpaint tab, or pick a text-to-image model.")


def check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes,
                 decoder=None) -> dict:
    """The parameters every mode shares, checked; notes for an empty or over-long prompt."""
    d = engine.defaults
    steps = validate.number(steps, "steps", 1, MAX_STEPS, integer=True, default=d["steps"])
    guidance = validate.number(guidance, "guidance scale", 0, MAX_GUIDANCE, default=d["guidance"])
    scheduler = validate.choice(scheduler, "the scheduler", SCHEDULERS, default=d["scheduler"])
    if scheduler not in engine.schedulers:
        *rest, last = engine.schedulers
        which = f"{', '.join(rest)} or {last} schedulers" if rest else f"{last} scheduler"
        raise UserError(f"{engine.model_id} runs only the {which}, not {scheduler}; pick one of them (or leave the "
                        "scheduler out for the model's own).")
    n = validate.number(num_images, "number of images", 1, MAX_IMAGES, integer=True, default=1)
    seed = validate.number(seed, "seed", -1, MAX_SEED, integer=True, default=-1)
    if seed == -1:
        seed = secrets.randbelow(MAX_SEED - MAX_IMAGES)
    prompt = "" if prompt is None else str(prompt)
    negative_prompt = "" if negative_prompt is None else str(negative_prompt)
    if not prompt.strip():
        notes.append("The prompt is empty, so the model draws without a subject (an unconditioned image).")
    _check_length(engine.pipe.tokenizer, engine.prompt_limit, prompt, "prompt", notes)
    _check_length(engine.pipe.tokenizer, engine.prompt_limit, negative_prompt, "negative prompt", notes)
    return {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "steps": steps,
            "guidance": float(guidance), "scheduler": scheduler, "num_images": n,
            "decoder": check_decoder(decoder, engine, notes), "model": engine.model_id, "revision": engine.revision}


def check_side(value, name: str, default: int, multiple: int = 8) -> int:
    """A width or height: a whole number from MIN_SIDE to MAX_SIDE and a multiple of `multiple` (8: the VAE's
    scale; 16 for Z-Image, whose transformer also packs 2x2 latents). Anything else is refused with a sentence; one
    that is not a multiple names the two nearest valid sizes."""
    side = validate.number(value, name, MIN_SIDE, MAX_SIDE, integer=True, default=default)
    if side % multiple:
        below = side // multiple * multiple  # both neighbours are in range: MIN_SIDE and MAX_SIDE are multiples of 16
        raise UserError(f"{name.capitalize()} is {side}, which is not a multiple of {multiple}; use {below} or "
                        f"{below + multiple} (a multiple of {multiple} from {MIN_SIDE} to {MAX_SIDE}).")
    return side


def check_strength(value) -> float:
    return validate.number(value, "strength", 0, 1, lo_open=True)


def check_steps_for_strength(steps: int, strength: float, notes: list[str]) -> int:
    """img2img runs only steps x strength steps; make sure at least one runs."""
    if int(steps * strength) >= 1:
        return steps
    need = next((n for n in range(steps, MAX_STEPS + 1) if int(n * strength) >= 1), None)
    if need is None:  # also keeps 1 / strength (denormal strengths: inf) out of the step count
        raise UserError(f"Strength {strength:g} is too small: even {MAX_STEPS} steps would run no denoising step; "
                        f"use a strength of at least {math.ceil(1000 / MAX_STEPS) / 1000:g}.")
    notes.append(f"With strength {strength:g}, {steps} step(s) would run no denoising step at all; using {need} steps.")
    return need


def _check_length(tokenizer, limit: int, text: str, what: str, notes: list[str]) -> None:
    enc = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False)
    ids = enc.input_ids
    if len(ids) > limit:
        dropped = text[enc.offset_mapping[limit][0]:].strip()
        notes.append(f"The {what} is {len(ids)} tokens long; the text encoder reads only {limit}, so this part was "
                     f"ignored: \u201c{dropped if len(dropped) <= 200 else dropped[:200] + ' ...'}\u201d.")


def check_fit(im, width, height, engine: Engine, notes: list[str]):
    """Fit `im` inside width x height (default: the model's size; the same checks as text to image) keeping its
    shape, sides multiples of 8."""
    from PIL import Image

    size, k = engine.defaults["size"], engine.multiple
    box_w = check_side(width, "width", size, k)
    box_h = check_side(height, "height", size, k)
    scale = min(box_w / im.width, box_h / im.height)
    # A very long, thin picture cannot keep its shape inside the size limits: its short side becomes MIN_SIDE.
    w = max(MIN_SIDE, min(MAX_SIDE, int(round(im.width * scale / k)) * k))
    h = max(MIN_SIDE, min(MAX_SIDE, int(round(im.height * scale / k)) * k))
    if (w, h) != im.size:
        notes.append(f"The image was resized from {im.width}x{im.height} to {w}x{h} to fit {box_w}x{box_h} "
                     f"(sides are multiples of {k}).")
        im = im.resize((w, h), Image.Resampling.LANCZOS)
    return im


EMPTY_MASK = ("The mask is empty: paint over the part of the image to repaint (white = repaint), "
              "or upload a black-and-white mask.")


def check_mask(mask):
    if mask.getbbox() is None:
        raise UserError(EMPTY_MASK)
    return mask
