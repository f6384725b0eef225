"""The data a demo declares about itself: `DemoSpec` and its `ModelChoice`s (see DESIGN.md, the demo contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("hf", "native", "path", "random")
_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class ModelChoice:
    """One model a demo can run.

    id: what users pick and what `DEMOHUB_<DEMO>_MODEL` may name (an HF repo id, a library model name, ...).
    source: "hf" (huggingface_hub snapshot), "native" (the library's own downloader, pointed at the cache),
        "path" (a local file or folder) or "random" (architecture-true random init, no download).
    revision: pinned HF commit for "hf"; sha256: pinned hash of the single file for "native"/"path" checkpoints.
    files: for "hf", the allow-patterns to download (None = the whole repo); for "native", the file names the
        library writes into the cache, used to tell whether the model is cached.
    approx_bytes: memory the loaded model needs, used to make room before loading.
    size_dtype: the dtype `approx_bytes` was measured at ("float16", "float32", ...), so the budget scales it to the
        dtype the model will run in (fp16 weights loaded as fp32 on a CPU take twice the room); None when the size
        does not depend on it (a quantized file, an int8 CTranslate2 model).
    hidden: a test model (tiny random weights): not in the picker, refused to visitors unless the operator chose it.
    dtype / cpu_dtype: the dtype the model prefers on a GPU / a CPU (None: the hub's choice; hub.device).
    local: a random stand-in for the operator's local model (named by its readable name, never its path).
    options: demo-specific settings (a config name, an architecture, ...), read only by that demo's code; the keys
        above are fields, not options, and are refused here.
    """

    id: str
    source: str
    label: str = ""
    revision: str | None = None
    sha256: str | None = None
    files: tuple[str, ...] | None = None
    approx_bytes: int = 0
    license: str = ""
    size_dtype: str | None = None
    hidden: bool = False
    dtype: str | None = None
    cpu_dtype: str | None = None
    local: bool = False
    options: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self):
        typed = sorted(set(self.options) & {"hidden", "dtype", "cpu_dtype", "local"})
        if typed:
            raise ValueError(f"ModelChoice {self.id!r}: {typed} are fields of ModelChoice, not options")
        if self.source not in SOURCES:
            raise ValueError(f"ModelChoice {self.id!r}: source must be one of {SOURCES}, not {self.source!r}")

    @property
    def display(self) -> str:
        return self.label or self.id

    def bytes_at(self, dtype: str) -> int:
        """`approx_bytes` at `dtype` (see size_dtype)."""
        if self.size_dtype is None or self.size_dtype == dtype:
            return self.approx_bytes
        return self.approx_bytes * _ITEMSIZE.get(dtype, 4) // _ITEMSIZE.get(self.size_dtype, 4)


@dataclass(frozen=True)
class DemoSpec:
    """What the hub needs to know about a demo, without importing its libraries.

    name: short key ("whisper_asr"), also the env prefix `DEMOHUB_<NAME>_MODEL` (upper-cased).
    default_model: device kind ("cuda", "mps", "cpu") -> model id; "cpu" is the fallback for unknown kinds.
    api_names: the Gradio api_names the tab serves (without the leading slash).
    gpu_concurrency: how many requests of this demo may run on the GPU at once.
    components: pinned weights used with any of its models (Stable Diffusion's tiny decoder): never offered as a
    model, fetched by `demohub fetch <demo>` with the models.
    """

    name: str
    title: str
    description: str
    models: tuple[ModelChoice, ...]
    default_model: dict
    api_names: tuple[str, ...]
    gpu_concurrency: int = 1
    zero_gpu_seconds: int = 60
    gpu_share: float = 0.1  # on the Ray backend, the GPU fraction a replica takes by default (`num_gpus = auto`)
    components: tuple[ModelChoice, ...] = ()  # weights the demo uses besides a model's own (fetched with them)

    def __post_init__(self):
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: duplicate model ids in {ids}")
        for kind, model_id in self.default_model.items():
            if model_id not in ids:
                raise ValueError(f"{self.name}: default model {model_id!r} for {kind} is not one of {ids}")
        if "cpu" not in self.default_model:
            raise ValueError(f"{self.name}: default_model needs a 'cpu' entry")

    @property
    def env_var(self) -> str:
        return f"DEMOHUB_{self.name.upper()}_MODEL"

    def choice(self, model_id: str) -> ModelChoice | None:
        return next((m for m in self.models if m.id == model_id), None)

    def default_for(self, device: str) -> ModelChoice:
        kind = device.split(":")[0]
        return self.choice(self.default_model.get(kind, self.default_model["cpu"]))
