"""LoRAs for Stable Diffusion 1.x/2.x, as AUTOMATIC1111 users know them: which there are (the operator's folder
DEMOHUB_STABLE_DIFFUSION_LORA_DIR and the pinned Hub repos of spec.LORA_PINS), what each is (its name, trigger words
from its metadata, A1111's short hash, the base model it was made for), the `<lora:name:0.8>` prompt tags and the
"name:0.8, other:0.5" text of the tab and the API. Light: no torch (the tab lists them at start); fuse.py applies
them to a loaded pipeline.

Everything here reads only the safetensors header (8 bytes of length, then JSON: tensor names, shapes, metadata), so
a LoRA made for another base model, or a file that is no LoRA, is refused with a sentence before any work. Names come
only from the listing: a request names a LoRA, never a path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hub import validate
from hub.errors import UserError

log = logging.getLogger("demohub")

MAX_LORAS = 8  # at once in one request
MIN_WEIGHT, MAX_WEIGHT = -4.0, 4.0  # A1111 allows negative weights (the "detail tweaker" LoRAs use them)
MAX_FILES = 1000  # a folder scan stops here
MAX_HEADER = 16 * 2**20  # kohya's metadata (tag frequencies) runs to a few hundred KB
MAX_TEXT = 4000  # the characters of a "name:0.8, other:0.5" text
NO_NAME = ":<>,"  # a name with one of these cannot be written in a tag or the text: such files are not listed
# The cross-attention width of each base model (the UNet's attn2 to_k/to_v input; the text encoder's hidden size)
BASES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL", 4096: "SD 3 / FLUX"}
_DOWN = ("lora_down.weight", "lora_A.weight", "lora.down.weight", "_lora.down.weight")


@dataclass(frozen=True)
class Lora:
    """One listed LoRA: its name (what the tab, the tag and the API say), file and where it came from."""

    name: str
    path: Path
    source: str  # "folder" or "pinned"


# ---- what there is ------------------------------------------------------------------------------------------------


def scan(folder: str | Path | None) -> dict[str, Lora]:
    """The folder's *.safetensors (subfolders too, as A1111 reads models/Lora), by file stem; the first of two with
    the same stem wins. No folder: none."""
    if not folder:
        return {}
    root = Path(folder).expanduser()
    if not root.is_dir():
        log.warning("DEMOHUB_STABLE_DIFFUSION_LORA_DIR %s is not a folder: no LoRAs from it", root)
        return {}
    found: dict[str, Lora] = {}
    for i, path in enumerate(sorted(root.rglob("*.safetensors"))):
        if i >= MAX_FILES:
            log.warning("More than %d LoRA files under %s: the rest are not listed", MAX_FILES, root)
            break
        name = path.stem
        if any(c in name for c in NO_NAME) or name in found or not path.is_file():
            continue
        found[name] = Lora(name, path, "folder")
    return found


def pinned(cache_dir: str | Path | None) -> dict[str, Lora]:
    """The pinned Hub LoRAs already in the cache (`demohub fetch stable_diffusion` gets them), by their names: the
    pinned revision's snapshot folder in the Hugging Face cache, looked up without a download or a log line."""
    from demos.stable_diffusion.spec import LORA_PINS
    from hub.weights import cached_snapshot

    found = {}
    for pin in LORA_PINS:
        if (folder := cached_snapshot(cache_dir, pin)) is not None and (folder / pin.options["file"]).is_file():
            found[pin.options["name"]] = Lora(pin.options["name"], folder / pin.options["file"], "pinned")
    return found


def available(folder, cache_dir) -> dict[str, Lora]:
    """Every LoRA a request may name: the pinned ones, then the folder's (a folder file may not take a pin's name)."""
    pins = pinned(cache_dir)
    return {**{k: v for k, v in scan(folder).items() if k not in pins}, **pins}


def listing(folder, cache_dir) -> list[dict]:
    """What the tab and GET /v1/images/loras show: name, source, trigger words and base model of each LoRA."""
    rows = []
    for lora in sorted(available(folder, cache_dir).values(), key=lambda x: x.name.lower()):
        try:
            head = header(lora.path)
        except UserError:
            continue  # not a safetensors file at all: not offered
        width = base_width(head)
        rows.append({"id": lora.name, "object": "lora", "source": lora.source, "trigger_words": triggers(head),
                     "base": BASES.get(width, f"{width}-wide") if width else "unknown"})
    return rows


# ---- what one is ----------------------------------------------------------------------------------------------------


def header(path: Path) -> dict:
    """The safetensors header of `path` (tensor name -> dtype/shape/offsets, and "__metadata__"), read without the
    tensors; a sentence for a file that is not safetensors."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= MAX_HEADER:
                raise ValueError("header size")
            head = json.loads(f.read(n))
    except (OSError, ValueError, RecursionError):
        raise UserError(f"{path.name} is not a safetensors file (its header cannot be read); LoRAs are loaded from "
                        ".safetensors files only.") from None
    if not isinstance(head, dict):
        raise UserError(f"{path.name} is not a safetensors file; LoRAs are loaded from .safetensors files only.")
    return head


def metadata(head: dict) -> dict:
    meta = head.get("__metadata__")
    return meta if isinstance(meta, dict) else {}


def triggers(head: dict, most: int = 6) -> list[str]:
    """Trigger words: the modelspec's trigger phrase, else kohya's most frequent training tags."""
    meta = metadata(head)
    phrase = meta.get("modelspec.trigger_phrase")
    if isinstance(phrase, str) and phrase.strip():
        return [t.strip() for t in phrase.split(",") if t.strip()][:most]
    try:
        freq = json.loads(meta.get("ss_tag_frequency") or "{}")
    except (ValueError, RecursionError, TypeError):
        return []
    counts: dict[str, int] = {}
    for tags in (freq.values() if isinstance(freq, dict) else ()):
        for tag, n in (tags.items() if isinstance(tags, dict) else ()):
            if isinstance(n, (int, float)):
                counts[tag.strip()] = counts.get(tag.strip(), 0) + int(n)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if t][:most]


def _is_down(key: str) -> bool:
    return key.endswith(_DOWN) or key.endswith(".down.weight")


def is_lora(head: dict) -> bool:
    return any(_is_down(k) for k in head if k != "__metadata__")


def base_width(head: dict) -> int | None:
    """The cross-attention width the LoRA was made for: its UNet attn2 to_k/to_v input, else (a text-encoder-only
    LoRA) its text encoder's width; 2048 for an SDXL LoRA (two text encoders); None when it says nothing."""
    if any(k.startswith(("lora_te2_", "text_encoder_2.", "lora_unet_input_blocks_4_1_transformer_blocks_1"))
           for k in head):
        return 2048
    text = None
    for key, info in head.items():
        if key == "__metadata__" or not _is_down(key) or not isinstance(info, dict):
            continue
        shape = info.get("shape") or []
        if len(shape) < 2:
            continue
        flat = key.replace(".", "_")
        if "attn2" in flat and ("to_k" in flat or "to_v" in flat):
            return int(shape[1])
        if text is None and ("lora_te" in flat or "text_encoder" in flat) and "q_proj" in flat:
            text = int(shape[1])
    return text


def check_base(name: str, head: dict, engine) -> None:
    """Refuse a LoRA made for another base model than the loaded pipeline's (SD 1.x 768, SD 2.x 1024, SDXL 2048)."""
    width = base_width(head)
    if width is None:
        return
    text_width = getattr(engine.pipe.text_encoder.config, "hidden_size", None)
    unet_width = engine.pipe.unet.config.cross_attention_dim
    if width not in (unet_width, text_width):
        made = BASES.get(width, f"a model with {width}-wide cross-attention")
        have = BASES.get(unet_width, f"{unet_width}-wide")
        raise UserError(f"LoRA {name!r} was made for {made} and the loaded model {engine.model_id} is {have}: pick "
                        f"a LoRA made for {have}, or another model.")


def short_hash(path: Path) -> str:
    """AUTOMATIC1111's LoRA hash (kohya's "addnet" hash): sha256 of the file after its header, first 12 digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()[:12]


# ---- what a request asks for ----------------------------------------------------------------------------------------


def split_tags(prompt: str) -> tuple[str, list[tuple[str, str]]]:
    """(the prompt without its `<lora:name:weight>` tags, [(name, weight text)]), as A1111 removes them before the
    text encoder. One left-to-right pass with str.find (linear); a tag never closed stays text."""
    out, tags, i = [], [], 0
    while True:
        start = prompt.find("<lora:", i)
        end = prompt.find(">", start + 6) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(prompt[i:])
            break
        out.append(prompt[i:start])
        name, _, weight = prompt[start + 6:end].partition(":")
        tags.append((name.strip(), weight.partition(":")[0].strip() or "1"))
        i = end + 1
    return "".join(out), tags


def parse_text(text: str) -> list[tuple[str, str]]:
    """"name:0.8, other:0.5, third" -> [(name, weight text)] (weight 1 when left out)."""
    if len(text) > MAX_TEXT:
        raise UserError(f"The LoRA list is {len(text)} characters long; write at most {MAX_LORAS} entries like "
                        "name:0.8, other:0.5.")
    pairs = []
    for part in text.split(","):
        name, _, weight = part.strip().removeprefix("<lora:").removesuffix(">").partition(":")
        if name.strip():
            pairs.append((name.strip(), weight.strip() or "1"))
    return pairs


def _pairs(value) -> list[tuple[str, object]]:
    """The request's LoRAs as (name, weight) pairs: a text, or a list of [name, weight] / {"name", "weight"}."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return parse_text(value)
    if not isinstance(value, (list, tuple)):
        raise UserError("LoRAs must be a text like name:0.8, other:0.5 or a list of {name, weight}.")
    pairs = []
    for item in value:
        if isinstance(item, dict):
            pairs.append((item.get("name"), item.get("weight", 1)))
        elif isinstance(item, (list, tuple)) and len(item) in (1, 2):
            pairs.append((item[0], item[1] if len(item) == 2 else 1))
        elif isinstance(item, str):
            pairs.extend(parse_text(item))
        else:
            raise UserError("Each LoRA must be a name with a weight, like {\"name\": \"style\", \"weight\": 0.8}.")
    return pairs


def _float(text: str):
    try:
        return float(text)
    except ValueError:
        return text  # hub.validate answers that it must be a number


def wanted(value, prompt: str) -> list[tuple[str, float]]:
    """The LoRAs a request asks for: the tab's or body's list, then the prompt's tags (a tag's weight wins for the
    same name); weights checked; weight 0 left out (it changes nothing)."""
    chosen: dict[str, float] = {}
    for name, weight in [*_pairs(value), *split_tags(prompt or "")[1]]:
        if not isinstance(name, str) or not name.strip():
            raise UserError("A LoRA has no name; write name:weight, like style:0.8.")
        name = name.strip()[:200]
        if isinstance(weight, str):
            weight = _float(weight)
        chosen[name] = validate.number(weight, f"the weight of LoRA {name!r}", MIN_WEIGHT, MAX_WEIGHT)
    chosen = {k: float(w) for k, w in chosen.items() if w != 0}
    if len(chosen) > MAX_LORAS:
        raise UserError(f"{len(chosen)} LoRAs were asked for; use at most {MAX_LORAS} at once.")
    return list(chosen.items())


def check(engine, value, prompt: str) -> list[dict]:
    """The request's LoRAs checked against what is listed and the loaded model: [{name, weight, hash}] for the
    record and the PNG; a sentence for an unknown name, a bad weight, a file that is no LoRA or one made for
    another base model. Before any work (no tensor is read)."""
    asked = wanted(value, prompt)
    if not asked:
        return []
    if engine.family != "sd":
        raise UserError(f"LoRAs work with the Stable Diffusion 1.x/2.x models here, not {engine.model_id}; pick one "
                        "of those, or leave the LoRAs out.")
    state = engine.loras
    known = available(state.folder, state.cache_dir)
    out = []
    for name, weight in asked:
        lora = known.get(name)
        if lora is None:
            names = ", ".join(sorted(known)[:20]) if known else ""
            raise UserError(f"There is no LoRA named {name!r} on this hub; " + (
                f"use one of: {names} (GET /v1/images/loras lists them)." if names else
                "it has none (the operator can put .safetensors LoRAs in DEMOHUB_STABLE_DIFFUSION_LORA_DIR)."))
        head = header(lora.path)
        if not is_lora(head):
            raise UserError(f"{name!r} is not a LoRA (its file has no lora_down / lora_A weights); pick another.")
        check_base(name, head, engine)
        out.append({"name": name, "weight": weight, "hash": state.hash(lora.path)})
    return out


def hashes_text(loras: list[dict]) -> str:
    """A1111's `Lora hashes` value: "name: abcdef123456, other: 0123456789ab"."""
    return ", ".join(f"{x['name']}: {x['hash']}" for x in loras)
