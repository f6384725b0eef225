"""YOLO object detection (Ultralytics): images, video files and a live webcam with tracking.

The engine never touches Ultralytics' predictor (`YOLO(...).predict`); it runs a lean path built from the library's
own pieces: `LetterBox` (CPU) or the same letterbox done on the GPU, the fused `DetectionModel`,
`non_max_suppression` (none for the end-to-end YOLO26: its one-to-one head gives the final boxes, only the confidence,
class and count filters remain) and `scale_boxes`, then `Results.plot` for drawing and `BYTETracker` for tracking. That skips
the predictor's per-call setup (source sniffing, dataloader, callbacks, profilers) and gives one place where inputs
are validated.

- `spec.py`: the models (pinned SHA-256), defaults and limits.
- `types.py`: the requests and results of the work methods (plain data: what crosses to a Ray replica).
- `engine.py`: `load`, `fetch`, the `Detector`, `detect` / `detect_batch` and their checks, and `WORK`: the work
  methods detect, detect_video (streaming), track_stream (the webcam; its tracker kept per session in the engine)
  and class_names.
- `fast.py`: CUDA graphs and the on-device letterbox (fp16 on CUDA; graphs captured at load for one image at the
  default size and for a video batch, other sizes on first use; off with DEMOHUB_YOLO_DETECT_CUDA_GRAPHS=0).
- `video.py`: video files (PyAV decode on a reader thread, batched inference, drawing + libx264 encode on a writer
  thread, so the three overlap) and ByteTrack tracking.
- `formats.py`: drawing, the CSV/JSON detection tables and the per-frame counts.
- `ui.py`: the tab.

Ultralytics is configured by `hub.ultralytics_env` (settings under `<cache>/native/ultralytics`), official weights
are downloaded into `<cache>/native/yolo_detect/` and checked against pinned hashes, and nothing is ever saved next
to the process. Ultralytics checkpoints are pickles, so only pinned official files or a local file the operator
names (`DEMOHUB_YOLO_DETECT_MODEL=/path/best.pt`) are loaded; page visitors cannot point the hub at a file.
"""

from hub.contract import Demo, Example, Option, Sample

from .spec import (COCO_NAMES, DEFAULTS, IMGSZ_RANGE, MAX_DET_RANGE, MAX_SIDE, MIN_SIDE, SPEC, VIDEO_BATCH,
                   VIDEO_BATCH_RANGE, VIDEO_MAX_FRAMES, VIDEO_MAX_SIDE)

__all__ = ["DEMO", "SPEC", "COCO_NAMES", "DEFAULTS", "IMGSZ_RANGE", "MAX_DET_RANGE", "MAX_SIDE", "MIN_SIDE",
           "VIDEO_BATCH", "VIDEO_MAX_FRAMES", "VIDEO_MAX_SIDE"]

_SETTINGS = {"conf": 0.25, "iou": 0.7, "classes": [], "max_det": 300, "imgsz": 320}

DEMO = Demo(
    spec=SPEC,
    load="demos.yolo_detect.engine:load",
    ui="demos.yolo_detect.ui:build",
    work="demos.yolo_detect.engine:WORK",
    fetch="demos.yolo_detect.engine:fetch",
    options=(
        Option("cuda_graphs", True, "Replay the forward pass from CUDA graphs on a GPU (captured at load)."),
        Option("openvino", True, "On a CPU, run the network with OpenVINO when it is installed (pip install "
                                 "'demohub[openvino]'): converted once per checkpoint into the cache."),
        Option("max_video_frames", VIDEO_MAX_FRAMES, "Most frames processed per video; longer videos are refused.",
               lo=1, hi=10_000_000),
        Option("video_batch", 0, "Video frames per forward pass; 0 = auto (32 on a GPU, 4 on a CPU).",
               lo=0, hi=VIDEO_BATCH_RANGE[1]),
    ),
    examples=(
        Example("detect", {"model": "tiny-random", "image": Sample("image"), **_SETTINGS}, bad={"conf": 1.5}),
        Example("detect_video", {"model": "tiny-random", "video": Sample("video"), **_SETTINGS, "tracking": False},
                bad={"imgsz": 10}),
        Example("track_stream", {"model": "tiny-random", "frame": Sample("image"), **_SETTINGS}, bad={"max_det": 0}),
    ),
)
