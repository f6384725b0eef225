"""ControlNet for Stable Diffusion 1.x/2.x, as sd-webui-controlnet users know it: which ControlNets there are (the
pinned lllyasviel v1.1 models `demohub fetch` gets, the operator's folder DEMOHUB_STABLE_DIFFUSION_CONTROLNET_DIR of
diffusers ControlNet folders, and on random test weights one random ControlNet per pinned name), what each is made
for (its base model, read from its config.json), and the checks of a request's units (types.ControlUnit): a listed
name, the same base as the loaded model, a picture, a known preprocessor, strength 0-2, a start before the end, canny
thresholds 0-255. Light: no torch (the tab lists them at start). control_maps.py makes the preprocessors' maps,
control_run.py loads the ControlNets and builds the pipelines.

Names come only from the listing: a request names a ControlNet, never a path.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hub import validate
from hub.errors import UserError
from hub.spec import ModelChoice

log = logging.getLogger("demohub")

MAX_UNITS = 3  # ControlNets at once in one request (multi-ControlNet), as sd-webui-controlnet's default
MAX_STRENGTH = 2.0
MAX_FILES = 200  # folders a scan reads
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# The cross-attention width of each base (the ControlNet's and the UNet's config: cross_attention_dim)
BASES = {768: "SD 1.x", 1024: "SD 2.x"}

# sd-webui-controlnet's preprocessor names, shortened: canny (OpenCV), depth (Depth Anything V2 Small), lineart
# (lineart_standard), scribble (scribble_xdog), tile (tile_resample), none (the picture is the map already: a pose
# skeleton drawn elsewhere, a map saved before). Every one but depth needs no weights.
PREPROCESSORS = ("canny", "depth", "lineart", "scribble", "tile", "none")

# The pinned ControlNet v1.1 models for SD 1.5 (diffusers folders; revisions as imaginAIry pins them, which could not
# be checked against the Hub from here: `demohub fetch` fails loudly if one is wrong). `demohub fetch stable_diffusion
# --model stable-diffusion-v1-5/stable-diffusion-v1-5` gets them with the model; --model <repo> gets one.
_CN_FILES = ("config.json", "diffusion_pytorch_model.fp16.safetensors")


def _pin(repo: str, revision: str, name: str, label: str, preprocessor: str, files=_CN_FILES) -> ModelChoice:
    return ModelChoice(repo, "hf", label=label, revision=revision, files=files, approx_bytes=722_600_000,
                       size_dtype="float16", license="OpenRAIL",
                       options={"name": name, "preprocessor": preprocessor, "with_models": (SD15,)})


PINS = (
    _pin("lllyasviel/control_v11p_sd15_canny", "115a470d547982438f70198e353a921996e2e819", "canny",
         "ControlNet v1.1 canny (SD 1.5)", "canny"),
    _pin("lllyasviel/control_v11f1p_sd15_depth", "539f99181d33db39cf1af2e517cd8056785f0a87", "depth",
         "ControlNet v1.1 depth (SD 1.5)", "depth"),
    _pin("lllyasviel/control_v11p_sd15_openpose", "9ae9f970358db89e211b87c915f9535c6686d5ba", "openpose",
         "ControlNet v1.1 openpose (SD 1.5; upload a pose skeleton)", "none"),
    # the tile model's pinned revision has its weights as a PyTorch file only: diffusers reads it with
    # torch.load(weights_only=True)
    _pin("lllyasviel/control_v11f1e_sd15_tile", "3f877705c37010b7221c3d10743307d6b5b6efac", "tile",
         "ControlNet v1.1 tile (SD 1.5)", "tile", files=("config.json", "diffusion_pytorch_model.bin")),
)

# Depth Anything V2 Small (Apache-2.0; the Base and Large checkpoints are non-commercial), the depth preprocessor,
# pinned by revision and by its weights' sha256 (as two public projects pin them).
DEPTH_ESTIMATOR = ModelChoice(
    "depth-anything/Depth-Anything-V2-Small-hf", "hf", label="Depth Anything V2 Small (ControlNet depth maps)",
    revision="5426e4f0f36572d16453bbda7a8389317b1bef99",
    files=("config.json", "preprocessor_config.json", "model.safetensors"),
    sha256="3152477ce0d8d6978d76b995120de97cb5b928701fd0f817769f59e249a16b70", approx_bytes=99_173_660,
    size_dtype="float32", license="Apache-2.0", options={"with_models": (SD15,)})


@dataclass(frozen=True)
class Net:
    """One listed ControlNet: its name (what the tab and the API say), its folder (None: built at random for tests),
    where it came from ("pinned", "folder" or "random"), its cross-attention width and its usual preprocessor."""

    name: str
    path: Path | None
    source: str
    width: int | None
    preprocessor: str


# ---- what there is ------------------------------------------------------------------------------------------------


def _config(folder: Path) -> dict | None:
    """A diffusers ControlNet folder's config.json, or None when `folder` is not one."""
    try:
        conf = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return conf if isinstance(conf, dict) and conf.get("_class_name") == "ControlNetModel" else None


def _guess(name: str) -> str:
    """The preprocessor a folder's ControlNet probably wants, from its name (control_v11p_sd15_lineart: lineart)."""
    low = name.lower()
    return next((p for p in PREPROCESSORS[:-1] if p in low), "canny" if "edge" in low else "none")


def scan(folder: str | Path | None) -> dict[str, Net]:
    """The diffusers ControlNet folders under `folder` (a config.json with _class_name ControlNetModel and its
    weights), by folder name."""
    if not folder:
        return {}
    root = Path(folder).expanduser()
    if not root.is_dir():
        log.warning("DEMOHUB_STABLE_DIFFUSION_CONTROLNET_DIR %s is not a folder: no ControlNets from it", root)
        return {}
    found: dict[str, Net] = {}
    for i, conf_path in enumerate(sorted(root.rglob("config.json"))):
        if i >= MAX_FILES:
            break
        sub = conf_path.parent
        conf = _config(sub)
        if conf is None or sub.name in found or any(c in sub.name for c in ":,"):
            continue
        found[sub.name] = Net(sub.name, sub, "folder", conf.get("cross_attention_dim"), _guess(sub.name))
    return found


def pinned(cache_dir: str | Path | None) -> dict[str, Net]:
    """The pinned ControlNets already in the cache, by name (no download, no log line)."""
    from hub.weights import cached_snapshot

    found = {}
    for pin in PINS:
        folder = cached_snapshot(cache_dir, pin)
        if folder is not None and (conf := _config(folder)) is not None:
            name = pin.options["name"]
            found[name] = Net(name, folder, "pinned", conf.get("cross_attention_dim"), pin.options["preprocessor"])
    return found


def available(engine) -> dict[str, Net]:
    """Every ControlNet a request to `engine` may name: on random weights one random ControlNet per pinned name (the
    tests' and the bench's), else the pinned ones, then the folder's (a folder may not take a pin's name)."""
    if engine.source == "random":
        width = engine.pipe.unet.config.cross_attention_dim
        return {p.options["name"]: Net(p.options["name"], None, "random", width, p.options["preprocessor"])
                for p in PINS}
    pins = pinned(engine.loras.cache_dir)
    return {**{k: v for k, v in scan(engine.controlnet_dir).items() if k not in pins}, **pins}


def listing(folder, cache_dir) -> list[dict]:
    """What the tab and GET /v1/images/controlnets show: name, source, base model and preprocessor of each."""
    both = {**scan(folder), **pinned(cache_dir)}
    return [{"id": n.name, "object": "controlnet", "source": n.source, "preprocessor": n.preprocessor,
             "base": BASES.get(n.width, f"{n.width}-wide") if n.width else "unknown"}
            for n in sorted(both.values(), key=lambda n: n.name.lower())]


# ---- the checks of a request's units ------------------------------------------------------------------------------


def check(engine, units, mode: str) -> list[dict]:
    """The request's ControlNet units (types.ControlUnit, or dicts with the same keys), checked before any work:
    a list of plain dicts (name, the picture, preprocessor, strength, start, end, low, high); [] for none."""
    from hub.media.image import open_image

    units = [u for u in (units or ()) if u is not None]
    if not units:
        return []
    if engine.family != "sd":
        raise UserError(f"{engine.model_id} takes no ControlNet (they are made for Stable Diffusion 1.x/2.x); "
                        "pick an SD model or leave ControlNet off.")
    if len(units) > MAX_UNITS:
        raise UserError(f"At most {MAX_UNITS} ControlNets at once; this request has {len(units)}.")
    nets = available(engine)
    out = []
    for k, unit in enumerate(units, 1):
        u = unit if isinstance(unit, dict) else unit.__dict__
        what = f"ControlNet {k}" if len(units) > 1 else "the ControlNet"
        net = _named(nets, u.get("model"), what)
        _same_base(engine, net)
        if u.get("image") is None:
            raise UserError(f"Give {what} a picture to read (its control image).")
        picture = open_image(u["image"], f"{what}'s control image")
        pre, low, high = map_settings(u.get("preprocessor"), u.get("low"), u.get("high"), f"{what}'s",
                                      net.preprocessor)
        start = validate.number(u.get("start"), f"{what}'s start", 0, 1, default=0.0)
        end = validate.number(u.get("end"), f"{what}'s end", 0, 1, default=1.0)
        if end <= start:
            raise UserError(f"{what[0].upper() + what[1:]} would act on no step: its end "
                            f"({validate.plain_number(end)}) must come after its start "
                            f"({validate.plain_number(start)}).")
        out.append({"name": net.name, "image": picture, "preprocessor": pre,
                    "strength": float(validate.number(u.get("strength"), f"{what}'s strength", 0, MAX_STRENGTH,
                                                      default=1.0)),
                    "start": float(start), "end": float(end), "low": low, "high": high})
    return out


def map_settings(preprocessor, low, high, whose: str = "the", default: str = "canny") -> tuple[str, int, int]:
    """A preprocessor and its canny thresholds, checked: (name, low, high). `whose`: "the" or "ControlNet 2's"."""
    pre = validate.choice(preprocessor, f"{whose} preprocessor", PREPROCESSORS, default=default)
    low = validate.number(low, f"{whose} low threshold", 0, 255, integer=True, default=100)
    high = validate.number(high, f"{whose} high threshold", 0, 255, integer=True, default=200)
    if pre == "canny" and low > high:
        raise UserError(f"{whose[0].upper() + whose[1:]} low canny threshold ({low}) is above the high one "
                        f"({high}); swap them.")
    return pre, low, high


def _named(nets: dict[str, Net], name, what: str) -> Net:
    name = "" if name is None else str(name).strip()
    if name in nets:
        return nets[name]
    have = ", ".join(sorted(nets)) or "none yet (`demohub fetch stable_diffusion --model " + SD15 + "` gets the " \
                                       "pinned ones; DEMOHUB_STABLE_DIFFUSION_CONTROLNET_DIR adds a folder)"
    if not name:
        raise UserError(f"Pick which ControlNet {what} is; this hub has: {have}.")
    raise UserError(f"This hub has no ControlNet named {name[:80]!r}; it has: {have}.")


def _same_base(engine, net: Net) -> None:
    width = engine.pipe.unet.config.cross_attention_dim
    if net.width is not None and net.width != width:
        raise UserError(f"The ControlNet {net.name} is made for {BASES.get(net.width, 'another base model')}, and "
                        f"{engine.model_id} is {BASES.get(width, 'another base')}; pick a ControlNet made for it.")


def record(units: list[dict]) -> list[dict]:
    """What the record and the PNG keep of the checked units (not the pictures)."""
    return [{k: u[k] for k in ("name", "preprocessor", "strength", "start", "end")}
            | ({"low": u["low"], "high": u["high"]} if u["preprocessor"] == "canny" else {}) for u in units]
