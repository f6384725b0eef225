"""A test demo whose work takes as long as the test wants: streams and runs that read their stop between steps.

Used by the backend tests (in-process and Ray) to see Stop, Cancel, a killed worker and queueing on real work
methods: `(method, request)` crosses to the replica as plain data, as every demo's does.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from hub.contract import Demo, EngineBase
from hub.spec import DemoSpec, ModelChoice
from hub.work import Work

SPEC = DemoSpec(name="fake_slow", title="Slow (test demo)", description="Counts slowly.",
                models=(ModelChoice("slow", "random", approx_bytes=1000, license="MIT"),),
                default_model={"cpu": "slow", "cuda": "slow"}, api_names=())


@dataclass(frozen=True)
class Steps:
    n: int = 1200
    delay_s: float = 0.05


class Engine(EngineBase):
    pass


def load(weights, device, dtype, options=None):
    return Engine()


WORK = Work()


@WORK.method(Steps)
def count(lease, req: Steps, job):
    """(pid, i) every `delay_s`, until `n` or a stop."""
    for i in range(req.n):
        if job.stop.is_set():
            return
        time.sleep(req.delay_s)
        yield os.getpid(), i


@WORK.method(Steps)
def denoise(lease, req: Steps, job) -> str:
    """A run with progress per step that reads its stop between steps, as Stable Diffusion's does."""
    for i in range(req.n):
        if job.stop.is_set():
            return f"stopped after {i} steps"
        job.progress(i / req.n, f"Step {i}")
        time.sleep(req.delay_s)
    return "ran to the end"


GATE = threading.Event()  # in-process tests only: `held` work waits for the test to set it


@WORK.method(Steps)
def held(lease, req: Steps, job) -> str:
    """Work that holds the model until the test sets `GATE` (or stops it): as long as the test needs, never a guess."""
    while not GATE.wait(0.01):
        if job.stop.is_set():
            return "stopped"
    return "released"


DEMO = Demo(spec=SPEC, load=load, ui=lambda ctx: None, work=WORK)
