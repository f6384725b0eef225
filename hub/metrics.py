"""Prometheus metrics of one hub (`GET /metrics`, protected like `/v1`), with prometheus_client.

Counted as they happen: requests by demo, API and outcome, and their seconds (every ctx.call / ctx.stream, from the
UI and from /v1 routes); evictions by reason; out-of-memory fallbacks to the CPU. Read at each scrape: which models
are loaded where and how large, their load time and keep-alive, the queue, and GPU memory where there is a GPU.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

# The API name of the gradio event being served (set by hub.blocks.HubBlocks), for the request metrics.
CURRENT_API: ContextVar[str | None] = ContextVar("demohub_api", default=None)
# Set inside a /v1 route (hub.api.add_route), which counts the request itself, errors before any model work included.
IN_ROUTE: ContextVar[bool] = ContextVar("demohub_in_route", default=False)

OUTCOMES = ("ok", "user_error", "error")
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """One registry per hub (several hubs in one process, as in the tests, do not share counters)."""

    def __init__(self, manager, queue_size=None):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("demohub_requests", "Requests that reached a model, by demo, API and outcome "
                                "(ok, user_error: the request was refused with a sentence, error: a failure).",
                                ["demo", "api", "outcome"], registry=self.registry)
        self.seconds = Histogram("demohub_request_seconds", "Seconds from taking a request to its answer "
                                 "(model load included), by demo and API.", ["demo", "api"], buckets=BUCKETS,
                                 registry=self.registry)
        self.evictions = Counter("demohub_evictions", "Models unloaded, by reason (budget, keep_alive, switch, "
                                 "unload, oom).", ["reason"], registry=self.registry)
        self.oom_fallbacks = Counter("demohub_oom_fallbacks", "Models moved to the CPU after the GPU ran out of "
                                     "memory.", registry=self.registry)
        self.registry.register(_Snapshot(manager, queue_size))
        manager.on_event = self.event

    def request(self, demo: str, api: str | None, outcome: str, seconds: float) -> None:
        api = api or "direct"
        self.requests.labels(demo, api, outcome).inc()
        self.seconds.labels(demo, api).observe(seconds)

    def event(self, kind: str, **labels) -> None:
        """The manager's events: ("evict", reason=...), ("oom_fallback",)."""
        if kind == "evict":
            self.evictions.labels(labels.get("reason", "other")).inc()
        elif kind == "oom_fallback":
            self.oom_fallbacks.inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Timer:
    """Times one request and records it with its outcome (a UserError is the client's, anything else an error)."""

    def __init__(self, metrics: Metrics | None, demo: str, api: str | None = None):
        self.metrics = None if IN_ROUTE.get() else metrics
        self.demo, self.api = demo, api or CURRENT_API.get()
        self.start = time.perf_counter()

    def done(self, error: BaseException | None = None) -> None:
        if self.metrics is None:
            return
        from hub.errors import UserError

        outcome = "ok" if error is None else "user_error" if isinstance(error, UserError) else "error"
        self.metrics.request(self.demo, self.api, outcome, time.perf_counter() - self.start)


class _Snapshot:
    """Gauges read from the manager (and torch, when loaded) at scrape time."""

    def __init__(self, manager, queue_size):
        self.manager, self.queue_size = manager, queue_size

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        labels = ["demo", "model", "device"]
        loaded = GaugeMetricFamily("demohub_model_loaded", "1 while the model is loaded (0: loading or failed).",
                                   labels=labels)
        size = GaugeMetricFamily("demohub_model_bytes", "Memory the loaded model takes.", labels=labels)
        load_s = GaugeMetricFamily("demohub_model_load_seconds", "Seconds the model took to load.", labels=labels)
        left = GaugeMetricFamily("demohub_model_keep_alive_seconds", "Seconds until an idle model unloads "
                                 "(-1: never).", labels=labels)
        in_use = GaugeMetricFamily("demohub_model_in_use", "Requests holding the model now.", labels=labels)
        for r in self.manager.status():
            key = [r["demo"], r["model"], r["device"] or "none"]
            loaded.add_metric(key, 1.0 if r["device"] and r["state"] not in ("loading", "failed") else 0.0)
            size.add_metric(key, float(r["bytes"]))
            load_s.add_metric(key, float(r["load_s"]))
            left.add_metric(key, float(-1 if r.get("unload_in_s") is None else r["unload_in_s"]))
            in_use.add_metric(key, float(r["in_use"]))
        yield from (loaded, size, load_s, left, in_use)
        if self.queue_size is not None:
            waiting = GaugeMetricFamily("demohub_queue_waiting", "Requests waiting in the hub's queue.")
            waiting.add_metric([], float(self.queue_size()))
            yield waiting
        yield from _gpu_memory()


def _gpu_memory():
    from prometheus_client.core import GaugeMetricFamily

    from hub.memory import loaded_torch

    torch = loaded_torch()
    if torch is None or not torch.cuda.is_available():
        return
    used = GaugeMetricFamily("demohub_gpu_memory_bytes", "GPU memory by kind (allocated by tensors, reserved by "
                             "the caching allocator, free and total on the device).", labels=["gpu", "kind"])
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        for kind, value in (("allocated", torch.cuda.memory_allocated(i)), ("reserved", torch.cuda.memory_reserved(i)),
                            ("free", free), ("total", total)):
            used.add_metric([str(i), kind], float(value))
    yield used
