"""Property-based tests (hypothesis) for the sam_segment validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations

import json
import sys
import types
from types import SimpleNamespace as NS
from unittest import mock

import numpy as np
from hypothesis import assume, example, given, strategies as st
from tests.properties import DEEP_JSON, FAST, HUGE_INT, QUICK, junk, one_bad, outcome, overflows


from demos.sam_segment import engine as sam  # noqa: E402
from demos.sam_segment import everything as sam_everything  # noqa: E402


# ---- sam_segment -------------------------------------------------------------------------------------------------

coord = st.one_of(st.integers(-5, 70), st.floats(-5, 70), st.sampled_from([float("nan"), float("inf"), -1e300]))
point_list = st.lists(st.lists(coord, min_size=1, max_size=3), max_size=4)
label_list = st.lists(st.one_of(st.sampled_from([0, 1, 1.0, 2, -1, float("nan"), True]), st.text(max_size=2)),
                      max_size=4)
box_list = st.lists(coord, min_size=0, max_size=5)


def maybe_json(strategy):
    return st.one_of(strategy, strategy.map(json.dumps),
                     st.sampled_from(["", " ", "not json", "{}", "[[1]]", "null", "1"]), st.none(), junk)


@st.composite
def sam_prompts(draw):
    """An image size and (mostly) valid points/labels/box for it; then maybe one of them replaced by junk."""
    w, h = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    n = draw(st.integers(0, 3))
    pts = [[draw(st.floats(0, w, exclude_max=True)), draw(st.integers(0, h - 1))] for _ in range(n)]
    valid = {"points": st.just(pts), "labels": st.one_of(st.none(), st.lists(st.sampled_from([0, 1]), min_size=n,
                                                                             max_size=n)),
             "box": st.one_of(st.none(), st.lists(st.floats(-5, 70), min_size=4, max_size=4))}
    bad = {"points": maybe_json(point_list), "labels": maybe_json(label_list), "box": maybe_json(box_list)}
    kw = draw(st.fixed_dictionaries(valid))
    field = draw(st.one_of(st.none(), st.sampled_from(sorted(bad))))
    if field:
        kw[field] = draw(bad[field])
    return (w, h), kw


@FAST
@given(case=sam_prompts())
def test_sam_check_prompts_inside_the_image(case):
    size, kw = case
    points, labels, box = kw["points"], kw["labels"], kw["box"]
    w, h = size
    ok, p = outcome(sam.check_prompts, size, points, labels, box)
    if ok:
        assert p.points.shape == (len(p.labels), 2) and np.isfinite(p.points).all()
        # image coordinates run from 0 to the width/height inclusive (the far edge is on the image); beyond: refused
        assert ((p.points[:, 0] >= 0) & (p.points[:, 0] <= w) & (p.points[:, 1] >= 0) & (p.points[:, 1] <= h)).all()
        assert set(p.labels.tolist()) <= {0, 1}
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 >= 1 and y1 - y0 >= 1
        else:
            assert (p.labels == 1).any(), "without a box there must be a positive point"
        json.dumps(p.as_json())


class _Reached(Exception):
    """The stand-in SamAutomaticMaskGenerator: validation passed; carries what the generator was given."""


def _fake_segment_anything():
    mod = types.ModuleType("segment_anything")

    def generator(model, **kw):
        raise _Reached(kw)

    mod.SamAutomaticMaskGenerator, mod.SamPredictor = generator, object
    return mod


@FAST
@given(kw=one_bad({"pps": st.integers(2, 128), "iou": st.floats(0, 1), "stab": st.floats(0, 1),
                    "min_area": st.one_of(st.none(), st.integers(0, 30))}))
def test_sam_segment_everything_settings(kw):
    pps, iou, stab, min_area = kw["pps"], kw["iou"], kw["stab"], kw["min_area"]
    assume(not any(map(overflows, (pps, min_area, iou, stab))))
    picture = NS(key="k", rgb=np.zeros((6, 5, 3), np.uint8))
    with mock.patch.dict(sys.modules, {"segment_anything": _fake_segment_anything()}):
        try:
            ok, _ = outcome(sam_everything.segment_everything, NS(uid=1, sam=None), NS(key="k", engine_uid=1), picture,
                            points_per_side=pps, pred_iou_thresh=iou, stability_score_thresh=stab, min_area=min_area)
        except _Reached as r:
            kw = r.args[0]
            assert isinstance(kw["points_per_side"], int) and 2 <= kw["points_per_side"] <= 128
            assert 0 <= kw["pred_iou_thresh"] <= 1 and 0 <= kw["stability_score_thresh"] <= 1
        else:
            assert not ok


@QUICK
@example(points="[[" + "9" * 400 + ", 1]]")
@given(points=st.sampled_from([[[HUGE_INT, 1]], "[[" + "9" * 400 + ", 1]]", [[1, -HUGE_INT]]]))
def test_sam_points_beyond_float_range(points):
    outcome(sam.check_prompts, (10, 10), points)


@QUICK
@example(field="points")
@given(field=st.sampled_from(["points", "labels", "box"]))
def test_sam_deeply_nested_prompt_json(field):
    outcome(sam.check_prompts, (10, 10), **{field: DEEP_JSON})


@QUICK
@example(v="abc")
@given(v=st.text(alphabet="abc", min_size=1, max_size=4))
def test_sam_segment_everything_text_threshold(v):
    picture = NS(key="k", rgb=np.zeros((6, 5, 3), np.uint8))
    with mock.patch.dict(sys.modules, {"segment_anything": _fake_segment_anything()}):
        try:
            outcome(sam_everything.segment_everything, NS(uid=1, sam=None), NS(key="k", engine_uid=1), picture,
                    pred_iou_thresh=v)
        except _Reached:
            pass
