"""The YOLO tab's models, defaults and limits: plain data, importable without torch, numpy or ultralytics."""

from __future__ import annotations

from hub.spec import DemoSpec, ModelChoice

_AGPL = "AGPL-3.0 (Ultralytics)"

SPEC = DemoSpec(
    name="yolo_detect",
    title="Object detection (YOLO)",
    description="Find and count objects in images, videos and a live webcam (80 COCO classes) with Ultralytics "
                "YOLO11 / YOLOv8; download the boxes as CSV or JSON.",
    models=(
        ModelChoice("yolo11n", "native", label="YOLO11n (fastest)", files=("yolo11n.pt",),
                    sha256="0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1",
                    approx_bytes=12_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11n.yaml"}),
        ModelChoice("yolo11s", "native", label="YOLO11s", files=("yolo11s.pt",),
                    sha256="85a76fe86dd8afe384648546b56a7a78580c7cb7b404fc595f97969322d502d5",
                    approx_bytes=40_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11s.yaml"}),
        ModelChoice("yolo11m", "native", label="YOLO11m (most accurate)", files=("yolo11m.pt",),
                    sha256="d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95",
                    approx_bytes=82_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11m.yaml"}),
        # ultralytics >= 8.4 downloads yolov8n.pt from its v8.4.0 release (6,549,796 bytes), not the v0.0.0 file.
        ModelChoice("yolov8n", "native", label="YOLOv8n", files=("yolov8n.pt",),
                    sha256="f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
                    approx_bytes=14_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolov8n.yaml"}),
        # YOLO11n's architecture with random weights: builds offline in well under a second (tests, smoke runs).
        ModelChoice("tiny-random", "random", label="YOLO11n, random weights (tests)", approx_bytes=12_000_000,
                    size_dtype="float32", license=_AGPL, options={"hidden": True, "config": "yolo11n.yaml"}),
    ),
    default_model={"cuda": "yolo11n", "cpu": "yolo11n"},
    api_names=("detect", "detect_video"),
    gpu_concurrency=2,  # the forward pass itself is serialised per model (see Detector.forward)
    zero_gpu_seconds=120,
)

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

DEFAULTS = {"conf": 0.25, "iou": 0.7, "max_det": 300, "imgsz": 640}  # Ultralytics' own predict defaults
IMGSZ_RANGE = (32, 2048)
MAX_DET_RANGE = (1, 3000)
MAX_SIDE = 4096  # larger images are decoded downscaled (JPEG draft mode) and then resized to this long side
MIN_SIDE = 8  # smaller images cannot hold a detectable object
VIDEO_MAX_SIDE = 1920  # video frames are processed and encoded at most this large (long side)
VIDEO_MAX_FRAMES = 18_000  # 10 minutes at 30 frames/s; the max_video_frames option
VIDEO_BATCH = {"cuda": 32, "cpu": 4}  # frames per forward pass when the video_batch option is 0 (auto)
VIDEO_BATCH_RANGE = (1, 256)
MAX_GRAPHS = 8  # CUDA graphs kept per model (one per input shape), least recently used dropped first
