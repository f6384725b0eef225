"""Building Stable Diffusion pipelines: embedded architecture configs (so `--weights random` and single-file
checkpoints need no download), diffusers folders, single .safetensors files, and the CLIP tokenizer made offline."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from hub.errors import UserError

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


def build_pipeline(weights, device: str, torch_dtype):
    """The StableDiffusionPipeline for `weights`: random (embedded config), a single .safetensors file or a folder."""
    arch = weights.choice.options.get("arch", "sd15")
    if weights.source == "random":
        return random_pipeline(arch, weights.cache_dir, device, torch_dtype)
    if weights.path is not None and Path(weights.path).is_file():
        return single_file_pipeline(Path(weights.path), weights.cache_dir, torch_dtype)
    return folder_pipeline(Path(weights.path), torch_dtype)


def folder_pipeline(path: Path, torch_dtype):
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    index = path / "model_index.json"
    if not index.is_file():
        raise UserError(f"{path.name} is not a diffusers model folder (no model_index.json); give a Stable Diffusion "
                        "1.x/2.x diffusers folder or a single .safetensors checkpoint.")
    cls = json.loads(index.read_text()).get("_class_name", "")
    if cls not in ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"):
        raise UserError(f"{path.name} holds a {cls or 'unknown'} model; this tab runs Stable Diffusion 1.x/2.x "
                        "pipelines (StableDiffusionPipeline).")
    variant = "fp16" if any(path.glob("unet/*.fp16.safetensors")) else None
    kw = dict(torch_dtype=torch_dtype, variant=variant, use_safetensors=True, local_files_only=True)
    # The UNet first, alone: while a module loads, its file's pages and its run-dtype copy are both resident; the
    # biggest module loaded first has none of the others beside it (peak RSS, issue #35)
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", **kw) if (path / "unet").is_dir() else None
    return StableDiffusionPipeline.from_pretrained(path, **({"unet": unet} if unet is not None else {}), **kw)


def single_file_pipeline(path: Path, cache_dir: Path, torch_dtype):
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
    config = config_folder(arch, Path(cache_dir))
    return StableDiffusionPipeline.from_single_file(str(path), config=str(config), torch_dtype=torch_dtype,
                                                    local_files_only=True)


def config_folder(arch: str, cache_dir: Path) -> Path:
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


def random_pipeline(arch: str, cache_dir: Path, device: str, torch_dtype):
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

