"""CLIP zero-shot: classify images against labels you type, and rank a gallery by a text query (open_clip).

The package: `types.py` (the work methods' requests and results: plain data), `engine.py` (load, the engine,
`classify` / `search_images`, and `WORK`: the methods classify, search_images and embed), `checks.py` (the input
checks), `fast.py` (GPU preprocessing and the CUDA-graphed image encoder), `formats.py` (the tables the tab shows),
`ui.py` (the tab), `embeddings.py` (the work of /v1/embeddings) and `openai.py` (its OpenAI-compatible route).
This file imports neither torch nor gradio nor open_clip.
"""

from __future__ import annotations

from hub.contract import Demo, Example, Option, Sample
from hub.spec import DemoSpec, ModelChoice

MAX_LABELS = 100  # default cap per request; operators change it with DEMOHUB_CLIP_ZERO_SHOT_MAX_LABELS
MAX_IMAGES = 256  # per request; DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES
MAX_INPUTS = 2048  # texts and images in one /v1/embeddings request (OpenAI's own cap); ..._MAX_INPUTS

# SigLIP 2 snapshots: the weights and the Gemma tokenizer open_clip would otherwise fetch at load time
SIGLIP2_FILES = ("open_clip_config.json", "open_clip_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json")

SPEC = DemoSpec(
    name="clip_zero_shot",
    title="CLIP zero-shot",
    description="Zero-shot image classification with labels you type (single- or multi-label), and text-to-image "
                "search over a gallery you upload. Models: open_clip CLIP, SigLIP 2 and MobileCLIP2.",
    models=(
        # approx_bytes are fp32 sizes (ViT-B/32: 151M parameters x 4 bytes); on CUDA they run in fp16 (half that).
        # cpu_dtype: on a CPU with native bf16, bf16 (ViT-B/32 image tower 2.4x faster on a 2-vCPU AMD EPYC).
        ModelChoice("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "hf", label="ViT-B-32 (LAION-2B)",
                    revision="1a25a446712ba5ee05982a381eed697ef9b435cf",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=610_000_000, size_dtype="float32", license="MIT",
                    options={"arch": "ViT-B-32", "tag": "laion2b_s34b_b79k"}, cpu_dtype="bfloat16"),
        ModelChoice("timm/vit_base_patch16_clip_224.openai", "hf", label="ViT-B-16 (OpenAI)",
                    revision="977e3dd0ec55ab8da155f2fbeb6b5f54948b6e3d",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=600_000_000, size_dtype="float32", license="MIT",
                    options={"arch": "ViT-B-16", "tag": "openai", "quick_gelu": True}, cpu_dtype="bfloat16"),
        ModelChoice("timm/vit_large_patch14_clip_224.openai", "hf", label="ViT-L-14 (OpenAI)",
                    revision="18d0535469bb561bf468d76c1d73aa35156c922b",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=1_715_000_000, size_dtype="float32", license="MIT",
                    options={"arch": "ViT-L-14", "tag": "openai", "quick_gelu": True}, cpu_dtype="bfloat16"),
        # SigLIP 2 (Apache-2.0): sigmoid-trained, so every label is scored on its own (see engine.py); its Gemma
        # tokenizer comes with the weights. 375M parameters (the text tower's 256k-token vocabulary is half of it).
        ModelChoice("timm/ViT-B-16-SigLIP2", "hf", label="SigLIP 2 ViT-B-16 (WebLI, sigmoid)",
                    revision="eee10eff6dd8cabae2d7f379d4e8cfcd352030aa", files=SIGLIP2_FILES,
                    approx_bytes=1_501_000_000, size_dtype="float32", license="Apache-2.0",
                    options={"arch": "ViT-B-16-SigLIP2", "tag": "webli"}, cpu_dtype="bfloat16"),
        ModelChoice("timm/ViT-L-16-SigLIP2-256", "hf", label="SigLIP 2 ViT-L-16 256px (WebLI, sigmoid)",
                    revision="da9426945c7c5acbd3afd0c158c8bb9cfd4d8cc0", files=SIGLIP2_FILES,
                    approx_bytes=3_525_000_000, size_dtype="float32", license="Apache-2.0",
                    options={"arch": "ViT-L-16-SigLIP2-256", "tag": "webli"}, cpu_dtype="bfloat16"),
        # MobileCLIP2-S0 (Apple): a 75M-parameter CLIP (softmax) with a FastViT image tower, built for phones/CPUs.
        # Apple's AMLR license: research use only.
        ModelChoice("timm/MobileCLIP2-S0-OpenCLIP", "hf", label="MobileCLIP2-S0 (DFNDR-2B, research license)",
                    revision="095906d28bf54d7584dc411e8ffe448f34289e05",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=300_000_000, size_dtype="float32", license="apple-amlr (research only)",
                    options={"arch": "MobileCLIP2-S0", "tag": "dfndr2b"}, cpu_dtype="bfloat16"),
        ModelChoice("tiny-random", "random", label="tiny random (tests)", approx_bytes=10_000_000,
                    size_dtype="float32", license="MIT", options={"tiny": True}, hidden=True),
        ModelChoice("tiny-random-siglip2", "random", label="tiny random SigLIP 2 (tests)", approx_bytes=10_000_000,
                    size_dtype="float32", license="Apache-2.0",
                    options={"tiny": "siglip2", "arch": "ViT-B-16-SigLIP2"}, hidden=True),
    ),
    default_model={"cuda": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "cpu": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"},
    api_names=("classify", "search_images"),
    gpu_concurrency=1,
    zero_gpu_seconds=60,
)

_GALLERY = [{"image": Sample("image"), "caption": None}]

DEMO = Demo(
    spec=SPEC,
    load="demos.clip_zero_shot.engine:load",
    ui="demos.clip_zero_shot.ui:build",
    work="demos.clip_zero_shot.engine:WORK",
    routes="demos.clip_zero_shot.openai:routes",
    options=(
        Option("max_labels", MAX_LABELS, "Most candidate labels in one classify request.", lo=1),
        Option("max_images", MAX_IMAGES, "Most images in one classify, search or embeddings request.", lo=1),
        Option("max_inputs", MAX_INPUTS, "Most inputs (texts and images) in one /v1/embeddings request.", lo=1),
    ),
    examples=(
        Example("classify", {"model": "tiny-random", "images": _GALLERY, "labels": "cat, dog",
                             "template": "a photo of a {}.", "ensemble": "none", "mode": "single",
                             "threshold": 0.5, "top_k": 2},
                bad={"labels": ""}),
        Example("search_images", {"model": "tiny-random", "gallery": _GALLERY, "query": "a cat on a sofa"},
                bad={"query": ""}),
    ),
)
