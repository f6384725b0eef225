"""The demo contract: what a demo package declares (`Demo`), its operator options and its example requests.

A demo is a package `demos/<name>/` whose `__init__.py` defines `DEMO = Demo(...)` and imports neither torch nor
gradio. The heavy parts are named by reference ("demos.<name>.engine:load") and imported only when first used:

    DEMO = Demo(
        spec=DemoSpec(...),                       # models, defaults, api names (hub.spec)
        load="demos.echo.engine:load",            # load(weights, device, dtype[, options=][, settings=]) -> Engine
        work="demos.echo.engine:WORK",            # the named, typed work methods (hub.work.Work)
        ui="demos.echo.ui:build",                 # build(ctx): components + events inside the current gr.Blocks
        options=(Option("max_items", 100, "Most items in one request.", lo=1, hi=10_000),),
        examples=(Example("echo", {"model": "tiny-random", "text": "hi", "times": 2}, bad={"times": 0}),),
    )

`examples` hold one valid request per API name, runnable with the tiny random model; the contract test runs each
through gradio_client on a backend that sends every request and result through pickle (as a Ray replica would), sends
its `bad` variant and expects a sentence, and sends an unlisted model to a public hub.

The two protocols below are everything the hub reads of an engine and everything the front end asks of a backend.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from hub.spec import DemoSpec, ModelChoice


@dataclass(frozen=True)
class Option:
    """An operator setting of one demo, read from `DEMOHUB_<DEMO>_<KEY>` at start and checked there.

    The type is the default's type (bool, int, float or str); `lo`/`hi` bound numbers, `choices` bounds strings.
    """

    key: str
    default: bool | int | float | str
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None

    def env_var(self, demo: str) -> str:
        return f"DEMOHUB_{demo.upper()}_{self.key.upper()}"


@dataclass(frozen=True)
class Sample:
    """A placeholder for a media file in an example: the tests (and the load test) put a small real file there.

    kind: "image" (a PNG photo-like picture), "audio" (a few seconds of WAV) or "video" (a short MP4).
    """

    kind: str


@dataclass(frozen=True)
class Example:
    """One valid request of one API name: the API's own parameter names (the handler's, as gradio_client shows them)
    with their values, in positional order.

    model_arg: the parameter that names the model (None: the API takes no model).
    bad: parameter overrides that make the request invalid; the API must answer them with a sentence.
    """

    api_name: str
    args: dict
    bad: dict
    model_arg: str | None = "model"

    def values(self, **overrides) -> tuple:
        """The positional arguments, with `overrides` (by parameter name) applied."""
        unknown = set(overrides) - set(self.args)
        if unknown:
            raise KeyError(f"{self.api_name}: no parameter {sorted(unknown)}; it has {list(self.args)}")
        return tuple({**self.args, **overrides}.values())


def resolve(ref: str | Callable) -> Callable:
    """'package.module:attr' -> the attribute (imports the module); a callable is returned as it is."""
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Demo:
    """Everything the hub knows about a demo. See the module docstring."""

    spec: DemoSpec
    load: str | Callable
    ui: str | Callable
    work: str | Any = None  # "package.module:WORK": the engine's hub.work.Work table (imported when first used)
    examples: tuple[Example, ...] = ()
    options: tuple[Option, ...] = ()
    fetch: str | Callable | None = None  # fetch(weights): pre-download a "native" model (`demohub fetch`)
    routes: str | Callable | None = None  # routes(ctx) -> fastapi.APIRouter of extra HTTP routes
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        keys = [o.key for o in self.options]
        if len(set(keys)) != len(keys) or "model" in keys:
            raise ValueError(f"{self.spec.name}: option keys must be unique and not 'model': {keys}")
        for ex in self.examples:
            if ex.api_name not in self.spec.api_names:
                raise ValueError(f"{self.spec.name}: example for {ex.api_name!r}, which is not in api_names")
            if ex.model_arg is not None and ex.model_arg not in ex.args:
                raise ValueError(f"{self.spec.name}: example {ex.api_name!r} names model_arg {ex.model_arg!r}, "
                                 f"which is not one of its args")

    @property
    def name(self) -> str:
        return self.spec.name

    def loader(self, options: Any = None) -> Callable:
        """load(weights, device, dtype, settings=None) that imports the engine on first call and passes `options`
        (and `settings`) where the demo's load takes them: the one place the hub adapts to a load's signature."""
        ref = self.load

        def load(weights, device: str, dtype: str, settings=None):
            fn = resolve(ref)
            params = inspect.signature(fn).parameters
            kw = {}
            if "options" in params:
                kw["options"] = options
            if "settings" in params:
                kw["settings"] = settings
            return fn(weights, device, dtype, **kw)

        return load

    def work_table(self):
        """The demo's hub.work.Work (imports the engine module)."""
        if self.work is None:
            raise LookupError(f"{self.spec.name} declares no work methods")
        return resolve(self.work) if isinstance(self.work, str) else self.work


# ---- the protocols ---------------------------------------------------------------------------------------------


@runtime_checkable
class Engine(Protocol):
    """What the hub reads of a loaded engine (a demo's `load` returns one; `EngineBase` gives the defaults).

    weights_format: what ran, for the Models tab and records ("int8 (CTranslate2 4.8.5)"); "" = the placement dtype.
    nbytes: bytes it holds when its torch modules cannot be found on it (CTranslate2, OpenVINO); None = count them.
    extra_bytes: memory held outside its weights (CUDA graph pools), added to the count.
    close(): free what it holds (called when the manager drops it).
    """

    weights_format: str
    nbytes: int | None
    extra_bytes: int

    def close(self) -> None: ...


class EngineBase:
    """Defaults of the Engine protocol: subclass it and set what differs."""

    weights_format: str = ""
    nbytes: int | None = None
    extra_bytes: int = 0

    def close(self) -> None:
        """Nothing to free beyond what garbage collection frees."""


@runtime_checkable
class Backend(Protocol):
    """What the front end (tabs, /v1 routes, the Models tab, /metrics) asks of where engines run: the in-process
    `hub.models.ModelManager` or the Ray Serve `hub.cluster.backend.RayManager`.

    Work crosses as data: `call`/`stream` take (demo, method name, request, model id) and a `hub.work.Job` whose
    `stop` the caller sets to stop the work and whose `progress`/`warn` report back. `concurrency(demo)` is the one
    source of how many requests of a demo may run at once (gradio events, /v1 admission, tabs). `on_event(kind,
    **labels)` is called for ("evict", reason=...) and ("oom_fallback",), whichever process they happen in.
    """

    on_event: Callable[..., None] | None

    def call(self, demo: str, method: str, request, model: str | None = None, job=None) -> Any: ...

    def stream(self, demo: str, method: str, request, model: str | None = None, job=None) -> Iterator: ...

    def spec(self, demo: str) -> DemoSpec: ...

    def choice(self, demo: str, model: str | None = None) -> ModelChoice: ...

    def default_device(self) -> str: ...

    def is_loaded(self, demo: str, model: str | None = None) -> bool: ...

    def concurrency(self, demo: str) -> int: ...

    def status(self) -> list[dict]: ...

    def replicas(self) -> dict | None: ...

    def unload(self, demo: str, model: str | None = None) -> str: ...

    def unload_all(self) -> str: ...

    def placement(self, prefers: str | None = None, cpu_prefers: str | None = None): ...

    def resident_bytes(self, kind: str) -> int: ...
