"""Faults: Cancel/Stop mid-work releases the model at once; missing weights offline leave other tabs working;
the CPU-fallback warning reaches API users in the record."""

from __future__ import annotations

import time
import wave

import numpy as np
import pytest
from gradio_client import handle_file
from tests import WAIT_S



@pytest.fixture(scope="module")
def hub(tiny_hub):
    return tiny_hub, tiny_hub.blocks.hub_manager, tiny_hub.tmp


def long_wav(path, seconds=240):
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(16000 * seconds) * 3000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    return path


def long_video(path, frames=600):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def requests(tmp):
    return {
        "stable_diffusion": ("/generate_image", ("tiny-random", "a cube", "", 1, 150, 7.5, "Euler a", 64, 64, 4),
                             ("tiny-random", "a cube", "", 1, 1, 7.5, "Euler a", 64, 64, 1)),
        "whisper_asr": ("/transcribe", ("tiny-random", handle_file(str(long_wav(tmp / "long.wav"))), None, "transcribe", "en",
                                        False, False, "", 1),
                        ("tiny-random", handle_file(str(long_wav(tmp / "short.wav", 2))), None, "transcribe", "en", False,
                         False, "", 1)),
        "yolo_detect": ("/detect_video", ("tiny-random", handle_file(str(long_video(tmp / "long.mp4"))), 0.25, 0.7, [], 100,
                                          320, False),
                        ("tiny-random", handle_file(str(long_video(tmp / "short.mp4", 3))), 0.25, 0.7, [], 100, 320, False)),
        "llm_chat": ("/chat", ("tell me a long story", "tiny-random", "You are helpful.", 0.7, 0.9, 50, 4096, 1.0),
                     ("hi", "tiny-random", "You are helpful.", 0.7, 0.9, 50, 4, 1.0)),
    }


def in_use(manager, demo) -> int:
    return sum(r["in_use"] for r in manager.status() if r["demo"] == demo)


def units_done(demo: str, items: list) -> tuple[int, int] | None:
    """(work units done, units the whole long request has) from the items its stream yielded; None where the
    total is not known in advance (Whisper's windows on noise)."""
    if demo == "stable_diffusion":
        return sum(type(i).__name__ == "Step" for i in items) - 1, 150  # Step(0) is the start, then one per step
    if demo == "yolo_detect":
        return max((i.done for i in items if type(i).__name__ == "VideoProgress"), default=0), 600
    if demo == "llm_chat":
        return len(items), 4096
    return None


@pytest.mark.parametrize("demo", ["stable_diffusion", "whisper_asr", "yolo_detect", "llm_chat"])
def test_cancel_mid_work_releases_the_model_and_the_next_request_runs_at_once(hub, demo, monkeypatch):
    """Cancel stops the work before its end (counted in its own units: steps, frames, tokens) and frees the model
    for the next request. Waits are conditions with generous caps: a busy machine is slow, not wrong."""
    client, manager, tmp = hub
    api, long_args, short_args = requests(tmp)[demo]
    client.predict(*short_args, api_name=api)  # load the model first, so the cancel hits the work, not the load
    seen: list = []
    real_stream = manager.stream

    def counted(d, method, request, model=None, job=None):
        for item in real_stream(d, method, request, model, job):
            if d == demo:
                seen.append(item)
            yield item

    monkeypatch.setattr(manager, "stream", counted)
    job = client.submit(*long_args, api_name=api)
    deadline = time.monotonic() + WAIT_S
    while in_use(manager, demo) == 0 or len(seen) < 2:  # wait until the work holds the model and has begun
        assert time.monotonic() < deadline and not job.done(), "the long request never started"
        time.sleep(0.05)
    job.cancel()
    while in_use(manager, demo):
        assert time.monotonic() < deadline, f"{demo}: the model was never released after Cancel"
        time.sleep(0.05)
    if (units := units_done(demo, list(seen))) is not None:  # the lease is held until the work returns
        assert units[0] < units[1], f"{demo}: the work ran to its end ({units[0]} of {units[1]}) despite Cancel"
    monkeypatch.undo()
    client.predict(*short_args, api_name=api)  # the next request runs


def test_missing_weights_offline_is_actionable_and_other_tabs_work(settings, serve):
    client = serve(("clip_zero_shot", "tests.fake_demo"), models={})  # CLIP's real default, not in the empty cache
    from PIL import Image

    img = settings.cache_dir.parent / "x.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32)).save(img)
    model = client.blocks.hub_manager.choice("clip_zero_shot").id
    with pytest.raises(Exception) as e:
        client.predict(model, [{"image": handle_file(str(img)), "caption": None}], "cat, dog", "a photo of a {}.",
                       "none", "single", 0.5, 3, api_name="/classify")
    said = str(e.value)
    assert "is not on this machine" in said and f"demohub fetch clip_zero_shot --model {model}" in said
    assert said.count("demohub fetch") == 1 and "Unavailable" not in said and "/" + "tmp" not in said, said
    assert client.predict("echo-small", "still here", 1, api_name="/echo")[0] == "still here"
    rows = client.blocks.hub_manager.status()
    assert any(r["state"] == "failed" and "demohub fetch" in r["note"] for r in rows)


def test_cpu_fallback_warning_is_in_the_api_record(settings):
    import torch

    from hub.device import Placement
    from hub.models import ModelManager
    from tests import fake_demo

    def load(weights, device, dtype, settings=None):
        if device == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return fake_demo.Engine(weights.choice.id, device, dtype)

    m = ModelManager(settings, {"fake_echo": (fake_demo.SPEC, load)}, placement=lambda prefers=None, **kw: Placement("cuda", "float16"),
                     free_bytes=lambda kind: None)
    with m.use("fake_echo") as lease:
        record = lease.record(x=1)
    assert record["device"] == "cpu" and "CPU" in record["warning"] and record["x"] == 1
