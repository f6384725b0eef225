"""YOLO tab, work as data: every request and result crosses a process as plain data, the work methods answer through
`ctx.call` / `ctx.stream`, and the webcam's ByteTrack tracker lives in the engine per session (ids carry over between
frames of one session, on any backend, and a different session starts fresh)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demos.yolo_detect import DEMO, SPEC
from demos.yolo_detect import types as yt
from hub.context import DemoContext
from hub.errors import UserError
from hub.models import ModelManager
from hub.options import parse
from hub.settings import Settings
from hub.work import roundtrip
from tests import WAIT_S
from tests.test_yolo_detect import BUS, YOLO11N, _video, needs_lap, needs_real


@pytest.fixture(scope="module")
def hub_ctx(tmp_path_factory):
    """A DemoContext on an in-process manager, the tab's own path to the engine (tiny-random and, when the
    official YOLO11n is installed, yolo11n from the cache)."""
    settings = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                             models={SPEC.name: "tiny-random"})  # the hidden test model may be asked for
    if YOLO11N is not None:
        folder = Path(settings.cache_dir) / "native" / "yolo_detect"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(YOLO11N, folder / "yolo11n.pt")
    options = parse(DEMO, {"DEMOHUB_YOLO_DETECT_OPENVINO": "0"})  # torch: no minute-long conversion per test
    manager = ModelManager(settings, {SPEC.name: (SPEC, DEMO.loader(options), DEMO.work_table())})
    yield DemoContext(manager, settings, SPEC)
    manager.unload_all()


def test_every_request_and_result_type_round_trips_through_pickle():
    image = np.zeros((4, 6, 3), np.uint8)
    result = yt.VideoResult("/tmp/demohub/yolo_detect/videos/x/detections.mp4", 3, 12.0, 6, 4, 0.5,
                            [{"frame": 0, "time_s": 0.0, "total": 1, "person": 1}], {"person": 1}, ["a note"])
    values = [
        yt.DetectRequest("/tmp/a.png", 0.25, 0.7, ["person", 0], 300, 640),
        yt.DetectResult(image, [{"class": "person", "confidence": 0.9, "x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0}],
                        {"person": 1}, ("/tmp/t.csv", "/tmp/t.json"), {"model": "m"}),
        yt.VideoRequest("/tmp/v.mp4", None, None, "person, car", None, None, tracking=True),
        yt.VideoProgress(4, 12, 30.5), result, yt.VideoDone(result, {"frames": 3}, "/tmp/counts.csv"),
        yt.TrackRequest(image, "abc:yolo26n", 0.25, 0.7, [], 300, 640),
        yt.TrackResult(image, {"person": 2}, 2, [1, 2]), yt.NamesRequest(), yt.ClassNames(("person", "bus")),
    ]
    for value in values:
        back = roundtrip(value)
        assert type(back) is type(value)
        for name, field in vars(value).items():
            got = vars(back)[name]
            if isinstance(field, np.ndarray):
                np.testing.assert_array_equal(got, field)
            elif not isinstance(field, yt.VideoResult):
                assert got == field, name
    assert roundtrip(result).totals() == result.totals() and roundtrip(result).duration_s == 0.25


def test_detect_video_and_class_names_answer_through_the_hub(hub_ctx, tmp_path):
    out = hub_ctx.call("detect", yt.DetectRequest(str(BUS), 0.0, 0.7, ["person", "bus"], 4, 320), "tiny-random")
    assert isinstance(out, yt.DetectResult) and out.image.shape == (1080, 810, 3)
    assert len(out.rows) == 4 and sum(out.counts.values()) == 4 and out.record["detections"] == 4
    assert [Path(f).suffix for f in out.files] == [".csv", ".json"] and all(Path(f).is_file() for f in out.files)
    assert out.record["classes"] == ["person", "bus"] and out.record["imgsz"] == 320
    with pytest.raises(UserError, match="Confidence threshold is 1.5"):
        hub_ctx.call("detect", yt.DetectRequest(str(BUS), 1.5), "tiny-random")

    src = _video(tmp_path / "clip.mp4", frames=10, rate=10)
    items = list(hub_ctx.stream("detect_video", yt.VideoRequest(str(src), 0.0, None, [], 2, 64), "tiny-random"))
    assert all(isinstance(i, yt.VideoProgress) for i in items[:-1]) and isinstance(items[-1], yt.VideoDone)
    done = items[-1]
    assert done.result.frames == 10 and Path(done.result.path).is_file() and Path(done.counts_csv).is_file()
    assert done.record["frames"] == 10 and sum(done.record["totals"].values()) == 20  # 2 boxes a frame
    names = hub_ctx.call("class_names", yt.NamesRequest(), "tiny-random").names
    assert len(names) == 80 and names[0] == "person"


def test_stopping_a_video_stream_stops_the_method_and_removes_its_file(hub_ctx, tmp_path):
    src = _video(tmp_path / "long.mp4", frames=60, rate=12)
    videos = Path(tempfile.gettempdir()) / "demohub" / SPEC.name / "videos"
    before = set(videos.glob("*/*.mp4"))
    work = hub_ctx.stream("detect_video", yt.VideoRequest(str(src), imgsz=64), "tiny-random")
    first = next(work)
    assert isinstance(first, yt.VideoProgress) and first.done < 60
    work.close()  # what gradio's Stop does to the handler's generator
    assert work.finished.wait(WAIT_S)  # the method returned: the lease is released
    assert set(videos.glob("*/*.mp4")) <= before  # the half-written video was removed


def _frames():
    frame = np.asarray(Image.open(BUS).convert("RGB"))
    return frame, np.ascontiguousarray(np.roll(frame, 6, axis=1))


@pytest.mark.real_weights
@needs_real
@needs_lap
def test_track_ids_carry_over_between_frames_of_one_session_and_not_across_sessions(hub_ctx):
    first_frame, second_frame = _frames()
    first = hub_ctx.call("track_stream", yt.TrackRequest(first_frame, "page-a:yolo11n"), "yolo11n")
    second = hub_ctx.call("track_stream", yt.TrackRequest(second_frame, "page-a:yolo11n"), "yolo11n")
    assert first.found >= 4 and len(first.track_ids) == first.found
    assert set(second.track_ids) == set(first.track_ids)  # same objects, same ids: the tracker carried over
    other = hub_ctx.call("track_stream", yt.TrackRequest(second_frame, "page-b:yolo11n"), "yolo11n")
    # a fresh tracker: on its first frame every detection starts a track (session a's would be on its third frame)
    assert other.found >= second.found and sorted(other.track_ids) == list(range(1, other.found + 1))
    third = hub_ctx.call("track_stream", yt.TrackRequest(first_frame, "page-a:yolo11n"), "yolo11n")
    assert set(third.track_ids) == set(first.track_ids)  # session a is unaffected by session b
    with hub_ctx._manager.use(SPEC.name, "yolo11n") as lease:
        trackers = lease.engine.trackers
        assert len(trackers) == 2 and lease.engine.extra_bytes == trackers.nbytes > 0
        frames = {key: trackers.get(key, lambda: pytest.fail("no tracker")).tracker.frame_id
                  for key in ("page-a:yolo11n", "page-b:yolo11n")}
    assert frames == {"page-a:yolo11n": 3, "page-b:yolo11n": 1}


@needs_lap
def test_tracker_sessions_are_kept_per_session_key_and_a_bad_key_is_refused(hub_ctx):
    frame = np.full((64, 96, 3), 127, np.uint8)
    for key in ("page-a:tiny-random", "page-a:tiny-random", "page-b:tiny-random"):
        out = hub_ctx.call("track_stream", yt.TrackRequest(frame, key, conf=0.0, max_det=3, imgsz=64), "tiny-random")
        assert out.image.shape == (64, 96, 3) and out.found == len(out.track_ids)
    with hub_ctx._manager.use(SPEC.name, "tiny-random") as lease:
        trackers = lease.engine.trackers
        assert "page-a:tiny-random" in trackers and "page-b:tiny-random" in trackers and len(trackers) == 2
    for bad in ("", None, "x" * 300):
        with pytest.raises(UserError, match="session key"):
            hub_ctx.call("track_stream", yt.TrackRequest(frame, bad), "tiny-random")
    with pytest.raises(UserError, match="Max detections is 0"):
        hub_ctx.call("track_stream", yt.TrackRequest(frame, "page-c", max_det=0), "tiny-random")


@needs_lap
def test_a_webcam_object_out_of_sight_for_a_second_keeps_its_id_and_longer_gets_a_new_one(hub_ctx, monkeypatch):
    """ByteTrack keeps a lost track until more than its buffer has passed since the object was last tracked: 30
    frames at the webcam's 30 frames/s, one second (the object's first empty frame is its last tracked one, so 31
    empty frames keep it and 32 do not). A scripted detector (one box, or none) drives the session's tracker
    through `track_stream`; the ids are ByteTrack's own."""
    import demos.yolo_detect.engine as yolo_engine

    real = yolo_engine.detect_picture
    seen = {"box": True}

    def scripted(engine, picture, params):
        det = real(engine, picture, params)  # the picture as the tab sees it; then one box, or nothing
        n = 1 if seen["box"] else 0
        det.boxes = np.array([[20.0, 10.0, 60.0, 50.0]] * n, np.float32).reshape(n, 4)
        det.scores, det.class_ids = np.full(n, 0.9, np.float32), np.zeros(n, np.int64)
        return det

    monkeypatch.setattr(yolo_engine, "detect_picture", scripted)
    frame = np.full((64, 96, 3), 127, np.uint8)

    def ids_after_a_gap(session: str, gap: int) -> tuple[list, list]:
        call = lambda: hub_ctx.call("track_stream", yt.TrackRequest(frame, session, imgsz=64), "tiny-random").track_ids
        seen["box"] = True
        before = [call() for _ in range(3)][-1]
        seen["box"] = False
        assert all(call() == [] for _ in range(gap))
        seen["box"] = True
        return before, [call() for _ in range(2)][-1]  # a new track shows from its second frame

    before, after = ids_after_a_gap("page-a:tiny-random", 31)
    assert before == after == [1]  # about a second out of sight: the same object
    before, after = ids_after_a_gap("page-b:tiny-random", 32)
    assert before == [1] and after == [2]  # longer: ByteTrack dropped it, and it is a new object
