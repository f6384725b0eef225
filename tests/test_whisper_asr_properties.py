"""Property-based tests (hypothesis) for the whisper_asr validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations

import warnings
from types import SimpleNamespace as NS

import numpy as np
from hypothesis import example, given, strategies as st


from demos.whisper_asr import engine as whisper  # noqa: E402
from hub.media import audio as media_audio  # noqa: E402
from tests.properties import FAST, QUICK, outcome, unicode_text


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
        ok, audio = outcome(media_audio.load_audio, data if bare else (sr, data))
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
    outcome(media_audio.load_audio, source)
