"""The demo contract: what a demo package declares (`Demo`), its operator options and its example requests.

A demo is a package `demos/<name>/` whose `__init__.py` defines `DEMO = Demo(...)` and imports neither torch nor
gradio. The heavy parts are named by reference ("demos.<name>.engine:load") and imported only when first used:

    DEMO = Demo(
        spec=DemoSpec(...),                       # models, defaults, api names (hub.spec)
        load="demos.echo.engine:load",            # load(weights, device, dtype[, options=][, settings=]) -> engine
        ui="demos.echo.ui:build",                 # build(ctx): components + events inside the current gr.Blocks
        options=(Option("max_items", 100, "Most items in one request.", lo=1, hi=10_000),),
        examples=(Example("echo", {"model_id": "tiny-random", "text": "hi", "times": 2}, bad={"times": 0}),),
    )

`examples` hold one valid request per API name, runnable with the tiny random model; the contract test runs each
through gradio_client, sends its `bad` variant and expects a sentence, and sends an unlisted model to a public hub.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from hub.spec import DemoSpec


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
    model_arg: str | None = "model_id"

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
        """load(weights, device, dtype[, settings=]) that imports the engine on first call and passes `options`."""
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
