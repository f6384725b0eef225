"""The Stable Diffusion work's requests, items and result: plain data (numbers, text, PIL images), so they cross to a
Ray replica as they are. The engine checks every field (hub.validate's sentences): the values are whatever the tab
or /v1 body held, and a bad one is refused there, before any work.

Each generation method streams: `Step(0, None)` once the model is loaded (the prompt is being encoded), one
`Step(i, n)` per denoising step (with a small preview picture when the request asks for one), then the `Result`. A
request with `step_items=False` (what /v1 asks) yields the `Result` only. A run stopped before its end yields no
`Result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from hub.work import FILE, Progress

Number = Any  # int | float | str | None as it came: the engine checks it and refuses a bad one with a sentence


@dataclass(frozen=True)
class Settings:
    """What every mode shares. None: the model's own default; seed -1: a random one (the result says which)."""

    seed: Number = -1
    steps: Number = None
    guidance: Number = None
    scheduler: str | None = None
    width: Number = None
    height: Number = None
    num_images: Number = 1
    decoder: str | None = None  # "full" (the VAE) or "tiny" (TAESD); None: tiny on a CPU, full on a GPU
    step_items: bool = True  # yield a Step per denoising step (False: only the Result)
    preview: bool = False  # Step items carry a preview of the first image (the tiny decoder; SD models only)
    # LoRAs: "name:0.8, other:0.5", or (name, weight) pairs; names from the hub's listing (lora.py). The prompt's
    # <lora:name:weight> tags are added to these.
    loras: Any = ()
    controlnet: Any = ()  # ControlUnit items (several at once: multi-ControlNet); controlnet.py
    hires: Any = None  # a Hires: the two-pass hires fix (txt2img only); hires.py


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet on a request: `model`, a listed ControlNet's name ("canny", "depth", ...); `image`, the picture
    it reads, turned into its map by `preprocessor` (None: the model's own; "none": the image is the map as it is);
    `strength` (the conditioning scale, 0-2), `start`/`end` (the fraction of the steps it acts on, 0-1); `low`/`high`:
    the canny preprocessor's thresholds (0-255)."""

    model: str
    image: Annotated[Any, FILE]
    preprocessor: str | None = None
    strength: Number = 1.0
    start: Number = 0.0
    end: Number = 1.0
    low: Number = 100
    high: Number = 200


@dataclass(frozen=True)
class ControlMapRequest:
    """The map a ControlNet would read from `image` through `preprocessor` at width x height (None: the model's
    size), to look at before generating (and to upload as it is, with the preprocessor none)."""

    image: Annotated[Any, FILE]
    preprocessor: str = "canny"
    low: Number = 100
    high: Number = 200
    width: Number = None
    height: Number = None


@dataclass(frozen=True)
class Hires:
    """AUTOMATIC1111's hires fix: the image is first made at the request's width x height, then enlarged `scale`
    times by `upscaler` ("latent": the latents themselves; "lanczos": the pixels; or a listed upscaler model's name,
    demos/upscale) and repainted by img2img at `denoise` (0-1) for `steps` (None: as many as the first pass)."""

    scale: Number = 2.0
    upscaler: str = "latent"
    denoise: Number = 0.5
    steps: Number = None


@dataclass(frozen=True)
class GenerateRequest:
    """Text to image."""

    prompt: str
    negative_prompt: str = ""
    settings: Settings = Settings()


@dataclass(frozen=True)
class Img2ImgRequest:
    """Image to image: `image` (a PIL image or a file path) is fitted into width x height keeping its shape."""

    image: Annotated[Any, FILE]
    prompt: str
    negative_prompt: str = ""
    strength: Number = 0.75
    settings: Settings = Settings()


@dataclass(frozen=True)
class InpaintRequest:
    """Repaint the white part of `mask` (a PIL image or a file path; alpha counts as coverage) in `image`."""

    image: Annotated[Any, FILE]
    mask: Annotated[Any, FILE]
    prompt: str
    negative_prompt: str = ""
    strength: Number = 1.0
    settings: Settings = Settings()


@dataclass(frozen=True)
class Step(Progress):
    """Denoising step `step` of `total` done (step 0, total None: the model is loaded, the prompt is being encoded);
    `preview`: the first image so far, when the request asked for previews."""

    step: int
    total: int | None
    preview: Any = None  # PIL.Image.Image | None


@dataclass
class Result:
    """Images and the parameters that made them (one seed per image: seed, seed+1, ...); `record`: the
    reproducibility record (the tab and /v1/images answer the same one)."""

    images: list
    seeds: list[int]
    params: dict
    notes: list[str] = field(default_factory=list)
    nsfw: list[bool] = field(default_factory=list)
    cancelled: bool = False
    record: dict = field(default_factory=dict)

    def image_params(self, i: int) -> dict:
        return {**self.params, "seed": self.seeds[i]}

    def save(self, folder: str | Path, stem: str = "sd") -> list[Path]:
        """Write each image as a PNG with its parameters in text chunks; returns the paths."""
        from demos.stable_diffusion.formats import WritePNG

        writer = WritePNG(folder, stem)
        return [writer.write(im, self.image_params(i)) for i, im in enumerate(self.images)]
