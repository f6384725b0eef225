"""Memory facts the model manager needs: bytes an engine holds, free bytes per device, OOM detection, heap trimming.

torch is only touched if it is already imported (an engine was loaded), so the app starts without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import threading
import time

GiB = 2**30


def loaded_torch():
    """torch if it is fully imported already, else None (never imports it; safe while another thread imports it)."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return None
    return torch


def engine_bytes(engine) -> int:
    """Bytes of parameters and buffers an engine holds: `engine.nbytes` if it says, else its torch modules, plus
    `engine.extra_bytes` (e.g. the memory pools of its recorded CUDA graphs)."""
    n = getattr(engine, "nbytes", None)
    if isinstance(n, int):
        return n
    torch = loaded_torch()
    if torch is None:
        return 0
    seen: set[int] = set()
    total = 0
    candidates = [engine] + [v for v in getattr(engine, "__dict__", {}).values()]
    for obj in candidates:
        modules = getattr(obj, "components", None)  # diffusers pipelines
        mods = [m for m in (modules or {}).values()] if isinstance(modules, dict) else [obj]
        for m in mods:
            if isinstance(m, torch.nn.Module):
                for t in list(m.parameters()) + list(m.buffers()):
                    if t.layout != torch.strided:  # sparse buffers (e.g. whisper's alignment_heads) have no data_ptr
                        continue
                    if t.data_ptr() not in seen:
                        seen.add(t.data_ptr())
                        total += t.numel() * t.element_size()
    return total + int(getattr(engine, "extra_bytes", 0) or 0)


def free_bytes(kind: str) -> int | None:
    """Free memory on a device kind, or None if unknown."""
    if kind == "cuda":
        torch = loaded_torch()
        if torch is None or not torch.cuda.is_available():
            return None
        # memory torch keeps cached but unused is free for our purposes (it is handed back by empty_cache)
        return torch.cuda.mem_get_info()[0] + torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
    if kind == "cpu":
        try:
            import psutil

            return psutil.virtual_memory().available
        except ImportError:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def total_bytes(kind: str) -> int | None:
    if kind == "cuda":
        torch = loaded_torch()
        if torch is None or not torch.cuda.is_available():
            return None
        return torch.cuda.mem_get_info()[1]
    return None


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors (torch.cuda.OutOfMemoryError or the RuntimeError text)."""
    torch = loaded_torch()
    if torch is not None and isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def release_memory() -> None:
    """Collect garbage and hand cached accelerator memory back to the driver."""
    gc.collect()
    torch = loaded_torch()
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        mps.empty_cache()


_trim = {"fn": None, "looked": False, "last": -1e9}
_trim_lock = threading.Lock()


def _malloc_trim():
    if not _trim["looked"]:
        _trim["looked"] = True
        try:
            _trim["fn"] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to do
            _trim["fn"] = None
    return _trim["fn"]


def trim_heap(min_interval: float = 10.0) -> bool:
    """Give the C heap's free pages back to the OS (glibc `malloc_trim`), at most once every `min_interval` seconds.

    CPU tensors and decoded media live on the C heap. After a burst of concurrent requests glibc keeps the pages that
    the burst freed, so the server's resident size stays at the burst's peak although nothing is alive any more (and
    on a 16 GB Space that memory is gone for the next model). Trimming takes a few milliseconds; live memory is never
    touched, so a real leak still shows. Returns True when it ran.
    """
    fn = _malloc_trim()
    if fn is None:
        return False
    now = time.monotonic()
    with _trim_lock:
        if now - _trim["last"] < min_interval:
            return False
        _trim["last"] = now
    fn(0)
    return True
