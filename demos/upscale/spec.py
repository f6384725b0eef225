"""The Upscale tab's models and limits: plain data (no torch, no gradio, no spandrel), shared by the engine, the tab
and Stable Diffusion's hires fix (demos/stable_diffusion/hires.py lists these models as upscalers).

Both Real-ESRGAN models are the official weights of xinntao/Real-ESRGAN (BSD-3-Clause), downloaded from a Hugging
Face mirror at a pinned commit into `<cache>/native/upscale/` by `demohub fetch upscale` (engine.fetch) and checked
against the pinned SHA-256 before they are moved there (a mismatch fails the fetch, loudly) and again whenever the
hub resolves them. Pins, and how they were checked (no network here):

- x4plus: Comfy-Org/Real-ESRGAN_repackaged's RealESRGAN_x4plus.safetensors (the same tensors as the official .pth,
  re-saved as safetensors: no pickle at all), 66,857,836 bytes, sha256 37f9a931...60bb. The hash and size agree in
  four unrelated public projects that pin this file; revision ea19b4cd... is the commit one of them records with the
  hash ("verified on box and locally"); another pins 5fd49b7b... for the same file and hash. The revision could not
  be checked against the Hub from here: `demohub fetch` fails loudly if it is wrong.
- x2plus: no safetensors copy with a published hash was found, so the official release file RealESRGAN_x2plus.pth
  (67,061,725 bytes, sha256 49fafd45...6abb: the hash of the v0.2.1 GitHub release asset, the same in a dozen
  unrelated projects) from LykosAI/Upscalers at the commit StabilityMatrix pins (28a279ec...); it loads with
  `torch.load(weights_only=True)` (engine._state_dict), never with a full unpickler. Same caveat for the revision.
"""

from __future__ import annotations

from hub.spec import DemoSpec, ModelChoice

_LICENSE = "BSD-3-Clause (Real-ESRGAN)"
_RRDB = {"num_filters": 64, "num_blocks": 23}  # RRDBNet as Real-ESRGAN trained it (random weights build this)

SPEC = DemoSpec(
    name="upscale",
    title="Upscale",
    description=("Enlarge a picture 1 to 4 times with a super-resolution model (Real-ESRGAN), tile by tile so a "
                 "large picture fits in memory; transparency is kept. Stable Diffusion's images have an Upscale "
                 "button that sends them here."),
    models=(
        ModelChoice("RealESRGAN_x4plus", "native", label="Real-ESRGAN x4plus (photos)",
                    revision="ea19b4cd14f85a5b914eee8aa7ff77bc371039a0",
                    sha256="37f9a931c215f040aa6d50f711f2cb115f713c46df1d0d6469a8bd7bfe9a60bb",
                    files=("RealESRGAN_x4plus.safetensors",), approx_bytes=66_857_836, size_dtype="float32",
                    license=_LICENSE,
                    options={"repo": "Comfy-Org/Real-ESRGAN_repackaged", "file": "RealESRGAN_x4plus.safetensors",
                             "size": 66_857_836, "arch": {**_RRDB, "scale": 4}, "a1111": "R-ESRGAN 4x+"}),
        ModelChoice("RealESRGAN_x2plus", "native", label="Real-ESRGAN x2plus (photos, 2x)",
                    revision="28a279ec60b5c47c9f39381dcaa997b9402ac09d",
                    sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
                    files=("RealESRGAN_x2plus.pth",), approx_bytes=67_061_725, size_dtype="float32",
                    license=_LICENSE,
                    options={"repo": "LykosAI/Upscalers", "file": "RealESRGAN/RealESRGAN_x2plus.pth",
                             "size": 67_061_725, "arch": {**_RRDB, "scale": 2}, "a1111": "R-ESRGAN 2x+"}),
        # spandrel's own RRDBNet (the ESRGAN architecture) at a tiny size, random weights: saved to a safetensors
        # file in the cache and loaded back through spandrel's detection, as a real file is (tests, smoke runs)
        ModelChoice("tiny-random", "random", label="tiny random RRDBNet x4 (tests)", approx_bytes=100_000,
                    size_dtype="float32", options={"arch": {"num_filters": 8, "num_blocks": 1, "scale": 4}},
                    hidden=True),
        # the x2plus layout (pixel-unshuffle, then the x4 network) at a tiny size
        ModelChoice("tiny-random-x2", "random", label="tiny random RRDBNet x2 (tests)", approx_bytes=100_000,
                    size_dtype="float32", options={"arch": {"num_filters": 8, "num_blocks": 1, "scale": 2}},
                    hidden=True),
    ),
    default_model={"cuda": "RealESRGAN_x4plus", "cpu": "RealESRGAN_x4plus"},
    api_names=("upscale",),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
    # Ray backend: the GPU shares of the other demos already add up to one GPU (tests/test_cluster_config.py), so this
    # replica asks for none and runs on the CPU there unless the operator gives it num_gpus in the cluster file
    gpu_share=0.0,
)

MIN_SCALE, MAX_SCALE = 1.0, 4.0
MIN_SIDE = 8  # a smaller picture has nothing to enlarge
MAX_OUT_SIDE = 4096  # the default cap on the result's longer side (the max_side option): a 4x of 1024 px fits
TILE_RANGE = (64, 1024)  # the model's input per call, in pixels per side
DEFAULT_TILE = {"cuda": 512, "cpu": 256}  # fp16 activations of a 512 px tile at x4 stay under ~1.5 GB on a GPU
OVERLAP = 16  # input pixels two neighbouring tiles share; their outputs are cross-faded there (tiles.py)


def listed(include_hidden: bool = False) -> list[ModelChoice]:
    """The upscaler models, as the tab and the hires fix offer them (hidden test models only when asked)."""
    return [m for m in SPEC.models if include_hidden or not m.hidden]


def by_name(name: str) -> ModelChoice | None:
    """A model by its id, its label or AUTOMATIC1111's name for it ("R-ESRGAN 4x+"), case-insensitively."""
    key = str(name or "").strip().lower()
    for m in SPEC.models:
        if key in (m.id.lower(), m.display.lower(), str(m.options.get("a1111", "")).lower()):
            return m
    return None
