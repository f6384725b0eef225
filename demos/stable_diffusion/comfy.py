"""ComfyUI's PNG parameters: the "prompt" text chunk, the API-format graph ({node id: {"class_type", "inputs"}})
ComfyUI's SaveImage writes, mapped onto this tab's fields as far as they map.

The sampler node (KSampler or KSamplerAdvanced) gives seed, steps, CFG, sampler and scheduler, denoise (strength);
its `positive` and `negative` links lead to CLIPTextEncode nodes (their text, through a few primitive/string nodes);
its `latent_image` link to EmptyLatentImage (width, height); CheckpointLoaderSimple names the model and LoraLoader
nodes the LoRAs. Anything else (ControlNet, upscalers, custom nodes) is left out. The text is capped before it is
parsed, and read where formats.read_parameters is (never on the event loop).
"""

from __future__ import annotations

import json
from pathlib import PurePath

from hub.errors import UserError

MAX_COMFY_CHARS = 512 * 1024  # a large ComfyUI graph is tens of KB
MAX_HOPS = 8  # links followed from the sampler to a text
SAMPLERS = {"euler": "Euler", "euler_ancestral": "Euler a", "dpmpp_2m": "DPM++ 2M", "ddim": "DDIM"}
_TEXT_KEYS = ("text", "string", "value", "text_g", "prompt")


def parse_comfy(text: str) -> dict:
    """This tab's parameters from ComfyUI's "prompt" chunk; {} when it holds no sampler node."""
    if len(text) > MAX_COMFY_CHARS:
        raise UserError(f"The PNG's ComfyUI graph is {len(text) // 1024} KB long; this tab reads at most "
                        f"{MAX_COMFY_CHARS // 1024} KB of it: type the settings in by hand.")
    try:
        graph = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a crafted, deeply nested text
        raise UserError("The PNG's ComfyUI graph is damaged (not JSON); type the settings in by hand.") from None
    if not isinstance(graph, dict):
        return {}
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict) and isinstance(v.get("inputs"), dict)}
    sampler = next((n for n in nodes.values() if n.get("class_type") in ("KSampler", "KSamplerAdvanced")), None)
    if sampler is None:
        return {}
    inputs = sampler["inputs"]
    params: dict = {}
    for key, name, kind in (("seed", "seed", int), ("noise_seed", "seed", int), ("steps", "steps", int),
                            ("cfg", "guidance", float)):
        value = inputs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            params[name] = kind(value)
    sampler_name, schedule = inputs.get("sampler_name"), inputs.get("scheduler")
    if isinstance(sampler_name, str):
        params["scheduler"] = SAMPLERS.get(sampler_name, sampler_name)
        if sampler_name == "dpmpp_2m" and schedule == "karras":
            params["scheduler"] = "DPM++ 2M Karras"
    denoise = inputs.get("denoise")
    if isinstance(denoise, (int, float)) and 0 < denoise < 1:
        params["strength"] = float(denoise)
    params["prompt"] = _text(nodes, inputs.get("positive")) or ""
    params["negative_prompt"] = _text(nodes, inputs.get("negative")) or ""
    latent = _node(nodes, inputs.get("latent_image"))
    if latent is not None and latent.get("class_type") == "EmptyLatentImage":
        w, h = latent["inputs"].get("width"), latent["inputs"].get("height")
        if isinstance(w, int) and isinstance(h, int):
            params["width"], params["height"] = w, h
    for node in nodes.values():
        kind, node_inputs = node.get("class_type"), node["inputs"]
        if kind in ("CheckpointLoaderSimple", "CheckpointLoader") and isinstance(node_inputs.get("ckpt_name"), str):
            params["model"] = node_inputs["ckpt_name"]
    loras = [(PurePath(n["inputs"]["lora_name"]).stem, n["inputs"].get("strength_model", 1))
             for n in nodes.values() if n.get("class_type") in ("LoraLoader", "LoraLoaderModelOnly")
             and isinstance(n["inputs"].get("lora_name"), str)]
    if loras:
        params["loras"] = ", ".join(f"{name}:{w:g}" if isinstance(w, (int, float)) else name for name, w in loras)
    return params


def _node(nodes: dict, link):
    """The node a link `[node id, output index]` points at, or None."""
    if isinstance(link, list) and link and isinstance(link[0], (str, int)):
        return nodes.get(str(link[0]))
    return None


def _text(nodes: dict, link) -> str | None:
    """The prompt text at the end of a conditioning link: a CLIPTextEncode's text, followed through up to MAX_HOPS
    links (a primitive or string node feeding it)."""
    for _ in range(MAX_HOPS):
        node = _node(nodes, link)
        if node is None:
            return None
        inputs = node["inputs"]
        for key in _TEXT_KEYS:
            value = inputs.get(key)
            if isinstance(value, str):
                return value
        link = next((inputs[k] for k in (*_TEXT_KEYS, "conditioning", "conditioning_1") if isinstance(
            inputs.get(k), list)), None)
    return None
