"""Where a CLIP model comes from: an HF snapshot, a local open_clip folder or checkpoint file, or random weights.

open_clip is imported inside the functions (this module is imported with the engine, on first load).
"""

from __future__ import annotations

import math
from pathlib import Path

from hub.errors import UserError


def build_model(weights, device: str, dtype: str, tiny_config: dict):
    """(model, eval transform, tokenizer) with open_clip.

    hf: the pinned snapshot's `open_clip_model.safetensors` loaded into the built-in architecture of the choice
    (`options["arch"]`, QuickGELU and preprocessing from open_clip's pretrained table); a snapshot without a known
    architecture loads through its `open_clip_config.json`. path: a folder with `open_clip_config.json` + weights,
    or a single checkpoint whose architecture is recognised from its tensor shapes. random: the architecture with
    random weights (tiny-random: a 2-layer model with `tiny_config`, for tests).
    """
    import open_clip

    # a CPU runs fp32, or bf16 where it computes bf16 natively (hub.device's CPU policy chose it)
    precision = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "fp32") if device != "cpu" or \
        dtype == "bfloat16" else "fp32"
    opts = weights.choice.options
    cache_dir = str(weights.hf_cache)
    common = dict(precision=precision, device=device, cache_dir=cache_dir)
    if weights.is_random:
        if opts.get("tiny"):
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
    return model, preprocess, open_clip.get_tokenizer(arch, cache_dir=cache_dir)


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
