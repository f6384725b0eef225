"""Video files and streams: `detect_video` (decode on a reader thread, batched inference, drawing and H.264 encoding
on a writer thread, so the three overlap) and ByteTrack tracking (`new_tracker`, `track`, `track_frame`).

The output keeps the input's frame count and frame rate and plays in every browser (libx264, yuv420p, +faststart);
audio is dropped. Opening the upload and its sentences for unusable files are the hub's (`hub.media.video`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from hub import validate
from hub.errors import UserError
from hub.media.video import damaged, frame_count, frame_rate, open_video

from .engine import Detections, Detector, check_params, detect, run
from .formats import annotate
from .spec import DEFAULTS, VIDEO_BATCH_RANGE, VIDEO_MAX_FRAMES, VIDEO_MAX_SIDE
from .types import VideoProgress, VideoResult

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


# ---- video files ------------------------------------------------------------------------------------------------


_END = object()


def detect_video(engine: Detector, video, out_path, conf=DEFAULTS["conf"], iou=DEFAULTS["iou"], classes=None,
                 max_det=DEFAULTS["max_det"], imgsz=DEFAULTS["imgsz"], *, tracking: bool = False,
                 batch: int | None = None, max_side: int = VIDEO_MAX_SIDE,
                 max_frames: int = VIDEO_MAX_FRAMES) -> Iterator[VideoProgress | VideoResult]:
    """Annotate a video file; yields VideoProgress after every batch and finally one VideoResult.

    A generator, so the caller can stop it between batches (closing it stops the decoder and encoder threads and
    deletes the half-written output). `batch`: frames per forward pass (None or 0: the engine's video batch).
    """
    params = check_params(engine, conf, iou, classes, max_det, imgsz)
    batch = validate.number(batch or engine.video_batch, "video batch size", *VIDEO_BATCH_RANGE, integer=True)
    container, stream = open_video(video)
    out_path = Path(out_path)
    reader = writer = None
    finished = False
    try:
        stream.thread_type = "AUTO"
        rate, total = frame_rate(stream), frame_count(stream)
        if total and total > max_frames:
            raise UserError(f"The video has {total} frames; this hub handles at most {max_frames} per video "
                            f"({max_frames / float(rate) / 60:.1f} minutes here). Trim it and try again.")
        reader = _FrameReader(container, stream, batch, max_side, max_frames)
        writer = _VideoWriter(out_path, rate)
        tracker = new_tracker(float(rate)) if tracking else None
        result = yield from _process(engine, params, reader, writer, tracker, rate, total)
        writer.close()
        finished = True
        yield result
    finally:
        if reader is not None:
            reader.stop()
        container.close()
        if writer is not None and not finished:
            writer.abort()
            out_path.unlink(missing_ok=True)


def _process(engine, params, reader: "_FrameReader", writer: "_VideoWriter", tracker, rate: Fraction,
             total: int | None):
    """Detect (and track) batch after batch, yielding progress; returns the VideoResult (writer not yet closed)."""
    per_frame: list[dict] = []
    seen: dict[str, set] = {}
    done, t0, size = 0, time.perf_counter(), None
    while (item := reader.take()) is not _END:
        dets = run(engine, item, **params)
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
    return VideoResult(str(writer.path), done, float(rate), size[0], size[1], time.perf_counter() - t0, per_frame,
                       {k: len(v) for k, v in sorted(seen.items())} if tracker is not None else None,
                       [reader.note] if reader.note else [])


class _FrameReader:
    """Reader thread: decode RGB frames, downscale to `max_side`, and queue them in batches of `batch`."""

    def __init__(self, container, stream, batch: int, max_side: int, max_frames: int):
        self._args = (container, stream, batch, max_side, max_frames)
        self._q: queue.Queue = queue.Queue(maxsize=3)
        self._stop = threading.Event()
        self.note = ""
        self._thread = threading.Thread(target=self._loop, name="yolo-video-read", daemon=True)
        self._thread.start()

    def take(self):
        """The next batch (a list of frames), or _END; an error in the thread is raised here."""
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    return _END
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def stop(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a reader waiting on a full queue, then let it see `stop`
            _drain(self._q)
            self._thread.join(timeout=0.05)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self) -> None:
        import av

        container, stream, batch, max_side, max_frames = self._args
        pending: list[np.ndarray] = []
        count = 0
        try:
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                pending.append(_fit(frame.to_ndarray(format="rgb24"), max_side, pending[0] if pending else None))
                count += 1
                if len(pending) == batch:
                    if not self._put(pending):
                        return
                    pending = []
                if count >= max_frames:
                    self.note = f"Stopped after {max_frames} frames (the hub's limit per video)."
                    break
            if pending and not self._put(pending):
                return
            self._put(_END)
        except av.FFmpegError as e:
            self._put(damaged(e, count))
        except BaseException as e:  # a bug: hand it to the consumer so it is raised there, not lost in this thread
            self._put(e)


def _fit(rgb: np.ndarray, max_side: int, first: np.ndarray | None) -> np.ndarray:
    """Downscale a frame to `max_side`; a resolution change mid-stream is resized to the batch's first size."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        r = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(2, round(w * r)), max(2, round(h * r))), interpolation=cv2.INTER_AREA)
    if first is not None and first.shape != rgb.shape:
        rgb = cv2.resize(rgb, (first.shape[1], first.shape[0]), interpolation=cv2.INTER_AREA)
    return rgb


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


class _VideoWriter:
    """Writer thread: draws each frame (Ultralytics plotting) and encodes H.264 (yuv420p, +faststart) with PyAV."""

    def __init__(self, path: Path, rate: Fraction):
        self.path, self.rate = Path(path), rate
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
        import av
        import cv2

        out = stream = None
        try:
            while (dets := self._q.get()) is not None and not self._aborted:
                for d in dets:
                    frame = annotate(d)
                    h, w = frame.shape[:2]
                    if h % 2 or w % 2:  # yuv420p needs even sides: pad one edge pixel, coordinates unchanged
                        frame = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
                    if out is None:
                        out, stream = self._open(frame.shape[1], frame.shape[0])
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
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

    def _open(self, width: int, height: int):
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        out = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        stream = out.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        return out, stream


# ---- the sample clip --------------------------------------------------------------------------------------------


def pan_clip(src: Path, out: Path) -> Path:
    """A 3 s H.264 pan across the picture `src` (640x360, 12 frames/s), written atomically to `out`."""
    import av
    from PIL import Image

    part = out.with_name(f"{uuid.uuid4().hex}.part.mp4")
    try:
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
        return out
    finally:
        part.unlink(missing_ok=True)
