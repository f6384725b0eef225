"""What a demo's `ui(ctx)` gets: the manager, the settings, its spec, and helpers for the UI edge.

- `ctx.handler(fn)`: wrap an event function: `UserError` -> `gr.Error` with the same sentence, the model
  manager's CPU-fallback warning -> `gr.Warning`, and on a ZeroGPU Space the GPU work runs in `spaces.GPU`.
- `ctx.run(fn, model)`: call `fn(lease)` through the manager (lease held, OOM recovery) and surface warnings.
- `ctx.model_dropdown()`: the tab's model picker; `ctx.events`: queue settings for events that use the model.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass

from hub.errors import UserError
from hub.models import Lease, ModelManager
from hub.settings import Settings
from hub.spec import DemoSpec

log = logging.getLogger("demohub")


@dataclass
class DemoContext:
    manager: ModelManager
    settings: Settings
    spec: DemoSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def events(self) -> dict:
        """Keyword arguments for events that run the model: one shared concurrency limit per demo's model."""
        return {"concurrency_limit": self.spec.gpu_concurrency, "concurrency_id": f"model-{self.spec.name}"}

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the hub (no share link, loopback host): the visitor is the operator."""
        return not self.settings.share and self.settings.host in ("127.0.0.1", "localhost", "::1")

    def check_model(self, model: str | None) -> None:
        """Visitors may pick only the listed models and the operator's choice. Any other HF repo id or local path
        would let a stranger download arbitrary repos or read files, so it is an operator setting
        (`DEMOHUB_<DEMO>_MODEL`), except on a hub that only this machine can reach."""
        if not model or self.local_only:
            return
        if model in {m.id for m in self.spec.models} | {self.default_model()}:
            return
        raise UserError(f"{str(model)[:100]!r} is not one of this hub's {self.spec.title} models; pick a listed one "
                        f"(the operator can add a model with {self.spec.env_var}).")

    def run(self, fn, model: str | None = None):
        """`fn(lease)` under a lease of this demo's model (see ModelManager.run); shows fallback warnings."""
        self.check_model(model)
        def call(lease: Lease):
            if lease.warning:
                _warn(lease.warning)
            return fn(lease)
        return self.manager.run(self.spec.name, call, model)

    def model_choices(self) -> list[tuple[str, str]]:
        choices = [(m.display, m.id) for m in self.spec.models if not m.options.get("hidden")]
        current = self.manager.choice(self.spec.name)
        if current.id not in [c[1] for c in choices]:
            choices.insert(0, (current.display, current.id))
        return choices

    def default_model(self) -> str:
        return self.manager.choice(self.spec.name).id

    def model_dropdown(self, **kw):
        import gradio as gr

        return gr.Dropdown(self.model_choices(), value=self.default_model(), label="Model", **kw)

    def handler(self, fn):
        """Wrap an event function for the UI edge. Works for generators too.

        UserError -> gr.Error with its sentence. Any other exception is a bug: it is logged with its traceback
        (never swallowed) and the user gets a sentence saying so; the server keeps serving. On a ZeroGPU Space
        the function runs inside `spaces.GPU`.
        """
        from hub.zerogpu import gpu

        inner = gpu(fn, self.spec.zero_gpu_seconds)
        title = self.spec.title
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                try:
                    yield from inner(*args, **kwargs)
                except Exception as e:
                    raise _to_gr_error(e, title) from None
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return inner(*args, **kwargs)
            except Exception as e:
                raise _to_gr_error(e, title) from None
        return wrapper


def _to_gr_error(e: Exception, title: str):
    import gradio as gr

    if isinstance(e, gr.Error):
        return e
    if isinstance(e, UserError):
        return gr.Error(str(e), print_exception=False)
    log.error("Unexpected error in the %s tab", title, exc_info=e)
    return gr.Error(f"{title} failed unexpectedly ({type(e).__name__}: {str(e)[:300]}). This is a bug in demohub: "
                    "the details are in the server log. Other requests are not affected; try again or change the input.",
                    print_exception=False)


def _warn(text: str) -> None:
    import gradio as gr

    log.warning(text)
    gr.Warning(text)
