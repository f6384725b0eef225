"""Segment everything: segment-anything's automatic mask generator on the cached embedding, masks made disjoint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from demos.sam_segment.types import FoundMask, Picture
from hub import validate
from hub.errors import UserError
from hub.media.image import MAX_PIXELS
from hub.streams import Stopped  # the hub's one "stopped before its result" (a Stop, a closed page)

# The ranges of the settings, one source for the tab's fields (their info text) and the checks below.
POINTS_PER_SIDE = (2, 128)
THRESHOLD = (0.0, 1.0)
MIN_AREA = (0, MAX_PIXELS)  # pixels: no mask is larger than the largest image the hub takes

if TYPE_CHECKING:
    from demos.sam_segment.engine import Embedding, SamEngine


@dataclass(frozen=True)
class EverythingSettings:
    """Checked settings of one "segment everything" request."""

    points_per_side: int
    pred_iou_thresh: float
    stability_score_thresh: float
    min_area: int


def check_settings(points_per_side=32, pred_iou_thresh=0.88, stability_score_thresh=0.95,
                   min_area=0) -> EverythingSettings:
    """The settings as numbers in range, or UserError saying which one is wrong and what it may be. The names are
    the tab's field labels, so the page and an API caller get the same sentence. A minimum area larger than the
    picture is no error: no mask passes it, and the tab says so."""
    return EverythingSettings(
        validate.number(points_per_side, "points per side", *POINTS_PER_SIDE, integer=True),
        validate.number(pred_iou_thresh, "predicted-IoU threshold", *THRESHOLD),
        validate.number(stability_score_thresh, "stability threshold", *THRESHOLD),
        validate.number(min_area, "minimum mask area", *MIN_AREA, integer=True, default=0))


def check_everything_model(engine) -> None:
    """Segment everything runs segment-anything's automatic generator: SAM and MobileSAM, not SAM 2.1."""
    if getattr(engine, "family", None) == "sam2":
        raise UserError("Segment everything runs with the SAM and MobileSAM models; pick one of them in the Model "
                        "list (SAM 2.1 segments by clicks and tracks video).")


def segment_everything(engine: SamEngine, embedding: Embedding, picture: Picture, points_per_side: int = 32,
                       pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95, min_area: int = 0,
                       points_per_batch: int = 64, progress: Callable[[int, int], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> list[FoundMask]:
    """All objects: SamAutomaticMaskGenerator over a grid of points, on the cached embedding.

    The generator's masks overlap (parts inside wholes); here they are made disjoint: larger masks are painted
    first and smaller ones on top, so every pixel belongs to at most one mask (the most specific one). Masks
    left smaller than `min_area` pixels are dropped. Sorted by area, largest first.
    `progress(done, total)` is called after each batch of points; `should_stop()` is asked before each batch
    (True raises Stopped).
    """
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    check_everything_model(engine)
    if embedding.key != picture.key or embedding.engine_uid != engine.uid:
        raise UserError("The image changed while segmenting; press Segment everything again.")
    s = check_settings(points_per_side, pred_iou_thresh, stability_score_thresh, min_area)
    total = math.ceil(s.points_per_side ** 2 / points_per_batch)

    class CachedPredictor(SamPredictor):
        """The generator's predictor, fed the cached embedding instead of encoding again; reports progress."""

        done = 0

        def set_image(self, image, image_format="RGB"):
            self.reset_image()
            self.features, self.original_size = embedding.features, embedding.original_size
            self.input_size, self.is_image_set = embedding.input_size, True

        def predict_torch(self, *args, **kwargs):
            if should_stop and should_stop():
                raise Stopped("Stopped. Press Segment everything to start again.")
            out = super().predict_torch(*args, **kwargs)
            self.done += 1
            if progress:
                progress(self.done, total)
            return out

    generator = SamAutomaticMaskGenerator(engine.sam, points_per_side=s.points_per_side,
                                          points_per_batch=points_per_batch, pred_iou_thresh=s.pred_iou_thresh,
                                          stability_score_thresh=s.stability_score_thresh)
    generator.predictor = CachedPredictor(engine.sam)
    raw = generator.generate(picture.rgb)  # the crop is the whole image, so set_image gets our cached embedding
    return disjoint(raw, s.min_area)


def disjoint(records: list[dict], min_area: int = 0) -> list[FoundMask]:
    """Make automatic-generator masks non-overlapping (smaller masks win) and sort them, largest first."""
    if not records:
        return []
    records = sorted(records, key=lambda r: -int(r["area"]))
    label = np.zeros(records[0]["segmentation"].shape, np.int32)
    for i, r in enumerate(records, start=1):
        label[r["segmentation"]] = i
    areas = np.bincount(label.ravel(), minlength=len(records) + 1)
    found = []
    for i, r in enumerate(records, start=1):
        if areas[i] == 0 or areas[i] < min_area:
            continue
        m = label == i
        ys, xs = np.nonzero(m)
        x0, y0 = int(xs.min()), int(ys.min())
        found.append(FoundMask(m, int(areas[i]), (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1),
                               float(r["predicted_iou"]), float(r["stability_score"])))
    found.sort(key=lambda f: -f.area)
    return found
