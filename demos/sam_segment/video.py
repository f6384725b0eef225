"""Video tracking with SAM 2.1: click an object on the first frame, track it through the clip.

Frames are decoded one at a time (PyAV), scaled to at most `max_side`, and fed to `Sam2VideoModel` in streaming mode
(transformers' `init_video_session` with no video, `model(inference_session, frame=...)`), so memory holds the
model's per-frame memory bank but never the whole decoded clip. Each frame's mask is written at once: the overlay to
an H.264 MP4 and a PNG into a zip. A generator: it yields TrackProgress after every frame and finally a TrackResult;
closing it (Stop) deletes the half-written files.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from demos.sam_segment.prompts import check_prompts
from demos.sam_segment.types import MAX_FRAMES, TrackProgress, TrackResult
from hub import validate
from hub.errors import UserError
from hub.media.video import damaged, frame_count, frame_rate, open_video

FRAMES_RANGE = (1, MAX_FRAMES)
MAX_SIDE = 640  # frames are scaled down to this longest side before tracking (SAM 2 sees 1024x1024 anyway)
COLOR = np.array([30, 144, 255], np.float32)  # the overlay's blue


_TRACKER_LOCK = threading.Lock()


def tracker_of(engine):
    """The SAM 2.1 engine that tracks video for `engine`: itself for a SAM 2.1 model. The hidden test model
    "tiny-random" (a tiny SAM for images) tracks with a tiny random SAM 2.1 built on first use and kept with it, so
    that the contract, load and browser tests run every API of the tab on one model. UserError for other models."""
    if getattr(engine, "family", None) == "sam2":
        return engine
    if getattr(engine, "arch", None) == "tiny":
        with _TRACKER_LOCK:
            if getattr(engine, "video_tracker", None) is None:
                from types import SimpleNamespace

                from demos.sam_segment import sam2

                weights = SimpleNamespace(source="random", choice=SimpleNamespace(options={"arch": "tiny"}))
                engine.video_tracker = sam2.load(weights, engine.device, engine.dtype)
            return engine.video_tracker
    raise UserError("Video tracking needs a SAM 2.1 model: pick one of the SAM 2.1 models in the Model list.")


def check_track(engine, max_frames) -> int:
    """The max-frames setting as a whole number in range; UserError when the model cannot track video."""
    tracker_of(engine)
    return validate.number(max_frames, "max frames", *FRAMES_RANGE, integer=True, default=MAX_FRAMES)


def first_frame(video, max_side: int = MAX_SIDE) -> np.ndarray:
    """The video's first frame (RGB, scaled to `max_side` like the frames that are tracked): what the user clicks."""
    container, stream = open_video(video)
    try:
        for frame in container.decode(stream):
            return fit(frame.to_ndarray(format="rgb24"), max_side)
    except Exception as e:  # av.FFmpegError and friends: the file is damaged
        raise damaged(e, 0) from None
    finally:
        container.close()
    raise UserError("The video has no frames that can be decoded; upload a video that plays in a player.")


def fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """`rgb` scaled down (never up) so its longest side is at most `max_side`."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    import cv2

    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def track_video(engine, video, out_dir, points=None, labels=None, box=None, max_frames=MAX_FRAMES,
                max_side: int = MAX_SIDE, should_stop: Callable[[], bool] | None = None
                ) -> Iterator[TrackProgress | TrackResult]:
    """Track the object marked on the first frame (points/labels/box in that frame's pixels, as `first_frame`
    returns it) through the video. Yields TrackProgress per frame, then one TrackResult."""
    max_frames = check_track(engine, max_frames)
    engine = tracker_of(engine)
    container, stream = open_video(video)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "tracked.mp4", out_dir / "masks.zip")
    writer, finished = None, False
    try:
        rate, total = frame_rate(stream), frame_count(stream)
        total = min(total, max_frames) if total else total  # the first max_frames frames are tracked
        writer = _Writer(paths[0], paths[1], rate)
        result = yield from _track(engine, container, stream, writer, points, labels, box, max_frames, max_side,
                                   total, should_stop)
        writer.close()
        finished = True
        yield TrackResult(str(paths[0]), str(paths[1]), result[0], float(rate), result[1], result[2], result[3],
                          tuple(result[4]), result[5])
    finally:
        container.close()
        if writer is not None and not finished:
            writer.abort()
        if not finished:
            for p in paths:
                p.unlink(missing_ok=True)


def _track(engine, container, stream, writer, points, labels, box, max_frames, max_side, total, should_stop):
    import torch

    session = engine.video_processor.init_video_session(inference_device=engine.device, dtype=engine.torch_dtype)
    areas, t0, size = [], time.perf_counter(), None
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames, None)
        except Exception as e:  # a damaged stream part-way through
            raise damaged(e, len(areas)) from None
        if frame is None:
            break
        if len(areas) >= max_frames:  # the rest of the video is not tracked; the record says so
            return len(areas), size[0], size[1], time.perf_counter() - t0, areas, True
        if should_stop and should_stop():
            raise UserError("Stopped. Press Track to start again.")
        rgb = fit(frame.to_ndarray(format="rgb24"), max_side)
        inputs = engine.video_processor(images=rgb, return_tensors="pt")
        if size is None:
            size = (rgb.shape[1], rgb.shape[0])
            _prompt(engine, session, size, inputs.original_sizes[0], points, labels, box)
        with torch.inference_mode():
            out = engine.video_model(inference_session=session,
                                     frame=inputs.pixel_values[0].to(engine.device, engine.torch_dtype))
            mask = engine.video_processor.post_process_masks([out.pred_masks.float().cpu()],
                                                             original_sizes=inputs.original_sizes)[0]
        mask = mask[0, 0].numpy().astype(bool)
        areas.append(int(mask.sum()))
        writer.put(rgb, mask)
        yield TrackProgress(len(areas), total, len(areas) / max(time.perf_counter() - t0, 1e-9))
    if not areas:
        raise UserError("The video has no frames that can be decoded; upload a video that plays in a player.")
    return len(areas), size[0], size[1], time.perf_counter() - t0, areas, False


def _prompt(engine, session, size, original_size, points, labels, box) -> None:
    """The clicks of the first frame, checked against its size, added to the session as object 1."""
    prompts = check_prompts(size, points, labels, box)
    kwargs = {}
    if len(prompts.points):
        kwargs["input_points"] = [[prompts.points.tolist()]]
        kwargs["input_labels"] = [[prompts.labels.astype(int).tolist()]]
    if prompts.box is not None:
        kwargs["input_boxes"] = [[prompts.box.tolist()]]
    engine.video_processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1,
                                                           original_size=original_size, **kwargs)


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame with the mask tinted blue (uint8 RGB, same size)."""
    out = rgb.astype(np.float32)
    out[mask] = out[mask] * (1 - alpha) + COLOR * alpha
    return out.astype(np.uint8)


class _Writer:
    """The overlay MP4 (H.264, yuv420p, +faststart; odd sides padded by one pixel) and the zip of mask PNGs."""

    def __init__(self, video_path: Path, zip_path: Path, rate):
        self.video_path, self.rate = video_path, rate
        self.zip = zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED)  # PNGs are compressed already
        self.out = self.stream = None
        self.count = 0

    def put(self, rgb: np.ndarray, mask: np.ndarray) -> None:
        import av
        from PIL import Image

        frame = overlay(rgb, mask)
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self.out is None:
            self.out = av.open(str(self.video_path), "w", format="mp4", options={"movflags": "+faststart"})
            self.stream = self.out.add_stream("libx264", rate=self.rate)
            self.stream.width, self.stream.height = frame.shape[1], frame.shape[0]
            self.stream.pix_fmt = "yuv420p"
            self.stream.options = {"crf": "23", "preset": "veryfast"}
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self.out.mux(packet)
        png = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(png, format="PNG")
        self.zip.writestr(f"frame_{self.count:05d}.png", png.getvalue())
        self.count += 1

    def close(self) -> None:
        if self.out is not None:
            for packet in self.stream.encode(None):
                self.out.mux(packet)
            self.out.close()
        self.zip.close()

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
        self.zip.close()
