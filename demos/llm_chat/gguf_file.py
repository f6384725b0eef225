"""What a .gguf model file is, said in words for the hub's Models tab (its quantization, and what loading it makes
of it). Reads only the file's header, through the `gguf` package that transformers' GGUF loading needs anyway."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path


def gguf_format(path: Path, dtype: str) -> str:
    """What a .gguf model is in memory, for the Models tab: "Q4_1 GGUF, dequantized to float32 in memory".

    transformers does not run quantized GGUF weights: it dequantizes every tensor on load to the dtype it is asked
    for (the run dtype), so the model takes that dtype's memory; the file's quantization is said for what it is."""
    return f"{gguf_quantization(path)} GGUF, dequantized to {dtype} in memory"


def gguf_quantization(path: Path) -> str:
    """The quantization a .gguf file declares (`general.file_type`: "Q4_1", "Q4_K_M", "F16", ...), else the type most
    of its weight matrices have; "quantized" when the header says neither (a label, never an error)."""
    return gguf_header(path)[1]


def gguf_header(path: Path) -> tuple[str, str]:
    """(architecture, quantization) of a .gguf file, from one read of its header: `general.architecture` ("llama",
    "qwen2", ...; "" if it says none) and what `gguf_quantization` says."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError, IndexError, KeyError):  # transformers refuses such a file on load anyway
        return "", "quantized"
    field = reader.fields.get("general.architecture")
    arch = bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field is not None and field.data else ""
    return arch, _declared(reader) or _most_common(reader) or "quantized"


def _declared(reader) -> str | None:
    from gguf import LlamaFileType

    field = reader.fields.get("general.file_type")
    if field is None or not field.data:
        return None
    try:
        kind = LlamaFileType(int(field.parts[field.data[0]][0]))
    except ValueError:  # a type newer than this gguf package
        return None
    return None if kind == LlamaFileType.GUESSED else re.sub(r"^(MOSTLY|ALL)_", "", kind.name)


def _most_common(reader) -> str | None:
    kinds = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)  # weight matrices, not norms
    return kinds.most_common(1)[0][0] if kinds else None
