"""YOLO object detection (Ultralytics): images, video files and a live webcam with tracking.

The engine never touches Ultralytics' predictor (`YOLO(...).predict`); it runs a lean path built from the library's
own pieces: `LetterBox` (CPU) or the same letterbox done on the GPU, the fused `DetectionModel`,
`non_max_suppression` and `scale_boxes`, then `Results.plot` for drawing and `BYTETracker` for tracking. That skips
the predictor's per-call setup (source sniffing, dataloader, callbacks, profilers) and gives one place where inputs
are validated and decoded.

On CUDA the model runs in fp16 and its forward pass is replayed from CUDA graphs (captured at load for one image at
the default size and for a video batch; other sizes are captured on first use, off by
`DEMOHUB_YOLO_DETECT_CUDA_GRAPHS=0`). Video frames are decoded by PyAV on a reader thread, run in batches, and drawn
and encoded (libx264, yuv420p, +faststart: plays in every browser) on a writer thread, so decode, inference and
encode overlap. The GPU path is written for an H100 but was not measured in this repository's CI (no GPU there).

Ultralytics' settings file goes to `<cache>/native/yolo_detect/config` (YOLO_CONFIG_DIR, set before the library is
first imported), official weights are downloaded into `<cache>/native/yolo_detect/` and checked against pinned
SHA-256 hashes, and nothing is ever saved next to the process (no `runs/`, no weights in the working directory).
Ultralytics checkpoints are pickles, so only pinned official files or a local file the operator names
(`DEMOHUB_YOLO_DETECT_MODEL=/path/best.pt`) are loaded; page visitors cannot point the hub at a file.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import queue
import tempfile
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from hub.device import cpu_channels_last
from hub.errors import UserError, WeightsUnavailable
from hub.outputs import request_folder
from hub.spec import DemoSpec, ModelChoice

log = logging.getLogger("demohub")

_AGPL = "AGPL-3.0 (Ultralytics)"

SPEC = DemoSpec(
    name="yolo_detect",
    title="Object detection (YOLO)",
    description="Find and count objects in images, videos and a live webcam (80 COCO classes) with Ultralytics "
                "YOLO11 / YOLOv8; download the boxes as CSV or JSON.",
    models=(
        ModelChoice("yolo11n", "native", label="YOLO11n (fastest)", files=("yolo11n.pt",),
                    sha256="0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1",
                    approx_bytes=12_000_000, license=_AGPL, options={"config": "yolo11n.yaml"}),
        ModelChoice("yolo11s", "native", label="YOLO11s", files=("yolo11s.pt",),
                    sha256="85a76fe86dd8afe384648546b56a7a78580c7cb7b404fc595f97969322d502d5",
                    approx_bytes=40_000_000, license=_AGPL, options={"config": "yolo11s.yaml"}),
        ModelChoice("yolo11m", "native", label="YOLO11m (most accurate)", files=("yolo11m.pt",),
                    sha256="d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95",
                    approx_bytes=82_000_000, license=_AGPL, options={"config": "yolo11m.yaml"}),
        ModelChoice("yolov8n", "native", label="YOLOv8n", files=("yolov8n.pt",),
                    sha256="31e20dde3def09e2cf938c7be6fe23d9150bbbe503982af13345706515f2ef95",
                    approx_bytes=14_000_000, license=_AGPL, options={"config": "yolov8n.yaml"}),
        # YOLO11n's architecture with random weights: builds offline in well under a second (tests, smoke runs).
        ModelChoice("tiny-random", "random", label="YOLO11n, random weights (tests)", approx_bytes=12_000_000,
                    license=_AGPL, options={"hidden": True, "config": "yolo11n.yaml"}),
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
VIDEO_MAX_FRAMES = 18_000  # 10 minutes at 30 frames/s; DEMOHUB_YOLO_DETECT_MAX_VIDEO_FRAMES
VIDEO_BATCH = {"cuda": 32, "cpu": 4}  # frames per forward pass; DEMOHUB_YOLO_DETECT_VIDEO_BATCH
MAX_GRAPHS = 8  # CUDA graphs kept per model (one per input shape), least recently used dropped first


# ---- loading ----------------------------------------------------------------------------------------------------


def _config_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "native" / SPEC.name / "config"


def _ultralytics(cache_dir: Path):
    """Import ultralytics with its settings file under the hub's cache (never the user's home or the cwd)."""
    import sys

    if "ultralytics" not in sys.modules:
        folder = _config_dir(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)  # read once, when ultralytics.utils is first imported
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install packages from inside the server
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    if Image.open is getattr(patches, "image_open", None) and hasattr(patches, "_image_open"):
        # ultralytics replaces PIL.Image.open process-wide with a wrapper that, on any file Pillow cannot identify,
        # tries to install pi-heif; every tab opens uploads with Pillow, so put Pillow's own function back.
        Image.open = patches._image_open

    ours = _config_dir(cache_dir)
    if Path(SETTINGS.file).resolve().is_relative_to(ours.resolve()):
        # Its defaults point at ./weights, ./runs and ./datasets; keep even those paths inside the cache, and keep
        # usage analytics off (a local hub should not report its users' requests).
        wanted = {"weights_dir": str(ours.parent), "runs_dir": str(ours / "runs"),
                  "datasets_dir": str(ours / "datasets"), "sync": False}
        if any(SETTINGS.get(k) != v for k, v in wanted.items()):
            SETTINGS.update(wanted)
    else:
        log.info("ultralytics was imported before the YOLO tab loaded; its settings stay at %s", SETTINGS.file)
    return ultralytics


def _weight_file(choice: ModelChoice) -> str:
    if choice.files:
        return choice.files[0]
    return choice.id if choice.id.endswith(".pt") else f"{choice.id}.pt"


def fetch(weights) -> Path:
    """Download a native model (an official Ultralytics release asset) into `weights.path`, checking its hash."""
    from hub.weights import verify_file

    _ultralytics(weights.cache_dir)
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    name = _weight_file(weights.choice)
    if name not in GITHUB_ASSETS_NAMES:
        raise UserError(f"{weights.choice.id!r} is not an Ultralytics model name; use yolo11n, yolo11s, yolo11m, "
                        "yolov8n (or another official name), or the path to your own .pt file.")
    target = Path(weights.path) / name
    if not target.exists():
        try:
            attempt_download_asset(str(target))  # an absolute path: the library downloads exactly there
        except Exception as e:
            raise WeightsUnavailable(
                f"Could not download {name} for {SPEC.title} ({type(e).__name__}: {str(e)[:200]}). Check the "
                f"connection, or copy the file to {target} by hand, or run `demohub fetch {SPEC.name}` where there "
                "is network.") from e
        if not target.exists():
            raise WeightsUnavailable(f"Downloading {name} did not produce {target}; check the connection and "
                                     f"run `demohub fetch {SPEC.name}` again.")
    verify_file(target, weights.choice.sha256, SPEC.name)
    return target


def load(weights, device: str, dtype: str) -> "Detector":
    """Build the engine: official weights (native), a local .pt (path) or the architecture with random weights."""
    _ultralytics(weights.cache_dir)
    from ultralytics import YOLO

    if weights.is_random:
        config = weights.choice.options.get("config") or f"{Path(_weight_file(weights.choice)).stem}.yaml"
        try:
            yolo = YOLO(config, task="detect", verbose=False)
        except FileNotFoundError:
            raise UserError(f"No architecture config {config!r} ships with ultralytics; pick a listed model.") from None
        if len(yolo.model.names) == len(COCO_NAMES):  # same head as the real COCO models: give it their labels
            yolo.model.names = dict(enumerate(COCO_NAMES))
    elif weights.source == "native":
        yolo = YOLO(str(fetch(weights)), task="detect")
    else:
        path = Path(weights.path)
        if path.is_dir():
            found = sorted(path.glob("*.pt"))
            if len(found) != 1:
                raise UserError(f"The folder {path} should hold exactly one .pt YOLO checkpoint (found {len(found)}).")
            path = found[0]
        if path.suffix != ".pt":
            raise UserError(f"{path.name} is not a PyTorch .pt checkpoint; give the path to a YOLO .pt file.")
        try:
            yolo = YOLO(str(path))
        except Exception as e:
            raise UserError(f"{path.name} is not a YOLO checkpoint that ultralytics can load "
                            f"({type(e).__name__}: {str(e)[:200]}).") from e
    if yolo.task != "detect":
        raise UserError(f"{weights.choice.display} is a YOLO {yolo.task} model; this tab runs detection models "
                        "(yolo11n.pt, yolov8s.pt, ...). Pick a detection checkpoint.")
    return Detector(yolo, device, dtype, cuda_graphs=_env_flag("CUDA_GRAPHS", True))


def _env_flag(key: str, default: bool) -> bool:
    v = os.environ.get(f"DEMOHUB_{SPEC.name.upper()}_{key}")
    return default if v is None else v.strip().lower() in ("1", "true", "yes", "on")


class Detector:
    """A loaded detection model and everything the lean path needs (device, dtype, stride, class names)."""

    def __init__(self, yolo, device: str, dtype: str, cuda_graphs: bool = True):
        import torch

        net = yolo.model
        net.fuse(verbose=False)  # conv+bn folded, as Ultralytics' AutoBackend does
        net.eval().requires_grad_(False)
        self.torch_dtype = torch.float16 if dtype == "float16" else torch.bfloat16 if dtype == "bfloat16" \
            else torch.float32
        net.to(device=device, dtype=self.torch_dtype)
        cpu_channels_last(device, net)
        self.net = net
        self.device = torch.device(device)
        self.dtype = dtype
        self.names: dict[int, str] = {int(k): str(v) for k, v in dict(net.names).items()}
        self.stride = max(int(net.stride.max()), 32)
        self.end2end = bool(getattr(net, "end2end", False))
        self.nbytes = sum(t.numel() * t.element_size() for t in list(net.parameters()) + list(net.buffers()))
        self.video_batch = VIDEO_BATCH["cuda" if self.device.type == "cuda" else "cpu"]
        self.use_graphs = cuda_graphs and self.device.type == "cuda" and not self.end2end
        self._graphs: OrderedDict[tuple, dict] = OrderedDict()
        # The Detect head caches anchors keyed by the last input shape: two threads running different shapes at
        # once would mix them up, and CUDA graphs share static buffers. So the forward pass runs one at a time.
        self._lock = threading.Lock()
        if self.use_graphs:
            size = DEFAULTS["imgsz"]
            for batch in (1, self.video_batch):  # warm-up and capture now, off the request path
                self._graph((batch, 3, size, size))

    def close(self) -> None:
        self._graphs.clear()
        self.net = None

    def forward(self, x):
        """Raw predictions for a (B, 3, H, W) batch on the model's device and dtype."""
        import torch

        with self._lock, torch.inference_mode():
            if self.use_graphs:
                g = self._graph(tuple(x.shape))
                with torch.cuda.device(self.device):
                    g["input"].copy_(x)
                    g["graph"].replay()
                    return g["output"].clone()
            return self._eager(x)

    def _eager(self, x):
        out = self.net(x)
        return out[0] if isinstance(out, (tuple, list)) else out

    def _graph(self, shape: tuple) -> dict:
        import torch

        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        with torch.inference_mode(), torch.cuda.device(self.device):  # graphs capture on the current device
            static = torch.zeros(shape, device=self.device, dtype=self.torch_dtype)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN picks its kernels, the head builds its anchors for this shape
                    self._eager(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = self._eager(static)
        head = self.net.model[-1]
        # The graph reads the anchors tensor that existed at capture; the head replaces (not updates) it when the
        # shape changes, so keep this one alive for as long as the graph lives.
        entry = {"graph": graph, "input": static, "output": out,
                 "keep": (getattr(head, "anchors", None), getattr(head, "strides", None))}
        self._graphs[shape] = entry
        while len(self._graphs) > MAX_GRAPHS:
            self._graphs.popitem(last=False)
        return entry


# ---- inputs -----------------------------------------------------------------------------------------------------


def check_params(engine: Detector, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
                 max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> dict:
    """Validate the request's settings; returns them typed (`classes` as class ids, `imgsz` a stride multiple)."""
    conf = _number(conf, "Confidence threshold", 0.0, 1.0)
    iou = _number(iou, "IoU threshold", 0.0, 1.0)
    max_det = int(_number(max_det, "Max detections", *MAX_DET_RANGE, whole=True))
    imgsz = int(_number(imgsz, "Inference size", *IMGSZ_RANGE, whole=True))
    imgsz = int(math.ceil(imgsz / engine.stride) * engine.stride)
    return {"conf": conf, "iou": iou, "classes": class_ids(engine, classes), "max_det": max_det, "imgsz": imgsz}


def _number(value, what: str, lo: float, hi: float, whole: bool = False) -> float:
    try:
        if isinstance(value, bool) or value is None:
            raise TypeError
        x = float(value)
    except OverflowError:  # an int beyond float range (its repr may be too long to print)
        raise UserError(f"{what} must be between {lo:g} and {hi:g}; move the slider into that range.") from None
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number from {lo:g} to {hi:g}, not {value!r}.") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise UserError(f"{what} must be between {lo:g} and {hi:g} (got {value!r}); move the slider into that range.")
    if whole and x != int(x):
        raise UserError(f"{what} must be a whole number (got {value!r}).")
    return x


def class_ids(engine: Detector, classes) -> list[int] | None:
    """Class names (or ids) the user picked -> sorted ids; None (or empty) means every class."""
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()
    if classes is None or classes == "" or classes == []:
        return None
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",")]
    elif not isinstance(classes, (list, tuple, set, frozenset)):
        classes = [classes]  # one id; anything else is reported below as an unknown class
    by_name = {v.lower(): k for k, v in engine.names.items()}
    ids, unknown = set(), []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and int(c) in engine.names:
            ids.add(int(c))
        elif isinstance(c, str) and c.strip().lower() in by_name:
            ids.add(by_name[c.strip().lower()])
        elif not (isinstance(c, str) and not c.strip()):
            unknown.append(c)
    if unknown:
        names = list(engine.names.values())
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        raise UserError(f"This model has no class {unknown[0]!r}. Pick classes from its list ({shown}), "
                        "or leave the class filter empty to detect every class.")
    return sorted(ids) or None


@dataclass
class LoadedImage:
    rgb: np.ndarray  # H x W x 3 uint8, what the model sees and what gets drawn on
    original_size: tuple[int, int]  # (width, height) of the image as uploaded (after EXIF rotation)

    @property
    def scale(self) -> float:
        return self.rgb.shape[1] / self.original_size[0]


def read_image(image, max_side: int = MAX_SIDE) -> LoadedImage:
    """Decode an image (path, PIL image or array) to RGB uint8 with EXIF rotation applied.

    Grayscale, RGBA/LA (composited on white), palette, CMYK, 16-bit and float images are converted. Images with a
    side over `max_side` are downscaled while decoding (JPEG draft mode, so a 12000x12000 photo never needs 432 MB).
    Pillow's decompression-bomb guard stays on: files over `2 * Image.MAX_IMAGE_PIXELS` are refused.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if image is None or (isinstance(image, str) and not image.strip()):
        raise UserError("Add an image first: upload one, take a webcam snapshot, or paste one from the clipboard.")
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8 and max(image.shape[:2]) <= max_side:
            _check_size(image.shape[1], image.shape[0])
            return LoadedImage(np.ascontiguousarray(image), (image.shape[1], image.shape[0]))
        im = _array_to_pil(image)
    elif isinstance(image, Image.Image):
        im = image
    else:
        path = Path(image)
        if not path.is_file():
            raise UserError(f"The image file {path.name!r} was not found; upload it again.")
        try:
            with warnings.catch_warnings():  # between 1x and 2x the limit Pillow only warns; we downscale anyway
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(path)
        except Image.DecompressionBombError:
            raise UserError(f"{path.name} has too many pixels to open safely (over "
                            f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); downscale it first.") from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise UserError(f"{path.name} is not an image that can be read (corrupt or unsupported format: "
                            f"{type(e).__name__}). Upload a JPEG, PNG, WebP, BMP, GIF or TIFF file.") from None
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF is not worth failing the image for
        orientation = 1
    w, h = im.size
    original = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    _check_size(*original)
    try:
        if max(w, h) > max_side and im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale, still >= max_side
        im.load()
        im = ImageOps.exif_transpose(im)
        im = _to_rgb(im)
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt image data
        raise UserError(f"The image data is damaged ({str(e)[:120]}); upload an intact file.") from None
    return LoadedImage(np.asarray(im, dtype=np.uint8).copy(), original)


def _check_size(w: int, h: int) -> None:
    if min(w, h) < MIN_SIDE:
        raise UserError(f"The image is only {w}x{h} pixels; use one at least {MIN_SIDE} pixels on each side.")


def _array_to_pil(a: np.ndarray):
    from PIL import Image

    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise UserError(f"An image array must be H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA), not {a.shape}.")
    if a.dtype != np.uint8:
        a = _to_uint8(a.astype(np.float32))
    return Image.fromarray(a)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit and float pixels -> 0..255 (full-range 16-bit divides by 257; floats in 0..1 scale by 255)."""
    hi = float(np.nanmax(a)) if a.size else 0.0
    if hi <= 1.0:
        a = a * 255.0
    elif hi > 255:
        a = a / (257.0 if hi <= 65535 else hi / 255.0)
    return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)


def _to_rgb(im):
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        g = _to_uint8(np.asarray(im, dtype=np.float32))
        return Image.fromarray(np.repeat(g[..., None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


# ---- detection --------------------------------------------------------------------------------------------------


@dataclass
class Detections:
    """What one image produced. Box coordinates are in the original image's pixels (x1, y1, x2, y2)."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    names: dict[int, str]
    image: np.ndarray  # RGB uint8 the model saw; it is the original scaled by `scale`
    scale: float = 1.0
    track_ids: np.ndarray | None = None  # (N,) int64 when tracked
    original_size: tuple[int, int] = (0, 0)  # (width, height)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def labels(self) -> list[str]:
        return [self.names.get(int(c), str(int(c))) for c in self.class_ids]

    def rows(self) -> list[dict]:
        """The table: one dict per box, highest confidence first (class, confidence, x1, y1, x2, y2[, track_id])."""
        rows = []
        for i, label in enumerate(self.labels):
            x1, y1, x2, y2 = (round(float(v), 1) for v in self.boxes[i])
            row = {"class": label, "confidence": round(float(self.scores[i]), 4),
                   "x1": x1, "y1": y1, "x2": x2, "y2": y2}
            if self.track_ids is not None:
                row["track_id"] = int(self.track_ids[i])
            rows.append(row)
        return rows

    def counts(self) -> dict[str, int]:
        """Objects per class, most frequent first."""
        out: dict[str, int] = {}
        for label in self.labels:
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def detect(engine: Detector, image, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
           max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> Detections:
    """Detect objects in one image (a path, PIL image or RGB array). Raises UserError for bad inputs."""
    params = check_params(engine, conf, iou, classes, max_det, imgsz)
    loaded = read_image(image)
    (det,) = _run(engine, [loaded.rgb], **params)
    det.scale = loaded.scale
    det.original_size = loaded.original_size
    if det.scale != 1.0:
        det.boxes = det.boxes / det.scale
    return det


def detect_batch(engine: Detector, frames: list[np.ndarray], conf=DEFAULTS["conf"], iou=DEFAULTS["iou"],
                 classes=None, max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> list[Detections]:
    """Detect objects in a batch of RGB uint8 frames (one forward pass; same-size frames letterbox together)."""
    params = check_params(engine, conf, iou, classes, max_det, imgsz)
    return _run(engine, [np.ascontiguousarray(f) for f in frames], **params)


def _run(engine: Detector, images: list[np.ndarray], conf, iou, classes, max_det, imgsz) -> list[Detections]:
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    x, n = _preprocess(engine, images, imgsz)
    preds = engine.forward(x)[:n]
    preds = non_max_suppression(preds, conf, iou, classes=classes, max_det=max_det, end2end=engine.end2end)
    out = []
    for p, img in zip(preds, images):
        boxes = scale_boxes(x.shape[2:], p[:, :4].float(), img.shape[:2]).cpu().numpy()  # clipped to the image
        p = p.float().cpu().numpy()
        out.append(Detections(boxes.astype(np.float32), p[:, 4].astype(np.float32), p[:, 5].astype(np.int64),
                              engine.names, img, original_size=(img.shape[1], img.shape[0])))
    return out


def _preprocess(engine: Detector, images: list[np.ndarray], imgsz: int):
    """Letterbox to the model's input: (tensor on device, number of real images in it)."""
    import torch

    n = len(images)
    if engine.device.type == "cuda":
        return _letterbox_on_device(engine, images, imgsz), n
    from ultralytics.data.augment import LetterBox

    same = len({im.shape for im in images}) == 1
    lb = LetterBox((imgsz, imgsz), auto=same, stride=engine.stride)  # minimal padding when shapes agree
    batch = np.stack([lb(image=im) for im in images])
    # HWC uint8 -> contiguous NCHW float in one numpy pass: ~1 ms, where torch's permute().contiguous() on uint8
    # takes 10-40 ms on a small CPU; a contiguous NCHW input is also what the fast CPU convolutions want.
    x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    x *= np.float32(1 / 255)
    return torch.from_numpy(x).to(engine.device, engine.torch_dtype), n


def _letterbox_on_device(engine: Detector, images: list[np.ndarray], imgsz: int):
    """The letterbox of `LetterBox(auto=False)` done on the GPU: upload uint8, resize, pad with 114 gray.

    The input is always imgsz x imgsz and a video batch is padded to the engine's batch size, so CUDA graphs see
    only a few shapes."""
    import torch
    import torch.nn.functional as F

    n = len(images)
    rows = engine.video_batch if 1 < n <= engine.video_batch and engine.use_graphs else n
    x = torch.full((rows, 3, imgsz, imgsz), 114 / 255, device=engine.device, dtype=engine.torch_dtype)
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(im.shape, []).append(i)
    for (h, w, _), idx in groups.items():
        src = torch.from_numpy(np.stack([images[i] for i in idx])).to(engine.device, non_blocking=True)
        src = src.permute(0, 3, 1, 2).to(engine.torch_dtype).div_(255)
        r = min(imgsz / h, imgsz / w)
        nh, nw = max(round(h * r), 1), max(round(w * r), 1)
        if (nh, nw) != (h, w):
            src = F.interpolate(src, size=(nh, nw), mode="bilinear", align_corners=False)
        top, left = round((imgsz - nh) / 2 - 0.1), round((imgsz - nw) / 2 - 0.1)
        x[idx, :, top:top + nh, left:left + nw] = src
    return x


def annotate(det: Detections, line_width: int | None = None) -> np.ndarray:
    """The image with boxes and labels drawn by Ultralytics' own plotting (`Results.plot`); RGB uint8."""
    import torch
    from ultralytics.engine.results import Results

    boxes = det.boxes * det.scale
    cols = [boxes, det.scores[:, None], det.class_ids[:, None].astype(np.float32)]
    if det.track_ids is not None:
        cols.insert(1, det.track_ids[:, None].astype(np.float32))  # (x1, y1, x2, y2, id, conf, cls)
    data = torch.from_numpy(np.concatenate(cols, axis=1).astype(np.float32)) if len(det) else torch.zeros((0, 6))
    bgr = np.ascontiguousarray(det.image[..., ::-1])
    res = Results(bgr, path="", names=det.names, boxes=data)
    return np.ascontiguousarray(res.plot(line_width=line_width)[..., ::-1])


def export_table(det: Detections, folder, stem: str = "detections", record: dict | None = None) -> tuple[Path, Path]:
    """Write the detections table as CSV and JSON (same rows) into `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = det.rows()
    columns = ["class", "confidence", "x1", "y1", "x2", "y2"] + (["track_id"] if det.track_ids is not None else [])
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    doc = {"image": {"width": det.original_size[0], "height": det.original_size[1]},
           "coordinates": "pixels of the original image, x1 y1 = top left, x2 y2 = bottom right",
           "detections": rows, "counts": det.counts()}
    if record:
        doc["record"] = record
    json_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return csv_path, json_path


# ---- tracking (webcam stream, optional for videos) --------------------------------------------------------------


def new_tracker(fps: float = 30.0):
    """A fresh Ultralytics ByteTrack tracker (the one `YOLO.track` uses), configured by its bytetrack.yaml."""
    import importlib.util

    if importlib.util.find_spec("lap") is None:  # else ultralytics tries to pip-install it inside the server
        raise UserError("Tracking needs the `lap` package, which is not installed: ask the operator to run "
                        "`pip install 'lap>=0.5.12'` (or reinstall demohub). Detection without tracking works.")
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    cfg = IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml")))
    cfg.track_buffer = max(1, round(cfg.track_buffer * fps / 30))  # its buffer is in frames at 30 frames/s
    return BYTETracker(cfg)


def track(tracker, det: Detections) -> Detections:
    """Associate one frame's detections with the tracker's tracks; returns the tracked boxes with their ids."""
    from ultralytics.engine.results import Boxes

    h, w = det.image.shape[:2]
    data = np.concatenate([det.boxes * det.scale, det.scores[:, None], det.class_ids[:, None]], axis=1)
    tracks = tracker.update(Boxes(data.astype(np.float32), (h, w)), np.ascontiguousarray(det.image[..., ::-1]))
    tracks = np.asarray(tracks, dtype=np.float32).reshape(-1, 8)  # x1 y1 x2 y2 id score cls idx
    return Detections(tracks[:, :4] / det.scale, tracks[:, 5], tracks[:, 6].astype(np.int64), det.names, det.image,
                      det.scale, tracks[:, 4].astype(np.int64), det.original_size)


def track_frame(engine: Detector, tracker, frame, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
                max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> Detections:
    """Detect and track one frame of a stream (webcam); `tracker` comes from `new_tracker` and lives per stream."""
    return track(tracker, detect(engine, frame, conf, iou, classes, max_det, imgsz))


# ---- video ------------------------------------------------------------------------------------------------------


@dataclass
class VideoProgress:
    done: int  # frames processed so far
    total: int | None  # frames in the video, when the container says
    fps: float  # processing speed, frames per second


@dataclass
class VideoResult:
    path: Path  # the annotated H.264 MP4
    frames: int
    fps: float  # frame rate of the video (kept from the input)
    width: int
    height: int
    seconds: float  # processing time
    per_frame: list[dict] = field(default_factory=list)  # {"frame", "time_s", "total", <class>: count, ...}
    tracks: dict[str, int] | None = None  # distinct track ids per class, when tracked
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def totals(self) -> dict[str, int]:
        """Detections per class summed over all frames."""
        out: dict[str, int] = {}
        for row in self.per_frame:
            for k, v in row.items():
                if k not in ("frame", "time_s", "total"):
                    out[k] = out.get(k, 0) + v
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


_END = object()


def detect_video(engine: Detector, video, out_path, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
                 max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"], *, tracking: bool = False,
                 batch: int | None = None, max_side: int = VIDEO_MAX_SIDE,
                 max_frames: int = VIDEO_MAX_FRAMES) -> Iterator[VideoProgress | VideoResult]:
    """Annotate a video file; yields VideoProgress after every batch and finally one VideoResult.

    A generator, so the caller can stop it between batches (closing it stops the decoder and encoder threads and
    deletes the half-written output). The output keeps the input's frame count and frame rate; audio is dropped.
    """
    import av

    params = check_params(engine, conf, iou, classes, max_det, imgsz)
    batch = int(batch or engine.video_batch)
    if not 1 <= batch <= 256:
        raise UserError("The video batch size must be between 1 and 256.")
    container = _open_video(av, video)
    out_path = Path(out_path)
    stop = threading.Event()
    frames_q: queue.Queue = queue.Queue(maxsize=3)
    reader = writer = None
    finished = False
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        total = int(stream.frames or 0) or None
        if total is None and stream.duration and stream.time_base:
            total = int(round(float(stream.duration * stream.time_base * rate))) or None
        if total and total > max_frames:
            raise UserError(f"The video has {total} frames; this hub handles at most {max_frames} per video "
                            f"({max_frames / float(rate) / 60:.1f} minutes here). Trim it and try again.")
        reader = threading.Thread(target=_read_frames, name="yolo-video-read", daemon=True,
                                  args=(container, stream, batch, max_side, max_frames, frames_q, stop))
        reader.start()
        writer = _VideoWriter(av, out_path, rate)
        tracker = new_tracker(float(rate)) if tracking else None
        per_frame: list[dict] = []
        seen: dict[str, set] = {}
        done, t0, size = 0, time.perf_counter(), None
        while True:
            item = _take(frames_q, reader)
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            dets = _run(engine, item, **params)
            if tracker is not None:
                dets = [track(tracker, d) for d in dets]
                for d in dets:
                    for label, tid in zip(d.labels, d.track_ids):
                        seen.setdefault(label, set()).add(int(tid))
            for d in dets:
                per_frame.append({"frame": len(per_frame), "time_s": round(len(per_frame) / float(rate), 3),
                                  "total": len(d), **d.counts()})
            size = size or (item[0].shape[1], item[0].shape[0])
            writer.put(dets)
            done += len(dets)
            yield VideoProgress(done, total, done / max(time.perf_counter() - t0, 1e-9))
        if done == 0:
            raise UserError("The video has no frames that can be decoded; upload a video that plays in a player.")
        writer.close()
        finished = True
        notes = []
        if reader_state := getattr(reader, "note", ""):
            notes.append(reader_state)
        yield VideoResult(out_path, done, float(rate), size[0], size[1], time.perf_counter() - t0, per_frame,
                          {k: len(v) for k, v in sorted(seen.items())} if tracking else None, notes)
    finally:
        stop.set()
        if reader is not None:
            while reader.is_alive():  # unblock a reader waiting on a full queue, then let it see `stop`
                _drain(frames_q)
                reader.join(timeout=0.05)
        container.close()
        if writer is not None and not finished:
            writer.abort()
            out_path.unlink(missing_ok=True)


def _open_video(av, video):
    if video is None or (isinstance(video, str) and not video.strip()):
        raise UserError("Upload a video file first.")
    path = Path(video)
    if not path.is_file():
        raise UserError(f"The video file {path.name!r} was not found; upload it again.")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise UserError(f"{path.name} could not be read as a video ({getattr(e, 'strerror', None) or e}): the file "
                        "is damaged or not a video. Upload an MP4, WebM, MOV, MKV or AVI that plays in a player.") \
            from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path.name} has no video frames (no video track, or an empty one); upload a video "
                        "that plays in a player.")
    return container


def _read_frames(container, stream, batch, max_side, max_frames, q: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: decode RGB frames, downscale to `max_side`, and queue them in batches."""
    import av
    import cv2

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    pending: list[np.ndarray] = []
    count = 0
    try:
        for frame in container.decode(stream):
            if stop.is_set():
                return
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            if max(h, w) > max_side:
                r = max_side / max(h, w)
                rgb = cv2.resize(rgb, (max(2, round(w * r)), max(2, round(h * r))), interpolation=cv2.INTER_AREA)
            if pending and pending[0].shape != rgb.shape:  # a resolution change mid-stream: keep the first size
                rgb = cv2.resize(rgb, (pending[0].shape[1], pending[0].shape[0]), interpolation=cv2.INTER_AREA)
            pending.append(rgb)
            count += 1
            if len(pending) == batch:
                if not put(pending):
                    return
                pending = []
            if count >= max_frames:
                threading.current_thread().note = f"Stopped after {max_frames} frames (the hub's limit per video)."
                break
        if pending and not put(pending):
            return
        put(_END)
    except av.FFmpegError as e:
        put(UserError(f"The video is damaged after frame {count} ({getattr(e, 'strerror', None) or e}); "
                      "re-export it with a video editor and try again."))
    except BaseException as e:  # a bug: hand it to the consumer so it is raised there, not lost in this thread
        put(e)


def _take(q: queue.Queue, reader: threading.Thread):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not reader.is_alive() and q.empty():
                return _END


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


class _VideoWriter:
    """Writer thread: draws each frame (Ultralytics plotting) and encodes H.264 (yuv420p, +faststart) with PyAV."""

    def __init__(self, av, path: Path, rate: Fraction):
        self._av, self.path, self.rate = av, Path(path), rate
        self._q: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._loop, name="yolo-video-write", daemon=True)
        self._thread.start()

    def put(self, dets: list[Detections]) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(dets, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._aborted = True
        _drain(self._q)
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        import cv2

        out = stream = None
        try:
            while True:
                dets = self._q.get()
                if dets is None or self._aborted:
                    break
                for d in dets:
                    frame = annotate(d)
                    h, w = frame.shape[:2]
                    if h % 2 or w % 2:  # yuv420p needs even sides: pad one edge pixel, coordinates unchanged
                        frame = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
                    if out is None:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        out = self._av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
                        stream = out.add_stream("libx264", rate=self.rate)
                        stream.width, stream.height = frame.shape[1], frame.shape[0]
                        stream.pix_fmt = "yuv420p"
                        stream.options = {"crf": "23", "preset": "veryfast"}
                    vf = self._av.VideoFrame.from_ndarray(frame, format="rgb24")
                    for packet in stream.encode(vf):
                        out.mux(packet)
            if out is not None and not self._aborted:
                for packet in stream.encode(None):
                    out.mux(packet)
        except BaseException as e:
            self._error = e
            _drain(self._q)
        finally:
            if out is not None:
                out.close()


def export_counts(result: VideoResult, path) -> Path:
    """Per-frame counts as CSV: frame, time_s, total, then one column per class seen."""
    path = Path(path)
    classes = sorted({k for r in result.per_frame for k in r} - {"frame", "time_s", "total"})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["frame", "time_s", "total", *classes], restval=0)
        w.writeheader()
        w.writerows(result.per_frame)
    return path


# ---- UI ---------------------------------------------------------------------------------------------------------


def _output_dir(kind: str) -> Path:
    return request_folder(SPEC.name, kind)


def _asset(name: str) -> str | None:
    """A sample image that ships with ultralytics, found without importing it."""
    from hub.assets import package_file

    p = package_file("ultralytics", "assets", name)
    return str(p) if p else None


# Two input tweaks, made on the component instances: subclassing a gradio component would make gradio write a .pyi
# stub next to this file.


def _undecoded(image):
    """gr.Image that hands the engine the uploaded file untouched: decoding, EXIF rotation, the decompression-bomb
    guard and the error sentences all live in `read_image` (gradio's own preprocessing opens the file with PIL)."""
    original = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return original(payload)

    image.preprocess = preprocess
    return image


def _raw(slider):
    """A slider whose value reaches the engine as sent, so an API caller gets the engine's sentence for a value out
    of range (e.g. confidence 1.5) instead of gradio's bare bounds error."""
    slider.preprocess = lambda payload: payload
    return slider


def _weights_hash(lease) -> dict:
    """Native checkpoints are pinned by hash, not revision: put the hash in the reproducibility record."""
    sha = lease.weights.choice.sha256
    return {"sha256": sha} if sha and not lease.weights.is_random else {}


def _int_option(ctx, key: str, default: int) -> int:
    v = ctx.settings.demo_option(ctx.name, key)
    try:
        return int(v) if v is not None else default
    except ValueError:
        log.error("DEMOHUB_%s_%s=%r is not a whole number; using %d.", ctx.name.upper(), key.upper(), v, default)
        return default


def ui(ctx):
    import gradio as gr
    import pandas as pd

    max_frames = _int_option(ctx, "max_video_frames", VIDEO_MAX_FRAMES)
    video_batch = _int_option(ctx, "video_batch", 0) or None
    current = ctx.manager.choice(ctx.name)
    start_names = list(COCO_NAMES) if current.source in ("native", "random") else []

    model = ctx.model_dropdown()
    with gr.Row():
        conf = _raw(gr.Slider(0, 1, DEFAULTS["conf"], step=0.01, label="Confidence threshold"))
        iou = _raw(gr.Slider(0, 1, DEFAULTS["iou"], step=0.01, label="IoU threshold (overlap allowed between boxes)"))
        max_det = _raw(gr.Slider(1, 1000, DEFAULTS["max_det"], step=1, label="Max detections per image"))
        imgsz = _raw(gr.Slider(320, 1280, DEFAULTS["imgsz"], step=32, label="Inference size (pixels)"))
    classes = gr.Dropdown(start_names, value=[], multiselect=True, allow_custom_value=True,
                          label="Only these classes (empty = every class)")
    record = gr.JSON(label="Record (model, device, parameters)", render=False)

    def pan_clip() -> str | None:
        """A 3 s H.264 pan across ultralytics' zidane.jpg, made once per machine (gradio's sample videos show a
        globe and a title card: nothing a COCO detector finds). None, with a log line, if it cannot be made."""
        src = _asset("zidane.jpg")
        out = Path(tempfile.gettempdir()) / "demohub" / SPEC.name / "examples" / "zidane_pan.mp4"
        if src is None or out.is_file():
            return str(out) if src else None
        part = out.with_name(f"{uuid.uuid4().hex}.part.mp4")
        try:
            import av
            from PIL import Image

            out.parent.mkdir(parents=True, exist_ok=True)
            im = Image.open(src).convert("RGB")
            w, h = im.size
            cw, ch = w * 2 // 3, h * 2 // 3
            with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as box:
                stream = box.add_stream("libx264", rate=12)
                stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
                stream.options = {"crf": "26", "preset": "veryfast"}
                for i in range(36):
                    x, y = round((w - cw) * i / 35), round((h - ch) * i / 35)
                    frame = np.asarray(im.crop((x, y, x + cw, y + ch)).resize((640, 360), Image.BILINEAR))
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        box.mux(packet)
                for packet in stream.encode(None):
                    box.mux(packet)
            os.replace(part, out)  # atomic: another process building the UI sees a whole file or none
            return str(out)
        except Exception as e:  # an optional example: the tab works without it
            part.unlink(missing_ok=True)
            log.warning("Could not make the sample video for the YOLO tab (%s: %s); it is left out.",
                        type(e).__name__, e)
            return None

    with gr.Tab("Image"):
        with gr.Row():
            image = _undecoded(gr.Image(sources=["upload", "webcam", "clipboard"], type="filepath", label="Image"))
            annotated = gr.Image(label="Detections", type="numpy", format="jpeg", interactive=False)
        go = gr.Button("Detect", variant="primary")
        examples = [p for p in (_asset("bus.jpg"), _asset("zidane.jpg")) if p]
        if examples:
            gr.Examples([[p] for p in examples], [image], label="Sample images (ship with ultralytics)")
        with gr.Row():
            table = gr.Dataframe(headers=["class", "confidence", "x1", "y1", "x2", "y2"], label="Detections",
                                 interactive=False, wrap=True, max_height=360)
            chart = gr.BarPlot(x="class", y="count", title="Objects per class", sort="-y", y_lim=[0, None],
                               height=300)
        downloads = gr.File(label="Download the table (CSV, JSON)", file_count="multiple", interactive=False)

    with gr.Tab("Video"):
        with gr.Row():
            video_in = gr.Video(label="Video file", sources=["upload"])
            video_out = gr.Video(label="Annotated video (H.264 MP4)", interactive=False)
        tracking = gr.Checkbox(False, label="Track objects across frames (ByteTrack ids; counts distinct objects)")
        with gr.Row():
            run_video = gr.Button("Detect in video", variant="primary")
            stop_video = gr.Button("Stop", variant="stop")
        clip = pan_clip()
        if clip:
            gr.Examples([[clip]], [video_in], label="Sample video (a 3 s pan across ultralytics' zidane.jpg)",
                        cache_examples=False)
        status = gr.Markdown()
        counts_plot = gr.LinePlot(x="time_s", y="count", color="class", title="Objects per frame", y_lim=[0, None],
                                  height=300)
        counts_file = gr.File(label="Per-frame counts (CSV)", interactive=False)

    with gr.Tab("Webcam (live tracking)"):
        gr.Markdown("Start the webcam: every frame is detected and tracked (ByteTrack), ids stay with objects.")
        with gr.Row():
            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            cam_out = gr.Image(label="Tracked", type="numpy", format="jpeg", interactive=False, streaming=False)
        cam_state = gr.State(None)

    record.render()
    settings = [conf, iou, classes, max_det, imgsz]

    @ctx.handler
    def run_detect(model_id, image, conf, iou, classes, max_det, imgsz, progress=gr.Progress(track_tqdm=True)):
        def work(lease):
            t0 = time.perf_counter()
            det = detect(lease.engine, image, conf, iou, classes, max_det, imgsz)
            ms = (time.perf_counter() - t0) * 1e3
            drawn = annotate(det)
            rec = lease.record(**_weights_hash(lease), conf=float(conf), iou=float(iou), classes=classes or "all",
                               max_det=int(max_det), imgsz=int(imgsz),
                               image=f"{det.original_size[0]}x{det.original_size[1]}",
                               detections=len(det), ms=round(ms, 1))
            if det.scale != 1.0:
                rec["note"] = (f"Large image: detected on a {det.image.shape[1]}x{det.image.shape[0]} copy; "
                               "table coordinates are in the original image's pixels.")
            return det, drawn, rec

        det, drawn, rec = ctx.run(work, model_id)
        csv_path, json_path = export_table(det, _output_dir("tables"), record=rec)
        rows = pd.DataFrame(det.rows(), columns=["class", "confidence", "x1", "y1", "x2", "y2"])
        counts = pd.DataFrame({"class": list(det.counts()), "count": list(det.counts().values())})
        return drawn, rows, counts, [str(csv_path), str(json_path)], rec

    go.click(run_detect, [model, image, *settings], [annotated, table, chart, downloads, record],
             api_name="detect", **ctx.events)

    @ctx.handler
    def run_video_fn(model_id, video, conf, iou, classes, max_det, imgsz, tracking,
                     progress=gr.Progress(track_tqdm=True)):
        out_path = _output_dir("videos") / "detections.mp4"
        result = None
        with ctx.manager.use(ctx.name, model_id) as lease:
            if lease.warning:
                gr.Warning(lease.warning)
            for item in detect_video(lease.engine, video, out_path, conf, iou, classes, max_det, imgsz,
                                     tracking=bool(tracking), batch=video_batch, max_frames=max_frames):
                if isinstance(item, VideoProgress):
                    if item.total:
                        progress((min(item.done, item.total), item.total), desc="Detecting", unit="frames")
                    msg = f"Processed {item.done}{f' / {item.total}' if item.total else ''} frames " \
                          f"({item.fps:.1f} frames/s)..."
                    yield gr.skip(), msg, gr.skip(), gr.skip(), gr.skip()
                else:
                    result = item
            rec = lease.record(**_weights_hash(lease), conf=float(conf), iou=float(iou), classes=classes or "all",
                               max_det=int(max_det), imgsz=int(imgsz), tracking=bool(tracking), frames=result.frames,
                               fps=round(result.fps, 3), size=f"{result.width}x{result.height}",
                               processing_fps=round(result.frames / max(result.seconds, 1e-9), 1))
        rec["totals"] = result.totals()
        if result.tracks is not None:
            rec["distinct_objects"] = result.tracks
        long = [{"time_s": r["time_s"], "class": k, "count": v} for r in result.per_frame for k, v in r.items()
                if k not in ("frame", "time_s", "total")]
        plot = pd.DataFrame(long, columns=["time_s", "class", "count"])
        counts = export_counts(result, out_path.parent / "counts_per_frame.csv")
        summary = (f"Done: {result.frames} frames at {result.fps:.2f} frames/s ({result.duration_s:.1f} s of video) "
                   f"in {result.seconds:.1f} s.")
        if result.tracks is not None:
            summary += " Distinct objects: " + (", ".join(f"{k} {v}" for k, v in result.tracks.items()) or "none") + "."
        for note in result.notes:
            summary += f" {note}"
            gr.Warning(note)
        yield str(result.path), summary, plot, str(counts), rec

    video_event = run_video.click(
        run_video_fn, [model, video_in, *settings, tracking], [video_out, status, counts_plot, counts_file, record],
        api_name="detect_video", **ctx.events)
    stop_video.click(None, None, None, cancels=[video_event])

    @ctx.handler
    def run_track(model_id, frame, conf, iou, classes, max_det, imgsz, state):
        if frame is None:
            return None, state
        model_key = model_id or ctx.default_model()

        def work(lease):
            nonlocal state
            if state is None or state[0] != model_key:
                state = (model_key, new_tracker(30.0))
            return annotate(track_frame(lease.engine, state[1], frame, conf, iou, classes, max_det, imgsz))

        return ctx.run(work, model_id), state

    cam.stream(run_track, [model, cam, *settings, cam_state], [cam_out, cam_state], stream_every=0.2,
               time_limit=300, api_name="track_stream", **ctx.events)

    @ctx.handler
    def class_choices(model_id):
        names = ctx.run(lambda lease: list(lease.engine.names.values()), model_id)
        return gr.update(choices=names, value=[])

    model.change(class_choices, model, classes, api_visibility="private", **ctx.events)
