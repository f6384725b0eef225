"""The YOLO tab's work as data: the requests and results of the engine's work methods (engine.WORK).

Plain data only (numbers, strings, lists, dicts, numpy arrays, file paths as `str`): what crosses to a Ray replica
and back with the standard pickle. Settings left as None take Ultralytics' defaults (spec.DEFAULTS); the engine's
one check step (`engine.check_params`) turns them into typed values or a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from hub.work import FILE, FilePath


@dataclass(frozen=True)
class DetectRequest:
    """/detect: one image (an uploaded file's path, an RGB array or a PIL image) and the settings."""

    image: Annotated[Any, FILE]
    conf: Any = None
    iou: Any = None
    classes: Any = None  # class names or ids (a list, or one comma-separated string); empty = every class
    max_det: Any = None
    imgsz: Any = None


@dataclass(frozen=True)
class DetectResult:
    """The drawn image (RGB uint8), the table rows, the objects per class, the CSV and JSON files, the record."""

    image: Any
    rows: list[dict]
    counts: dict[str, int]
    files: tuple[FilePath, FilePath]
    record: dict


@dataclass(frozen=True)
class VideoRequest:
    """/detect_video: a video file's path and the settings; `tracking` adds ByteTrack ids and distinct counts."""

    video: Annotated[Any, FILE]
    conf: Any = None
    iou: Any = None
    classes: Any = None
    max_det: Any = None
    imgsz: Any = None
    tracking: bool = False


@dataclass
class VideoProgress:
    done: int  # frames processed so far
    total: int | None  # frames in the video, when the container says
    fps: float  # processing speed, frames per second


@dataclass
class VideoResult:
    path: FilePath  # the annotated H.264 MP4
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


@dataclass(frozen=True)
class VideoDone:
    """The last item of /detect_video: the result, its record and the per-frame counts CSV."""

    result: VideoResult
    record: dict
    counts_csv: str


@dataclass(frozen=True)
class TrackRequest:
    """track_stream: one webcam frame (RGB array) of the stream `session` (a key the front end picks: gradio's
    session hash and the model), whose ByteTrack tracker the engine keeps between frames."""

    frame: Annotated[Any, FILE]
    session: str
    conf: Any = None
    iou: Any = None
    classes: Any = None
    max_det: Any = None
    imgsz: Any = None


@dataclass(frozen=True)
class TrackResult:
    """The frame with tracked boxes drawn (RGB uint8), the objects per class, the number of tracked objects."""

    image: Any
    counts: dict[str, int]
    found: int
    track_ids: list[int] = field(default_factory=list)
    frames: int = 1  # frames of this session the tracker has seen, this one included (1: a new tracker)


@dataclass(frozen=True)
class NamesRequest:
    """The class names of the model (the class filter's choices)."""


@dataclass(frozen=True)
class ClassNames:
    names: tuple[str, ...]
