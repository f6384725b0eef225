"""What the YOLO tab writes: the drawn image, the detection table (CSV and JSON, the same rows) and the per-frame
counts of a video (CSV). Writers are small classes, as openai-whisper's `WriteSRT`; no gradio here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

COLUMNS = ["class", "confidence", "x1", "y1", "x2", "y2"]


def annotate(det, line_width: int | None = None) -> np.ndarray:
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


class WriteTableCSV:
    """One row per box: class, confidence, x1, y1, x2, y2 (original image pixels)[, track_id]."""

    extension = "csv"

    def __call__(self, det, path: Path, record: dict | None = None) -> Path:
        columns = COLUMNS + (["track_id"] if det.track_ids is not None else [])
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            w.writerows(det.rows())
        return path


class WriteTableJSON:
    """The same rows as the CSV, with the image size, the counts per class and the reproducibility record."""

    extension = "json"

    def __call__(self, det, path: Path, record: dict | None = None) -> Path:
        doc = {"image": {"width": det.original_size[0], "height": det.original_size[1]},
               "coordinates": "pixels of the original image, x1 y1 = top left, x2 y2 = bottom right",
               "detections": det.rows(), "counts": det.counts()}
        if record:
            doc["record"] = record
        Path(path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return path


def export_table(det, folder, stem: str = "detections", record: dict | None = None) -> tuple[Path, Path]:
    """Write the detections table as CSV and JSON (same rows) into `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_w, json_w = WriteTableCSV(), WriteTableJSON()
    return (csv_w(det, folder / f"{stem}.{csv_w.extension}", record),
            json_w(det, folder / f"{stem}.{json_w.extension}", record))


class WriteCountsCSV:
    """Per-frame counts of a video: frame, time_s, total, then one column per class seen (0 where absent)."""

    extension = "csv"

    def __call__(self, result, path: Path) -> Path:
        path = Path(path)
        classes = sorted({k for r in result.per_frame for k in r} - {"frame", "time_s", "total"})
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["frame", "time_s", "total", *classes], restval=0)
            w.writeheader()
            w.writerows(result.per_frame)
        return path


def export_counts(result, path) -> Path:
    """Per-frame counts as CSV (see WriteCountsCSV)."""
    return WriteCountsCSV()(result, path)


def counts_long(result) -> list[dict]:
    """Per-frame counts in long form ({"time_s", "class", "count"} per class and frame), for a line plot."""
    return [{"time_s": r["time_s"], "class": k, "count": v} for r in result.per_frame for k, v in r.items()
            if k not in ("frame", "time_s", "total")]
