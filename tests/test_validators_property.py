"""Property-based tests (hypothesis) for every public parameter validator of the six demos and hub/settings.py.

The property, for arbitrary inputs (NaN, inf, negative, huge, wrong types, unicode): a validator either returns a
value that satisfies its documented invariant, or raises `hub.errors.UserError` (settings: `SettingsError`) whose
message is a sentence. Any other exception is a bug. Engine-level functions are called directly with stand-in
engines (no model, no gradio); where a public function goes on to run a model after validating, the model step is
patched out or never reached.

Inputs that once broke the property (overflowing numbers, nested JSON, wrong types...) are pinned with `@example`.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from types import SimpleNamespace as NS
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from hub.errors import SettingsError, UserError

import demos.clip_zero_shot as clip
import demos.llm_chat as llm
import demos.sam_segment as sam
import demos.stable_diffusion as sd
import demos.whisper_asr as whisper
import demos.yolo_detect as yolo
from hub.settings import DEVICES, DTYPES, WEIGHTS, Settings, parse_bytes

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- shared strategies and the property ------------------------------------------------------------------------

FLOAT_LIMIT = 1e308  # ints beyond float range make float(value) raise OverflowError: a known bug class, tested apart
HUGE_INT = 10**400
DEEP_JSON = "[" * 100_000  # json.loads raises RecursionError (not ValueError) on this

small_ints = st.integers(min_value=-10**6, max_value=10**6)
big_ints = st.integers(min_value=-10**300, max_value=10**300)  # still inside float range
floats = st.floats(allow_nan=True, allow_infinity=True)
numbers = st.one_of(small_ints, big_ints, floats, st.sampled_from([0, 1, -1, 0.5, -0.0, 1e-320, 2**63, 2**64]))
unicode_text = st.text(max_size=20)
numeric_text = st.one_of(numbers.map(str), st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "0x10", "1_0",
                                                           "٣", "１２", "3.", " 7 ", "NaN"]))
junk = st.one_of(st.none(), st.booleans(), st.lists(small_ints, max_size=3), st.binary(max_size=4),
                 st.dictionaries(st.text(max_size=3), small_ints, max_size=2))
anything = st.one_of(numbers, numeric_text, unicode_text, junk)


def one_bad(valid: dict, bad=anything):
    """Valid settings, or the same with one field replaced by an arbitrary value (so both paths are exercised)."""
    return st.tuples(st.fixed_dictionaries(valid), st.one_of(st.none(), st.sampled_from(sorted(valid))), bad).map(
        lambda t: t[0] if t[1] is None else {**t[0], t[1]: t[2]})


def check_sentence(err: Exception) -> None:
    msg = str(err)
    assert len(msg.split()) >= 4, f"not a sentence: {msg!r}"


def outcome(fn, *args, **kw):
    """(True, value) or (False, UserError); any other exception propagates and fails the property."""
    try:
        return True, fn(*args, **kw)
    except UserError as e:
        check_sentence(e)
        return False, e


def as_float(value):
    """float(value) when Python can make one, else None (what a numeric validator must accept or refuse)."""
    try:
        return None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def overflows(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > FLOAT_LIMIT


# ---- hub/settings.py (parse_bytes/parse_auth are in test_settings.py; here: every variable through load) --------

INT_VARS = {"DEMOHUB_PORT": (1, 65535), "DEMOHUB_MAX_UPLOAD_MB": (1, 100_000), "DEMOHUB_QUEUE_SIZE": (1, 100_000)}
CHOICE_VARS = {"DEMOHUB_DEVICE": DEVICES, "DEMOHUB_DTYPE": DTYPES, "DEMOHUB_WEIGHTS": WEIGHTS}
BOOL_VARS = {"DEMOHUB_OFFLINE": "offline", "DEMOHUB_SHARE": "share", "DEMOHUB_INSECURE_SHARE": "insecure_share",
             "DEMOHUB_COMPILE": "compile"}
env_text = st.one_of(unicode_text, numeric_text, st.sampled_from(["auto", "CPU", " cuda ", "Float16", "on", "OFF",
                                                                 "Yes", "2", "a,b,,c", " , ", "8GB"]))


@FAST
@given(var=st.sampled_from(sorted({**INT_VARS, **CHOICE_VARS, **BOOL_VARS}) + ["DEMOHUB_DEMOS", "DEMOHUB_HOST"]),
       value=env_text)
def test_every_settings_variable_is_typed_or_refused_by_name(var, value):
    assume("\x00" not in value)
    try:
        s = Settings.load({var: value})
    except SettingsError as e:
        check_sentence(e)
        assert var in str(e)
        return
    if var in INT_VARS:
        lo, hi = INT_VARS[var]
        n = {"DEMOHUB_PORT": s.port, "DEMOHUB_MAX_UPLOAD_MB": s.max_upload_mb, "DEMOHUB_QUEUE_SIZE": s.queue_size}[var]
        assert isinstance(n, int) and lo <= n <= hi
    elif var in CHOICE_VARS:
        got = {"DEMOHUB_DEVICE": s.device, "DEMOHUB_DTYPE": s.dtype, "DEMOHUB_WEIGHTS": s.weights}[var]
        assert got in CHOICE_VARS[var] and got == value.strip().lower()
    elif var in BOOL_VARS:
        assert getattr(s, BOOL_VARS[var]) in (True, False)
    elif var == "DEMOHUB_DEMOS":
        assert s.demos is None or (s.demos and all(n and n == n.strip() and "," not in n for n in s.demos))
    else:
        assert s.host and s.host == s.host.strip()


@FAST
@given(demo=st.sampled_from(["stable_diffusion", "yolo_detect"]), value=env_text)
def test_demo_flags_are_booleans_or_a_named_error(demo, value):
    s = Settings.load({f"DEMOHUB_{demo.upper()}_SAFETY_CHECKER": value})
    try:
        flag = s.demo_flag(demo, "safety_checker", True)
    except SettingsError as e:
        check_sentence(e)
        assert f"DEMOHUB_{demo.upper()}_SAFETY_CHECKER" in str(e)
    else:
        assert flag in (True, False)


@QUICK
@example("0.5")
@given(st.floats(min_value=1e-9, max_value=0.99).map(lambda f: f"{f:.9f}"))
def test_parse_bytes_fraction_of_a_byte_is_refused_not_zero(text):
    try:
        v = parse_bytes(text, "DEMOHUB_VRAM_BUDGET")
    except SettingsError:
        return
    assert v is None or v > 0, f"parse_bytes({text!r}) == {v}"


@QUICK
@example("9" * 400)
@given(st.integers(min_value=309, max_value=1000).map(lambda n: "9" * n + "GB"))
def test_parse_bytes_absurd_size_is_a_settings_error(text):
    try:
        parse_bytes(text, "DEMOHUB_VRAM_BUDGET")
    except SettingsError as e:
        check_sentence(e)


# ---- stable_diffusion --------------------------------------------------------------------------------------------

SD_DEFAULTS = {"size": 512, "steps": 4, "guidance": 7.5, "scheduler": "Euler a"}


def sd_engine(inpainting: bool = False):
    return NS(is_inpainting_model=inpainting, defaults=dict(SD_DEFAULTS), pipe=NS(tokenizer=sd.clip_tokenizer()),
              img2img_pipe=None, inpaint_pipe=None, model_id="tiny-random", revision=None)


def sd_captured(fn, *args, **kw):
    """Run a public SD entry point with the diffusion step replaced by 'return the validated parameters'."""
    with mock.patch.object(sd, "_run", lambda engine, pipe, p, extra, notes, *a: (p, extra, notes)):
        return outcome(fn, *args, **kw)


def check_sd_common(p: dict) -> None:
    assert isinstance(p["steps"], int) and 1 <= p["steps"]
    assert isinstance(p["guidance"], float) and 0 <= p["guidance"] <= sd.MAX_GUIDANCE
    assert p["scheduler"] in sd.SCHEDULERS
    assert isinstance(p["num_images"], int) and 1 <= p["num_images"] <= sd.MAX_IMAGES
    assert isinstance(p["seed"], int) and 0 <= p["seed"] <= sd.MAX_SEED
    assert p["width"] % 8 == 0 and sd.MIN_SIDE <= p["width"] <= sd.MAX_SIDE
    assert p["height"] % 8 == 0 and sd.MIN_SIDE <= p["height"] <= sd.MAX_SIDE


sd_param = st.one_of(st.none(), anything)
sd_side = st.one_of(st.none(), st.integers(-100, 5000), st.floats(-1e4, 1e4), st.sampled_from(["512", "100.5"]))
sd_valid = {"seed": st.one_of(st.none(), st.integers(-1, sd.MAX_SEED), st.just("")),
            "steps": st.one_of(st.none(), st.integers(1, sd.MAX_STEPS), st.just(20.0)),
            "guidance": st.one_of(st.none(), st.floats(0, sd.MAX_GUIDANCE)), "width": sd_side, "height": sd_side,
            "scheduler": st.one_of(st.none(), st.sampled_from(sd.SCHEDULERS)), "num_images": st.integers(1, 4)}


@FAST
@given(prompt=st.one_of(unicode_text, st.text(max_size=400), st.none()), negative=st.one_of(unicode_text, st.none()),
       kw=one_bad(sd_valid, st.one_of(anything, st.text(max_size=8))))
def test_sd_generate_validates_every_setting(prompt, negative, kw):
    seed, steps, guidance, width, height, scheduler, num_images = (kw[k] for k in (
        "seed", "steps", "guidance", "width", "height", "scheduler", "num_images"))
    assume(not any(map(overflows, (seed, steps, guidance, width, height, num_images))))
    ok, r = sd_captured(sd.generate, sd_engine(), prompt, negative, seed=seed, steps=steps, guidance=guidance,
                        width=width, height=height, scheduler=scheduler, num_images=num_images)
    if ok:
        p, extra, notes = r
        check_sd_common(p)
        assert p["steps"] <= sd.MAX_STEPS and (extra["width"], extra["height"]) == (p["width"], p["height"])
        for given_side, side in ((width, p["width"]), (height, p["height"])):
            if given_side is not None and as_float(given_side) != side:
                assert any(str(side) in n for n in notes), "a changed size must be explained in a note"


@FAST
@given(size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       kw=one_bad({"strength": st.floats(0, 1), "steps": st.integers(1, sd.MAX_STEPS), "width": sd_side,
                   "height": sd_side}))
def test_sd_img2img_fits_size_and_strength(size, kw):
    from PIL import Image

    strength, steps, width, height = kw["strength"], kw["steps"], kw["width"], kw["height"]
    assume(not any(map(overflows, (strength, steps, width, height))))
    ok, r = sd_captured(sd.img2img, sd_engine(), Image.new("RGB", size, (9, 99, 199)), "a cat", strength=strength,
                        steps=steps, width=width, height=height)
    if ok:
        p, extra, _ = r
        check_sd_common(p)
        assert 0 < p["strength"] <= 1 and extra["image"].size == (p["width"], p["height"])
        assert int(p["steps"] * p["strength"]) >= 1, "at least one denoising step must run"


@FAST
@given(text=st.one_of(st.text(max_size=120), st.lists(st.sampled_from(
    ["Steps: ", "Seed: ", "CFG scale: ", "Size: ", "x", "nan", "1e999", "12", "-3", ", ", "\n", "Negative prompt: ",
     "Sampler: DPM++ 2M", "Schedule type: Karras", '"', "Denoising strength: ", "Mode: img2img", "٣", "\u2028"]),
    max_size=25).map("".join)), key=st.sampled_from(["parameters", "demohub"]))
def test_sd_read_parameters_returns_typed_fields(text, key):
    from PIL import Image

    im = Image.new("RGB", (8, 8))
    im.info[key] = text
    ok, params = outcome(sd.read_parameters, im)
    if ok:
        assert isinstance(params, dict)
        if key == "parameters":
            for name, typ in (("steps", int), ("seed", int), ("guidance", float), ("strength", float),
                              ("width", int), ("height", int), ("prompt", str), ("negative_prompt", str)):
                assert name not in params or isinstance(params[name], typ), (name, params)


@QUICK
@example(field="width", value=HUGE_INT)
@given(field=st.sampled_from(["seed", "steps", "guidance", "width", "height", "num_images"]),
       value=st.sampled_from([HUGE_INT, -HUGE_INT]))
def test_sd_generate_refuses_ints_beyond_float_range(field, value):
    sd_captured(sd.generate, sd_engine(), "a cat", **{field: value})


@QUICK
@example(strength=5e-324)
@given(strength=st.floats(min_value=5e-324, max_value=5e-309))
def test_sd_img2img_denormal_strength(strength):
    from PIL import Image

    sd_captured(sd.img2img, sd_engine(), Image.new("RGB", (8, 8)), "a cat", strength=strength)


@QUICK
@example(strength=1e-6)
@given(strength=st.floats(min_value=1e-300, max_value=1e-4))
def test_sd_img2img_tiny_strength(strength):
    from PIL import Image

    ok, r = sd_captured(sd.img2img, sd_engine(), Image.new("RGB", (8, 8)), "a cat", strength=strength)
    if ok:
        p = r[0]
        assert 1 <= int(p["steps"] * p["strength"]) and p["steps"] <= 1000, p["steps"]


@QUICK
@example(DEEP_JSON)
@given(st.integers(min_value=50_000, max_value=200_000).map(lambda n: "[" * n))
def test_sd_read_parameters_deeply_nested_json(text):
    from PIL import Image

    im = Image.new("RGB", (8, 8))
    im.info["demohub"] = text
    outcome(sd.read_parameters, im)


# ---- clip_zero_shot ----------------------------------------------------------------------------------------------

label_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["cat", "Cat", "dog", " ", "", "a  b", "東京", "naïve", "\t", "x\u2028y", "🐱"]),
             max_size=6).map(",".join),
    st.lists(st.sampled_from(["cat", "dog", "car", " bird ", "Dog", "", "a\nb"]), max_size=6).map("\n".join),
    st.lists(st.one_of(st.text(max_size=6), small_ints, floats), max_size=6),
)


@FAST
@given(text=label_text, max_labels=st.integers(1, 5))
def test_clip_parse_labels_non_empty_stripped_unique(text, max_labels):
    ok, labels = outcome(clip.parse_labels, text, max_labels)
    if ok:
        assert 1 <= len(labels) <= max_labels
        assert all(isinstance(x, str) and x and x == " ".join(x.split()) for x in labels)
        assert len({x.lower() for x in labels}) == len(labels)


@FAST
@given(template=st.one_of(st.text(max_size=30), st.text(max_size=8).map(lambda t: t + "{}."), st.sampled_from(["a photo of a {}.", "{}", "{ }", "{{}}", ""]),
                          st.none()),
       ensemble=st.one_of(st.just("none"), st.text(max_size=8)))
def test_clip_templates_for_always_have_a_label_slot(template, ensemble):
    ok, templates = outcome(clip.templates_for, template, ensemble)
    if ok:
        assert templates and all("{}" in t for t in templates)
        assert all(clip.fill(t, "cat") != t for t in templates)


@FAST
@given(labels=label_text, template=st.one_of(st.text(max_size=20), st.just("a {}")),
       mode=st.one_of(st.sampled_from(clip.MODES), unicode_text), threshold=st.one_of(numbers, numeric_text),
       ensemble=st.one_of(st.just("none"), unicode_text))
def test_clip_classify_validates_before_touching_the_model(labels, template, mode, threshold, ensemble):
    # No images: a request whose every setting is valid must still end as a UserError ("Upload at least one image"),
    # before the engine (None here) is ever used.
    ok, _ = outcome(clip.classify, None, None, labels, template, ensemble, mode, threshold)
    assert not ok


@FAST
@given(query=st.one_of(st.text(max_size=40), st.none()))
def test_clip_search_images_validates_query_and_gallery(query):
    ok, err = outcome(clip.search_images, None, None, query)
    assert not ok


@QUICK
@example(threshold="abc")
@given(threshold=st.text(alphabet="abcxyz", min_size=1, max_size=5))
def test_clip_classify_non_numeric_threshold(threshold):
    outcome(clip.classify, None, None, "cat, dog", mode="multi", threshold=threshold)


@QUICK
@example(fn="parse_labels", value=5)
@given(fn=st.sampled_from(["parse_labels", "templates_for", "search_images"]),
       value=st.one_of(st.integers(1, 9), st.floats(0.5, 9), st.dictionaries(st.just("a"), st.just(1), min_size=1)))
def test_clip_text_validators_with_wrong_types(fn, value):
    call = {"parse_labels": lambda: clip.parse_labels(value), "templates_for": lambda: clip.templates_for(value),
            "search_images": lambda: clip.search_images(None, None, value)}[fn]
    outcome(call)


# ---- whisper_asr -------------------------------------------------------------------------------------------------


@FAST
@given(language=st.one_of(st.text(max_size=12), st.none(),
                          st.sampled_from(["", "auto", "EN", " French ", "fr (french)", "haw", "yue", "zz", "german",
                                           "Deutsch", "ja ", "İ", "en\n"])))
def test_whisper_normalize_language_gives_a_known_code(language):
    ok, code = outcome(whisper.normalize_language, language)
    if ok:
        assert code is None or code in whisper.languages()
        if code is None:
            assert (language or "").strip().lower() in ("", "auto", "auto-detect", "detect")


beam_ok = st.one_of(st.integers(-100, 100), st.floats(-1e6, 1e6), st.booleans(), st.sampled_from(["3", " 5 "]))


@FAST
@given(task=st.one_of(st.sampled_from(["transcribe", "translate"]), unicode_text),
       language=st.one_of(st.none(), st.sampled_from(["en", "fr", "German", "xx"]), unicode_text),
       beam=beam_ok, multilingual=st.booleans())
def test_whisper_transcribe_options_are_validated(task, language, beam, multilingual):
    # audio=None: valid options still end in "No audio given", so every path must be a UserError.
    eng = NS(multilingual=multilingual, name="tiny" if multilingual else "tiny.en")
    ok, _ = outcome(lambda: next(whisper.transcribe_iter(eng, None, task=task, language=language, beam_size=beam)))
    assert not ok


audio_dtypes = st.sampled_from([np.int16, np.int32, np.uint8, np.float32, np.float64, np.complex64, np.bool_])


@st.composite
def audio_arrays(draw):
    dtype = draw(audio_dtypes)
    shape = draw(st.sampled_from([(0,), (5,), (1000,), (2000,), (1000, 2), (2, 1000), (3, 3, 3), (0, 0), ()]))
    fill = draw(st.sampled_from([0.0, 0.25, -1.0, float("nan"), float("inf"), 100.0]))
    with np.errstate(all="ignore"):
        a = np.full(shape, fill).astype(dtype) if np.isfinite(fill) or dtype in (np.float32, np.float64) \
            else np.zeros(shape, dtype)
    return a


@FAST
@given(sr=st.one_of(st.integers(8000, 96000), st.sampled_from([0, -16000, 16000.0, None, "16000", True, 22050])),
       data=st.one_of(audio_arrays(), st.integers(1600, 3000).map(
           lambda n: np.sin(np.arange(n, dtype=np.float32) / 7))), bare=st.booleans())
def test_whisper_load_audio_gives_finite_mono_16k(sr, data, bare):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's "mean of empty slice"
        ok, audio = outcome(whisper.load_audio, data if bare else (sr, data))
    if ok:
        assert audio.ndim == 1 and audio.dtype == np.float32
        assert audio.size >= whisper.SAMPLE_RATE // 10 and np.isfinite(audio).all()


@QUICK
@example(beam=float("nan"))
@given(beam=st.sampled_from([float("nan"), float("inf"), "x", None, "2.5"]))
def test_whisper_beam_size_junk(beam):
    outcome(lambda: next(whisper.transcribe_iter(NS(multilingual=True, name="tiny"), None, beam_size=beam)))


@QUICK
@example(5)
@given(st.one_of(st.integers(1, 99), st.floats(0.5, 9), st.lists(st.just("en"), min_size=1, max_size=2)))
def test_whisper_normalize_language_wrong_type(language):
    outcome(whisper.normalize_language, language)


@QUICK
@example(source=(2**62, np.zeros(3000, np.float32)))
@given(source=st.sampled_from([(2**62, np.zeros(3000, np.float32)), (1, 2, 3), (16000,)]))
def test_whisper_load_audio_absurd_tuples(source):
    outcome(whisper.load_audio, source)


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
        assert ((p.points[:, 0] >= 0) & (p.points[:, 0] < w) & (p.points[:, 1] >= 0) & (p.points[:, 1] < h)).all()
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
            ok, _ = outcome(sam.segment_everything, NS(uid=1, sam=None), NS(key="k", engine_uid=1), picture,
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
            outcome(sam.segment_everything, NS(uid=1, sam=None), NS(key="k", engine_uid=1), picture,
                    pred_iou_thresh=v)
        except _Reached:
            pass


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


# ---- llm_chat ----------------------------------------------------------------------------------------------------


def check_gen_params(g: llm.GenParams) -> None:
    assert 0 <= g.temperature <= 2 and 0 < g.top_p <= 1 and 0 < g.repetition_penalty <= 3
    assert isinstance(g.top_k, int) and 0 <= g.top_k <= 100_000
    assert isinstance(g.max_new_tokens, int) and g.max_new_tokens >= 1
    assert g.seed is None or (isinstance(g.seed, int) and 0 <= g.seed < 2**63)
    assert len(g.stop) <= 4 and all(isinstance(s, str) and s for s in g.stop)


stops = st.one_of(st.none(), st.text(max_size=5), st.lists(st.one_of(st.text(max_size=4), small_ints, st.none()),
                                                           max_size=6))


LLM_VALID = {"temperature": st.one_of(st.none(), st.floats(0, 2)),
             "top_p": st.one_of(st.none(), st.floats(0, 1, exclude_min=True)),
             "top_k": st.one_of(st.none(), st.integers(0, 100_000), st.just("40")),
             "max_new_tokens": st.one_of(st.none(), st.integers(1, 10**6), st.just(64.0)),
             "repetition_penalty": st.one_of(st.none(), st.floats(0, 3, exclude_min=True)),
             "seed": st.one_of(st.none(), st.integers(0, 2**63 - 1))}


@FAST
@given(kw=one_bad(LLM_VALID), stop=stops)
def test_llm_check_params_in_range(kw, stop):
    temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed = (kw[k] for k in (
        "temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed"))
    assume(not any(map(overflows, (temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed))))
    ok, g = outcome(llm.check_params, temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, stop)
    if ok:
        check_gen_params(g)


text_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)})
content = st.one_of(st.text(max_size=20), text_part, st.lists(st.one_of(text_part, st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.just({"url": "x"})})), max_size=3), st.none(), small_ints)
role = st.sampled_from(["system", "developer", "user", "assistant", "tool", "", "USER"])
message = st.one_of(st.fixed_dictionaries({"role": role, "content": content}), st.text(max_size=3), st.none())
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=False),
                        st.text(max_size=6))
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=3),
                                                           st.dictionaries(st.text(max_size=4), c, max_size=3)),
                          max_leaves=6)
request = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(message, max_size=4), json_value)},
    optional={"model": json_scalar, "temperature": json_scalar, "top_p": json_scalar, "top_k": json_scalar,
              "max_tokens": json_scalar, "max_completion_tokens": json_scalar, "repetition_penalty": json_scalar,
              "seed": json_scalar, "n": json_scalar, "stream": json_value,
              "stop": st.one_of(st.none(), st.text(max_size=4), st.lists(st.text(max_size=3), max_size=6)),
              "stream_options": st.one_of(st.none(), json_scalar, st.dictionaries(st.sampled_from(["include_usage", "x"]),
                                                                      json_scalar, max_size=2))})


good_messages = st.tuples(
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "assistant"]),
                                    "content": st.one_of(st.text(max_size=10), text_part)}), max_size=3),
    st.fixed_dictionaries({"role": st.just("user"), "content": st.one_of(
        st.text(min_size=1, max_size=10), st.lists(text_part, min_size=1, max_size=2))})).map(lambda t: t[0] + [t[1]])
good_request = one_bad({"messages": good_messages, "temperature": st.floats(0, 2), "top_p": st.floats(0.01, 1),
                        "max_tokens": st.integers(1, 4096), "seed": st.integers(0, 2**40), "n": st.just(1),
                        "stream": st.booleans(), "model": st.one_of(st.none(), st.text(max_size=8)),
                        "stream_options": st.one_of(st.none(), st.just({"include_usage": True}))},
                       st.one_of(json_scalar.filter(lambda v: not overflows(v)), st.lists(json_scalar, max_size=2)))


@FAST
@given(body=st.one_of(good_request.map(lambda r: json.dumps(r).encode()), request.map(lambda r: json.dumps(r).encode()), json_value.map(lambda v: json.dumps(v).encode()),
                      st.binary(max_size=12), st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_llm_parse_openai_request(body):
    ok, r = outcome(llm.parse_openai_request, body)
    if ok:
        model, msgs, params, stream, include_usage = r
        assert model is None or isinstance(model, str)
        assert msgs and all(m["role"] in ("system", "user", "assistant") and isinstance(m["content"], str)
                            for m in msgs)
        assert msgs[-1]["role"] == "user" and msgs[-1]["content"].strip()
        assert all(m["role"] != "system" for m in msgs[1:]), "one system message, first"
        assert stream in (True, False) and include_usage in (True, False)
        check_gen_params(params)


history_item = st.one_of(st.fixed_dictionaries({"role": role, "content": content},
                                               optional={"metadata": st.one_of(st.none(), st.fixed_dictionaries(
                                                   {"title": st.text(max_size=3)}))}),
                         st.text(max_size=3), st.none())


@FAST
@given(system=st.one_of(st.none(), st.text(max_size=20)), history=st.one_of(st.none(), st.lists(history_item, max_size=4)),
       msg=st.one_of(st.text(max_size=30), st.binary(max_size=10), st.none(), small_ints,
                     st.sampled_from(["\ud800", "a\x00b", "\x00", "  ", "\u200b"])))
def test_llm_build_messages_plain_text_for_the_tokenizer(system, history, msg):
    ok, msgs = outcome(llm.build_messages, system, history, msg)
    if ok:
        assert msgs[-1]["role"] == "user" and msgs[-1]["content"].strip()
        for m in msgs:
            assert isinstance(m["content"], str) and "\x00" not in m["content"]
            m["content"].encode("utf-8")  # no lone surrogates left
            assert m["role"] in ("system", "user", "assistant")


@QUICK
@example(body=b'{"messages": [{"role": "user", "content": "hi"}], "top_k": 1' + b"0" * 400 + b"}")
@given(body=st.sampled_from(["temperature", "top_p", "top_k", "max_tokens", "seed"]).map(
    lambda k: json.dumps({"messages": [{"role": "user", "content": "hi"}], k: HUGE_INT}).encode()))
def test_llm_openai_ints_beyond_float_range(body):
    outcome(llm.parse_openai_request, body)


@QUICK
@example(opts="x")
@given(opts=st.one_of(st.text(min_size=1, max_size=3), st.just(True), st.integers(1, 9), st.just([1])))
def test_llm_openai_stream_options_not_an_object(opts):
    outcome(llm.parse_openai_request,
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream_options": opts}).encode())


@QUICK
@example(body=json.dumps({"messages": [{"role": "system", "content": {"type": "text", "text": 5}},
                                       {"role": "user", "content": "hi"}]}).encode())
@given(body=st.sampled_from([
    json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}).encode(),
    json.dumps({"messages": [{"role": "system", "content": {"type": "text", "text": [1]}},
                             {"role": "user", "content": "hi"}]}).encode()]))
def test_llm_openai_non_string_text_part(body):
    outcome(llm.parse_openai_request, body)


@QUICK
@example(stop=5)
@given(stop=st.one_of(st.integers(0, 9), st.floats(0.5, 9), st.just(True)))
def test_llm_stop_not_a_list(stop):
    outcome(llm.parse_openai_request,
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "stop": stop}).encode())


@QUICK
@example(body=DEEP_JSON.encode())
@given(body=st.integers(min_value=50_000, max_value=200_000).map(lambda n: b"[" * n))
def test_llm_openai_deeply_nested_body(body):
    outcome(llm.parse_openai_request, body)


@QUICK
@example(meta="x")
@given(meta=st.one_of(st.text(min_size=1, max_size=3), st.integers(1, 9), st.just([1])))
def test_llm_history_metadata_not_a_dict(meta):
    outcome(llm.build_messages, None, [{"role": "user", "content": "a", "metadata": meta}], "hi")
