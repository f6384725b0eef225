"""SAM's click prompts: points, labels and a box in image pixels, checked with a sentence that says what to do."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from hub import validate
from hub.errors import UserError

POSITIVE, NEGATIVE = 1, 0


@dataclass
class Prompts:
    """Validated prompts in image pixels: points N x 2, labels N (1 positive, 0 negative), box xyxy or None."""

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None

    def as_json(self) -> dict:
        return {"points": self.points.tolist(), "labels": self.labels.astype(int).tolist(),
                "box": None if self.box is None else self.box.tolist()}


def check_prompts(size: tuple[int, int], points=None, labels=None, box=None) -> Prompts:
    """Validate click prompts against an image of `size` (width, height); raise UserError with what to do.

    points: [[x, y], ...] in image pixels (0 <= x <= width, 0 <= y <= height; others are refused); labels: 1
    (positive) / 0 (negative) per point, all positive when omitted; box: [x0, y0, x1, y1], any two opposite
    corners, cut to the part inside the image. Each may also be given as JSON text.
    """
    w, h = size
    pts = _check_points(_parse(points, "Points"), w, h)
    lab = _check_labels(_parse(labels, "Labels"), len(pts))
    bx = _check_box(_parse(box, "Box"), w, h)
    if not len(pts) and bx is None:
        raise UserError("Add a prompt: click on the object (a positive point) or draw a box around it.")
    if bx is None and not (lab == POSITIVE).any():
        raise UserError("Only negative points: add a positive point on the object you want (or a box around it).")
    return Prompts(pts, lab, bx)


def check_segment(size: tuple[int, int], points=None, labels=None, box=None,
                  multimask=True) -> tuple[Prompts, bool]:
    """Everything `segment` checks, before any work: the prompts (check_prompts) and the multimask flag."""
    prompts = check_prompts(size, points, labels, box)
    return prompts, validate.flag(multimask, "multimask (three candidate masks)", default=True)


def _parse(value, what: str):
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
            raise UserError(f"{what} must be JSON, like [[120, 80]] for points or [10, 10, 200, 150] for a "
                            "box.") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


def _check_points(points, w: int, h: int) -> np.ndarray:
    if not points:
        return np.zeros((0, 2), np.float64)
    try:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
    except (TypeError, ValueError, OverflowError):
        raise UserError("Points must be a list of [x, y] pairs, like [[120, 80], [200, 95]].") from None
    for i, (x, y) in enumerate(pts, start=1):
        validate.number(x, f"the x of point {i} (the image is {w} pixels wide)", 0, w)
        validate.number(y, f"the y of point {i} (the image is {h} pixels high)", 0, h)
    return pts


def _check_labels(labels, n: int) -> np.ndarray:
    if labels is None or (isinstance(labels, list) and not labels):
        return np.ones(n, np.int64)
    try:
        lab = np.asarray(labels, np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise UserError("Labels must be a list of 1 (positive) and 0 (negative), one per point.") from None
    if len(lab) != n:
        raise UserError(f"Got {n} points but {len(lab)} labels; give one label (1 or 0) per point.")
    if not np.isin(lab, (0, 1)).all():
        raise UserError("Labels must be 1 (positive: part of the object) or 0 (negative: not part of it).")
    return lab.astype(np.int64)


def _check_box(box, w: int, h: int) -> np.ndarray | None:
    if box is None or (isinstance(box, (list, tuple)) and len(box) == 0):
        return None
    try:
        b = np.asarray(box, np.float64).reshape(4)
    except (TypeError, ValueError, OverflowError):
        raise UserError("A box must be four numbers [x0, y0, x1, y1] (two opposite corners).") from None
    for name, v in zip(("x0", "y0", "x1", "y1"), b):
        validate.number(v, f"the box's {name}")
    x0, x1 = sorted((b[0], b[2]))
    y0, y1 = sorted((b[1], b[3]))
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise UserError(f"The box [{b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}] is outside the image ({w}x{h}); "
                        "draw it on the image.")
    # A box that overhangs the image means the part of the image inside it (a drag past the edge): cut, not refused.
    x0, x1 = np.clip((x0, x1), 0, w)
    y0, y1 = np.clip((y0, y1), 0, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise UserError("The box has no area (its corners are on one line); click two opposite corners.")
    return np.array([x0, y0, x1, y1])
