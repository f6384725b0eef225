"""Foundation benchmarks: app start time vs a bare Gradio app, the manager cycling models under a budget, and the
cost of the one request path (a typed request through ctx.call and hub.streams vs calling the function)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Case
from hub.work import Work

ROOT = Path(__file__).resolve().parents[1]
BARE_APP = ("import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('bare')\n"
            "demo.launch(server_port=int(__import__('sys').argv[1]), quiet=True)\n")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _time_to_200(cmd: list[str], port: int, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < 180:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{cmd[:3]} did not answer HTTP 200 within 180 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _start_case() -> Case:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "DEMOHUB_WEIGHTS": "random"}

    def naive(_):
        port = _port()
        _time_to_200([sys.executable, "-c", BARE_APP, str(port)], port, env)

    def hub(_):
        port = _port()
        _time_to_200([sys.executable, "-m", "hub.cli", "serve", "--port", str(port)], port, env)

    return Case("hub/app-start", setup=lambda: None, naive=naive, hub=hub, unit="start", warmup=1, repeat=3,
                notes="process spawn to first HTTP 200; naive = a bare gr.Blocks app", goal="hub <= 1.5x bare")


def _manager_case(n_models: int = 6, mb_each: int = 64, budget_models: int = 3, requests: int = 60) -> Case:
    """Six demos' worth of models (real torch tensors) used in a skewed order under a budget of three."""
    import random

    def setup():
        import torch

        from hub.device import Placement
        from hub.models import ModelManager
        from hub.settings import Settings
        from hub.spec import DemoSpec, ModelChoice

        numel = mb_each * 2**20 // 4

        def load(weights, device, dtype, settings=None):
            return torch.nn.ParameterList([torch.nn.Parameter(torch.randn(numel))])

        names = [f"fake{i}" for i in range(n_models)]
        demos = {n: (DemoSpec(n, n, "", (ModelChoice("m", "random", approx_bytes=numel * 4),), {"cpu": "m"}, (n,)), load)
                 for n in names}
        budget = budget_models * numel * 4
        manager = ModelManager(Settings.load({}), demos, budgets={"cpu": budget},
                               placement=lambda prefers=None, **kw: Placement("cpu", "float32"))
        rng = random.Random(0)
        order = [names[min(int(rng.expovariate(0.8)), n_models - 1)] for _ in range(requests)]
        return {"manager": manager, "demos": demos, "order": order, "budget": budget, "load": load}

    def naive(ctx):  # what a hub without a manager does to stay in memory: load for every request, then drop
        for name in ctx["order"]:
            engine = ctx["load"](None, "cpu", "float32")
            float(engine[0][0])
            del engine

    def hub(ctx):
        m = ctx["manager"]
        for name in ctx["order"]:
            with m.use(name) as lease:
                float(lease.engine[0][0])
            if m.resident_bytes("cpu") > ctx["budget"]:
                raise AssertionError("the manager went over its budget")

    return Case("hub/manager-cycle", setup, naive, hub, items=requests, unit="request", repeat=3,
                notes=f"{n_models} models x {mb_each} MB, budget {budget_models} models, {requests} skewed requests")


@dataclass(frozen=True)
class _Ping:
    n: int = 1


_WORK = Work()


@_WORK.method(_Ping, name="ping")
def _ping(lease, req: _Ping, job) -> int:
    return req.n


def _call_case(calls: int = 200) -> Case:
    """ctx.call of a method that does nothing: the allow-list, the lease, the worker thread of hub.streams, the
    metrics timer; naive = the same function called directly."""

    def setup():
        from hub.context import DemoContext
        from hub.device import Placement
        from hub.models import ModelManager
        from hub.settings import Settings
        from hub.spec import DemoSpec, ModelChoice

        spec = DemoSpec("ping", "Ping", "", (ModelChoice("m", "random", approx_bytes=1),), {"cpu": "m"}, ("ping",))
        s = Settings.load({})
        manager = ModelManager(s, {"ping": (spec, lambda *a, **k: object(), _WORK)},
                               placement=lambda prefers=None, **kw: Placement("cpu", "float32"))
        return {"ctx": DemoContext(manager, s, spec), "request": _Ping()}

    def naive(ctx):
        for _ in range(calls):
            _ping(None, ctx["request"], None)

    def hub(ctx):
        for _ in range(calls):
            ctx["ctx"].call("ping", ctx["request"])

    return Case("hub/call-overhead", setup, naive, hub, items=calls, unit="call", repeat=5,
                notes=f"{calls} empty work-method calls through ctx.call (in-process backend)",
                goal="well under a millisecond per call")


def cases() -> list[Case]:
    return [_manager_case(), _start_case(), _call_case()]
