"""What a demo's `ui(ctx)` and routes get. `ctx.call` and `ctx.stream` are the ONLY ways to a model.

Both take a work method's name and a typed request (plain data: what crosses to a Ray replica), check the model
against the allow-list, run the method in a worker under a lease on the loaded engine (hub.streams), recover from
out-of-memory (evict idle models and retry once, then the CPU; for a stream only before its first item) and show
the backend's fallback warning to the user. `ctx.handler(fn)` wraps an event function for the UI edge: UserError
-> gr.Error with the same sentence, anything else logged as a bug and answered with a sentence.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from contextvars import ContextVar
from typing import Callable

from hub.errors import UserError
from hub.links import Links
from hub.metrics import Timer
from hub.contract import Backend
from hub.options import DemoOptions
from hub.settings import Settings
from hub.streams import WorkStream
from hub.work import Stop
from hub.spec import DemoSpec, ModelChoice
from hub.weights import is_cached, is_local, public_id, unreachable_reason

log = logging.getLogger("demohub")


class DemoContext:
    """One demo's view of the hub. The backend itself stays private: handlers go through call/stream."""

    def __init__(self, manager: Backend, settings: Settings, spec: DemoSpec, options: DemoOptions | None = None,
                 metrics=None, links: Links | None = None):
        self._manager = manager
        self.settings = settings
        self.spec = spec
        self.options = options if options is not None else DemoOptions({})
        self.metrics = metrics  # hub.metrics.Metrics: every run and stream is counted
        self.links = links if links is not None else Links()  # the other tabs' parts (hub.links); none: a tab alone

    def after_build(self, fn) -> None:
        """Run `fn()` once every tab of the hub is built (hub.links): what depends on the tabs built after this one."""
        self.links.after_build(self.spec.name, fn)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def events(self) -> dict:
        """Keyword arguments for events that run the model: one shared concurrency limit per demo's model."""
        return {"concurrency_limit": self.concurrency, "concurrency_id": f"model-{self.spec.name}"}

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the hub (no share link, loopback host)."""
        return not self.settings.share and self.settings.host in ("127.0.0.1", "localhost", "::1")

    @property
    def any_model(self) -> bool:
        """Whether a request may name any HF repo id or local path: only when the operator opted in
        (`DEMOHUB_ALLOW_ANY_MODEL=1`) on a hub only this machine can reach. Otherwise a web page the operator visits
        could make a local hub download repos or probe its files (a cross-site request needs no login)."""
        return self.settings.allow_any_model and self.local_only

    def check_model(self, model: str | None) -> None:
        """Requests may pick only the listed models and the operator's choice (`DEMOHUB_<DEMO>_MODEL`); any other
        HF repo id or local path is an operator setting, except with `any_model`."""
        if model is not None and not isinstance(model, str):
            raise UserError("The model must be given by its name, one of: "
                            f"{', '.join(label for label, _ in self.model_choices())}.")
        if not model or self.any_model:
            return
        if model in self.listed_models() or model in self._aliases():
            return
        shown = ", ".join(label for label, _ in self.model_choices())
        raise UserError(f"{str(model)[:100]!r} is not one of this hub's {self.spec.title} models; pick a listed one "
                        f"({shown}); the operator can add a model with {self.spec.env_var}"
                        + (" or allow any with DEMOHUB_ALLOW_ANY_MODEL=1." if self.local_only else "."))

    def listed_models(self) -> list[str]:
        """Ids a visitor may pick: the models the picker lists (hidden test models only when the operator made one
        the default)."""
        return [model_id for _, model_id in self.model_choices()]

    def call(self, method: str, request, model: str | None = None, *, api: str | None = None, progress=None,
             stop: threading.Event | None = None):
        """The result of the engine's work method `method` on `request` (a typed request: plain data), under a lease
        of this demo's model, with the allow-list, OOM recovery and warnings. `api`: the name the request is counted
        under in /metrics (default: the gradio event's api_name). `progress`: the handler's gr.Progress (or any
        `progress(fraction, desc=text)`): the loading notice and the method's progress show there. `stop`: an Event
        the caller sets to stop the work (a Cancel button); a run stopped before its result raises `hub.streams.Stopped`."""
        items = self.stream(method, request, model, api=api, progress=progress, stop=stop)
        return items.result()

    def stream(self, method: str, request, model: str | None = None, *, api: str | None = None, progress=None,
               stop: threading.Event | None = None) -> WorkStream:
        """The items of the streaming work method `method` on `request`, run in a worker (hub.streams): the lease is
        held until the method returns; closing the stream (a client that goes away) sets the method's `stop`. Same
        checks, `progress` and `stop` as `call`; OOM recovery applies before the first item."""
        timer = Timer(self.metrics, self.spec.name, api)
        try:
            self.check_model(model)
            self._show_loading(progress, model)
        except UserError as e:
            timer.done(e)
            raise
        real = self._real_id(model) or None
        demo = self.spec.name
        backend = self._manager
        stop = Stop(stop, CALL_STOP.get())  # the caller's Cancel, and the cancelled UI event's
        return WorkStream(lambda job: backend.stream(demo, method, request, real, job), stop=stop,
                          on_progress=_progress_to(progress), on_warning=_warn, on_end=timer.done,
                          name=f"demohub-{demo}-{method}")

    def other(self, demo: str) -> "DemoContext":
        """Another registered demo's context on the same backend (its allow-list, its model picker, the same
        metrics): how a chain of demos (hub.chain) reaches their work methods. UserError when that demo is not on
        this hub (started with --demos without it)."""
        if demo == self.spec.name:
            return self
        others = self.__dict__.setdefault("_others", {})
        if demo not in others:
            from hub.options import parse
            from hub.registry import load_demos

            spec = self._manager.spec(demo)  # UserError when this hub does not run it
            (handle,) = load_demos((demo,))  # its operator options (DEMOHUB_<DEMO>_*), as its own tab reads them
            others[demo] = DemoContext(self._manager, self.settings, spec, parse(handle.demo, self.settings.env),
                                       metrics=self.metrics)
        return others[demo]

    @property
    def concurrency(self) -> int:
        """How many requests of this demo run at once (the backend's one answer: replicas on Ray)."""
        return self._manager.concurrency(self.spec.name)

    def _show_loading(self, progress, model: str | None) -> None:
        if progress is not None and (text := self.loading_text(model)):
            progress(0, desc=text)  # gradio 6.31 shows no description for progress(None)

    def loading_text(self, model: str | None = None) -> str | None:
        """"Loading X (size) for the first request…" while `model` is not loaded (None once it is, and None when it
        cannot be had: not here and no way to download it, which the request's error and the picker's notice say)."""
        if self.is_loaded(model):
            return None
        choice = self.choice(model)
        cached = choice.source == "random" or is_cached(self.spec, choice, self.settings)[0]
        if not cached and (self.settings.offline or choice.source == "path" or unreachable_reason()):
            return None
        size = _size(choice.bytes_at("float32" if self._kind() == "cpu" else "float16"))
        verb = "Loading" if cached else "Downloading and loading"
        return f"{verb} {choice.display}{f' ({size})' if size else ''}: the first request waits for it, later ones don't…"

    # ---- what a tab may ask about its models --------------------------------------------------------------------

    def choice(self, model: str | None = None) -> ModelChoice:
        """The ModelChoice a request for `model` would run (None: the configured default); loads nothing."""
        self.check_model(model)
        return self._manager.choice(self.spec.name, self._real_id(model) or None)

    def is_loaded(self, model: str | None = None) -> bool:
        return self._manager.is_loaded(self.spec.name, self._real_id(model) or None)

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, value) for the picker. The operator's local file or folder is listed under its readable name,
        never its path: visitors (and the API page) do not see the server's file system."""
        choices = [(m.display, public_id(m)) for m in self.spec.models if not m.hidden]
        current = self._manager.choice(self.spec.name)
        if public_id(current) not in [c[1] for c in choices]:
            choices.insert(0, (current.display, public_id(current)))
        return choices

    def default_model(self) -> str:
        return public_id(self._manager.choice(self.spec.name))

    def _aliases(self) -> dict[str, str]:
        """Readable name -> path, for the operator's local model and listed local files (a package's GGUF)."""
        local = [*self.spec.models, self._manager.choice(self.spec.name)]
        return {public_id(m): m.id for m in local if is_local(m)}

    def _real_id(self, model: str | None) -> str | None:
        return self._aliases().get(model, model) if model else model

    def _kind(self) -> str:
        return self._manager.default_device()

    def model_note(self, model: str | None = None) -> str:
        """Markdown said up front under the picker: is the model here, will it download, or can it not be had?"""
        try:
            choice = self.choice(model)
        except UserError as e:
            return f"⚠️ {e}"
        if choice.source == "random" or self.is_loaded(model):
            return ""
        from hub.models_tab import memory_note

        fits = memory_note(self._manager, choice, self._kind())  # fits / will not fit, from the manager's budget
        cached, _ = is_cached(self.spec, choice, self.settings)
        size = _size(choice.approx_bytes)
        if cached:
            return (f"{choice.display} is on this machine{f' ({size})' if size else ''}; it loads with the first "
                    f"request. {fits}").strip()
        why = "this hub is offline" if self.settings.offline else unreachable_reason()
        if why:
            target = "" if choice.source == "path" else f" --model {choice.id}"
            return (f"⚠️ **{choice.display} is not on this machine**, and {why}, so this tab cannot run it yet. "
                    f"The operator can download it with `demohub fetch {self.spec.name}{target}` where there is "
                    f"network; or pick another model. {fits}").strip()
        return (f"{choice.display} is not on this machine yet: the first request downloads it"
                f"{f' ({size})' if size else ''}. {fits}").strip()

    def model_picker(self, **kw):
        """(dropdown, notice): the tab's model picker and, under it, what `model_note` says about the pick (refreshed
        when the pick changes and on every page load)."""
        import gradio as gr

        from gradio.context import Context

        dropdown = self.model_dropdown(**kw)
        notice = gr.Markdown(elem_classes=["model-note"])
        # on every page load (a callable value would make it a public API endpoint) and when the pick changes
        Context.root_block.load(self.model_note, None, notice, show_progress="hidden", api_visibility="private",
                                queue=False)
        dropdown.change(self.model_note, dropdown, notice, show_progress="hidden", api_visibility="private",
                        queue=False)
        return dropdown, notice

    def events_on(self, status) -> dict:
        """`events` plus progress (and the error pill) shown only on `status`, so an error or a run in progress
        leaves every other output as it was."""
        return {**self.events, "show_progress_on": [status]}

    def model_dropdown(self, **kw):
        """The tab's model picker. Typed values pass through to `check_model` (the one allow-list): with
        DEMOHUB_ALLOW_ANY_MODEL on a local hub the operator may type any HF repo id or path; otherwise a sentence
        lists the models."""
        import gradio as gr

        kw.setdefault("allow_custom_value", True)
        return gr.Dropdown(self.model_choices(), value=self.default_model(), label="Model", **kw)

    def authorized(self, request) -> bool:
        """For a demo's extra HTTP routes: hub login, the same as the UI's (hub/auth.py)."""
        from hub.auth import authorized

        return authorized(self.settings, request, getattr(self, "app", None))

    # ---- the UI edge --------------------------------------------------------------------------------------------

    def handler(self, fn):
        """Wrap an event function for the UI edge. Works for generators too.

        The function runs in a worker thread that gradio's Cancel (a Stop button's `cancels=`, a closed page) does
        not wait for: the event ends at once, and the call's stop Event, linked into every `ctx.call` / `ctx.stream`
        the function makes, stops the work at its next step (a sync handler blocked waiting for a slow item could not
        be cancelled before). UserError -> gr.Error with its sentence. Any other exception is a bug: it is logged
        with its traceback (never swallowed) and the user gets a sentence saying so; the server keeps serving. On a
        ZeroGPU Space the function runs inside `spaces.GPU`.
        """
        from hub.zerogpu import gpu

        inner = gpu(fn, self.spec.zero_gpu_seconds)
        title = self.spec.title
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            async def gen_wrapper(*args, **kwargs):
                import anyio.to_thread

                stop = threading.Event()
                try:
                    items = await anyio.to_thread.run_sync(_in_call, stop, lambda: inner(*args, **kwargs))
                    while True:
                        item = await anyio.to_thread.run_sync(_in_call, stop, lambda: next(items, _END),
                                                              abandon_on_cancel=True)
                        if item is _END:
                            return
                        yield item
                except Exception as e:
                    raise to_gr_error(e, title) from None
                finally:
                    stop.set()  # cancelled (or done): work this call started stops at its next step
            return gen_wrapper

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            import anyio.to_thread

            stop = threading.Event()
            try:
                return await anyio.to_thread.run_sync(_in_call, stop, lambda: inner(*args, **kwargs),
                                                      abandon_on_cancel=True)
            except Exception as e:
                raise to_gr_error(e, title) from None
            finally:
                stop.set()
        return wrapper


_END = object()
# The stop Event of the UI event being run (set when gradio cancels it): ctx.call / ctx.stream link it.
CALL_STOP: ContextVar[threading.Event | None] = ContextVar("demohub_call_stop", default=None)


def _in_call(stop: threading.Event, fn):
    """`fn()` in a worker thread, with the event's stop visible to the ctx.call / ctx.stream it makes."""
    CALL_STOP.set(stop)  # this thread's copy of the event's context only
    return fn()


def _size(nbytes: int) -> str:
    if not nbytes:
        return ""
    if nbytes >= 1e9:
        return f"{nbytes / 1e9:.1f} GB"
    return f"{nbytes / 1e6:.0f} MB" if nbytes >= 1e6 else f"{max(1, round(nbytes / 1e3))} kB"


def _progress_to(progress) -> Callable | None:
    """A method's `progress(fraction, text)` shown on the handler's gr.Progress."""
    if progress is None:
        return None

    def show(fraction, text=""):
        try:
            progress(0 if fraction is None else max(0.0, min(1.0, float(fraction))), desc=text or None)
        except Exception as e:  # a progress bar that cannot be drawn never fails the request
            log.debug("progress not shown: %s", e)
    return show


def to_gr_error(e: Exception, title: str):
    import gradio as gr

    if isinstance(e, gr.Error):
        return e
    if isinstance(e, UserError):
        return gr.Error(str(e), print_exception=False)
    log.error("Unexpected error in the %s tab", title, exc_info=e)
    return gr.Error(f"{title} failed unexpectedly. This is a bug in demohub: the details are in the server log. "
                    "Other requests are not affected; try again or change the input.", print_exception=False)


def _warn(text: str) -> None:
    import gradio as gr

    log.warning(text)
    gr.Warning(text)  # outside a gradio event (an HTTP route) this is a Python warning beside the log line
