"""ComfyUI's PNG parameters (issue #29): a PNG with the "prompt" graph ComfyUI's SaveImage writes (written by hand
here, in ComfyUI's API format: its default text-to-image workflow plus a LoRA loader) fills this tab's fields as far
as they map; an oversized or damaged graph gets one sentence; the hub's own PNGs carry A1111's infotext."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from demos.stable_diffusion import formats
from demos.stable_diffusion.comfy import MAX_COMFY_CHARS, parse_comfy
from hub.errors import UserError
from tests.test_redos import finishes

# ComfyUI's default workflow as its "prompt" chunk holds it (node ids as text, links as [node id, output index]),
# with a LoraLoader between the checkpoint and the sampler and a primitive feeding the negative prompt
WORKFLOW = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 156680208, "steps": 20, "cfg": 8.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0,
        "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {
        "text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ["11", 0], "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "styles/add_detail.safetensors",
                                                 "strength_model": 0.7, "strength_clip": 1.0,
                                                 "model": ["4", 0], "clip": ["4", 1]}},
    "11": {"class_type": "PrimitiveNode", "inputs": {"value": "text, watermark"}},
}


def _png(chunks: dict) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "navy").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def test_a_comfyui_png_fills_the_fields_that_map():
    png = _png({"prompt": json.dumps(WORKFLOW), "workflow": json.dumps({"nodes": []})})
    assert formats.read_parameters(png) == {
        "prompt": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
        "negative_prompt": "text, watermark", "seed": 156680208, "steps": 20, "guidance": 8.0,
        "scheduler": "DPM++ 2M Karras", "width": 512, "height": 768, "model": "v1-5-pruned-emaonly.safetensors",
        "loras": "add_detail:0.7"}


def test_advanced_sampler_denoise_and_other_samplers():
    graph = json.loads(json.dumps(WORKFLOW))
    graph["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "noise_seed": 7, "steps": 4, "cfg": 1.5, "sampler_name": "euler_ancestral", "scheduler": "normal",
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["12", 0]}}
    graph["12"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["13", 0], "vae": ["4", 2]}}
    p = parse_comfy(json.dumps(graph))
    assert (p["seed"], p["steps"], p["guidance"], p["scheduler"]) == (7, 4, 1.5, "Euler a")
    assert "width" not in p  # an encoded picture, not an empty latent: no size to fill
    graph["3"]["class_type"] = "KSampler"
    graph["3"]["inputs"].update(seed=1, denoise=0.55, sampler_name="uni_pc")
    p = parse_comfy(json.dumps(graph))
    assert p["strength"] == 0.55 and p["scheduler"] == "uni_pc"  # the tab fills only the schedulers it has


def test_a1111_wins_over_comfy_and_a_graph_without_sampler_is_no_parameters():
    both = _png({"parameters": "a cat\nSteps: 3, Seed: 9", "prompt": json.dumps(WORKFLOW)})
    assert formats.read_parameters(both)["seed"] == 9
    none = _png({"prompt": json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}})})
    with pytest.raises(UserError, match="carries no generation parameters"):
        formats.read_parameters(none)
    assert formats.read_parameters(none, missing_ok=True) == {}


@pytest.mark.parametrize("text, said", [
    ("{" * 10 + "x", "damaged (not JSON)"),
    ("[" * 100_000, "damaged (not JSON)"),
    (json.dumps({"n": {"class_type": "KSampler", "inputs": {"pad": "x" * MAX_COMFY_CHARS}}}), "at most 512 KB"),
])
def test_damaged_or_oversized_graphs_get_a_sentence_quickly(text, said):
    err = finishes(parse_comfy, text)
    assert isinstance(err, UserError) and said in str(err)


def test_a_link_loop_ends():
    graph = {"1": {"class_type": "KSampler", "inputs": {"positive": ["2", 0], "negative": ["3", 0]}},
             "2": {"class_type": "Reroute", "inputs": {"text": ["3", 0]}},
             "3": {"class_type": "Reroute", "inputs": {"text": ["2", 0]}}}
    assert finishes(parse_comfy, json.dumps(graph))["prompt"] == ""


def test_the_hubs_own_infotext_is_a1111s():
    params = {"prompt": "a fox", "negative_prompt": "blurry", "steps": 20, "scheduler": "Euler a", "guidance": 7.0,
              "seed": 42, "width": 512, "height": 512, "model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
              "loras": [{"name": "detail", "weight": 0.6, "hash": "7c6bad76eb54"}]}
    text = formats.parameters_text(params)
    assert text.split("\n")[:2] == ["a fox <lora:detail:0.6>", "Negative prompt: blurry"]
    assert text.split("\n")[2].startswith("Steps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 42, Size: 512x512, ")
    assert text.endswith('Lora hashes: "detail: 7c6bad76eb54"')
    assert formats.a1111_fields(text.split("\n")[2])["Lora hashes"] == "detail: 7c6bad76eb54"
