"""Property-based tests (hypothesis) for the yolo_detect validators: a value that keeps its invariant, or a
UserError sentence."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
from hypothesis import assume, example, given, strategies as st
from tests.properties import FAST, HUGE_INT, QUICK, one_bad, outcome, overflows


from demos.yolo_detect import engine as yolo  # noqa: E402


# ---- yolo_detect -------------------------------------------------------------------------------------------------

YOLO_NAMES = {0: "person", 1: "car", 2: "traffic light", 3: "Dog"}
yolo_engine = NS(stride=32, names=YOLO_NAMES)
yolo_classes = st.one_of(
    st.none(), st.just(""), st.just([]), st.text(max_size=20),
    st.lists(st.one_of(st.sampled_from(["person", " CAR ", "traffic light", "dog", "cat", "", " "]),
                       st.integers(-2, 6), st.booleans(), st.text(max_size=4)), max_size=4),
    st.integers(-3, 6), st.sampled_from(["person, car", "0", "person,,dog"]))


@FAST
@given(kw=one_bad({"conf": st.floats(0, 1), "iou": st.floats(0, 1), "max_det": st.integers(*yolo.MAX_DET_RANGE),
                    "imgsz": st.one_of(st.integers(*yolo.IMGSZ_RANGE), st.just(640.0))}), classes=yolo_classes)
def test_yolo_check_params_typed_and_in_range(kw, classes):
    conf, iou, max_det, imgsz = kw["conf"], kw["iou"], kw["max_det"], kw["imgsz"]
    assume(not any(map(overflows, (conf, iou, max_det, imgsz))))
    ok, p = outcome(yolo.check_params, yolo_engine, conf, iou, classes, max_det, imgsz)
    if ok:
        assert 0 <= p["conf"] <= 1 and 0 <= p["iou"] <= 1
        assert isinstance(p["max_det"], int) and yolo.MAX_DET_RANGE[0] <= p["max_det"] <= yolo.MAX_DET_RANGE[1]
        assert isinstance(p["imgsz"], int) and p["imgsz"] % yolo_engine.stride == 0
        assert yolo.IMGSZ_RANGE[0] <= p["imgsz"] < yolo.IMGSZ_RANGE[1] + yolo_engine.stride
        c = p["classes"]
        assert c is None or (c == sorted(set(c)) and c and all(i in YOLO_NAMES for i in c))


@QUICK
@example(field="conf", value=HUGE_INT)
@given(field=st.sampled_from(["conf", "iou", "max_det", "imgsz"]), value=st.sampled_from([HUGE_INT, -HUGE_INT]))
def test_yolo_ints_beyond_float_range(field, value):
    outcome(yolo.check_params, yolo_engine, **{field: value})


@QUICK
@example(classes=1.5)
@given(classes=st.one_of(st.floats(0.5, 5), st.just(np.array([0, 1]))))
def test_yolo_classes_wrong_types(classes):
    outcome(yolo.check_params, yolo_engine, classes=classes)
