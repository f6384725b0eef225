"""Where a CLIP model comes from: an HF snapshot, a local open_clip folder or checkpoint file, or random weights.

open_clip is imported inside the functions (this module is imported with the engine, on first load).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from hub.errors import UserError


def build_model(weights, device: str, dtype: str, tiny_config: dict):
    """(model, eval transform, tokenizer) with open_clip.

    hf: the pinned snapshot's `open_clip_model.safetensors` loaded into the built-in architecture of the choice
    (`options["arch"]`, QuickGELU and preprocessing from open_clip's pretrained table); a snapshot without a known
    architecture loads through its `open_clip_config.json`. path: a folder with `open_clip_config.json` + weights,
    or a single checkpoint whose architecture is recognised from its tensor shapes. random: the architecture with
    random weights (tiny-random: a 2-layer model with `tiny_config`; tiny-random-siglip2: a 2-layer SigLIP 2; tests).
    """
    import open_clip

    # a CPU runs fp32, or bf16 where it computes bf16 natively (hub.device's CPU policy chose it)
    precision = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "fp32") if device != "cpu" or \
        dtype == "bfloat16" else "fp32"
    opts = weights.choice.options
    cache_dir = str(weights.hf_cache)
    common = dict(precision=precision, device=device, cache_dir=cache_dir)
    if weights.is_random:
        if opts.get("tiny") == "siglip2":
            arch, kwargs = "ViT-B-16-SigLIP2", tiny_siglip2_config()
        elif opts.get("tiny"):
            arch, kwargs = "ViT-B-32", dict(tiny_config)  # the built-in name gives the tokenizer; the config the size
        else:
            arch, kwargs = opts.get("arch") or "ViT-B-32", {}
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=None, force_quick_gelu=bool(opts.get("quick_gelu")), **common, **kwargs)
    else:
        arch, pretrained, quick_gelu, pp = resolve_checkpoint(weights, opts)
        if arch.startswith("local-dir:"):
            model, _, preprocess = open_clip.create_model_and_transforms(arch, **common)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, force_quick_gelu=quick_gelu, **pp, **common)
    reparameterize(model)
    return model, preprocess, tokenizer_for(arch, weights)


def reparameterize(model) -> None:
    """Fuse a timm image tower's train-time branches for inference (MobileCLIP2's FastViT: its MobileOne blocks become
    one conv each, ~10% faster on a CPU, same outputs); towers without such blocks are left as they are."""
    trunk = getattr(model.visual, "trunk", None)
    if trunk is not None and any(hasattr(m, "reparameterize") for m in trunk.modules()):
        from timm.utils import reparameterize_model

        reparameterize_model(trunk, inplace=True)


def tokenizer_for(arch: str, weights):
    """The model's tokenizer, built without a download.

    CLIP and MobileCLIP read open_clip's own BPE vocabulary (shipped with the package). SigLIP 2 reads a Gemma
    tokenizer that open_clip would fetch from the Hub: here it comes from the model's own pinned snapshot (its
    tokenizer.json is downloaded with the weights), and for random weights from a byte-level stand-in built in the
    cache (every byte one token: labels still differ, but the outputs of random weights mean nothing anyway).
    """
    import open_clip

    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {}) if not arch.startswith("local-dir:") \
        else {}
    if not text_cfg.get("hf_tokenizer_name"):
        return open_clip.get_tokenizer(arch, cache_dir=str(weights.hf_cache))
    kwargs = dict(context_length=text_cfg.get("context_length", 64), **text_cfg.get("tokenizer_kwargs", {}))
    if weights.is_random:
        return open_clip.tokenizer.HFTokenizer(str(byte_tokenizer(Path(weights.cache_dir))), **kwargs)
    root = Path(weights.path)
    folder = root if root.is_dir() else root.parent
    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"{arch} needs its tokenizer (tokenizer.json) next to the weights in {folder.name!r}; delete "
                        "the folder and run `demohub fetch clip_zero_shot` again, or use a folder that has it.")
    return open_clip.tokenizer.HFTokenizer(str(folder), **kwargs)


BYTE_VOCAB = 260  # <pad> <eos> <bos> <unk> + 256 bytes


def byte_tokenizer(cache_dir: Path) -> Path:
    """A folder with a byte-level HF tokenizer (ids below BYTE_VOCAB), made once in the cache: the offline stand-in
    for SigLIP 2's Gemma tokenizer with random weights."""
    folder = cache_dir / "derived" / "clip_zero_shot" / "byte-tokenizer"
    if (folder / "tokenizer.json").is_file():
        return folder
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials)}
    vocab.update({ch: len(specials) + i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>")
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")  # written aside, then renamed: never half a folder
    fast.save_pretrained(str(tmp))
    try:
        tmp.replace(folder)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


TINY_SIGLIP_VIT = "demohub_tiny_vit_siglip"  # registered with timm on first use, for tiny-random-siglip2


def tiny_siglip2_config() -> dict:
    """A 2-layer SigLIP 2 on 32x32 images: SigLIP 2's own structure (timm ViT without class token and with the MAP
    attention-pool head, bidirectional text tower pooled at the last token with a projection bias, a logit bias)
    at toy widths; builds in well under a second (the real ViT-B-16-SigLIP2 takes ~12 s on 2 vCPUs)."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import VisionTransformer

    if TINY_SIGLIP_VIT not in timm.list_models(TINY_SIGLIP_VIT):
        def demohub_tiny_vit_siglip(pretrained=False, **kwargs):
            args = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, class_token=False,
                        global_pool="map")
            # timm's factory passes its own bookkeeping (pretrained_cfg, ...); the network takes only its arguments
            kwargs = {k: v for k, v in kwargs.items() if k in ("num_classes", "global_pool", "drop_path_rate")}
            return VisionTransformer(**{**args, **kwargs})

        register_model(demohub_tiny_vit_siglip)
    return {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "timm_model_name": TINY_SIGLIP_VIT, "timm_model_pretrained": False,
                       "timm_pool": "map", "timm_proj": "none"},
        "text_cfg": {"context_length": 64, "vocab_size": BYTE_VOCAB, "width": 32, "heads": 2, "layers": 2,
                     "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6},
                     "act_kwargs": {"approximate": "tanh"}},
    }


def resolve_checkpoint(weights, opts) -> tuple[str, str | None, bool, dict]:
    """(open_clip model name, checkpoint file, quick_gelu, preprocessing kwargs) for hf / path weights."""
    import open_clip

    root = Path(weights.path)
    if root.is_dir():
        arch = opts.get("arch")
        if arch:
            ckpt = _checkpoint_in(root)
            cfg = open_clip.get_pretrained_cfg(arch, opts.get("tag", "")) or {}
            pp = {f"image_{k}": cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
            return arch, str(ckpt), bool(opts.get("quick_gelu", cfg.get("quick_gelu", False))), pp
        if (root / "open_clip_config.json").is_file():
            return f"local-dir:{root}", None, False, {}
        raise UserError(f"The folder {root.name!r} has no open_clip_config.json, so its CLIP architecture is unknown. "
                        "Use an open_clip folder (config + weights), a single checkpoint file, or one of the listed "
                        "models.")
    arch = _arch_from_checkpoint(root)
    quick = "openai" in root.name.lower() or "quickgelu" in root.name.lower()
    return arch, str(root), quick, {}


def _checkpoint_in(folder: Path) -> Path:
    for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"No open_clip weights (open_clip_model.safetensors) in the folder {folder.name!r}; delete the "
                    "folder and run `demohub fetch clip_zero_shot` again.")


def _arch_from_checkpoint(path: Path) -> str:
    """The built-in open_clip ViT architecture whose shapes match the checkpoint's tensors."""
    import open_clip
    from open_clip.factory import load_state_dict

    try:
        sd = load_state_dict(str(path), weights_only=True)
    except Exception:
        raise UserError(f"Could not read {path.name} as an open_clip checkpoint. Use a state-dict file "
                        "(.safetensors/.pt) or a folder with open_clip_config.json.") from None
    try:
        width, _, patch, _ = sd["visual.conv1.weight"].shape
        grid = int(round(math.sqrt(sd["visual.positional_embedding"].shape[0] - 1)))
        v_layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
        t_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
        t_width, embed = sd["text_projection"].shape
    except (KeyError, ValueError, IndexError):
        raise UserError(f"{path.name} does not look like an open_clip ViT CLIP checkpoint (no visual.conv1 / "
                        "text_projection); use a folder with open_clip_config.json instead.") from None
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
        if ("timm_model_name" in v or "hf_model_name" in t or cfg.get("embed_dim") != embed
                or v.get("width") != width or v.get("patch_size") != patch or v.get("layers") != v_layers
                or v.get("image_size") != patch * grid or t.get("width") != t_width or t.get("layers") != t_layers):
            continue
        return name
    raise UserError(f"{path.name}: no built-in open_clip architecture has these shapes (vision width {width}, "
                    f"patch {patch}, {v_layers} layers); put it in a folder with its open_clip_config.json.")
