"""The YOLO engine: load (official weights, a local .pt or random weights), the `Detector`, `detect` and
`detect_batch` with their one check step, and the work methods the tab calls (`WORK`: detect, detect_video,
track_stream, class_names; requests and results in types.py). Never imports gradio."""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub import loadtimes, validate
from hub.contract import EngineBase
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.media.image import Picture, read_image
from hub.outputs import request_folder
from hub.sessions import Sessions
from hub.work import Work

from .formats import annotate, export_counts, export_table
from .loading import fetch, load  # noqa: F401 (the Demo names them here; load builds a Detector)
from .spec import DEFAULTS, IMGSZ_RANGE, MAX_DET_RANGE, MAX_SIDE, MIN_SIDE, SPEC, VIDEO_BATCH
from .spec import VIDEO_MAX_FRAMES
from .types import ClassNames, DetectRequest, DetectResult, NamesRequest, TrackRequest, TrackResult, VideoDone
from .types import VideoRequest, VideoResult

log = logging.getLogger("demohub")

TRACKER_BYTES = 256 * 1024  # a generous bound of one ByteTrack tracker (its tracks' Kalman states), for the budget


class _Tracker:
    """One webcam stream's ByteTrack tracker; its frames are tracked one at a time."""

    def __init__(self, tracker):
        self.tracker, self.lock = tracker, threading.Lock()
        self.frames = 0  # frames this stream's tracker has seen


class Detector(EngineBase):
    """A loaded detection model and everything the lean path needs (device, dtype, stride, class names), plus the
    ByteTrack trackers of the webcam streams it serves (`trackers`, one per session key, hub.sessions)."""

    max_video_frames = VIDEO_MAX_FRAMES  # the operator's max_video_frames option (set by `load`)

    def __init__(self, yolo, device: str, dtype: str, cuda_graphs: bool = True, video_batch: int | None = None):
        import torch

        from .fast import GraphCache

        net = yolo.model
        head = net.model[-1]
        if getattr(head, "one2one_cv2", None) is not None:
            # An end-to-end model (YOLO26, YOLOv10): run its NMS-free one-to-one head, as Ultralytics' `nms=False`
            # does; fusing then drops the one-to-many head, which is only there for training and NMS-style export.
            net.end2end = True
        net.fuse(verbose=False)  # conv+bn folded, as Ultralytics' AutoBackend does
        net.eval().requires_grad_(False)
        self.torch_dtype = torch.float16 if dtype == "float16" else torch.bfloat16 if dtype == "bfloat16" \
            else torch.float32
        with loadtimes.stage("convert"):  # the run dtype and layout
            net.to(device=device, dtype=self.torch_dtype)
            cpu_channels_last(device, net)
        self.net = net
        self.device = torch.device(device)
        self.dtype = dtype
        self.names: dict[int, str] = {int(k): str(v) for k, v in dict(net.names).items()}
        self.stride = max(int(net.stride.max()), 32)
        self.end2end = bool(getattr(net, "end2end", False))
        self.nbytes = sum(t.numel() * t.element_size() for t in list(net.parameters()) + list(net.buffers()))
        self.video_batch = int(video_batch or VIDEO_BATCH["cuda" if self.device.type == "cuda" else "cpu"])
        self.use_graphs = cuda_graphs and self.device.type == "cuda" and not self.end2end
        self.openvino = None  # openvino.OpenVinoNet on a CPU when the openvino package is installed
        self.weights_format = ""  # what the Models tab and records say ran, when not plain torch
        self._graphs = GraphCache(net, self.device, self.torch_dtype, self._eager)
        # The Detect head caches anchors keyed by the last input shape: two threads running different shapes at
        # once would mix them up, and CUDA graphs share static buffers. So the forward pass runs one at a time.
        self._lock = threading.Lock()
        self.trackers: Sessions[_Tracker] = Sessions(ttl_s=600, max_bytes=64 * 2**20, max_items=256,
                                                     size=lambda entry: TRACKER_BYTES)
        if self.use_graphs:
            size = DEFAULTS["imgsz"]
            for batch in (1, self.video_batch):  # warm-up and capture now, off the request path
                self._graphs.get((batch, 3, size, size))

    @property
    def extra_bytes(self) -> int:
        """The webcam streams' trackers, counted in the memory budget."""
        return self.trackers.nbytes

    def close(self) -> None:
        self._graphs.clear()
        self.trackers.clear()
        self.net = self.openvino = None

    def forward(self, x, max_det: int = DEFAULTS["max_det"]):
        """Raw predictions for a (B, 3, H, W) batch on the model's device and dtype: (B, 4 + classes, anchors) for
        NMS models, (B, K, 6) rows of x1, y1, x2, y2, score, class (best first) for end-to-end ones, where K is
        max(max_det, 300) (as Ultralytics' predictor: a class filter still finds its boxes among the top ones)."""
        import torch

        with self._lock, torch.inference_mode():
            if self.end2end:
                k = max(int(max_det), E2E_TOP_K)
                if self.openvino is not None and k == E2E_TOP_K and _anchors(x.shape[2:], self.net) >= k:
                    return self.openvino(x)  # its graph keeps the top E2E_TOP_K (fixed at conversion)
                self.net.model[-1].max_det = k
                return self._eager(x)
            if self.openvino is not None:
                return self.openvino(x)
            if self.use_graphs:
                return self._graphs.replay(x)
            return self._eager(x)

    def _eager(self, x):
        out = self.net(x)
        return out[0] if isinstance(out, (tuple, list)) else out


E2E_TOP_K = 300  # candidates an end-to-end head keeps (Ultralytics' default max_det, and its OpenVINO graph's)


def _anchors(hw, net) -> int:
    """Anchor points the head sees for an input of height x width (one per cell of each output level)."""
    return sum(math.ceil(hw[0] / float(s)) * math.ceil(hw[1] / float(s)) for s in net.model[-1].stride)


# ---- inputs -----------------------------------------------------------------------------------------------------


def check_params(engine: Detector, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
                 max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> dict:
    """Check the request's settings (out of range: refused); returns them typed (`classes` as class ids, `imgsz`
    rounded up to a multiple of the model's stride). Empty values take Ultralytics' defaults."""
    conf = validate.number(conf, "confidence threshold", 0.0, 1.0, default=DEFAULTS["conf"])
    iou = validate.number(iou, "IoU threshold", 0.0, 1.0, default=DEFAULTS["iou"])
    max_det = validate.number(max_det, "max detections", *MAX_DET_RANGE, integer=True, default=DEFAULTS["max_det"])
    imgsz = validate.number(imgsz, "inference size", *IMGSZ_RANGE, integer=True, default=DEFAULTS["imgsz"])
    imgsz = int(math.ceil(imgsz / engine.stride) * engine.stride)
    return {"conf": conf, "iou": iou, "classes": class_ids(engine, classes), "max_det": max_det, "imgsz": imgsz}


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


def load_image(image) -> Picture:
    """An upload (path, PIL image, array) decoded by the hub's one decoder, at most `MAX_SIDE` on its long side."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise UserError("Add an image first: upload one, take a webcam snapshot, or paste one from the clipboard.")
    return read_image(image, "the image", min_side=MIN_SIDE, max_side=MAX_SIDE)


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
    return detect_picture(engine, load_image(image), params)


def detect_picture(engine: Detector, picture: Picture, params: dict) -> Detections:
    """`detect` for a decoded picture and checked settings (`check_params`)."""
    (det,) = run(engine, [picture.array()], **params)
    det.scale = picture.scale
    det.original_size = picture.original_size
    if det.scale != 1.0:
        det.boxes = det.boxes / det.scale
    return det


def detect_batch(engine: Detector, frames: list[np.ndarray], conf=DEFAULTS["conf"], iou=DEFAULTS["iou"],
                 classes=None, max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"]) -> list[Detections]:
    """Detect objects in a batch of RGB uint8 frames (one forward pass; same-size frames letterbox together)."""
    params = check_params(engine, conf, iou, classes, max_det, imgsz)
    return run(engine, [np.ascontiguousarray(f) for f in frames], **params)


def run(engine: Detector, images: list[np.ndarray], conf, iou, classes, max_det, imgsz) -> list[Detections]:
    """The lean path for already checked settings (`check_params`) and decoded RGB uint8 images."""
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    x, n = _preprocess(engine, images, imgsz)
    preds = engine.forward(x, max_det)[:n]
    if engine.end2end:  # NMS-free: the head already gave one box per object; `iou` does not apply
        preds = select_end2end(preds, conf, classes, max_det)
    else:
        preds = non_max_suppression(preds, conf, iou, classes=classes, max_det=max_det)
    out = []
    for p, img in zip(preds, images):
        boxes = scale_boxes(x.shape[2:], p[:, :4].float(), img.shape[:2]).cpu().numpy()  # clipped to the image
        p = p.float().cpu().numpy()
        out.append(Detections(boxes.astype(np.float32), p[:, 4].astype(np.float32), p[:, 5].astype(np.int64),
                              engine.names, img, original_size=(img.shape[1], img.shape[0])))
    return out


def select_end2end(preds, conf: float, classes: list[int] | None, max_det: int) -> list:
    """An end-to-end head's (B, K, 6) rows, best first -> per image the rows above `conf` in `classes`, at most
    `max_det`: all the post-processing such a model needs (no NMS)."""
    import torch

    out = []
    wanted = torch.tensor(classes, device=preds.device) if classes else None
    for p in preds:
        keep = p[:, 4] > conf
        if wanted is not None:
            keep &= torch.isin(p[:, 5].long(), wanted)
        out.append(p[keep][:max_det].float())
    return out


def _preprocess(engine: Detector, images: list[np.ndarray], imgsz: int):
    """Letterbox to the model's input: (tensor on device, number of real images in it)."""
    import torch

    n = len(images)
    if engine.device.type == "cuda":
        from .fast import letterbox_on_device

        return letterbox_on_device(engine, images, imgsz), n
    from ultralytics.data.augment import LetterBox

    same = len({im.shape for im in images}) == 1
    # minimal padding when shapes agree
    lb = LetterBox((imgsz, imgsz), auto=same, stride=engine.stride)
    batch = np.stack([lb(image=im) for im in images])
    # HWC uint8 -> contiguous NCHW float in one numpy pass: ~1 ms, where torch's permute().contiguous() on uint8
    # takes 10-40 ms on a small CPU; a contiguous NCHW input is also what the fast CPU convolutions want.
    x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    x *= np.float32(1 / 255)
    return torch.from_numpy(x).to(engine.device, engine.torch_dtype), n


# ---- the work methods (what the tab calls: requests and results in types.py) ------------------------------------
WORK = Work()

def _record(lease, params: dict, classes, **extra) -> dict:
    """The reproducibility record; native checkpoints are pinned by hash, not revision, so the hash goes in."""
    sha = lease.weights.choice.sha256
    pinned = {"sha256": sha} if sha and not lease.weights.is_random else {}
    # an end-to-end model (YOLO26) has no NMS step, so the IoU threshold played no part: the record says so
    nms = not getattr(lease.engine, "end2end", False)
    return lease.record(**pinned, conf=params["conf"], iou=params["iou"] if nms else None, nms=nms,
                        classes=classes or "all", max_det=params["max_det"], imgsz=params["imgsz"], **extra)


def _checked(engine: Detector, req) -> dict:
    return check_params(engine, req.conf, req.iou, req.classes, req.max_det, req.imgsz)


@WORK.method(DetectRequest, name="detect")
def detect_request(lease, req: DetectRequest, job) -> DetectResult:
    """/detect: the drawn image, the table, the counts, the CSV + JSON files and the record."""
    params = _checked(lease.engine, req)
    t0 = time.perf_counter()
    det = detect_picture(lease.engine, load_image(req.image), params)
    ms = (time.perf_counter() - t0) * 1e3
    rec = _record(lease, params, req.classes, image=f"{det.original_size[0]}x{det.original_size[1]}",
                  detections=len(det), ms=round(ms, 1))
    if det.scale != 1.0:
        rec["note"] = (f"Large image: detected on a {det.image.shape[1]}x{det.image.shape[0]} copy; "
                       "table coordinates are in the original image's pixels.")
    csv_path, json_path = export_table(det, request_folder(SPEC.name, "tables"), record=rec)
    return DetectResult(annotate(det), det.rows(), det.counts(), (str(csv_path), str(json_path)), rec)


@WORK.method(VideoRequest, name="detect_video")
def video_request(lease, req: VideoRequest, job):
    """/detect_video: VideoProgress after every batch, then one VideoDone (the video, its record, the counts CSV).
    Stops between batches when the consumer goes away (closing the video stops its threads, drops the file)."""
    from .video import detect_video

    params = _checked(lease.engine, req)
    out_path = request_folder(SPEC.name, "videos") / "detections.mp4"
    items = detect_video(lease.engine, req.video, out_path, **params, tracking=bool(req.tracking),
                         max_frames=lease.engine.max_video_frames)
    with closing(items):
        for item in items:
            if job.stop.is_set():
                return
            if isinstance(item, VideoResult):
                item = _video_done(lease, params, req, item, out_path.parent / "counts_per_frame.csv")
            yield item


def _video_done(lease, params: dict, req: VideoRequest, result: VideoResult, counts_path) -> VideoDone:
    rec = _record(lease, params, req.classes, tracking=bool(req.tracking), frames=result.frames,
                  fps=round(result.fps, 3), size=f"{result.width}x{result.height}",
                  processing_fps=round(result.frames / max(result.seconds, 1e-9), 1))
    rec["totals"] = result.totals()
    if result.tracks is not None:
        rec["distinct_objects"] = result.tracks
    return VideoDone(result, rec, str(export_counts(result, counts_path)))


def _session(key) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 256:
        raise UserError("The webcam stream needs a session key (a short text) so its tracks carry over between "
                        "frames; start the webcam again.")
    return key


@WORK.method(TrackRequest, name="track_stream")
def track_request(lease, req: TrackRequest, job) -> TrackResult:
    """track_stream: one webcam frame detected and tracked by the session's ByteTrack tracker, which the engine
    keeps between frames (`Detector.trackers`), so ids stay with objects on any backend."""
    from .video import new_tracker, track

    engine = lease.engine
    session = _session(req.session)
    params = _checked(engine, req)
    picture = load_image(req.frame)
    entry = engine.trackers.get(session, lambda: _Tracker(new_tracker(30.0)))
    with entry.lock:  # frames of one stream in order: the tracker's state is not thread-safe
        det = track(entry.tracker, detect_picture(engine, picture, params))
        entry.frames += 1
        frames = entry.frames
    return TrackResult(annotate(det), det.counts(), len(det), [int(t) for t in det.track_ids], frames)


@WORK.method(NamesRequest, name="class_names")
def class_names(lease, req: NamesRequest, job) -> ClassNames:
    """The model's class names, in class-id order (the class filter's choices for a custom checkpoint)."""
    return ClassNames(tuple(lease.engine.names.values()))
