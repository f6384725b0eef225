"""Stable Diffusion's work methods (engine.WORK): typed requests in, Step items and the Result out; the tab's
handlers reach them through ctx.stream, and closing the stream stops the denoising within a step. Tiny random
weights built in the test (test_stable_diffusion.py says how); no download."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from PIL import Image

from demos.stable_diffusion import engine as sd
from hub.errors import UserError
from hub.weights import Weights
from tests import WAIT_S


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings

    weights = Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None, tmp_path_factory.mktemp("sd"))
    return sd.load(weights, "cpu", "float32", settings=Settings.load({}))


def px(im) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


class _Ctx:
    """The ctx.stream a handler sees: the allow-list, then the engine's work method (by name, on a pickled request,
    as a Ray replica gets it) under a lease, in hub.streams' worker."""

    def __init__(self, engine):
        self.engine, self.calls, self.loaded, self.jobs = engine, [], set(), []

    def loading_text(self, model):
        return None if model in self.loaded else f"Loading {model} (2.6 GB): the first request waits for it\u2026"

    def stream(self, method, request, model):
        from types import SimpleNamespace

        from hub.streams import WorkStream
        from hub.work import dispatch, roundtrip

        self.calls.append((method, model))
        if model != "tiny-random":
            raise UserError("'evil/model' is not one of this hub's models; pick a listed one.")
        self.loaded.add(model)
        lease = SimpleNamespace(engine=self.engine, warning=None, record=lambda **kw: kw)
        work = WorkStream(lambda job: dispatch(sd.WORK.get(method), lease, roundtrip(request), job))
        self.jobs.append(work)
        return work


def test_every_generation_goes_through_ctx_stream(engine):
    """The tab's handlers reach the model only through ctx.stream with a typed request (allow-list, lease, OOM
    recovery, warnings); the status line says what is under way: loading (only while the model is not loaded),
    encoding, each step as it starts, decoding, then the images (issue #36 point 5: the line never names a stage
    that has ended)."""
    from demos.stable_diffusion import ui
    from demos.stable_diffusion.types import GenerateRequest, Settings

    ctx = _Ctx(engine)
    req = GenerateRequest("x", settings=Settings(seed=1, steps=2))
    said = ["Encoding the prompt, then denoising step 1\u2026", "Step 2 of 2\u2026", "Decoding the image\u2026"]
    items = list(ui.stream(ctx, "txt2img", req, "tiny-random"))
    again = list(ui.stream(ctx, "txt2img", req, "tiny-random"))
    assert [i[2] for i in items[:4]] == ["Loading tiny-random (2.6 GB): the first request waits for it\u2026", *said]
    assert len(items) == 5 and items[-1][1] == 1 and items[-1][3]["seeds"] == [1]  # then the images
    assert [i[2] for i in again[:3]] == said and len(again) == 4  # loaded now: no word about loading
    with pytest.raises(UserError, match="not one of this hub's models"):
        list(ui.stream(ctx, "txt2img", req, "evil/model"))
    assert ctx.calls == [("txt2img", "tiny-random")] * 2 + [("txt2img", "evil/model")]


@contextlib.contextmanager
def _slowed(unet, seconds: float = 0.05):
    """The UNet made slow (a step a person can see); yields the list of its calls' times."""
    calls, real_forward = [], unet.forward

    def slow_forward(*a, **kw):
        calls.append(time.monotonic())
        time.sleep(seconds)
        return real_forward(*a, **kw)

    unet.forward = slow_forward
    try:
        yield calls
    finally:
        del unet.forward


def test_closing_the_tab_stream_stops_the_work_method_within_a_step(engine):
    """Gradio closes a cancelled handler's generator: the method's job.stop is set, the pipeline stops after its
    current step (diffusers' interrupt), and the method returns (the lease released) without the handler waiting."""
    from demos.stable_diffusion import ui
    from demos.stable_diffusion.types import GenerateRequest, Settings

    ctx = _Ctx(engine)
    with _slowed(engine.pipe.unet) as steps:
        run = ui.stream(ctx, "txt2img", GenerateRequest("x", settings=Settings(seed=1, steps=150)), "tiny-random")
        said = [next(run)[2] for _ in range(4)]
        assert said[-1] == "Step 3 of 150\u2026"
        run.close()
        assert ctx.jobs[0].finished.wait(WAIT_S), "the work method did not return after the stream was closed"
        n = len(steps)
        time.sleep(0.3)
        assert len(steps) == n and n < 150, f"the denoising loop kept running ({n} of 150 steps)"
    assert len(sd.generate(engine, "x", steps=2, seed=1).images) == 1  # usable right after


def test_work_methods_stream_steps_then_the_result_and_stop_on_job_stop(engine):
    from types import SimpleNamespace

    from demos.stable_diffusion.types import Img2ImgRequest, InpaintRequest, Result, Settings, Step
    from hub.work import Job, dispatch

    lease = SimpleNamespace(engine=engine, record=lambda **kw: kw)
    img, mask = Image.new("RGB", (64, 64), "orange"), Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 32, 64, 64))
    s = Settings(seed=3, steps=4, preview=True)
    items = list(dispatch(sd.WORK.get("inpaint"), lease, InpaintRequest(img, mask, "x", settings=s), Job()))
    assert [(i.step, i.total) for i in items[:-1]] == [(0, None), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(i.preview.size == (64, 64) for i in items[1:-1])  # the tiny decoder's preview of image 1
    res = items[-1]
    assert isinstance(res, Result) and res.record["mode"] == "inpaint" and res.record["seeds"] == [3]
    quiet = Settings(seed=3, steps=4, step_items=False)  # what /v1 asks: the Result alone
    [only] = dispatch(sd.WORK.get("img2img"), lease, Img2ImgRequest(img, "x", "", 1.0, quiet), Job())
    assert isinstance(only, Result) and only.params["strength"] == 1.0
    job, seen = Job(), []
    with _slowed(engine.pipe.unet) as calls:
        for item in dispatch(sd.WORK.get("txt2img"), lease, sd.GenerateRequest("x", settings=Settings(steps=30)), job):
            seen.append(item)
            if len(seen) == 3:
                job.stop.set()
    assert all(isinstance(i, Step) for i in seen) and len(calls) <= 5  # stopped within a step: no Result
    with pytest.raises(UserError, match="Steps"):  # the check step, before any work
        next(dispatch(sd.WORK.get("txt2img"), lease, sd.GenerateRequest("x", settings=Settings(steps=0)), Job()))


def test_requests_items_and_results_round_trip(engine):
    from demos.stable_diffusion.types import GenerateRequest, Img2ImgRequest, InpaintRequest, Settings, Step
    from hub.work import roundtrip

    img, mask = Image.new("RGB", (16, 8), "red"), Image.new("L", (16, 8), 255)
    s = Settings(seed=1, steps="2", guidance=7.5, scheduler="DDIM", width=64, height=64, num_images=2, decoder="tiny")
    for obj in (GenerateRequest("a fox", "blurry", s), Img2ImgRequest(img, "x", strength=0.5, settings=s),
                Img2ImgRequest("/tmp/upload.png", "x"), InpaintRequest(img, mask, "x", settings=s),
                Step(0, None), Step(2, 4, img)):
        assert roundtrip(obj) == obj  # PIL images compare by mode, size and pixels
    res = sd.generate(engine, "x", steps=1, seed=1, num_images=2)
    res.record = {"seeds": res.seeds}
    back = roundtrip(res)
    assert back.seeds == [1, 2] and back.record == res.record and back.params == res.params
    assert np.array_equal(px(back.images[1]), px(res.images[1]))
