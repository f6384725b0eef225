"""Edit by object: no model of its own. Its one work method composites what the chain's steps made (the cut-out,
the mask picture, the inpainted crop stitched back); YOLO, SAM and Stable Diffusion run in their own demos through
hub.chain (flow.py says the order). Imports neither gradio nor torch."""

from __future__ import annotations

import time

import numpy as np

from demos.edit_object import masks as M
from demos.edit_object.types import OPS, ComposeRequest, ComposeResult
from hub.contract import EngineBase
from hub.errors import UserError
from hub.work import Work


class Compositor(EngineBase):
    """Holds nothing: compositing is numpy on the CPU."""

    weights_format = "no weights"
    nbytes = 0


def load(weights, device: str, dtype: str) -> Compositor:
    return Compositor()


WORK = Work()


def check_compose(req: ComposeRequest) -> None:
    if req.op not in OPS:
        raise UserError(f"Compose: the operation must be one of {', '.join(OPS)}, not {str(req.op)[:40]!r}.")
    image = np.asarray(req.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError("Compose: the photo must be an RGB picture.")
    if np.asarray(req.mask).shape != image.shape[:2]:
        raise UserError("Compose: the mask must be the size of the photo; make the masks again.")
    if req.op == "stitch" and (req.painted is None or req.box is None):
        raise UserError("Compose: stitching needs the inpainted picture and its box.")


@WORK.method(ComposeRequest, name="compose")
def compose(lease, req: ComposeRequest, job) -> ComposeResult:
    """The cut-out (RGBA), the mask picture (L) or the stitched photo (RGB)."""
    check_compose(req)
    t0 = time.perf_counter()
    if req.op == "cutout":
        out = M.cutout(req.image, req.mask)
    elif req.op == "mask":
        out = np.asarray(req.mask, bool).astype(np.uint8) * 255
    else:
        out = M.stitch(req.image, np.asarray(req.painted, np.uint8), req.box, np.asarray(req.mask, np.float32))
    return ComposeResult(out, {"model": "none (compositing)", "device": "cpu", "op": req.op,
                               "ms": round((time.perf_counter() - t0) * 1e3, 1)})
