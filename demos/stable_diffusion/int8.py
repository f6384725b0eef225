"""The CPU int8 path (DEMOHUB_STABLE_DIFFUSION_INT8=1, needs `demohub[openvino]`): the UNet run by OpenVINO after
NNCF's post-training int8 quantization (weights and activations), the path FastSD CPU and optimum-intel take.

Made once per checkpoint, at its first load with the option on, and kept in the cache: OpenVINO's PyTorch frontend
converts the loaded UNet (any batch and size; inputs and output float32, the UNet's own dtype inside), NNCF
calibrates it on the UNet inputs of the model's own generations of `PROMPTS` (its default size, guidance and up to
4 of its steps; at most `SAMPLES` UNet calls) and quantizes it (SmoothQuant, as for transformers), and the int8
model is saved. Later loads compile the saved model. On SD-Turbo's UNet (one 512 px step, 2-vCPU AMD EPYC) it ran
3.3x faster than torch fp32, the path of CPUs without native bf16 (README).

It serves the plain UNet calls: no ControlNet residuals, no fused LoRA (the IR holds the checkpoint's own weights),
no extra conditioning, latent sides that are multiples of the UNet's upsampling factor (8: image sides multiples of
64, which the traced graph assumes). Any other call runs on torch's UNet, which stays loaded; the record's `unet`
says which ran. Imports openvino and nncf only when the option is on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

from hub.atomic import replacing_folder

log = logging.getLogger("demohub")

PROMPTS = ("a photo of a red fox in the snow, detailed fur", "a city street at night in the rain, neon signs",
           "an oil painting of a sailing ship in a storm", "a bowl of ramen on a wooden table, studio light",
           "portrait of an old man with a grey beard", "a watercolor landscape of mountains and a lake",
           "a futuristic robot in a workshop, concept art", "a cozy living room with a fireplace, warm light")
SAMPLES = 8  # UNet calls NNCF calibrates on (193 s of quantizing for SD-Turbo's UNet on 2 vCPUs)
TORCH, OPENVINO = "torch", "openvino int8"


def available() -> bool:
    from hub.openvino import available as ov_available

    return ov_available("nncf")


def checkpoint_key(weights) -> str:
    """What identifies the UNet's weights: the random architecture (seeded), or the checkpoint's UNet files by name,
    size and time (a pinned download's files are its revision's; a single-file checkpoint is its one file)."""
    choice = weights.choice
    if weights.is_random:
        return f"random-{choice.options.get('config') or choice.id}"
    path = Path(weights.path)
    files = sorted(p for p in (path / "unet").glob("*") if p.is_file()) if path.is_dir() else [path]
    parts = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class Int8UNet:
    """The compiled int8 UNet, installed as the UNet's forward for the calls it can serve."""

    def __init__(self, compiled, version: str, fused_loras):
        self.compiled, self.version = compiled, version
        self.fused_loras = fused_loras  # () -> the LoRAs fused into the UNet now (their weights are not the IR's)
        self.used: set[str] = set()  # which ran since `reset` (one request at a time: the engine's lock)
        self._lock = threading.Lock()

    def serves(self, unet, sample, args, kwargs) -> bool:
        factor = 2 ** unet.num_upsamplers  # the latent sides the UNet halves and doubles back must divide
        plain = not args and all(v is None or k == "return_dict" for k, v in kwargs.items())
        return (plain and sample.dim() == 4 and sample.shape[-1] % factor == 0 and sample.shape[-2] % factor == 0
                and not self.fused_loras())

    def __call__(self, sample, timestep, encoder_hidden_states):
        import numpy as np
        import torch

        t = _timesteps(timestep, sample.shape[0])
        feed = [np.ascontiguousarray(x.detach().float().cpu().numpy()) for x in (sample, t, encoder_hidden_states)]
        with self._lock:  # one inference request of a compiled model at a time
            out = self.compiled(feed)[0]
        return torch.from_numpy(np.asarray(out)).to(sample.dtype)

    def install(self, unet) -> None:
        """Route the UNet's plain calls here; the others (and `unet.forward` for LoRA loading) stay torch's."""
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        torch_forward = unet.forward

        def forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
            if not self.serves(unet, sample, args, kwargs):
                self.used.add(TORCH)
                return torch_forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
            self.used.add(OPENVINO)
            out = self(sample, timestep, encoder_hidden_states)
            return (out,) if kwargs.get("return_dict") is False else UNet2DConditionOutput(sample=out)

        unet.forward = forward

    def reset(self) -> None:
        """A new request: `ran` says what its UNet calls used."""
        self.used.clear()

    def ran(self) -> str:
        """What ran since `reset`: "openvino int8", "torch", both ("openvino int8 + torch"), or "none" (a request
        stopped before its first step)."""
        return " + ".join(sorted(self.used, reverse=True)) or "none"


def _timesteps(timestep, batch: int):
    """The step's timestep as the int8 graph takes it: float32, one per sample (diffusers passes a 0-d tensor)."""
    import torch

    return torch.as_tensor(timestep).float().reshape(-1).expand(batch)


def load(engine, weights, defaults: dict):
    """The engine's int8 UNet, made and saved first if this checkpoint has none in the cache; installed."""
    from hub import loadtimes
    from hub.openvino import telemetry_off

    telemetry_off()
    import openvino as ov

    version = ov.__version__.split("-")[0]
    dtype = str(engine.pipe.unet.dtype).removeprefix("torch.")  # the unquantized parts keep the UNet's dtype
    folder = (Path(weights.cache_dir) / "native" / "stable_diffusion" / "openvino-int8" / checkpoint_key(weights)
              / f"openvino-{version}-{dtype}")
    xml = folder / "unet.xml"
    if not xml.is_file():
        with loadtimes.stage("convert"):
            make(engine.pipe, folder, defaults)
    core = ov.Core()
    core.set_property({"CACHE_DIR": str(folder.with_name(folder.name + "-compiled"))})
    with loadtimes.stage("build"):
        compiled = core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                        "INFERENCE_PRECISION_HINT": "f32"})
    int8 = Int8UNet(compiled, version, lambda: engine.loras.fused)
    int8.install(engine.pipe.unet)
    # the compiled model's weights, beside torch's UNet: counted by the model manager
    engine.extra_bytes = sum(p.stat().st_size for p in folder.glob("unet.bin"))
    return int8


def make(pipe, folder: Path, defaults: dict) -> None:
    """Convert, calibrate, quantize and save the UNet into `folder` (written beside it, then renamed)."""
    import nncf
    import openvino as ov
    import torch

    start = time.perf_counter()
    samples = calibration_inputs(pipe, defaults)
    log.info("Stable Diffusion: making the int8 UNet (once per checkpoint; %d calibration calls)...", len(samples))
    unet = pipe.unet

    class Plain(torch.nn.Module):  # float32 in and out, the UNet's dtype inside
        def __init__(self):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):
            dtype = self.unet.dtype
            return self.unet(sample.to(dtype), timestep, encoder_hidden_states.to(dtype), return_dict=False)[0].float()

    example = samples[0]
    with torch.no_grad():
        model = ov.convert_model(Plain(), example_input=example,
                                 input=[(-1, example[0].shape[1], -1, -1), (-1,), (-1, -1, example[2].shape[-1])])
    data = nncf.Dataset(samples, lambda s: [x.numpy() for x in s])
    quantized = nncf.quantize(model, data, subset_size=len(samples), model_type=nncf.ModelType.TRANSFORMER)
    with replacing_folder(folder) as tmp:
        ov.save_model(quantized, str(tmp / "unet.xml"), compress_to_fp16=False)
    log.info("Stable Diffusion: int8 UNet made in %.0f s.", time.perf_counter() - start)


def calibration_inputs(pipe, defaults: dict) -> list[tuple]:
    """(sample, timestep (B,), encoder_hidden_states) float32 of the UNet's calls while the pipeline draws
    `PROMPTS` at the model's default size and guidance and up to 4 of its default steps: at most `SAMPLES`."""
    import torch

    captured: list[tuple] = []
    unet = pipe.unet
    torch_forward = unet.forward

    def capture(sample, timestep, encoder_hidden_states, *args, **kwargs):
        if len(captured) < SAMPLES:
            t = _timesteps(timestep, sample.shape[0]).clone()
            captured.append((sample.detach().float().clone(), t, encoder_hidden_states.detach().float().clone()))
        return torch_forward(sample, timestep, encoder_hidden_states, *args, **kwargs)

    size, steps = int(defaults["size"]), min(int(defaults["steps"]), 4)  # the engine's defaults have both
    unet.forward = capture
    try:
        with torch.inference_mode():
            for i, prompt in enumerate(PROMPTS):
                if len(captured) >= SAMPLES:
                    break
                pipe(prompt, num_inference_steps=steps, guidance_scale=float(defaults.get("guidance", 0.0)),
                     width=size, height=size, output_type="latent", generator=torch.Generator().manual_seed(i))
    finally:
        del unet.forward  # the class's own forward again
    return captured
