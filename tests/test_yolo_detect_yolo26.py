"""YOLO26 (NMS-free) in the YOLO tab: the end-to-end head runs with no NMS step, gives the same well-formed table
through the engine, the video path and the tab's API, OpenVINO gives the boxes of torch, and it is the default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import demos.yolo_detect as Y
from demos.yolo_detect import SPEC
from demos.yolo_detect import engine as yd
from demos.yolo_detect import video as yv
from hub.assets import package_file
from hub.options import DemoOptions
from hub.settings import Settings
from hub.weights import resolve

BUS = package_file("ultralytics", "assets", "bus.jpg")
ON = DemoOptions({o.key: o.default for o in Y.DEMO.options})
OFF = DemoOptions({**{o.key: o.default for o in Y.DEMO.options}, "openvino": False})


def _weights(cache: Path, model: str):
    return resolve(SPEC, SPEC.choice(model), Settings.load({}, cache_dir=str(cache), offline=True, device="cpu"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("yolo26-cache")


@pytest.fixture(scope="module")
def y26(cache):
    """YOLO26n's architecture with random weights, on torch (the OpenVINO path has its own test below)."""
    return yd.load(_weights(cache, "tiny-random-yolo26"), "cpu", "float32", OFF)


@pytest.fixture
def no_nms(monkeypatch):
    """Make any NMS call fail the test."""
    import ultralytics.utils.nms as nms

    def refuse(*a, **k):
        raise AssertionError("NMS ran for an end-to-end model")

    monkeypatch.setattr(nms, "non_max_suppression", refuse)


def test_yolo26n_is_the_default_and_yolo11_stays_listed():
    assert SPEC.default_model == {"cuda": "yolo26n", "cpu": "yolo26n"}
    ids = [m.id for m in SPEC.models]
    assert {"yolo26n", "yolo26s", "yolo26m", "yolo11n", "yolo11s", "yolo11m"} <= set(ids)
    for mid in ("yolo26n", "yolo26s", "yolo26m"):
        m = SPEC.choice(mid)
        assert m.source == "native" and m.files == (f"{mid}.pt",) and len(m.sha256) == 64
        assert m.license.startswith("AGPL-3.0") and m.approx_bytes > 0
    assert SPEC.choice("tiny-random-yolo26").hidden


def test_the_yolo26_build_runs_its_one_to_one_head_with_no_nms(y26, no_nms):
    assert y26.end2end
    head = y26.net.model[-1]
    assert head.cv2 is None and head.one2one_cv2 is not None  # fusing dropped the training-only one-to-many head
    x = np.zeros((1, 3, 320, 320), np.float32)
    import torch

    raw = y26.forward(torch.from_numpy(x))
    assert tuple(raw.shape) == (1, 300, 6)  # x1, y1, x2, y2, score, class: final rows, best first
    assert torch.all(raw[0, :-1, 4] >= raw[0, 1:, 4])
    det = yd.detect(y26, BUS, conf=0.0, max_det=7, imgsz=320)  # no_nms: an NMS call would fail here
    assert len(det) == 7


def test_an_nms_model_still_runs_nms(cache, monkeypatch):
    import ultralytics.utils.nms as nms

    calls = []
    real = nms.non_max_suppression
    monkeypatch.setattr(nms, "non_max_suppression", lambda *a, **k: calls.append(1) or real(*a, **k))
    eleven = yd.load(_weights(cache, "tiny-random"), "cpu", "float32", OFF)
    assert not eleven.end2end
    yd.detect(eleven, BUS, conf=0.0, max_det=3, imgsz=64)
    assert calls == [1]


def test_yolo26_results_are_well_formed_and_follow_the_settings(y26, no_nms):
    det = yd.detect(y26, BUS, conf=0.0, max_det=20, imgsz=320)
    assert len(det) == 20 and det.boxes.shape == (20, 4) and det.boxes.dtype == np.float32
    w, h = det.original_size
    assert (w, h) == (810, 1080)
    assert np.all(det.boxes[:, [0, 2]] >= 0) and np.all(det.boxes[:, [0, 2]] <= w)
    assert np.all(det.boxes[:, [1, 3]] >= 0) and np.all(det.boxes[:, [1, 3]] <= h)
    assert np.all(det.boxes[:, 2] >= det.boxes[:, 0]) and np.all(det.boxes[:, 3] >= det.boxes[:, 1])
    assert np.all(np.diff(det.scores) <= 0)  # highest confidence first
    rows = det.rows()
    assert list(rows[0]) == ["class", "confidence", "x1", "y1", "x2", "y2"]
    assert sum(det.counts().values()) == 20 and set(det.counts()) <= set(Y.COCO_NAMES)
    # the class filter finds its boxes (among the head's top candidates), and conf above every score gives none
    bus = yd.detect(y26, BUS, conf=0.0, classes=["bus"], max_det=20, imgsz=320)
    assert len(bus) > 0 and set(bus.labels) == {"bus"}
    assert len(yd.detect(y26, BUS, conf=float(det.scores.max()), max_det=20, imgsz=320)) == 0
    # more than the head's usual 300 candidates when asked, and tiny inputs (fewer anchors than that) still run
    assert len(yd.detect(y26, BUS, conf=0.0, max_det=1000, imgsz=320)) == 1000
    small = yd.detect(y26, BUS, conf=0.0, max_det=300, imgsz=64)  # 64x64 input: 8x8 + 4x4 + 2x2 anchor points
    assert len(small) == 84 and np.all(small.boxes[:, 2] <= 810)


def test_a_yolo26_video_keeps_every_frame(y26, tmp_path, no_nms):
    import av

    src = tmp_path / "in.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(9):
            a = np.zeros((120, 160, 3), np.uint8)
            a[:, : 10 + 12 * i] = (200, 60, 30)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    items = list(yv.detect_video(y26, src, tmp_path / "out.mp4", conf=0.0, max_det=3, imgsz=64, batch=4,
                                 tracking=False))
    result = items[-1]
    assert isinstance(result, yv.VideoResult) and result.frames == 9
    assert [r["total"] for r in result.per_frame] == [3] * 9
    assert (tmp_path / "out.mp4").stat().st_size > 0


def _calibrated_yolo26():
    """YOLO26n with random weights whose batch-norm statistics are set from the photo (and smaller final head layers):
    a freshly initialised net's features fade to nothing by the head, so every box would score the same."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolo26n.yaml", task="detect", verbose=False)
    for m in yolo.model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0  # running statistics = this batch's
    from PIL import Image

    photo = np.asarray(Image.open(BUS).convert("RGB").resize((640, 640)), np.float32) / 255
    yolo.model.train()
    with torch.no_grad():
        yolo.model(torch.from_numpy(photo.transpose(2, 0, 1).copy())[None])
        head = yolo.model.model[-1]
        for seq, gain in [(s, 0.02) for s in head.one2one_cv2] + [(s, 0.1) for s in head.one2one_cv3]:
            seq[-1].weight.mul_(gain)  # boxes and scores spread without saturating
    yolo.model.eval()
    return yolo


def test_openvino_gives_the_boxes_of_torch_for_yolo26(cache, tmp_path):
    pytest.importorskip("openvino")
    from demos.yolo_detect import openvino as yov

    loaded = yd.load(_weights(cache, "tiny-random-yolo26"), "cpu", "float32", ON)  # the load path converts it
    assert isinstance(loaded.openvino, yov.OpenVinoNet) and loaded.openvino.end2end
    assert loaded.openvino.xml.parent.name.endswith("-e2e")  # not the cache of an NMS conversion

    det = yd.Detector(_calibrated_yolo26(), "cpu", "float32", cuda_graphs=False)
    ov = yov.OpenVinoNet(det.net, tmp_path / "ov")
    det.openvino = ov
    on_ov = yd.detect(det, BUS, conf=0.0, max_det=100, imgsz=640)
    det.openvino = None
    on_torch = yd.detect(det, BUS, conf=0.0, max_det=100, imgsz=640)
    assert len(on_ov) == len(on_torch) == 100
    assert np.ptp(on_torch.scores) > 1e-5 and len({tuple(b) for b in on_torch.boxes.round()}) >= 30  # no ties
    assert on_ov.labels == on_torch.labels
    np.testing.assert_allclose(on_ov.scores, on_torch.scores, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(on_ov.boxes, on_torch.boxes, atol=0.5)  # pixels of the 810x1080 photo
    # past 300 boxes, or on inputs too small for OpenVINO's top-300 step, the request runs on torch
    det.openvino = ov
    assert len(yd.detect(det, BUS, conf=0.0, max_det=500, imgsz=640)) == 500
    assert len(yd.detect(det, BUS, conf=0.0, max_det=10, imgsz=64)) == 10


def test_the_tab_serves_yolo26_through_gradio_client(serve):
    from gradio_client import handle_file

    client = serve(("yolo_detect",), models={"yolo_detect": "tiny-random-yolo26"})
    img, table, chart, files, rec = client.predict(
        "tiny-random-yolo26", handle_file(str(BUS)), 0.0, 0.7, ["person", "bus"], 4, 320, api_name="/detect")
    assert table["headers"] == ["class", "confidence", "x1", "y1", "x2", "y2"] and len(table["data"]) == 4
    assert {row[0] for row in table["data"]} <= {"person", "bus"}
    assert rec["model"] == "tiny-random-yolo26" and rec["detections"] == 4
    assert rec["nms"] is False and rec["iou"] is None  # the IoU threshold played no part
    doc = json.loads(Path([f for f in files if f.endswith(".json")][0]).read_text())
    assert len(doc["detections"]) == 4


def test_fetch_asks_for_the_yolo26_asset_and_refuses_a_file_that_is_not_the_pinned_one(tmp_path, monkeypatch):
    """`demohub fetch` has Ultralytics' downloader put yolo26n.pt in the cache, then checks the pinned hash."""
    from ultralytics.utils import downloads

    from hub.errors import CorruptWeights

    asked = []
    monkeypatch.setattr(downloads, "attempt_download_asset",
                        lambda path: (asked.append(path), Path(path).write_bytes(b"not the real checkpoint")))
    w = resolve(SPEC, SPEC.choice("yolo26n"), Settings.load({}, cache_dir=str(tmp_path), offline=False, device="cpu"))
    with pytest.raises(CorruptWeights, match="SHA-256"):
        yd.fetch(w)
    assert asked == [str(tmp_path / "native" / "yolo_detect" / "yolo26n.pt")]
