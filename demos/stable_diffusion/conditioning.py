"""What a pipeline call gets for its text, and the LoRAs fused before it: the one hook engine._run calls under the
engine's lock. SD 1.x/2.x: the request's LoRAs fused (fuse.py), the `<lora:...>` tags taken out of the prompts, and
A1111-weighted embeddings of long prompts (weighting.py). Z-Image: its prompts as they are (it takes no LoRAs and
its own text encoder reads 512 tokens)."""

from __future__ import annotations

from demos.stable_diffusion import fuse, lora, weighting


def prepare(engine, pipe, p: dict) -> dict:
    """The pipeline's text arguments for the checked parameters `p` (after fusing p["loras"] into the weights)."""
    if engine.family != "sd":
        return {"prompt": p["prompt"], "negative_prompt": p["negative_prompt"] or None}
    import torch

    fuse.apply(engine, p.get("loras") or [])
    prompt, _ = lora.split_tags(p["prompt"])
    negative, _ = lora.split_tags(p["negative_prompt"])
    with torch.inference_mode():
        embeds, negative_embeds = weighting.encode(pipe, prompt, negative)
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}
