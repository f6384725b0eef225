"""CLIP zero-shot: the hub's engine vs the naive open_clip call, same random ViT-B-32 (real size), same inputs.

- classify-1img-10labels: naive = what the open_clip README does per request: preprocess, encode the image AND the
  10 prompts, softmax, in fp32. hub = `classify` with the labels already cached (fp16 + CUDA graphs on a GPU).
- classify-batch: many preprocessed images at once (256 on a GPU, 32 on the CPU) against 10 labels:
  naive = fp32 encode_image + encode_text every call; hub = `encode_pixels` (fp16 on a GPU) + cached labels.
- search-gallery: re-querying the same 32-image gallery: naive re-encodes every image; hub reuses their embeddings.
- classify-1img-10labels-{SigLIP2,MobileCLIP2}: the first case with SigLIP 2 ViT-B-16 (naive: open_clip's sigmoid
  with its logit bias, fp32) and MobileCLIP2-S0 (naive: without the FastViT reparameterisation the hub does at load).
Random weights: speed does not depend on weight values (shared/GPU.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

from bench.harness import Case
from demos.clip_zero_shot import SPEC

LABELS = ["cat", "dog", "car", "tree", "house", "person", "bicycle", "boat", "bird", "flower"]
ARCH_ID = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _setup(n_images: int = 1, model_id: str = ARCH_ID):
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    from demos.clip_zero_shot import SPEC, engine as clip
    from hub.settings import Settings
    from hub.weights import resolve

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    s = Settings.load({}, cache_dir=tempfile.mkdtemp(prefix="clip-bench-"), offline=True, device=device)
    choice = replace(SPEC.choice(model_id), source="random")
    arch = choice.options["arch"]
    from hub.device import detect

    # the hub's placement: fp16 on CUDA; on a CPU bf16 where it computes bf16 natively (the model prefers it)
    dtype = "float16" if cuda else detect("cpu", cpu_prefers=choice.cpu_dtype).dtype
    engine = clip.load(resolve(SPEC, choice, s), device, dtype)
    # the naive side: the same architecture, fp32, as a user would create it (weights copied: same numbers)
    naive, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, device=device)
    hub_sd = engine.model.state_dict()
    if set(hub_sd) == set(naive.state_dict()):
        naive.load_state_dict({k: v.float() for k, v in hub_sd.items()})
    # else MobileCLIP2: the hub fused FastViT's branches at load (other tensors); both sides stay random weights of
    # the same architecture, and speed does not depend on the values
    naive.eval()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(n_images)]
    return {"clip": clip, "engine": engine, "naive": naive, "preprocess": preprocess,
            "tokenizer": engine.tokenizer, "images": images, "device": device, "torch": torch}


def _naive_classify(c, pixels):
    torch = c["torch"]
    with torch.no_grad():
        img = c["naive"].encode_image(pixels, normalize=True)
        text = c["naive"].encode_text(c["tokenizer"]([f"a photo of a {x}." for x in LABELS]).to(c["device"]),
                                      normalize=True)
        if getattr(c["naive"], "logit_bias", None) is not None:  # SigLIP: sigmoid with its own scale and bias
            return torch.sigmoid(img @ text.T * c["naive"].logit_scale.exp() + c["naive"].logit_bias).cpu()
        return (100.0 * img @ text.T).softmax(dim=-1).cpu()


def _classify_case(model_id: str = ARCH_ID, suffix: str = "") -> Case:
    def setup():
        c = _setup(1, model_id)
        c["clip"].classify(c["engine"], c["images"], LABELS)  # fills the label cache (and warms up)
        return c

    def naive(c):
        pixels = c["preprocess"](c["images"][0]).unsqueeze(0).to(c["device"])
        return _naive_classify(c, pixels)

    def hub(c):
        return c["clip"].classify(c["engine"], c["images"], LABELS)

    return Case(f"clip_zero_shot/classify-1img-10labels{suffix}", setup, naive, hub, unit="image", warmup=3,
                repeat=20, notes=f"{SPEC.choice(model_id).options['arch']} random weights; 640x480 input incl. open_clip preprocessing; hub: labels cached, "
                      "fp16 + CUDA graph on GPU, bf16 on a CPU with native bf16",
                goal="GPU: hub <= 3 ms/image (naive fp32 13.9 ms on H100)")


def _batch_case() -> Case:
    n = 256 if _cuda() else 32

    def setup():
        c = _setup(1)
        clip, engine = c["clip"], c["engine"]
        c["pixels"] = clip_pixels = engine.pixel_batch(c["images"] * n)
        c["pixels_dev"] = clip_pixels.to(c["device"])
        c["text"] = engine.label_embeddings(LABELS, (clip.DEFAULT_TEMPLATE,))
        return c

    def naive(c):
        return _naive_classify(c, c["pixels_dev"])

    def hub(c):
        clip, engine = c["clip"], c["engine"]
        return clip.label_scores(engine, engine.encode_pixels(c["pixels_dev"]), c["text"], "single").cpu()

    return Case(f"clip_zero_shot/classify-batch{n}", setup, naive, hub, items=n, unit="image", warmup=2,
                repeat=10 if _cuda() else 3,
                notes=f"{n} preprocessed 224x224 images x 10 labels; hub: fp16 on GPU (bf16 on a CPU with native "
                      "bf16), labels cached",
                goal="GPU batch 256: hub >= 15,000 images/s (raw fp16 model 23,500)")


def _search_case() -> Case:
    n = 32

    def setup():
        c = _setup(n)
        c["clip"].search_images(c["engine"], c["images"], "a dog on a beach")  # first query fills the image cache
        return c

    def naive(c):
        torch = c["torch"]
        with torch.no_grad():
            pixels = torch.stack([c["preprocess"](im) for im in c["images"]]).to(c["device"])
            img = c["naive"].encode_image(pixels, normalize=True)
            q = c["naive"].encode_text(c["tokenizer"](["a red car"]).to(c["device"]), normalize=True)
            return (img @ q.T)[:, 0].argsort(descending=True).cpu()

    def hub(c):
        return c["clip"].search_images(c["engine"], c["images"], "a red car")

    return Case(f"clip_zero_shot/search-{n}-images-requery", setup, naive, hub, items=n, unit="image", warmup=1,
                repeat=5, notes="a new query over an already searched 640x480 gallery; hub reuses image embeddings "
                                "(it still decodes and hashes each image)")


def cases() -> list[Case]:
    return [_classify_case(), _classify_case("timm/ViT-B-16-SigLIP2", "-SigLIP2"),
            _classify_case("timm/MobileCLIP2-S0-OpenCLIP", "-MobileCLIP2"), _batch_case(), _search_case()]
