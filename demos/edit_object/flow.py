"""The Edit-by-object chain, step by step (no gradio: the tab, the bench and the tests run it the same way).

find objects (YOLO `detect`) -> make masks (SAM `segment`, one per picked box, or from + points alone) -> one of:
cut out / mask (this demo's `compose`), replace / remove (Stable Diffusion `inpaint` on a crop around the grown
mask, stitched back by `compose`). Each step is a hub.chain step: its model is borrowed under the one budget, a bad
input is refused with a sentence that names the step, and the result carries the chain's one record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from demos.edit_object import masks as M
from demos.edit_object.types import ComposeRequest
from hub.errors import UserError

FIND, MASK, PAINT, COMPOSE = "Find objects (YOLO)", "Make masks (SAM)", "Inpaint (Stable Diffusion)", "Compose"
REMOVE_PROMPT = "empty background, the surroundings continued seamlessly, nothing in the way"
REMOVE_NEGATIVE = "person, people, animal, object, text, watermark, blurry"
MAX_CLICKS = 64
KINDS = {"pick": "pick", "box": "pick", "+": 1, "1": 1, "positive": 1, "-": 0, "−": 0, "0": 0, "negative": 0}


@dataclass
class Selection:
    """What the first two steps found: every detection (rows as the YOLO tab's table), the picked ones, the mask
    of each picked object (and of the + points alone), and their union."""

    rows: list[dict] = field(default_factory=list)
    picked: list[int] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray | None:
        return M.union(self.masks) if self.masks else None

    def summary(self) -> dict:
        return {"detections": self.rows, "picked": [i + 1 for i in self.picked],
                "mask_pixels": [int(m.sum()) for m in self.masks]}


def parse_classes(text) -> list[str]:
    if text is None:
        return []
    items = text if isinstance(text, (list, tuple)) else str(text)[:2000].split(",")
    return [c.strip().lower() for c in items if str(c).strip()]


def parse_clicks(text, size: tuple[int, int]) -> list[tuple[float, float, object]]:
    """Clicks as JSON text ([[x, y, "pick" | "+" | "-"], ...]) -> (x, y, "pick" | 1 | 0), checked against the
    photo's (width, height)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    try:
        items = json.loads(text[:20_000]) if isinstance(text, str) else text
        clicks = [(float(x), float(y), KINDS[str(k).strip().lower()]) for x, y, k in items]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise UserError('Clicks must be a JSON list of [x, y, kind] with kind "pick", "+" or "-", for example '
                        '[[120, 80, "pick"]].') from None
    if len(clicks) > MAX_CLICKS:
        raise UserError(f"At most {MAX_CLICKS} clicks; clear some and click again.")
    w, h = size
    for x, y, _ in clicks:
        if not (0 <= x < w and 0 <= y < h):
            raise UserError(f"The click at ({x:.0f}, {y:.0f}) is outside the {w}x{h} photo; click on the photo.")
    return clicks


CONF_RANGE = (0.05, 0.95)  # the tab's slider: the same range on every path


def find_objects(chain, picture, classes: list[str], clicks, conf, model) -> Selection:
    """Step 1: detect with YOLO and pick the boxes of `classes` and the boxes under "pick" clicks. Skipped (an empty
    selection) when there are only + / - points: SAM segments those directly."""
    from demos.yolo_detect.types import DetectRequest
    from hub import validate

    # checked even when YOLO does not run (+ / - points only): a value out of range is never silently unused
    try:
        conf = validate.number(conf, "Detection confidence", CONF_RANGE[0], CONF_RANGE[1], default=0.25)
    except UserError as e:
        raise UserError(f"{FIND}: {e}") from None
    picks = [(x, y) for x, y, k in clicks if k == "pick"]
    if not classes and not picks:
        return Selection()
    found = chain.call(FIND, "yolo_detect", "detect", DetectRequest(picture.rgb, conf=conf), model)
    rows, picked = found.rows, []
    for name in classes:
        hits = [i for i, r in enumerate(rows) if r["class"].lower() == name]
        if not hits:
            raise UserError(f"{FIND}: no {name} was found in the photo; pick another class or click the object.")
        picked += [i for i in hits if i not in picked]
    for x, y in picks:
        under = [i for i, r in enumerate(rows) if r["x1"] <= x <= r["x2"] and r["y1"] <= y <= r["y2"]]
        if not under:
            raise UserError(f"{FIND}: no detected object is under the click at ({x:.0f}, {y:.0f}); click inside a "
                            "box, or add a + point to segment there directly.")
        best = min(under, key=lambda i: (rows[i]["x2"] - rows[i]["x1"]) * (rows[i]["y2"] - rows[i]["y1"]))
        if best not in picked:
            picked.append(best)
    return Selection(rows, picked)


def make_masks(chain, picture, sel: Selection, clicks, model, session: str = "") -> Selection:
    """Step 2: one SAM mask per picked box (the + / - points inside it refine it), and one for the + points outside
    every picked box (the - points outside them refine that one)."""
    from demos.sam_segment.types import SegmentRequest

    points = [(x, y, k) for x, y, k in clicks if k != "pick"]
    boxes = [sel.rows[i] for i in sel.picked]
    loose = [(x, y, k) for x, y, k in points if not any(_inside(b, x, y) for b in boxes)]
    if not boxes and not any(k == 1 for _, _, k in loose):
        raise UserError(f"{MASK}: nothing is picked yet; choose a class, click a detected box, or add a + point on "
                        "the object.")
    masks = []
    for n, b in enumerate(boxes, 1):
        inner = [(x, y, k) for x, y, k in points if _inside(b, x, y)]
        req = SegmentRequest(picture, [[x, y] for x, y, _ in inner] or None, [k for *_, k in inner] or None,
                             [b["x1"], b["y1"], b["x2"], b["y2"]], multimask=False, session=session)
        mask = chain.call(f"{MASK}, object {n}", "sam_segment", "segment", req, model).masks[0]
        masks.append(_in_box(mask, b))
    if any(k == 1 for _, _, k in loose):
        req = SegmentRequest(picture, [[x, y] for x, y, _ in loose], [k for *_, k in loose], None, multimask=True,
                             session=session)
        masks.append(chain.call(f"{MASK}, clicked points", "sam_segment", "segment", req, model).masks[0])
    if not any(m.any() for m in masks):
        raise UserError(f"{MASK}: the mask came out empty; add a + point on the object or pick its box.")
    return Selection(sel.rows, sel.picked, masks)


def _in_box(mask: np.ndarray, row: dict, margin: int = 2) -> np.ndarray:
    """A picked object's mask kept inside its box (and `margin` px): SAM may spill onto a neighbour's pixels."""
    h, w = mask.shape
    x0, y0 = max(0, int(row["x1"]) - margin), max(0, int(row["y1"]) - margin)
    x1, y1 = min(w, int(np.ceil(row["x2"])) + margin), min(h, int(np.ceil(row["y2"])) + margin)
    out = np.zeros_like(mask, dtype=bool)
    out[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    return out


def _inside(row: dict, x: float, y: float) -> bool:
    return row["x1"] <= x <= row["x2"] and row["y1"] <= y <= row["y2"]


def compose(chain, op: str, picture, mask, **kw) -> np.ndarray:
    return chain.call(COMPOSE, "edit_object", "compose", ComposeRequest(op, picture.rgb, mask, **kw)).image


@dataclass(frozen=True)
class Paint:
    """The inpainting step's settings (None: the model's defaults)."""

    prompt: str
    negative_prompt: str = ""
    grow: int = 8
    feather: int = 8
    steps: object = None
    seed: object = -1
    strength: object = 1.0
    size: object = None  # the side of the square the crop is fitted into (None: the model's size)
    guidance: object = None
    decoder: str | None = None


def inpaint(chain, picture, mask: np.ndarray, paint: Paint, model, on_step=None) -> tuple[np.ndarray, dict]:
    """Steps 3-4: inpaint a crop around the mask grown and feathered by `paint.grow` / `paint.feather` px, then
    stitch it back: pixels farther than `grow` px from the mask stay exactly as they were. Returns the photo and
    the parameters the PNG carries (Stable Diffusion's, so the SD tab can read them)."""
    from PIL import Image

    from demos.stable_diffusion.types import InpaintRequest, Result, Settings, Step

    grow, feather = M.check_px(paint.grow, "Grow"), M.check_px(paint.feather, "Feather")
    alpha = M.grow_feather(mask, grow, feather)
    box = M.crop_box(alpha > 0)
    x0, y0, x1, y1 = box
    crop = Image.fromarray(picture.rgb[y0:y1, x0:x1])
    crop_mask = Image.fromarray(((alpha[y0:y1, x0:x1] > 0) * 255).astype(np.uint8), "L")
    settings = Settings(seed=paint.seed, steps=paint.steps, guidance=paint.guidance, width=paint.size,
                        height=paint.size, decoder=paint.decoder)
    req = InpaintRequest(crop, crop_mask, paint.prompt, paint.negative_prompt, paint.strength, settings)
    result = None
    for item in chain.stream(PAINT, "stable_diffusion", "inpaint", req, model, last=lambda i: isinstance(i, Result)):
        if isinstance(item, Step) and item.total:
            chain.say(f"{PAINT}: step {item.step} of {item.total}…", item.step / item.total)
            if on_step is not None:
                on_step(item)
        elif isinstance(item, Result):
            result = item
    painted = np.asarray(result.images[0].convert("RGB"))
    out = compose(chain, "stitch", picture, alpha, painted=painted, box=box)
    return out, {**result.image_params(0), "grow": grow, "feather": feather, "crop": list(box)}
