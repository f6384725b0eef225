"""Pick the device and dtype. `choose` is pure (availability is passed in); `detect` asks torch."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("demohub")


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda", "cuda:1", "mps" or "cpu"
    dtype: str  # "float16", "bfloat16" or "float32"
    reason: str = ""

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def choose(requested: str = "auto", dtype: str = "auto", *, cuda: bool = False, mps: bool = False,
           bf16: bool = False, prefers: str | None = None, cpu_bf16: bool = False,
           cpu_prefers: str | None = None) -> Placement:
    """CUDA -> fp16 (bf16 where the model `prefers` it and the GPU supports it), MPS -> fp16, CPU -> fp32, or bf16
    where the model `cpu_prefers` it (measured faster and close to fp32) and the CPU computes bf16 natively.

    requested: "auto" | "cuda" | "mps" | "cpu" (an unavailable accelerator falls back to CPU, with the reason).
    dtype: "auto" or an explicit dtype; on a CPU only float32, and bfloat16 where `cpu_bf16` (fp16 matmuls there
    are slow or missing).
    """
    reason = ""
    device = requested
    if requested == "auto":
        device = "cuda" if cuda else "mps" if mps else "cpu"
    elif requested.startswith("cuda") and not cuda:
        device, reason = "cpu", "CUDA was requested but torch sees no CUDA GPU; using the CPU."
    elif requested == "mps" and not mps:
        device, reason = "cpu", "MPS was requested but is not available; using the CPU."
    kind = device.split(":")[0]
    if kind == "cpu":
        if dtype == "bfloat16" and cpu_bf16 or dtype == "auto" and cpu_prefers == "bfloat16" and cpu_bf16:
            return Placement(device, "bfloat16", reason)
        if dtype not in ("auto", "float32"):
            why = "this CPU has no native bfloat16 (AVX512-BF16, AMX or ARM BF16)" if dtype == "bfloat16" else \
                "it is not supported well on CPU"
            reason = (reason + " " if reason else "") + f"{dtype} was asked for but {why}; using float32 instead."
        return Placement(device, "float32", reason)
    if dtype != "auto":
        if dtype == "bfloat16" and kind == "cuda" and not bf16:
            return Placement(device, "float16", "This GPU has no bfloat16 support; using float16.")
        return Placement(device, dtype, reason)
    if prefers == "bfloat16" and kind == "cuda" and bf16:
        return Placement(device, "bfloat16", reason)
    if prefers == "float32":
        return Placement(device, "float32", reason)
    return Placement(device, "float16", reason)


def detect(requested: str = "auto", dtype: str = "auto", prefers: str | None = None,
           cpu_prefers: str | None = None) -> Placement:
    """`choose` with availability read from torch and the CPU's flags (imports torch, except for a CPU placement
    that bf16 support cannot change: engines without torch, such as faster-whisper and Piper, then never import it;
    torch's import is most of their cold start)."""
    if probe_kind(requested) == "cpu" and not (dtype == "bfloat16" or dtype == "auto" and cpu_prefers == "bfloat16"):
        p = choose(requested, dtype, prefers=prefers, cpu_prefers=cpu_prefers)  # what torch would say here
    else:
        import torch

        cuda = torch.cuda.is_available()
        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        bf16 = cuda and torch.cuda.is_bf16_supported()
        p = choose(requested, dtype, cuda=cuda, mps=mps, bf16=bf16, prefers=prefers, cpu_bf16=cpu_bf16(),
                   cpu_prefers=cpu_prefers)
    if p.reason:
        log.warning(p.reason)
    return p


# CPU flags that decide fast paths, as Linux names them in /proc/cpuinfo (x86 "flags", ARM "Features").
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}
_SHOWN_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "bf16", "i8mm")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU's name and the flags that decide fast paths, from what the CPU reports (never from its vendor):
    {"name": "AMD EPYC ...", "flags": ["avx2", "avx512_bf16", ...], "bf16": True}. No torch import."""
    import platform

    if cpuinfo is None:
        cpuinfo = _proc_cpuinfo()
    name, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {"name": name or platform.processor() or platform.machine(),
            "flags": [f for f in _SHOWN_FLAGS if f in flags], "bf16": bool(_BF16_FLAGS & flags)}


@functools.lru_cache(maxsize=1)
def _proc_cpuinfo() -> str:
    """Read once per process: every model load and every Models-tab refresh asks (hundreds of KB on a big host)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_bf16() -> bool:
    """Whether bf16 matmuls and convolutions run natively here: the CPU reports AVX512-BF16, AMX-BF16 or ARM BF16,
    and torch's oneDNN says it can use them (imports torch)."""
    import torch

    if not cpu_info()["bf16"]:
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def probe_kind(requested: str = "auto") -> str:
    """The device kind to plan for, *without importing torch* (used at app start to pick default models).

    Asks the CUDA driver through ctypes; the real placement is still decided by `detect` when a model loads.
    """
    if requested != "auto":
        return requested.split(":")[0]
    from hub.zerogpu import on_zero_gpu

    if on_zero_gpu() or _cuda_driver_devices() > 0:  # ZeroGPU attaches the GPU only inside spaces.GPU calls
        return "cuda"
    import platform

    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def _cuda_driver_devices() -> int:
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def cpu_channels_last(device: str, *modules) -> bool:
    """On an x86 CPU with oneDNN, store the modules' convolution weights channels-last (as Ultralytics'
    AutoBackend does): measured on 2 vCPUs, YOLO11n 97 -> 60 ms, an SD UNet step 8.3 -> 6.8 s, a VAE decode
    22 -> 17 s. Elsewhere (GPUs, ARM) nothing changes. Returns whether it applied."""
    import platform

    import torch

    if device != "cpu" or platform.machine() not in ("x86_64", "AMD64") or not torch.backends.mkldnn.is_available():
        return False
    for m in modules:
        m.to(memory_format=torch.channels_last)
    return True
