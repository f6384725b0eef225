"""LoRAs fused into a loaded Stable Diffusion pipeline: zero cost per denoising step, and the exact weights back when
the set changes.

diffusers (with peft) loads each LoRA as an adapter (kohya/A1111 and diffusers key formats alike), `set_adapters`
gives each its weight and `fuse_lora` adds weight x scale x B@A into the UNet's and the text encoder's own weights;
`unload_lora_weights` then removes the adapter layers, so a step runs the plain modules at plain speed. Taking the
LoRAs out again with peft's unfuse (W - delta) would not give the same weights back in bfloat16 or float16 (each
fuse/unfuse round trip rounds), so the weights a LoRA changes are copied first (to the CPU) and copied back exactly
when the set changes: the engine keeps the fused set, and the next request with the same set reuses it as it is.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from demos.stable_diffusion import lora as loras
from hub.errors import UserError

log = logging.getLogger("demohub")


class LoraState:
    """One engine's LoRAs: where they are listed from, their hashes (by file size and time), the fused set and the
    original weights under it. Changed only under the engine's lock (engine._run)."""

    def __init__(self, folder: str | None, cache_dir):
        self.folder, self.cache_dir = folder or None, cache_dir
        self.fused: tuple = ()  # ((name, weight, hash), ...) fused into the weights now
        self.originals: dict = {}  # (component, module name) -> the weight before fusing (CPU copy)
        self._hashes: dict = {}
        self._lock = threading.Lock()

    def hash(self, path: Path) -> str:
        st = os.stat(path)
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if key not in self._hashes:
                self._hashes[key] = loras.short_hash(path)
            return self._hashes[key]


def check_engine(engine) -> None:
    """LoRAs need the UNet's own modules: refused on a compiled UNet and under sequential offload."""
    if engine.compiled:
        raise UserError("LoRAs cannot be used while the UNet is compiled (DEMOHUB_STABLE_DIFFUSION_COMPILE); the "
                        "operator can turn compiling off to use them.")
    if engine.offloaded == "sequential":
        raise UserError("LoRAs cannot be used with sequential CPU offload (too little GPU memory for this model); "
                        "leave the LoRAs out, or the operator can use model offload.")


def apply(engine, chosen: list[dict]) -> None:
    """Make the fused set `chosen` ([{name, weight, hash}]): nothing to do when it is the fused one already; else the
    originals back, then the new set fused. Call under engine.lock, outside inference mode."""
    state: LoraState = engine.loras
    key = tuple((x["name"], float(x["weight"]), x["hash"]) for x in chosen)
    if key == state.fused:
        return
    restore(engine)
    if not key:
        return
    check_engine(engine)
    known = loras.available(state.folder, state.cache_dir)
    missing = [name for name, _, _ in key if name not in known]
    if missing:
        raise UserError(f"LoRA {missing[0]!r} was removed from this hub while the request waited; pick another.")
    try:
        _fuse(engine, [(known[name].path, weight) for name, weight, _ in key])
    except UserError:
        raise
    except Exception as e:  # a file diffusers cannot map onto this UNet: the weights as they were, and a sentence
        log.warning("Loading LoRAs %s failed", [k[0] for k in key], exc_info=e)
        _drop_adapters(engine.pipe)
        restore(engine)
        raise UserError(f"The LoRA set {', '.join(k[0] for k in key)} could not be applied to {engine.model_id} "
                        f"({str(e).splitlines()[0][:160] if str(e) else type(e).__name__}); it may be made for "
                        "another model or in a format this hub does not read.") from None
    state.fused = key


def _fuse(engine, files: list[tuple[Path, float]]) -> None:
    import torch

    pipe, state = engine.pipe, engine.loras
    names = [f"lora{i}" for i in range(len(files))]
    with torch.no_grad():
        for name, (path, _) in zip(names, files):
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
        pipe.set_adapters(names, adapter_weights=[w for _, w in files])
        state.originals = _snapshot(pipe)
        pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
        pipe.unload_lora_weights()  # the adapter layers go; their sum stays in the weights


def _components(pipe):
    for part in ("unet", "text_encoder"):
        module = getattr(pipe, part, None)
        if module is not None:
            yield part, module


def _snapshot(pipe) -> dict:
    """The weights (and biases) of every layer an adapter wraps, as they are before fusing, on the CPU."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    saved = {}
    for part, module in _components(pipe):
        for name, layer in module.named_modules():
            if isinstance(layer, BaseTunerLayer):
                base = layer.get_base_layer()
                saved[(part, name)] = {k: v.detach().to("cpu", copy=True) for k, v in base.named_parameters()}
    return saved


def restore(engine) -> None:
    """The original weights back (exactly) and no fused set."""
    import torch

    state: LoraState = engine.loras
    if state.originals:
        parts = dict(_components(engine.pipe))
        with torch.no_grad():
            for (part, name), params in state.originals.items():
                layer = parts[part].get_submodule(name)
                for key, value in params.items():
                    getattr(layer, key).data.copy_(value)
    state.originals, state.fused = {}, ()


def _drop_adapters(pipe) -> None:
    try:
        pipe.unload_lora_weights()
    except Exception as e:  # nothing loaded, or half loaded: the restore that follows puts the weights back
        log.warning("Unloading LoRA adapters failed", exc_info=e)
