"""A GGUF model's dequantized copy, made once per file, run dtype and transformers version, and reused.

transformers dequantizes a .gguf file on every load, into the same tensors each time: SmolLM2-135M Q4_1 took 30-56 s
on 2 busy vCPUs, plus 8-11 s to read the file's quantization through gguf-py for the Models tab. The first load saves
what it made (safetensors in the run dtype, the tokenizer with its chat template, the configs and the Models tab's
format line) into the hub's cache folder; later loads read that folder (safetensors, memory-mapped) and so build the
same model, which gives the same answers. Keyed by the file's pinned sha256, else its name, size and time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from hub.atomic import replacing_folder

log = logging.getLogger("demohub")

FORMAT = "format.json"  # written last: a folder without it is not used


def folder_for(weights, dtype: str) -> Path:
    """Where the dequantized copy of the GGUF file `weights.path` lives for `dtype`."""
    import transformers

    kind = f"gguf-{transformers.__version__}-{dtype}"
    return Path(weights.cache_dir) / "native" / "llm_chat" / kind / file_key(weights)


def file_key(weights) -> str:
    """The GGUF file's name in the cache: its stem and its pinned sha256, else a hash of its name, size and time."""
    path = Path(weights.path)
    if weights.choice.sha256:
        key = weights.choice.sha256[:16]
    else:
        st = path.stat()
        key = hashlib.sha256(repr((path.name, st.st_size, st.st_mtime_ns)).encode()).hexdigest()[:16]
    return f"{path.stem}-{key}"


def ready(folder: Path) -> bool:
    return (folder / FORMAT).is_file()


def weights_format(folder: Path) -> str:
    """The Models tab's line for the model, as the first load said it ("Q4_1 GGUF, dequantized to float32 ...")."""
    return str(json.loads((folder / FORMAT).read_text())["weights_format"])


def save(folder: Path, model, tok, fmt: str) -> None:
    """Save the dequantized model and its tokenizer into `folder`, atomically; a failure (a full or read-only
    cache, a model this cannot write) is logged and the model runs anyway, dequantized again at the next load.

    transformers refuses `save_pretrained` on a model it loaded from GGUF (its quantizer is kept on the model,
    though the weights are plain tensors now): the tensors and the config (without that quantizer) go out here."""
    try:
        with replacing_folder(folder) as tmp:
            _save_model(model, tmp)
            tok.save_pretrained(tmp)
            (tmp / FORMAT).write_text(json.dumps({"weights_format": fmt}))
    except Exception as e:  # an optimisation: the loaded model is fine, so the load goes on (said in the log)
        log.warning("Could not keep the dequantized GGUF model in the cache (%s: %s); it is dequantized again at its "
                    "next load.", type(e).__name__, e)


def _save_model(model, folder: Path) -> None:
    import copy

    from safetensors.torch import save_file

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    tied = set(getattr(model, "_tied_weights_keys", None) or ())  # lm_head tied to the embeddings: saved once
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in tied}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
