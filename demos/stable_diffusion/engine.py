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

Every work method checks all its inputs first (`plan_*`, checks.py): out-of-range numbers are refused with
hub.validate's sentence, and so is a width or height that is not a multiple of 8 (the sentence names the nearest
valid sizes): nothing is clamped or rounded behind the user's back. The work methods (`WORK`, at the end) take the
typed requests of types.py and stream a Step per denoising step, then the Result with its record.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from demos.stable_diffusion import conditioning, controlnet, fuse, masks, weighting, zimage
from demos.stable_diffusion.checks import (  # noqa: F401  (re-exported: the UI and the tests reach them here)
    EMPTY_MASK, check_common, check_fit, check_mask, check_side, check_steps_for_strength, check_strength,
    check_text_model)
from demos.stable_diffusion.decoder import decode_tiny, load_tiny
from demos.stable_diffusion.hires import check_hires, run_hires
from demos.stable_diffusion.pipelines import build_pipeline
from demos.stable_diffusion.placement import OFFLOADS, _place, offload_plan  # noqa: F401  (re-exported)
from demos.stable_diffusion.spec import (  # noqa: F401  (re-exported: the limits belong to the engine's API)
    DEFAULTS, FAMILY_SCHEDULERS, MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS, SPEC)
from demos.stable_diffusion.types import (
    GenerateRequest, Img2ImgRequest, InpaintRequest, Result, Settings, Step)
from hub.contract import EngineBase
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.media.image import open_image
from hub.streams import callback_items
from hub.work import Work

log = logging.getLogger("demohub")

# The masks live in masks.py; the UI, /v1/images/edits and the tests reach them here, as before.
mask_from, editor_mask, alpha_channel = masks.mask_from, masks.editor_mask, masks.alpha_channel

# ---- loading ------------------------------------------------------------------------------------------------------


class Engine(EngineBase):
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
                             else weighting.CHUNK * weighting.MAX_CHUNKS)  # SD: 75-token chunks (weighting.py)
        self.lock = threading.Lock()  # one request at a time per pipeline (schedulers and `_interrupt` are state)
        self.safety_checker = True  # the operator's DEMOHUB_STABLE_DIFFUSION_SAFETY_CHECKER (load sets it)
        self.loras = fuse.LoraState(None, None)  # the LoRAs fused now (load sets where they are listed from)
        self.controlnet_dir = ""  # the operator's ControlNet folder (load sets it); control_run keeps the loaded ones
        self.nets, self.depth = {}, None
        self.int8 = None  # the UNet's int8 OpenVINO path (int8.py), on a CPU with DEMOHUB_STABLE_DIFFUSION_INT8=1

    @property
    def has_safety_checker(self) -> bool:
        return getattr(self.pipe, "safety_checker", None) is not None

    @property
    def is_inpainting_model(self) -> bool:
        return self.family == "sd" and self.pipe.unet.config.in_channels == 9

    def close(self) -> None:
        self.pipe = self.img2img_pipe = self.inpaint_pipe = self.tiny = self.depth = self.int8 = None
        self.nets = {}


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
    engine.safety_checker = bool(options.safety_checker)
    engine.loras = fuse.LoraState(getattr(options, "lora_dir", ""), weights.cache_dir)
    engine.controlnet_dir = getattr(options, "controlnet_dir", "")
    if family == zimage.FAMILY:
        engine.tiny_missing = zimage.NO_TINY
    else:
        engine.tiny, engine.tiny_missing = load_tiny(weights, device, getattr(torch, dtype), settings)
    if family == "sd" and device == "cpu" and getattr(options, "int8", False):
        engine.int8 = _int8(engine, weights)
        if engine.int8 is not None:  # the Models tab and every record say so
            engine.weights_format = f"{dtype}, UNet int8 (OpenVINO {engine.int8.version})"
    if (family == "sd" and device.startswith("cuda") and not offloaded
            and (getattr(settings, "compile", False) or options.compile)):
        from demos.stable_diffusion.fast import compile_and_warm_up

        compile_and_warm_up(engine, weights.cache_dir)
    return engine


def _int8(engine, weights):
    """The int8 OpenVINO UNet (int8.py), or None with the reason in the log: the UNet then runs on torch."""
    from demos.stable_diffusion import int8

    if not int8.available():
        log.warning("DEMOHUB_STABLE_DIFFUSION_INT8=1 needs OpenVINO and NNCF: pip install 'demohub[openvino]'. "
                    "The UNet runs on torch.")
        return None
    try:
        return int8.load(engine, weights, engine.defaults)
    except Exception:  # a UNet OpenVINO or NNCF cannot take still draws, on torch
        log.exception("Stable Diffusion: the int8 UNet could not be made; the UNet runs on torch.")
        return None


def _family(weights) -> str:
    """The model's family: its spec's `family` option, else "zimage" for a Z-Image diffusers folder, else "sd"."""
    named = weights.choice.options.get("family")
    if named:
        return named
    path = Path(weights.path) if weights.source != "random" and weights.path is not None else None
    return zimage.FAMILY if path is not None and path.is_dir() and zimage.is_zimage_folder(path) else "sd"


# ---- the work ---------------------------------------------------------------------------------------------------
# plan_*: the check step (every input, before any work) -> a Plan; run(): the denoising and decoding of a plan.
# generate/img2img/inpaint do both (tests and the bench call them); the work methods (work.py) stream them.


@dataclass
class Plan:
    """A checked request: the pipeline to run, the parameters (the PNGs' and the record's), the pipeline's extra
    arguments, the notes so far, and for inpainting the picture and mask whose unmasked pixels are kept."""

    pipe: object
    params: dict
    extra: dict
    notes: list[str]
    keep: tuple | None = None
    control: list | None = None  # the checked ControlNet units (controlnet.check), with their pictures


OnStep = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
OnLatents = Callable[[int, int, object], None]


def plan_txt2img(engine: Engine, prompt: str, negative_prompt: str = "", *, seed=None, steps=None, guidance=None,
                 width=None, height=None, scheduler=None, num_images=1, decoder=None, loras=(),
                 controlnet=(), hires=None) -> Plan:
    """Text to image. Bad values (a size not a multiple of 8 included) raise UserError; a long prompt gets a note."""
    notes: list[str] = []
    check_text_model(engine)
    size = engine.defaults["size"]
    w = check_side(width, "width", size, engine.multiple)
    h = check_side(height, "height", size, engine.multiple)
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder,
                     loras)
    p.update(mode="txt2img", width=w, height=h)
    return _hired(_controlled(Plan(engine.pipe, p, dict(height=h, width=w), notes), engine, controlnet), engine, hires)


def plan_img2img(engine: Engine, image, prompt: str, negative_prompt: str = "", *, strength=0.75, seed=None,
                 steps=None, guidance=None, width=None, height=None, scheduler=None, num_images=1,
                 decoder=None, loras=(), controlnet=(), hires=None) -> Plan:
    """Image to image: `image` (any upload the hub decoder takes) is fitted into width x height keeping its shape."""
    notes: list[str] = []
    check_text_model(engine)
    init = check_fit(open_image(image, "the init image"), width, height, engine, notes)
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder,
                     loras)
    p.update(mode="img2img", width=init.width, height=init.height, strength=check_strength(strength))
    p["steps"] = check_steps_for_strength(p["steps"], p["strength"], notes)
    return _hired(_controlled(Plan(engine.img2img_pipe, p, dict(image=init, strength=p["strength"]), notes), engine,
                              controlnet), engine, hires)


def plan_inpaint(engine: Engine, image, mask, prompt: str, negative_prompt: str = "", *, strength=1.0, seed=None,
                 steps=None, guidance=None, width=None, height=None, scheduler=None, num_images=1,
                 decoder=None, loras=(), controlnet=(), hires=None) -> Plan:
    """Repaint the white part of `mask` (any mode; alpha counts as coverage). Pixels far from it stay unchanged."""
    from PIL import Image

    notes: list[str] = []
    init = check_fit(open_image(image, "the image to inpaint"), width, height, engine, notes)
    m = check_mask(mask_from(mask).resize(init.size, Image.Resampling.NEAREST))
    p = check_common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes, decoder,
                     loras)
    p.update(mode="inpaint", width=init.width, height=init.height, strength=check_strength(strength))
    p["steps"] = check_steps_for_strength(p["steps"], p["strength"], notes)
    extra = dict(image=init, mask_image=m, height=init.height, width=init.width, strength=p["strength"])
    return _hired(_controlled(Plan(engine.inpaint_pipe, p, extra, notes, keep=(init, m)), engine, controlnet), engine,
                  hires)


def _controlled(plan: Plan, engine: Engine, units) -> Plan:
    """The plan with its ControlNet units checked (controlnet.py; none: the plan as it was)."""
    plan.control = controlnet.check(engine, units, plan.params["mode"]) or None
    if plan.control:
        plan.params["controlnet"] = controlnet.record(plan.control)
    return plan


def _hired(plan: Plan, engine: Engine, hires) -> Plan:
    """The plan with its hires fix checked (hires.py: text to image only; None: off)."""
    if hires is not None:
        plan.params["hires"] = check_hires(hires, engine, plan.params)
    return plan


def run(engine: Engine, plan: Plan, safety_checker: bool = True, on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None, on_latents: OnLatents | None = None) -> Result:
    """Denoise and decode a checked plan. `on_step(i, n)` after each step; `should_stop()` is read after each step
    and stops the loop (a cancelled Result); `on_latents(i, n, latents)` gets the step's latents (previews)."""
    if engine.int8 is not None:
        engine.int8.reset()  # the record says which UNet ran for this request
    if plan.params.get("hires"):  # two passes (hires.py)
        return run_hires(engine, plan, safety_checker, on_step, should_stop, on_latents)
    result = _run(engine, plan.pipe, plan.params, plan.extra, plan.notes, safety_checker, on_step, should_stop,
                  on_latents, plan.control)
    if plan.keep is not None and result.images:
        from PIL import Image, ImageFilter

        # Keep the unmasked pixels exactly (the VAE round trip blurs them), with a soft edge like AUTOMATIC1111's
        # mask blur.
        init, m = plan.keep
        soft = m.filter(ImageFilter.GaussianBlur(4))
        result.images = [im if flagged else Image.composite(im, init, soft)
                         for im, flagged in zip(result.images, result.nsfw or [False] * len(result.images))]
    return result


def generate(engine: Engine, prompt: str, negative_prompt: str = "", *, safety_checker: bool = True,
             on_step: OnStep | None = None, should_stop: ShouldStop | None = None, **settings) -> Result:
    """Text to image (plan_txt2img's settings), checked and run."""
    return run(engine, plan_txt2img(engine, prompt, negative_prompt, **settings), safety_checker, on_step,
               should_stop)


def img2img(engine: Engine, image, prompt: str, negative_prompt: str = "", *, safety_checker: bool = True,
            on_step: OnStep | None = None, should_stop: ShouldStop | None = None, **settings) -> Result:
    """Image to image (plan_img2img's settings), checked and run."""
    return run(engine, plan_img2img(engine, image, prompt, negative_prompt, **settings), safety_checker, on_step,
               should_stop)


def inpaint(engine: Engine, image, mask, prompt: str, negative_prompt: str = "", *, safety_checker: bool = True,
            on_step: OnStep | None = None, should_stop: ShouldStop | None = None, **settings) -> Result:
    """Inpainting (plan_inpaint's settings), checked and run."""
    return run(engine, plan_inpaint(engine, image, mask, prompt, negative_prompt, **settings), safety_checker,
               on_step, should_stop)


def _run(engine: Engine, pipe, p: dict, extra: dict, notes: list[str], safety_checker: bool,
         on_step: OnStep | None, should_stop: ShouldStop | None, on_latents: OnLatents | None = None,
         control: list | None = None) -> Result:
    import torch

    seeds = [(p["seed"] + i) % (MAX_SEED + 1) for i in range(p["num_images"])]
    if should_stop and should_stop():
        return Result([], seeds, p, notes, cancelled=True)

    def step_end(pl, i, t, kwargs):  # the one hook per step: report it, and stop the loop when asked
        if on_step:
            on_step(i + 1, pl.num_timesteps)
        if on_latents:
            on_latents(i + 1, pl.num_timesteps, kwargs["latents"])
        if should_stop and should_stop():
            pl._interrupt = True  # diffusers skips the remaining steps
        return kwargs

    if control:  # the preprocessors' maps, before the lock (the depth model has its own)
        from demos.stable_diffusion import control_run

        control_maps = control_run.maps(engine, control, p["width"], p["height"])
    with engine.lock:
        if control:  # the ControlNet pipeline of this mode over the same modules (control_run.py)
            pipe, extra = control_run.pipeline(engine, p["mode"], control, control_maps, extra)
        pipe.scheduler = make_scheduler(p["scheduler"], engine.scheduler_config, engine.scheduler_class)
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]  # CPU noise: same image on any device
        text = conditioning.prepare(engine, pipe, p)  # LoRAs fused, A1111-weighted prompt embeddings
        with torch.inference_mode():
            latents = pipe(**text,
                           num_inference_steps=p["steps"], guidance_scale=p["guidance"], num_images_per_prompt=len(seeds),
                           generator=generators, output_type="latent", callback_on_step_end=step_end, **extra).images
            if pipe.interrupt:
                return Result([], seeds, p, notes, cancelled=True)
            images, nsfw = _decode(engine, pipe, latents, safety_checker, notes, p["decoder"])
    if any(nsfw):
        notes.append(f"{sum(nsfw)} of {len(nsfw)} image(s) were blacked out by the model's safety checker.")
    return Result(images, seeds, p, notes, nsfw)


def preview(engine: Engine, pipe, latents):
    """The first image of `latents` through the tiny decoder, small and quick (None without one: Z-Image)."""
    import torch

    if engine.tiny is None or engine.family != "sd":
        return None
    with torch.inference_mode():
        image = decode_tiny(engine.tiny, latents[:1])
    return pipe.image_processor.postprocess(image.float(), output_type="pil")[0]


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




def record(lease, res: Result, safety_checker: bool) -> dict:
    """The reproducibility record of one request (the tab and /v1/images answer the same one)."""
    return lease.record(**{k: v for k, v in res.params.items() if k not in ("model", "revision")},
                        seeds=res.seeds, notes=res.notes, compiled=lease.engine.compiled,
                        safety_checker=safety_checker and lease.engine.has_safety_checker,
                        offloaded=lease.engine.offloaded,
                        unet=lease.engine.int8.ran() if lease.engine.int8 is not None else "torch")


# ---- the work methods: typed requests in, Step items and the Result out (types.py) --------------------------------

WORK = Work()


@WORK.method(GenerateRequest, name="txt2img")
def stream_txt2img(lease, req: GenerateRequest, job):
    """Text to image."""
    plan = plan_txt2img(lease.engine, req.prompt, req.negative_prompt, **_settings(req.settings))
    yield from _stream(lease, plan, req.settings, job)


@WORK.method(Img2ImgRequest, name="img2img")
def stream_img2img(lease, req: Img2ImgRequest, job):
    """Image to image."""
    plan = plan_img2img(lease.engine, req.image, req.prompt, req.negative_prompt, strength=req.strength,
                        **_settings(req.settings))
    yield from _stream(lease, plan, req.settings, job)


@WORK.method(InpaintRequest, name="inpaint")
def stream_inpaint(lease, req: InpaintRequest, job):
    """Inpainting."""
    plan = plan_inpaint(lease.engine, req.image, req.mask, req.prompt, req.negative_prompt, strength=req.strength,
                        **_settings(req.settings))
    yield from _stream(lease, plan, req.settings, job)


def _settings(s: Settings) -> dict:
    return dict(seed=s.seed, steps=s.steps, guidance=s.guidance, scheduler=s.scheduler, width=s.width,
                height=s.height, num_images=s.num_images, decoder=s.decoder, loras=s.loras, controlnet=s.controlnet,
                hires=s.hires)


def _stream(lease, plan: Plan, s: Settings, job):
    """Step(0) (the model is loaded), a Step per denoising step, then the Result with its record; only the Result
    without `step_items`. A stopped run yields no Result."""
    engine = lease.engine
    if s.step_items:
        yield Step(0, None)
        res = yield from _steps(engine, plan, s.preview, job)
    else:
        res = run(engine, plan, engine.safety_checker, should_stop=job.stop.is_set)
    if res is not None and not res.cancelled:
        res.record = record(lease, res, engine.safety_checker)
        yield res


def _steps(engine: Engine, plan: Plan, previews: bool, job):
    """Step items while `plan` runs, then (as the generator's return value) its Result.

    diffusers reports a step through a callback (callback_on_step_end), not by yielding: hub.streams.callback_items
    runs the pipeline beside this generator and hands each step over as it happens. The pipeline reads `job.stop`
    every step; this generator closed (the consumer went away) stops it and waits for it (at most one step), so the
    lease stays held until the pipeline has let go of the model."""
    def denoise(emit):
        def step(i, n, latents):
            emit(Step(i, n, preview(engine, plan.pipe, latents) if previews else None))
        return run(engine, plan, engine.safety_checker, should_stop=job.stop.is_set, on_latents=step)

    return (yield from callback_items(denoise, job, name="stable-diffusion-steps"))


from demos.stable_diffusion import control_run  # noqa: E402,F401  (its work method: a ControlNet map to look at)
