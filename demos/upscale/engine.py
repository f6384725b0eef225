"""Upscale: super-resolution models (Real-ESRGAN) loaded through spandrel, run tile by tile (tiles.py).

Loading: the pinned file is read (a .safetensors as it is; a .pth only with `torch.load(weights_only=True)`, never
spandrel's own unpickler) and handed to spandrel's `ModelLoader`, whose architecture detection builds the network;
random models are spandrel's RRDBNet built at the choice's size, saved to a safetensors file in the cache and loaded
back the same way, so tests run the real detection path. On a GPU the model runs in the hub's float16/bfloat16 when
spandrel says the architecture supports it (else float32); on a CPU in float32.

A request is checked first (`plan`: scale 1-4, tile 64-1024 px, the result's sides within the max_side option), then
run: the model's passes (an x2 model runs twice for 4x, as AUTOMATIC1111 does; a scale the model does not make is
reached with a Lanczos resize of its output; a picture so large that the model's output would pass the cap is
reduced first, with a note), a `Tile` item per tile, the alpha channel resized with Lanczos beside the colour, and
the result written as a PNG (formats.py). `upscale_image` is the same work on a PIL image with callbacks, for Stable
Diffusion's hires fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from demos.stable_diffusion.masks import alpha_channel
from demos.upscale.spec import (DEFAULT_TILE, MAX_OUT_SIDE, MAX_SCALE, MIN_SCALE, MIN_SIDE, OVERLAP, SPEC,
                                TILE_RANGE)
from demos.upscale.tiles import count, upscale_tiled
from demos.upscale.types import Tile, UpscaleRequest, UpscaleResult
from hub import loadtimes, validate
from hub.contract import EngineBase
from hub.errors import CorruptWeights, UserError
from hub.media.image import image_size, open_image
from hub.outputs import request_folder
from hub.weights import download_error
from hub.work import Work

# ---- loading ------------------------------------------------------------------------------------------------------


class Engine(EngineBase):
    """A loaded upscaler: spandrel's model descriptor (`desc`, its `model` a torch module the hub counts), the scale
    it makes, where and in which dtype it runs, and the operator's cap on the result's side."""

    def __init__(self, desc, model_id: str, revision: str | None, device: str, dtype: str, max_side: int):
        self.desc, self.model = desc, desc.model
        self.scale = int(desc.scale)
        self.align = int(desc.size_requirements.multiple_of)  # tiles start on the grid the model folds pixels on
        self.model_id, self.revision = model_id, revision
        self.device, self.dtype = device, dtype
        self.max_side = int(max_side)
        self.architecture = f"{desc.architecture.name} ({', '.join(desc.tags)})"
        self.lock = threading.Lock()  # one picture at a time through the model

    def close(self) -> None:
        self.desc = self.model = None


def load(weights, device: str, dtype: str, options=None) -> Engine:
    """The model of `weights` (a pinned file, fetched when missing and the hub may download; or random weights) on
    `device`. options: the demo's (max_side); None: the declared defaults."""
    with loadtimes.stage("import"):
        import spandrel  # noqa: F401  (the architectures, imported here to time them apart from the build)
        import torch

    path = _random_file(weights) if weights.is_random else _file(weights)
    loadtimes.read_files([path])
    with loadtimes.stage("build"):
        desc = _descriptor(_state_dict(path))
    run_dtype = _run_dtype(desc, device, dtype)
    with loadtimes.stage("convert"):
        desc.to(torch.device(device)).eval()
        desc.model.to(getattr(torch, run_dtype))
    max_side = getattr(options, "max_side", MAX_OUT_SIDE) if options is not None else MAX_OUT_SIDE
    return Engine(desc, weights.choice.id, weights.choice.revision, device, run_dtype, max_side)


def _run_dtype(desc, device: str, dtype: str) -> str:
    """The hub's dtype on a GPU where spandrel says the architecture supports it; float32 on a CPU and otherwise."""
    if device == "cpu":
        return "float32"
    if dtype == "float16" and desc.supports_half or dtype == "bfloat16" and desc.supports_bfloat16:
        return dtype
    return "float32"


def _file(weights) -> Path:
    """The checkpoint of a native or local model (a native one is fetched when missing)."""
    if weights.source == "path":
        return Path(weights.path)
    return fetch(weights)


def _state_dict(path: Path) -> dict:
    """The tensors of a checkpoint: safetensors as they are, a .pth/.pt only through torch's weights-only loader (a
    pickle that names anything but tensors and plain containers is refused)."""
    import torch
    from spandrel.__helpers.canonicalize import canonicalize_state_dict

    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif suffix in (".pth", ".pt", ".ckpt"):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise UserError(f"{path.name} is not a .safetensors or .pth upscaler file; give one of those.")
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:  # weights_only refusals too
        why = ("it holds Python objects besides tensors, which this hub never unpickles"
               if isinstance(e, pickle.UnpicklingError) else (str(e).strip().splitlines() or ["unreadable"])[0][:160])
        raise CorruptWeights(f"The upscaler file {path.name} could not be read as plain weights ({why}); fetch it "
                             "again (demohub fetch upscale) or use another file.") from None
    return canonicalize_state_dict(state)


def _descriptor(state: dict):
    """spandrel's ImageModelDescriptor for `state` (its architecture detected from the tensors' names and shapes)."""
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    try:
        desc = ModelLoader("cpu").load_from_state_dict(state)
    except UnsupportedModelError:
        raise UserError("This file is not an upscaler spandrel knows (ESRGAN/Real-ESRGAN, SwinIR, HAT, ...); use one "
                        "of the listed models.") from None
    if not isinstance(desc, ImageModelDescriptor) or desc.input_channels != 3 or desc.output_channels != 3:
        raise UserError("This model is not a colour-picture upscaler (3 channels in, 3 out); use a listed one.")
    return desc


def _random_file(weights) -> Path:
    """spandrel's RRDBNet at the choice's size with seeded random weights, saved once into the cache as safetensors
    (an x2 layout is the x4 network behind a 2x pixel-unshuffle, as Real-ESRGAN x2plus is)."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    arch = dict(weights.choice.options.get("arch") or {"num_filters": 8, "num_blocks": 1, "scale": 4})
    key = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(weights.cache_dir) / "derived" / "upscale" / f"random-rrdb-{key}.safetensors"
    if path.is_file():
        return path
    x2 = arch["scale"] == 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ESRGAN(in_nc=12 if x2 else 3, out_nc=3, num_filters=arch["num_filters"], num_blocks=arch["num_blocks"],
                     scale=4 if x2 else arch["scale"], shuffle_factor=2 if x2 else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + f".{threading.get_ident()}.part")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(part))
    part.replace(path)
    return path


def fetch(weights) -> Path:
    """The pinned file of a listed model in `<cache>/native/upscale/`, downloaded from its Hugging Face repo at the
    pinned revision when missing (`demohub fetch upscale`) and checked against the pinned SHA-256 before it is put
    there: a wrong file is deleted and refused with CorruptWeights."""
    from hub.weights import _sha256

    choice = weights.choice
    repo, name = choice.options.get("repo"), choice.options.get("file")
    if not repo or not name or not choice.sha256 or not choice.files:
        raise UserError(f"{choice.display} is not an upscaler this hub can download; pick one of "
                        f"{', '.join(m.id for m in SPEC.models if not m.hidden)}.")
    target = Path(weights.path) / choice.files[0]
    if target.is_file():
        return target
    staging = Path(weights.path) / f".download-{choice.id}"
    try:
        got = _download(repo, name, choice, staging)
        if _sha256(got) != choice.sha256:
            raise CorruptWeights(f"The downloaded {name} for {choice.display} does not match its pinned SHA-256 "
                                 f"(revision {choice.revision} of {repo}); it was deleted. The mirror changed or the "
                                 "pin is wrong: nothing was loaded.")
        got.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(repo: str, name: str, choice, folder: Path) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, name, revision=choice.revision, local_dir=folder))
    except Exception as e:  # network down, repo or revision gone: say which and what to do
        raise download_error(SPEC, choice, folder, e) from None


# ---- the check step and the run -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """A checked request: the result's size, the size the model gets (smaller than the upload only when its output
    would pass the cap), the model's passes, the tile, how many tiles in all, notes."""

    size: tuple[int, int]
    source: tuple[int, int]
    model_input: tuple[int, int]
    scale: float
    passes: int
    tile: int
    tiles: int
    notes: list[str] = field(default_factory=list)


def plan(engine: Engine, size: tuple[int, int], scale=4, tile=None, *, target: tuple[int, int] | None = None) -> Plan:
    """Check a request for a picture of `size` before any work: `scale` (1-4) or an exact `target` size, `tile`
    (64-1024; None: the device's default). Every bad value gets one sentence."""
    w, h = size
    tile = validate.number(tile, "tile size", *TILE_RANGE, integer=True,
                           default=DEFAULT_TILE.get(engine.device.split(":")[0], DEFAULT_TILE["cpu"]))
    if target is None:
        scale = validate.number(scale, "scale", MIN_SCALE, MAX_SCALE)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))
    else:
        scale = max(target[0] / w, target[1] / h)
    cap = engine.max_side
    if max(target) > cap:
        most = math.floor(cap / max(w, h) * 100) / 100
        fix = (f"use a scale of at most {validate.plain_number(most)}" if most >= MIN_SCALE
               else f"use a picture at most {cap} px on its longer side")
        raise UserError(f"Upscaling {w}x{h} by {validate.plain_number(round(scale, 3))} would make "
                        f"{target[0]}x{target[1]} pixels; this hub makes at most {cap} px per side: {fix}.")
    passes = 1
    while engine.scale ** passes < scale - 1e-6:
        passes += 1
    notes, model_input = [], (w, h)
    factor = engine.scale ** passes
    if max(w, h) * factor > cap:  # the model's own output would pass the cap: give it a smaller picture
        shrink = cap / (max(w, h) * factor)
        model_input = (max(MIN_SIDE, math.floor(w * shrink)), max(MIN_SIDE, math.floor(h * shrink)))
        notes.append(f"The picture was reduced to {model_input[0]}x{model_input[1]} before the x{factor} model, so "
                     f"its output stays within {cap} px; an x2 model keeps more detail at this scale.")
    tiles, (mw, mh) = 0, model_input
    for _ in range(passes):
        tiles += count(mw, mh, tile, OVERLAP, engine.align)
        mw, mh = mw * engine.scale, mh * engine.scale
    return Plan(target, (w, h), model_input, float(scale), passes, tile, tiles, notes)


def run(engine: Engine, rgb, p: Plan):
    """Yield a Tile per tile; return the upscaled RGB picture (`image = yield from run(...)`). Closing the generator
    between tiles stops the work."""
    import numpy as np
    import torch
    from PIL import Image

    if rgb.size != p.model_input:
        rgb = rgb.resize(p.model_input, Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    done = 0
    for _ in range(p.passes):
        steps = upscale_tiled(lambda t: _forward(engine, t), x, engine.scale, p.tile, OVERLAP, engine.align)
        while True:
            try:
                next(steps)
            except StopIteration as end:
                x = end.value
                break
            done += 1
            yield Tile(done, p.tiles)
    pixels = (x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    out = Image.fromarray(pixels)
    return out if out.size == p.size else out.resize(p.size, Image.Resampling.LANCZOS)


def _forward(engine: Engine, tile):
    """One tile through the model (on its device, in its dtype), back on the CPU in float32."""
    import torch

    with engine.lock, torch.inference_mode():
        y = engine.desc(tile.to(device=engine.device, dtype=getattr(torch, engine.dtype)))
    return y.float().cpu()


def upscale_image(engine: Engine, image, size: tuple[int, int], tile=None, *,
                  on_tile: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None):
    """`image` (PIL RGB) upscaled to exactly `size` (checked as a request is); None when `should_stop()` said so
    between tiles. For Stable Diffusion's hires fix."""
    p = plan(engine, image.size, tile=tile, target=size)
    steps = run(engine, image, p)
    while True:
        if should_stop and should_stop():
            steps.close()
            return None
        try:
            item = next(steps)
        except StopIteration as end:
            return end.value
        if on_tile:
            on_tile(item.done, item.total)


# ---- the work method ----------------------------------------------------------------------------------------------

WORK = Work()


@WORK.method(UpscaleRequest, name="upscale")
def upscale(lease, req: UpscaleRequest, job):
    """A Tile per tile, then the UpscaleResult (a PNG; RGBA when the upload had transparency). Stops between tiles
    when the consumer goes away (no result then)."""
    from PIL import Image

    from demos.upscale.formats import write_png

    engine = lease.engine
    size = image_size(req.image, "the picture", min_side=MIN_SIDE)  # the header only: the caps before decoding
    p = plan(engine, size, req.scale, req.tile)
    rgb = open_image(req.image, "the picture", min_side=MIN_SIDE)
    alpha = alpha_channel(req.image)
    yield Tile(0, p.tiles)  # the model is loaded and the request checked: the first tile starts
    steps = run(engine, rgb, p)
    while True:
        if job.stop.is_set():
            steps.close()
            return
        try:
            item = next(steps)
        except StopIteration as end:
            out = end.value
            break
        job.progress(item.done / item.total, f"Tile {item.done} of {item.total}")
        yield item
    if alpha is not None:
        out = Image.merge("RGBA", (*out.split(), alpha.resize(out.size, Image.Resampling.LANCZOS)))
    rec = lease.record(scale=round(p.scale, 4), width=p.size[0], height=p.size[1], input_size=f"{size[0]}x{size[1]}",
                       tile=p.tile, tiles=p.tiles, passes=p.passes, model_scale=engine.scale,
                       architecture=engine.architecture, alpha=alpha is not None, notes=p.notes)
    path = write_png(out, request_folder(SPEC.name, "images"), req.image, rec, engine.model_id)
    yield UpscaleResult(str(path), out.width, out.height, rec, list(p.notes))


def weights_for(model_id: str, cache_dir, random: bool = False):
    """hub.weights.Weights of a listed upscaler from the cache (never downloads: `demohub fetch upscale` does);
    `random`: architecture-true random weights instead (a random Stable Diffusion gets a random upscaler)."""
    from hub.settings import Settings
    from hub.weights import Weights, resolve

    choice = SPEC.choice(model_id)
    if choice is None:
        raise UserError(f"Unknown upscaler {model_id!r}; use one of {', '.join(m.id for m in SPEC.models)}.")
    if random or choice.source == "random":
        return Weights(SPEC.name, replace(choice, source="random"), "random", None, Path(cache_dir))
    return resolve(SPEC, choice, Settings.load({}, cache_dir=str(cache_dir), offline=True))
