"""Vision-language: say what is in a picture. A caption, a caption written as a Stable Diffusion prompt, the text in
it (OCR), or the answer to a question, streamed with a Stop; `/describe_image` over the API, and pictures in
`/v1/chat/completions` (`image_url` parts, openai_parts.py).

The package: `types.py` (requests and streamed items), `engine.py` (load, checks, the per-conversation image-feature
cache, generation, the `describe` / `chat` / `complete` work methods), `configs.py` (architecture configs, random
models and their offline processor), `ui.py` (the "Describe image" tab), `openai_parts.py` (image parts in the chat
route). This file imports neither torch nor gradio.
"""

from __future__ import annotations

from hub.contract import Demo, Example, Option, Sample
from hub.spec import DemoSpec, ModelChoice

_HF_FILES = ("*.json", "*.safetensors", "*.txt", "*.jinja")

# Revisions: the main-branch commits that other projects pin (SmolVLM-256M 7e3e67e, SmolVLM-500M a7da5b9,
# Qwen3-VL-2B 89644892), not re-checked against the Hub from here (no network). Sizes: the parameters of the
# architecture-true random builds (256,484,928 and 507,482,304, the models' published counts) x 4 bytes; Qwen3-VL-2B's
# model.safetensors is 4,255,140,312 bytes in bf16. GPU default: Qwen3-VL-2B-Instruct (Apache-2.0, 4.3 GB in bf16,
# chat + OCR + grounding in one model that transformers runs natively). Florence-2 is not listed: its official
# repos need trust_remote_code, which this hub never sets; Qwen2.5-VL-3B is under the Qwen Research License.
SPEC = DemoSpec(
    name="vision",
    title="Describe image",
    description="Say what is in a picture: a caption, a Stable Diffusion prompt, the text in it, or the answer to a "
                "question. The answer streams; **Stop** ends it. Pictures in `/v1/chat/completions` go here too.",
    models=(
        ModelChoice("HuggingFaceTB/SmolVLM-256M-Instruct", "hf", label="SmolVLM-256M-Instruct",
                    revision="7e3e67edbbed1bf9888184d9df282b700a323964", files=_HF_FILES,
                    approx_bytes=1_026_000_000, size_dtype="float32", license="Apache-2.0",
                    options={"config": "smolvlm-256m"}, dtype="bfloat16"),
        ModelChoice("HuggingFaceTB/SmolVLM-500M-Instruct", "hf", label="SmolVLM-500M-Instruct",
                    revision="a7da5b986cb59b408707209984f360a5f4ad7e47", files=_HF_FILES,
                    approx_bytes=2_030_000_000, size_dtype="float32", license="Apache-2.0",
                    options={"config": "smolvlm-500m"}, dtype="bfloat16"),
        ModelChoice("Qwen/Qwen3-VL-2B-Instruct", "hf", label="Qwen3-VL-2B-Instruct (for GPUs)",
                    revision="89644892e4d85e24eaac8bacfd4f463576704203", files=_HF_FILES,
                    approx_bytes=4_260_000_000, size_dtype="bfloat16", license="Apache-2.0",
                    options={"config": "qwen3-vl-2b"}, dtype="bfloat16"),
        ModelChoice("tiny-random", "random", label="tiny random SmolVLM (tests)", approx_bytes=1_000_000,
                    options={"config": "tiny"}, hidden=True),
    ),
    default_model={"cpu": "HuggingFaceTB/SmolVLM-256M-Instruct", "cuda": "Qwen/Qwen3-VL-2B-Instruct",
                   "mps": "HuggingFaceTB/SmolVLM-500M-Instruct"},
    api_names=("describe_image",),
    gpu_concurrency=1,
    zero_gpu_seconds=90,
    gpu_share=0.15,
)

OPTIONS = (
    Option("max_images", 4, "Most images in one request (the tab, /describe_image and one /v1 chat request).",
           lo=1, hi=32),
    Option("max_image_mb", 20.0, "Largest image file, in MB (a /v1 data URL's decoded bytes too).", lo=0.01, hi=500),
    Option("max_side", 2048, "Images are decoded downscaled to at most this many pixels on their longest side "
                             "(SmolVLM's processor works at 2048).", lo=64, hi=8192),
    Option("cpu_longest_edge", 512, "On a CPU, SmolVLM sees pictures at most this many pixels on their longest "
                                    "side (512: one crop, 64 image tokens, ~10x sooner than the processor's 2048 "
                                    "with 17 crops; 0: the processor's own size, for small text).", lo=0, hi=8192),
    Option("context", 8192, "Most tokens one conversation may use, images included (a 512-px picture is 1,088 "
                            "tokens for SmolVLM).", lo=256, hi=262144),
    Option("max_new_tokens", 1024, "Most tokens one answer may ask for.", lo=1, hi=32768),
    Option("cache_mb", 256, "Memory for image features kept between the questions of one conversation (MB).",
           lo=0, hi=65536),
    Option("cache_minutes", 30, "A conversation's image features are dropped after this long unused.", lo=1,
           hi=1440),
    Option("fetch_urls", False, "Download the http(s) image URLs of /v1 chat requests (off: only data URLs are "
                                "read). Public addresses only (loopback, private and link-local ones are refused), "
                                "at most max_image_mb per image, 10 s each, images only."),
)

EXAMPLES = (
    Example("describe_image", {"image": Sample("image"), "mode": "caption", "question": "",
                               "model": "tiny-random", "max_new_tokens": 8},
            bad={"image": None}),
)

DEMO = Demo(
    spec=SPEC,
    load="demos.vision.engine:load",
    work="demos.vision.engine:WORK",
    ui="demos.vision.ui:build",
    options=OPTIONS,
    examples=EXAMPLES,
)
