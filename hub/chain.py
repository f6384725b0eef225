"""Chains: several demos' typed work methods run as one request, under the one memory budget, with one record.

A chain's tab (demos/edit_object, demos/speech_notes) owns no model; it runs other demos' work methods through their
contexts (`ctx.other(name)`), so each step keeps that demo's allow-list, lease, OOM recovery and metrics:

    chain = Chain(ctx, progress=progress)
    found = chain.call("Find objects", "yolo_detect", "detect", DetectRequest(...), yolo_model)
    masks = chain.call("Make masks", "sam_segment", "segment", SegmentRequest(...), sam_model)
    chain.record()   # every step's demo, model, revision, device, dtype, parameters, seed and time

Before a step whose model is not loaded and does not fit beside the models the chain used before it, the chain
releases those (oldest first) and says so ("Releasing YOLO11n to make room for SAM ViT-B…"), so a three-model chain
runs on a machine that holds one model at a time. One stop Event covers the chain: it is handed to every step's
call (the running step stops at its next check) and read between steps. A step's bad input is refused with one
sentence that names the step; what earlier steps returned stays with the caller.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from hub.errors import UserError
from hub.streams import Stopped


@dataclass
class StepRun:
    """One finished step: what ran and how long it took (the record's entry)."""

    step: str
    demo: str
    method: str
    seconds: float
    record: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"step": self.step, "demo": self.demo, "method": self.method, "seconds": round(self.seconds, 3),
                **self.record}


class Chain:
    """One chained request (see the module docstring). `progress`: a gr.Progress-like `progress(fraction, desc=)`
    that shows each status line; `stop`: the chain's Cancel (one Event for every step)."""

    def __init__(self, ctx, *, progress=None, stop: threading.Event | None = None):
        self.ctx = ctx
        self.progress = progress
        from hub.context import CALL_STOP
        from hub.work import Stop

        self.stop = Stop(stop, CALL_STOP.get())  # the caller's Cancel, and the cancelled UI event's
        self.log: list[str] = []  # the status lines, in order (the tab shows them under its result)
        self.steps: list[StepRun] = []
        self._used: list[tuple[str, str]] = []  # (demo, model id) of the steps so far, oldest first
        self._started = time.perf_counter()

    # ---- running steps --------------------------------------------------------------------------------------------

    def call(self, step: str, demo: str, method: str, request, model: str | None = None, *, record=None):
        """The result of `demo`'s work method `method` on `request`, as the chain's step `step`. `record(result)`:
        the step's record when the result keeps it elsewhere than `result.record`."""
        other = self._before(step, demo, model)
        t0 = time.perf_counter()
        with self._named(step):
            result = other.call(method, request, model, stop=self.stop)
        self._after(step, demo, method, other, model, t0, record(result) if record else getattr(result, "record", {}))
        return result

    def stream(self, step: str, demo: str, method: str, request, model: str | None = None, *, last=None):
        """The items of `demo`'s streaming method as the chain's step `step` (a generator): the item `last(item)`
        picks out is the step's result, whose `.record` goes into the chain's record."""
        other = self._before(step, demo, model)
        t0 = time.perf_counter()
        items = other.stream(method, request, model, stop=self.stop)
        final = None
        try:
            with self._named(step):
                for item in items:
                    if last is not None and last(item):
                        final = item
                    yield item
        finally:
            items.close()
        if final is None:  # the method stopped before its result: a Cancel
            raise Stopped(f"{step} was stopped before it finished; the earlier steps' results stand.")
        self._after(step, demo, method, other, model, t0, getattr(final, "record", {}) or {})

    def say(self, text: str, fraction: float | None = None) -> None:
        """Add a status line (and show it on the progress bar)."""
        self.log.append(text)
        if self.progress is not None:
            try:
                self.progress(0 if fraction is None else fraction, desc=text)
            except Exception:  # a progress bar that cannot be drawn never fails the chain
                pass

    def cancel(self) -> None:
        self.stop.set()

    def record(self, **extra) -> dict:
        """The one provenance record of the chain's result: every step in order, the total time, `extra`."""
        return {"chain": self.ctx.spec.name, **extra, "steps": [s.as_json() for s in self.steps],
                "seconds": round(time.perf_counter() - self._started, 3)}

    # ---- internals ------------------------------------------------------------------------------------------------

    def _before(self, step: str, demo: str, model: str | None):
        if self.stop.is_set():
            raise Stopped(f"Cancelled before {step}; the earlier steps' results stand.")
        with self._named(step):
            other = self.ctx.other(demo)
            choice = other.choice(model)  # the allow-list, with its sentence
        self._make_room(other, model, choice)
        self.say(f"{step}: {choice.display}…")
        return other

    def _after(self, step, demo, method, other, model, t0, record) -> None:
        seconds = time.perf_counter() - t0
        self.steps.append(StepRun(step, demo, method, seconds, dict(record or {})))
        key = (demo, other.choice(model).id)
        if key in self._used:
            self._used.remove(key)
        self._used.append(key)
        self.say(f"{step}: done in {seconds:.2f} s.")

    def _make_room(self, other, model: str | None, choice) -> None:
        """Release the chain's earlier models, oldest first, while `choice` would not fit beside them."""
        backend = self.ctx._manager  # the chain is the hub's: it plans with the backend the contexts share
        budget_of = getattr(backend, "_budget", None)
        if budget_of is None or other.is_loaded(model):
            return
        kind = backend.default_device()
        own = choice.cpu_dtype if kind == "cpu" else choice.dtype
        need = choice.bytes_at(own or ("float32" if kind == "cpu" else "float16"))
        budget = budget_of(kind)
        if budget is None:
            return
        for demo, model_id in list(self._used):
            if backend.resident_bytes(kind) + need <= budget:
                return
            if (demo, model_id) == (other.name, choice.id) or not backend.is_loaded(demo, model_id):
                continue
            prev = backend.choice(demo, model_id)
            self.say(f"Releasing {prev.display} to make room for {choice.display}…")
            try:
                backend.unload(demo, model_id)
            except UserError:  # busy with another request: the manager makes room when it is done
                self.say(f"{prev.display} is busy with another request; it is released when that ends.")

    class _named:
        """A step's user errors get the step's name in front: one sentence that says where the chain stopped."""

        def __init__(self, step: str):
            self.step = step

        def __enter__(self):
            return self

        def __exit__(self, kind, error, tb):
            if isinstance(error, Stopped) or not isinstance(error, UserError) or str(error).startswith(self.step):
                return False
            raise UserError(f"{self.step}: {_lower_first(str(error))}") from None


def reachable(ctx, names) -> dict:
    """{demo: its context, or None when this hub runs without it}: a chain's tab says up front what is missing."""
    out = {}
    for name in names:
        try:
            out[name] = ctx.other(name)
        except UserError:
            out[name] = None
    return out


def show_reach(title: str, others: dict, outputs: str) -> None:
    """Under a chain tab's title (inside gr.Blocks): which demos it chains are missing from this hub, and a banner
    when any of its steps runs random weights (its `outputs` are then meaningless)."""
    import gradio as gr

    missing = [name for name, o in others.items() if o is None]
    if missing:
        gr.Markdown(f"**{title} needs the {', '.join(missing)} demo(s)**: start the hub with them (leave out "
                    f"`--demos`, or list {', '.join(others)} too).")
    random = [o.spec.title for o in others.values() if o is not None and o.choice().source == "random"]
    if random:
        gr.Markdown(f"**Random weights** in this hub's {', '.join(random)}: the chain runs end to end, but its "
                    f"{outputs} are meaningless.", elem_classes=["random-banner"])


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
