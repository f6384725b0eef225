"""The YOLO tab's models, defaults and limits: plain data, importable without torch, numpy or ultralytics."""

from __future__ import annotations

from hub.spec import DemoSpec, ModelChoice

_AGPL = "AGPL-3.0 (Ultralytics)"

SPEC = DemoSpec(
    name="yolo_detect",
    title="Object detection (YOLO)",
    description="Find and count objects in images, videos and a live webcam (80 COCO classes) with Ultralytics "
                "YOLO26 (NMS-free), YOLO11 and YOLOv8; download the boxes as CSV or JSON.",
    models=(
        # YOLO26 (ultralytics >= 8.4): NMS-free, its one-to-one head gives the final boxes (see engine.Detector).
        # Hashes: the Git LFS pointers of these exact files in a public project (github xeeRyan/SOP-process-detection-
        # YOLO models/yolo26{s,m}.pt; Sharqascc/nnds yolo26n.pt); their sizes (5,570,671 / 20,422,725 / 44,255,705
        # bytes) are the sizes published for the v8.4.0 release assets. A mismatch is refused at download.
        ModelChoice("yolo26n", "native", label="YOLO26n (fastest, NMS-free)", files=("yolo26n.pt",),
                    sha256="e40cde880a87fe1427a4017e1ba6abc3e19dd13889c20dd03aba82fb55e87384",
                    approx_bytes=11_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo26n.yaml"}),
        ModelChoice("yolo26s", "native", label="YOLO26s (NMS-free)", files=("yolo26s.pt",),
                    sha256="646f8bc3fe0a656803d95c294f7852321748cb29d13466a1af8862e2db384a1b",
                    approx_bytes=40_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo26s.yaml"}),
        ModelChoice("yolo26m", "native", label="YOLO26m (most accurate, NMS-free)", files=("yolo26m.pt",),
                    sha256="401cea9ab23ad19246ff7744859816bc599f350e93c9dd30367b6f0a0745d0b7",
                    approx_bytes=84_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo26m.yaml"}),
        ModelChoice("yolo11n", "native", label="YOLO11n (fastest)", files=("yolo11n.pt",),
                    sha256="0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1",
                    approx_bytes=12_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11n.yaml"}),
        ModelChoice("yolo11s", "native", label="YOLO11s", files=("yolo11s.pt",),
                    sha256="85a76fe86dd8afe384648546b56a7a78580c7cb7b404fc595f97969322d502d5",
                    approx_bytes=40_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11s.yaml"}),
        ModelChoice("yolo11m", "native", label="YOLO11m", files=("yolo11m.pt",),
                    sha256="d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95",
                    approx_bytes=82_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolo11m.yaml"}),
        # ultralytics >= 8.4 downloads yolov8n.pt from its v8.4.0 release (6,549,796 bytes), not the v0.0.0 file.
        ModelChoice("yolov8n", "native", label="YOLOv8n", files=("yolov8n.pt",),
                    sha256="f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
                    approx_bytes=14_000_000, size_dtype="float32", license=_AGPL, options={"config": "yolov8n.yaml"}),
        # YOLO11n's architecture with random weights: builds offline in well under a second (tests, smoke runs).
        ModelChoice("tiny-random", "random", label="YOLO11n, random weights (tests)", approx_bytes=12_000_000,
                    size_dtype="float32", license=_AGPL, options={"config": "yolo11n.yaml"}, hidden=True),
        # YOLO26n's architecture (both heads, the NMS-free one used) with random weights (tests, smoke runs).
        ModelChoice("tiny-random-yolo26", "random", label="YOLO26n, random weights (tests)", approx_bytes=11_000_000,
                    size_dtype="float32", license=_AGPL, options={"config": "yolo26n.yaml"}, hidden=True),
    ),
    default_model={"cuda": "yolo26n", "cpu": "yolo26n"},
    api_names=("detect", "detect_video", "track_stream"),
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
