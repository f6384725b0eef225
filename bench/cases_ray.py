"""The Ray backend's added latency per request: the same YOLO detection through the local ModelManager (naive
side) and through a Ray Serve replica on this machine (hub side), plus the bare round trip of an empty call.

Needs the `ray` extra; skipped (no case) without it. Starts a local Ray with the machine's CPUs.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

from bench.harness import Case


def cases() -> list[Case]:
    if importlib.util.find_spec("ray") is None:
        return []
    return [Case("ray/yolo-detect-overhead", setup=_setup, naive=_local, hub=_ray, teardown=_teardown, warmup=3,
                 repeat=20, unit="request", notes="tiny-random YOLO11n on bus.jpg at 640: in-process manager vs "
                 "a Ray Serve replica on the same machine (files by path)", goal="added latency < 20 ms",
                 metrics=_echo)]


def _setup():
    from dataclasses import replace
    from pathlib import Path

    import ray
    from demos.yolo_detect.types import DetectRequest
    from hub.cluster.backend import RayManager
    from hub.models import ModelManager
    from hub.registry import load_demos
    from hub.settings import Settings

    (h,) = load_demos(("yolo_detect",))
    s = replace(Settings.load({}), device="cpu", offline=True, models={"yolo_detect": "tiny-random"},
                cache_dir=Path("model_cache").resolve())
    from hub.cluster.security import local_init_options

    # started as the hub starts its own Ray: token auth, no dashboard, replicas at this process's priority
    ray.init(namespace="demohub", log_to_driver=False, **local_init_options())
    remote = RayManager(s, {"yolo_detect": h.spec})
    local = ModelManager(s, {"yolo_detect": (h.spec, h.demo.loader(), h.demo.work)})
    import ultralytics

    image = str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")  # a path: both sides read the same file
    request = DetectRequest(image, 0.25, 0.7, [], 300, 640)
    return {"remote": remote, "local": local, "request": request}


def _local(ctx):
    return ctx["local"].call("yolo_detect", "detect", ctx["request"])


def _ray(ctx):
    return ctx["remote"].call("yolo_detect", "detect", ctx["request"])


def _echo(ctx) -> dict:
    """The bare cost of one call: the smallest work method (the model's class names) through each backend (p50 of
    50): the request and the answer are a few hundred bytes."""
    from demos.yolo_detect.types import NamesRequest

    out = {}
    for side in ("local", "remote"):
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            ctx[side].call("yolo_detect", "class_names", NamesRequest())
            times.append((time.perf_counter() - t0) * 1e3)
        out[f"empty_call_{side}_ms"] = round(statistics.median(times), 2)
    return out


def _teardown(ctx):
    import ray
    from ray import serve

    ctx["remote"].shutdown()
    serve.shutdown()
    ray.shutdown()
