"""ZeroGPU support: on a ZeroGPU Space, GPU work runs inside `spaces.GPU(duration=...)`; elsewhere a no-op.

The `spaces` package is only used when it is installed *and* the Space says it runs on ZeroGPU
(`SPACES_ZERO_GPU` is set), so local runs never need it.
"""

from __future__ import annotations

import importlib.util
import os


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def gpu(fn, seconds: int):
    """`spaces.GPU(duration=seconds)(fn)` on ZeroGPU, else `fn` unchanged."""
    if not on_zero_gpu():
        return fn
    import spaces

    return spaces.GPU(duration=seconds)(fn)
