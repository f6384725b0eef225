"""The requests and results of Segment Anything's work methods (engine.WORK): plain data that crosses to a replica.

An image travels as a `Picture` (its RGB pixels, decoded once by the tab, and their content hash: the embedding
cache's key); a video as the path of its upload. `session` is the gradio session the request comes from: the engine
keeps each session's image embeddings apart (a click of one person never reuses another's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hub.work import FilePath

MAX_FRAMES = 300  # frames one video request may track (10 s at 30 frames/s): the memory bank grows with every frame


@dataclass(frozen=True)
class Picture:
    """An input image made ready for SAM: RGB uint8 pixels and a content hash (the embedding store's key)."""

    rgb: np.ndarray  # H x W x 3 uint8
    key: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.rgb.shape[1], self.rgb.shape[0]


# ---- clicks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRequest:
    """Masks for the prompts on `picture` (points [[x, y], ...], labels 1/0, box [x0, y0, x1, y1] or None)."""

    picture: Picture
    points: list | None = None
    labels: list | None = None
    box: list | None = None
    multimask: bool = True
    session: str = ""


@dataclass(frozen=True)
class SegmentResult:
    masks: np.ndarray  # K x H x W bool, best (highest predicted IoU) first
    scores: tuple[float, ...]  # predicted IoU of each mask, same order
    points: list  # the checked prompts, as the record shows them
    labels: list
    box: list | None
    record: dict


@dataclass(frozen=True)
class EmbedRequest:
    """Encode `picture` for `session` now, so that the first click on it is fast."""

    picture: Picture
    session: str = ""


@dataclass(frozen=True)
class EmbedResult:
    cached: bool  # the session had it already
    ms: float


# ---- segment everything ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EverythingRequest:
    picture: Picture
    points_per_side: int | float = 32
    iou_threshold: float = 0.88
    stability_threshold: float = 0.95
    min_area: int | float | None = 0
    session: str = ""


@dataclass(frozen=True)
class FoundMask:
    mask: np.ndarray  # H x W bool; no pixel belongs to two FoundMasks of one result
    area: int
    bbox: tuple[int, int, int, int]  # x, y, w, h
    predicted_iou: float
    stability_score: float

    def summary(self, index: int) -> dict:
        return {"id": index, "area": self.area, "bbox_xywh": list(self.bbox),
                "predicted_iou": round(self.predicted_iou, 4), "stability_score": round(self.stability_score, 4)}


@dataclass(frozen=True)
class EverythingResult:
    masks: tuple[FoundMask, ...]  # largest first
    record: dict


# ---- video ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackRequest:
    """Track the object marked on the first frame of `video` (points/labels/box in that frame's pixels)."""

    video: FilePath
    points: list | None = None
    labels: list | None = None
    box: list | None = None
    max_frames: int | float | None = MAX_FRAMES


@dataclass(frozen=True)
class TrackProgress:
    done: int
    total: int | None
    fps: float


@dataclass(frozen=True)
class TrackResult:
    video: FilePath  # the overlay video, H.264 MP4
    masks: FilePath  # zip of per-frame mask PNGs (frame_00000.png ...: 255 = object)
    frames: int
    fps: float
    width: int
    height: int
    seconds: float
    areas: tuple[int, ...] = ()  # mask pixels per frame
    untracked: bool = False  # the video went on past max_frames: only its first `frames` were tracked
    details: dict = field(default_factory=dict)  # the reproducibility record (the work method fills it in)

    def record(self) -> dict:
        rec = {"frames": self.frames, "fps": round(self.fps, 3), "size": f"{self.width}x{self.height}",
               "tracking_fps": round(self.frames / max(self.seconds, 1e-9), 2),
               "frames_with_object": sum(1 for a in self.areas if a > 0)}
        if self.untracked:
            rec["note"] = (f"Only the first {self.frames} frames were tracked (max frames); raise max frames "
                           f"(up to {MAX_FRAMES}) to track more.")
        return rec
