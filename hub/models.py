"""The ModelManager: lazy loads, leases, a byte budget per device with LRU eviction, OOM recovery, unload.

Every inference holds a *lease* (`with manager.use(demo) as lease:`); a model with a lease is never evicted.
Loads happen under a per-model lock, so eight simultaneous first requests load once. Before a load the manager
makes room under the device's budget by evicting idle models, least recently used first. On an out-of-memory
error (during load or inside `manager.run`) it evicts every idle model, empties the cache and retries once; if
that fails too the model runs on the CPU and the lease carries a warning for the user.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from hub import loadtimes, memory
from hub.device import Placement, detect, probe_kind
from hub.errors import UserError
from hub.keep_alive import KeepAlive
from hub.settings import Settings
from hub.spec import DemoSpec, ModelChoice
from hub.weights import Weights, resolve, select
from hub.work import Job, Progress, dispatch

log = logging.getLogger("demohub")

Loader = Callable[..., object]  # load(weights, device, dtype, settings=None) -> engine (Demo.loader)
CPU = Placement("cpu", "float32")
# A load of a model this big or bigger is followed by a garbage collection and a heap trim (~40 ms) before its first
# request: what it left behind is in the same range as the model (SD-Turbo's folder: 1.48x -> 1.22x peak RSS); small
# models' leftovers are not worth it (the manager's swap bench ran 1.5x slower with it for 64 MB models)
RELEASE_AFTER_LOAD = 256 * 2**20


@dataclass
class Lease:
    """A loaded model, held for one request. `warning` is set when it had to fall back to the CPU."""

    demo: str
    engine: object
    weights: Weights
    placement: Placement
    warning: str = ""
    where: dict = field(default_factory=dict)  # on the Ray backend: which replica ran it ({"replica": "pid 12 on …"})

    @property
    def device(self) -> str:
        return self.placement.device

    @property
    def dtype(self) -> str:
        return self.placement.dtype

    def record(self, **params) -> dict:
        """A small reproducibility record: model, revision, device, dtype (what ran: e.g. "int8 (CTranslate2 4.8.5)"
        where the engine says) and the request's parameters."""
        ran = getattr(self.engine, "weights_format", "") or self.dtype
        rec = {**self.weights.record(), "device": self.device, "dtype": ran, **self.where, **params}
        warnings = [w for w in (self.warning, self.weights.is_random and "random weights: outputs are meaningless") if w]
        if warnings:
            rec["warning"] = " ".join(warnings)
        return rec


@dataclass
class _Entry:
    demo: str
    choice: ModelChoice
    state: str = "loading"  # loading | loaded | failed
    engine: object = None
    weights: Weights | None = None
    placement: Placement | None = None
    nbytes: int = 0
    leases: int = 0
    last_used: float = 0.0
    load_seconds: float = 0.0
    warning: str = ""
    error: str = ""
    times: loadtimes.LoadTimes | None = None  # the load's stages (hub.loadtimes): the Models tab's status line
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelManager:
    """Shares devices between demos: the in-process Backend (hub.contract). `demos` maps a demo name to
    (spec, load function, work table); the work table may be left out where only `use`/`leased` are called."""

    def __init__(self, settings: Settings, demos: Mapping[str, tuple], *,
                 budgets: Mapping[str, int] | None = None, placement: Callable[..., Placement] | None = None,
                 free_bytes: Callable[[str], int | None] = memory.free_bytes):
        self.settings = settings
        self._demos = dict(demos)
        self._budgets = dict(budgets or {})
        if settings.vram_budget is not None:
            self._budgets.setdefault("cuda", settings.vram_budget)
            self._budgets.setdefault("mps", settings.vram_budget)
        self._placement = placement or (lambda prefers=None, cpu_prefers=None: detect(
            settings.device, settings.dtype, prefers, cpu_prefers))
        self._free_bytes = free_bytes
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.RLock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}  # per demo: its concurrency, on every path
        # Loads run one at a time: concurrent first imports of torch/torchvision from several threads deadlock
        # in Python's import machinery, and one load at a time keeps the memory-budget arithmetic exact.
        self._load_lock = threading.Lock()
        self._device_kind: str | None = None
        self.keep_alive = KeepAlive(self)
        self.on_event: Callable[..., None] | None = None  # hub.metrics: ("evict", reason=...), ("oom_fallback",)
        self.where: dict = {}  # set by a Ray replica: leases' records say which replica ran them

    # ---- public API -------------------------------------------------------------------------------------------

    def spec(self, demo: str) -> DemoSpec:
        try:
            return self._demos[demo][0]
        except KeyError:
            raise UserError(f"There is no demo called {demo!r}; available: {', '.join(self._demos)}.") from None

    def choice(self, demo: str, model: str | None = None) -> ModelChoice:
        """The ModelChoice a request for `model` (None = the configured default) would run."""
        return select(self.spec(demo), self.settings, self.default_device(), model)

    def default_device(self) -> str:
        """The device kind default models are picked for; probed without importing torch."""
        if self._device_kind is None:
            self._device_kind = probe_kind(self.settings.device)
        return self._device_kind

    @contextmanager
    def use(self, demo: str, model: str | None = None) -> Iterator[Lease]:
        """Hold `demo`'s model (loading it if needed) for the duration of the block. At most the demo's concurrency
        of blocks run at once, whichever path asks (its tab, /v1, another demo's chain): the models are not all safe
        to run from two threads (openai-whisper's key/value cache hooks, a diffusers pipeline)."""
        slots = self._slots_of(demo)
        slots.acquire()
        try:
            entry = self._acquire(demo, self.choice(demo, model))
        except BaseException:
            slots.release()
            raise
        try:
            yield Lease(demo, entry.engine, entry.weights, entry.placement, entry.warning, dict(self.where))
        finally:
            with self._lock:
                entry.leases -= 1
                entry.last_used = time.monotonic()
                idle = not any(e.leases for e in self._entries.values())
            if getattr(entry.engine, "extra_bytes", None) is not None:
                # what it holds beside its weights may have changed in this request (SD's ControlNets and hires
                # upscaler, SAM's embeddings): counted again, so the budget check below sees it
                n = memory.engine_bytes(entry.engine)
                with self._lock:
                    entry.nbytes = n or entry.nbytes
            slots.release()
            if entry.placement is not None:  # a load that went over budget beside a busy model: settle now
                self._make_room(None, entry.placement.kind)
            self.keep_alive.released(demo)
            # freed request buffers go back to the OS: when the hub falls idle (at most every second), and at most
            # every 10 s while it stays busy
            memory.trim_heap(1.0 if idle else 10.0)

    def _slots_of(self, demo: str) -> threading.BoundedSemaphore:
        with self._lock:
            if demo not in self._slots:
                self._slots[demo] = threading.BoundedSemaphore(max(1, int(self.concurrency(demo))))
            return self._slots[demo]

    def work(self, demo: str):
        """`demo`'s table of work methods (hub.work.Work)."""
        entry = self._demos[self.spec(demo).name]
        if len(entry) < 3 or entry[2] is None:
            raise LookupError(f"the {demo} demo declares no work methods")
        if isinstance(entry[2], str):  # "package.module:WORK", imported on first use (the app starts without torch)
            from hub.contract import resolve

            entry = self._demos[demo] = (*entry[:2], resolve(entry[2]))
        return entry[2]

    def call(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None):
        """Run the work method `method` of `demo` on `request` and return its result (Backend protocol)."""
        items = self.stream(demo, method, request, model, job)
        try:
            return next(items)
        finally:
            items.close()

    def stream(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None) -> Iterator:
        """The items of the work method `method` of `demo` on `request` (Backend protocol). `job`: stop, progress and
        warn (the lease's CPU-fallback warning goes to `job.warn`)."""
        job = job or Job()
        m = self.work(demo).get(method)
        return self.leased(demo, lambda lease: dispatch(m, lease, request, job), model, warn=job.warn)

    def concurrency(self, demo: str) -> int:
        """How many requests of `demo` may run at once: the one source for gradio events, /v1 admission and tabs."""
        return self.spec(demo).gpu_concurrency

    def replicas(self) -> dict | None:
        """Per-demo replica facts on a cluster backend; None in-process."""
        return None

    def leased(self, demo: str, gen_fn: Callable[[Lease], Iterator], model: str | None = None,
               warn: Callable[[str], None] | None = None) -> Iterator:
        """Items of `gen_fn(lease)`, with the lease held until the consumer finishes or closes the iterator.
        `warn(text)` is called with the lease's fallback warning (CPU after out-of-memory) before the work runs.
        In-process only: what crosses a process is a method name and a request (`call`, `stream`).

        Out of memory before the first item (progress items, hub.work.Progress, do not count): evict idle models and
        retry once, then retry on the CPU. After the first item the answer is partly out, so an out-of-memory error
        ends the stream with a sentence.
        """
        for attempt in range(3):
            with self.use(demo, model) as lease:
                items = None
                try:
                    if warn is not None and lease.warning:
                        warn(lease.warning)
                    items = iter(gen_fn(lease))
                    first = next(items)
                    # progress items (hub.work.Progress) before the first real one: still retried on OOM
                    while isinstance(first, Progress):
                        yield first
                        first = next(items)
                except StopIteration:
                    return
                except Exception as e:
                    if not memory.is_oom(e) or lease.placement.kind == "cpu":
                        raise
                    log.warning("%s ran out of memory on %s (attempt %d): %s", demo, lease.device, attempt + 1, e)
                    failed = str(e)  # not the exception: its traceback would keep GPU tensors alive
                    del e
                    _close(items)
                else:
                    try:
                        yield first
                        yield from items
                    except Exception as e:
                        if memory.is_oom(e):
                            raise UserError(f"{self.spec(demo).title} ran out of memory part-way through; what was "
                                            "shown so far stands. Try again, with a smaller input, or unload other "
                                            "models in the Models tab.") from None
                        raise
                    finally:
                        _close(items)
                    return
            del lease, items
            if attempt == 0:
                self._make_room(self._key(demo, self.choice(demo, model)), None, evict_all=True)
            else:
                self._move_to_cpu(demo, self.choice(demo, model), failed)
        raise AssertionError("unreachable")

    def placement(self, prefers: str | None = None, cpu_prefers: str | None = None) -> Placement:
        """Where a model that `prefers` a dtype (on a GPU; `cpu_prefers` on a CPU) would load now (imports torch)."""
        return self._placement(prefers, cpu_prefers=cpu_prefers)

    def is_loaded(self, demo: str, model: str | None = None) -> bool:
        """Whether `demo`'s model (default: the configured one) is loaded and ready, without loading it."""
        key = self._key(demo, self.choice(demo, model))
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.state == "loaded"

    def unload(self, demo: str, model: str | None = None) -> str:
        """Unload one model (or every model of `demo` when `model` is None). Refuses while a request holds it."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == demo and (model is None or k[1] == model)]
            busy = [k[1] for k in keys if self._entries[k].leases > 0 or self._entries[k].state == "loading"]
            if busy:
                raise UserError(f"{demo} model {busy[0]} is busy with a request; unload it when it is done.")
            loaded = [k for k in keys if self._entries[k].state == "loaded"]
            for k in keys:  # failed loads go too, silently: there was nothing in memory
                self._drop(k, "unload")
        memory.release_memory()
        memory.trim_heap(0)
        return f"Unloaded {len(loaded)} model(s) of {demo}." if loaded else f"Nothing of {demo} was loaded."

    def unload_all(self) -> str:
        """Unload every loaded model; the answer names only demos that had one loaded."""
        said = [self.unload(d) for d in sorted({k[0] for k in list(self._entries)})]
        return "\n".join(s for s in said if s.startswith("Unloaded"))

    def status(self) -> list[dict]:
        """One row per model the hub knows about: state, device, dtype, bytes, last used, warnings."""
        now = time.monotonic()
        with self._lock:
            rows = []
            for (demo, model), e in self._entries.items():
                state = e.state
                if state == "loaded":
                    state = e.placement.kind.upper() if e.placement.kind != "cpu" else "CPU"
                dtype = e.placement.dtype if e.placement else ""
                if fmt := getattr(e.engine, "weights_format", ""):  # e.g. "Q4_1 GGUF, dequantized to float32"
                    dtype = fmt
                rows.append({
                    "demo": demo, "model": model, "display": e.choice.display, "state": state,
                    "source": e.choice.source, "device": e.placement.device if e.placement else "", "dtype": dtype,
                    "bytes": e.nbytes, "in_use": e.leases,
                    "idle_s": round(now - e.last_used, 1) if e.last_used else None,
                    "load_s": round(e.load_seconds, 2), "stages": dict(e.times.stages) if e.times else {},
                    "note": e.error or e.warning or (e.times.status() if e.times and e.state == "loading" else ""),
                    "pinned": self.keep_alive.pinned(demo),
                    "unload_in_s": self.keep_alive.left(demo, e.last_used, e.leases > 0 or e.state != "loaded", now),
                })
            return rows

    def resident_bytes(self, kind: str) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values()
                       if e.state == "loaded" and e.placement.kind == kind)

    # ---- internals --------------------------------------------------------------------------------------------

    @staticmethod
    def _key(demo: str, choice: ModelChoice) -> tuple[str, str]:
        return (demo, choice.id)

    def _acquire(self, demo: str, choice: ModelChoice) -> _Entry:
        key = self._key(demo, choice)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state == "failed":
                entry = self._entries[key] = _Entry(demo, choice)
        with entry.lock:  # one loader per model; the others wait here and then share it
            with self._lock:
                if entry.state == "loaded":
                    entry.leases += 1
                    entry.last_used = time.monotonic()
                    return entry
            with self._load_lock, loadtimes.recording() as entry.times:  # the load's stages (hub.loadtimes)
                self._load(key, entry)
            with self._lock:
                entry.leases += 1
                entry.last_used = time.monotonic()
                self._drop_other_idle_models_of(demo, keep=key)
            if entry.nbytes >= RELEASE_AFTER_LOAD:
                # what the load left for the collector (its files' mapped pages, dtype-conversion copies) is freed
                # before the first request's own buffers come on top (peak RSS of the first click, issue #35)
                memory.release_memory()
                memory.trim_heap(0)
            return entry

    def _load(self, key, entry: _Entry, placement: Placement | None = None) -> None:
        spec, loader = self._demos[entry.demo][:2]
        with loadtimes.stage("import"):  # the first placement imports torch
            placement = placement or self._placement(entry.choice.dtype, cpu_prefers=entry.choice.cpu_dtype)
        entry.state, entry.error = "loading", ""
        try:
            weights = resolve(spec, entry.choice, self.settings)
            self._make_room(key, placement.kind, need=entry.choice.bytes_at(placement.dtype))
            start = time.perf_counter()
            try:
                engine = self._call(loader, weights, placement.device, placement.dtype)
            except Exception as e:
                if not memory.is_oom(e) or placement.kind == "cpu":
                    raise
                log.warning("Loading %s on %s ran out of memory; evicting idle models and retrying.", key, placement.device)
                self._make_room(key, placement.kind, evict_all=True)
                try:
                    engine = self._call(loader, weights, placement.device, placement.dtype)
                except Exception as e2:
                    if not memory.is_oom(e2):
                        raise
                    self._emit("oom_fallback")
                    entry.warning = (f"{spec.title}: the GPU is out of memory, so {entry.choice.display} runs on the "
                                     "CPU (slower). Unload other models in the Models tab to get the GPU back.")
                    log.warning(entry.warning)
                    memory.release_memory()
                    placement = CPU
                    engine = self._call(loader, weights, "cpu", "float32")
        except BaseException as e:
            with self._lock:
                entry.state = "failed"
                # a sentence for the Models tab; the class name and traceback are in the log
                entry.error = str(e) if isinstance(e, UserError) else "Failed to load (the details are in the log)."
            raise
        with self._lock:
            entry.engine, entry.weights, entry.placement = engine, weights, placement
            entry.nbytes = memory.engine_bytes(engine) or entry.choice.bytes_at(placement.dtype)
            entry.load_seconds = time.perf_counter() - start
            entry.state = "loaded"
            entry.last_used = time.monotonic()  # just loaded is just used: no keep-alive or eviction takes it first
        log.info("Loaded %s/%s on %s (%s) in %.1fs, %.0f MB", entry.demo, entry.choice.id, placement.device,
                 placement.dtype, entry.load_seconds, entry.nbytes / 1e6)

    def _call(self, loader: Loader, weights: Weights, device: str, dtype: str):
        """`loader(weights, device, dtype, settings=)` (Demo.loader adapts a demo's load to it). Random weights
        are drawn from a fixed seed (torch's global generator is left as it was): the same random model in every
        process, so a Ray replica and this process answer alike."""
        kw = {"settings": self.settings}
        if not weights.is_random:
            return loader(weights, device, dtype, **kw)
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return loader(weights, device, dtype, **kw)

    def _move_to_cpu(self, demo: str, choice: ModelChoice, error: str) -> None:
        key = self._key(demo, choice)
        entry = self._entries[key]
        with entry.lock:
            while True:  # wait for other requests on the GPU copy to finish before dropping it
                with self._lock:
                    if entry.leases == 0:
                        entry.engine = None
                        break
                time.sleep(0.05)
            memory.release_memory()
            self._emit("oom_fallback")
            entry.warning = (f"{self.spec(demo).title}: the GPU ran out of memory ({error[:120]}), so this "
                             "model now runs on the CPU (slower). Unload other models in the Models tab to free the GPU.")
            log.warning(entry.warning)
            with self._load_lock, loadtimes.recording() as entry.times:
                self._load(key, entry, CPU)

    def _budget(self, kind: str) -> int | None:
        """Bytes this device kind may hold for models: the configured budget, else free memory minus a margin."""
        if kind in self._budgets:
            return self._budgets[kind]
        free = self._free_bytes(kind)
        if free is None:
            return None
        margin = max(memory.GiB // 2, (memory.total_bytes(kind) or 0) // 10)
        return free - margin + self.resident_bytes(kind)

    def _make_room(self, key, kind: str | None, need: int = 0, evict_all: bool = False) -> None:
        """Evict idle models on `kind` (least recently used first) until `need` more bytes fit the budget."""
        with self._lock:
            idle = sorted((e for k, e in self._entries.items()
                           if k != key and e.state == "loaded" and e.leases == 0 and not self.keep_alive.pinned(e.demo)
                           and (kind is None or e.placement.kind == kind)), key=lambda e: e.last_used)
            if evict_all:
                victims = idle
            else:
                budget = self._budget(kind)
                if budget is None:
                    return
                used = self.resident_bytes(kind)
                victims = []
                for e in idle:
                    if used + need <= budget:
                        break
                    victims.append(e)
                    used -= e.nbytes
            for e in victims:
                log.info("Evicting %s/%s to make room.", e.demo, e.choice.id)
                self._drop(self._key(e.demo, e.choice), "oom" if evict_all else "budget")
        if victims:
            memory.release_memory()

    def _drop_other_idle_models_of(self, demo: str, keep) -> None:
        """Switching a demo's model frees the previous one (if idle); a failed switch leaves it in place."""
        for k in [k for k, e in self._entries.items() if k[0] == demo and k != keep and e.state == "loaded" and e.leases == 0]:
            self._drop(k, "switch")

    def expire(self) -> bool:
        """Unload idle models past their keep-alive; True while an idle model still has one running."""
        now, expired, watching = time.monotonic(), [], False
        with self._lock:
            for k, e in list(self._entries.items()):
                ttl = self.keep_alive.ttl(k[0])
                if ttl is None or e.state != "loaded" or e.leases:
                    continue
                if now - e.last_used >= ttl:
                    log.info("Unloading %s/%s: idle for its keep-alive of %gs.", k[0], k[1], ttl)
                    self._drop(k, "keep_alive")
                    expired.append(k)
                else:
                    watching = True
        if expired:
            memory.release_memory()
            memory.trim_heap(0)
        return watching

    def _emit(self, kind: str, **labels) -> None:
        if self.on_event is not None:
            self.on_event(kind, **labels)

    def _drop(self, key, reason: str = "other") -> None:
        entry = self._entries.pop(key)
        self._emit("evict", reason=reason)
        close = getattr(entry.engine, "close", None)
        entry.engine = None
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("Closing %s failed; its memory is released anyway.", key)


def _close(items) -> None:
    """Close a generator the consumer did not finish (its `finally` blocks run now, not at garbage collection)."""
    close = getattr(items, "close", None)
    if close is not None:
        close()
