"""The Whisper tab as a person meets it (issue #16), in headless Chromium with tiny random weights: the picker and
its notice on top, Stop only while a run goes, one sentence for a bad number with the transcript kept, readable
tables, a local CTranslate2 folder by a readable name, and an API page with plain, optional parameters."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.browser import block, browser_page, open_tab, see, shot, text_of

pytestmark = pytest.mark.browser

TAB = "Whisper speech to text"


def _visible(page, locator):
    return locator.locator("visible=true").first


def _transcribe_example(page, words: bool = False) -> None:
    open_tab(page, TAB)
    _pick_example(page)
    if words:
        _options(page)
        _visible(page, page.get_by_label("Word-level timestamps")).check()
    page.get_by_role("button", name="Transcribe", exact=True).click()
    _visible(page, page.get_by_text("Took:")).wait_for()  # 2 busy cores: be generous


def _pick_example(page) -> None:
    """The 3 s clip that ships with gradio, loaded: its waveform shows the length (a click before that can send
    a file the server does not have yet)."""
    page.get_by_role("button", name="heath_ledger.mp3").click()
    page.locator("audio").first.wait_for(state="attached")
    _visible(page, block(page, "Audio (upload or record)").get_by_text("0:03")).wait_for()


def _options(page) -> None:
    beam = page.get_by_label("Beam size").locator("visible=true")
    if not beam.count():
        _visible(page, page.get_by_text("Options", exact=True)).click()
        beam.first.wait_for()


def _toasts(page):
    return page.locator(".toast-body").locator("visible=true")


def test_picker_and_notice_on_top_then_inputs_button_status_and_stop_only_while_running(page):
    """Points 2, 3 and 7: model picker (with its notice) above the audio, Transcribe above its status line; Stop is
    not shown before a run (old: a full-size Stop button always shown, no notice under the picker)."""
    open_tab(page, TAB)
    model = _visible(page, page.get_by_label("Model"))
    audio = block(page, "Audio (upload or record)")
    go = page.get_by_role("button", name="Transcribe", exact=True)
    assert page.locator(".model-note").count() >= 1  # the picker's notice (empty for random weights)
    tops = [loc.bounding_box()["y"] for loc in (model, audio, go)]
    assert tops == sorted(tops), tops
    assert page.get_by_role("button", name="Stop", exact=True).locator("visible=true").count() == 0
    _transcribe_example(page)
    status = _visible(page, page.locator(".status"))
    assert "Took:" in status.inner_text() and status.bounding_box()["y"] > go.bounding_box()["y"]
    expect(page.get_by_role("button", name="Stop", exact=True).locator("visible=true")).to_have_count(0)  # over
    shot(page, "after-whisper_asr-transcribed")


def test_a_bad_beam_size_gets_one_sentence_and_the_transcript_stays(page):
    """Points 3 and 6: beam size 11 is refused with the validator's sentence, once, no class name, the box keeps
    11, the transcript and segments stay without an error pill (old: the slider clamped 11 to 10 and ran)."""
    _transcribe_example(page)
    transcript = block(page, "Transcript").locator("textarea")
    before = transcript.input_value()
    assert before
    _options(page)
    assert "a whole number from 1 to 10" in text_of(page)  # the field's info states the range
    beam = _visible(page, page.get_by_label("Beam size"))
    beam.fill("11")
    page.get_by_role("button", name="Transcribe", exact=True).click()
    _toasts(page).first.wait_for()
    said = "Beam size is 11, which is out of range; use a whole number from 1 to 10."
    assert _toasts(page).count() == 1 and said in _toasts(page).first.inner_text()
    assert "Error:" not in text_of(page) and "UserError" not in text_of(page)
    assert beam.input_value() == "11"  # the box shows the value that was refused, not a clamped one
    assert transcript.input_value() == before
    expect(page.get_by_role("button", name="Stop", exact=True).locator("visible=true")).to_have_count(0)
    for label in ("Transcript", "Segments"):
        assert block(page, label).locator(".error").count() == 0
    shot(page, "after-whisper_asr-bad-beam")


def test_segment_and_word_tables_are_readable_with_their_headers(page):
    """Point 7: headers are the named columns (never "1 2 3"), "start (s)" stays on one line and the text column
    gets the width (old: "start" wrapped to st/ar/t and the text was cut at the table's edge)."""
    open_tab(page, TAB)
    segments = block(page, "Segments")
    assert _headers(segments)[:3] == ["start (s)", "end (s)", "text"]  # before any run too
    _transcribe_example(page, words=True)
    words = block(page, "Words")
    assert _headers(words)[:4] == ["start (s)", "end (s)", "word", "probability"]
    names = segments.locator("th .header")  # the header's text itself (a row's cells share one height)
    start, text = names.nth(0).bounding_box(), names.nth(2).bounding_box()
    assert start["height"] < 1.5 * text["height"], (start, text)  # "start (s)" on one line, like "text"
    table, text_column = segments.bounding_box(), segments.locator("th").nth(2).bounding_box()
    assert text_column["width"] > 0.5 * table["width"], (text_column, table)
    cells = segments.locator("[role=gridcell]")
    assert cells.count() >= 3
    cut = cells.evaluate_all("cs => cs.filter(c => c.scrollWidth > c.clientWidth + 2).map(c => c.innerText)")
    assert cut == [], cut  # every cell shows its whole text
    shot(page, "after-whisper_asr-tables")


def _headers(table) -> list[str]:
    table.locator("th").first.wait_for()
    return [re.sub(r"\s+", " ", t).strip() for t in table.locator("th").all_inner_texts() if t.strip()]


def test_the_api_has_plain_optional_parameters_and_no_pdf_example(app):
    """Point 8: plain names (old: audio_path, other_path, task_v, words_v, ...), both audio inputs optional (old:
    both required), a description, and the file input's example is a media file (old: gradio's sample PDF)."""
    from gradio_client import Client

    api = Client(app.url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    endpoint = api["/transcribe"]
    params = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert list(params) == ["model", "audio", "media_file", "task", "language", "word_timestamps", "vad",
                            "initial_prompt", "beam_size"]
    assert all(p["parameter_has_default"] for p in params.values())  # every one optional, the audio inputs too
    assert ".pdf" not in json.dumps(endpoint) and params["media_file"]["example_input"]["path"].endswith(".mp4")
    assert endpoint["description"].startswith("Transcribe speech")
    assert all(not r["label"].startswith("value_") for r in endpoint["returns"])  # every output named


# ---- a local CTranslate2 folder (point 4) ----------------------------------------------------------------------


class _EnglishOnlyCT2:
    """faster_whisper.WhisperModel stand-in: an English-only model that hears one sentence (no real weights)."""

    def __init__(self, path, **kw):
        self.model = SimpleNamespace(is_multilingual=False)

    def transcribe(self, samples, **kw):
        seg = SimpleNamespace(start=0.0, end=1.0, text=" Hello from a local model.", words=[])
        return iter([seg]), SimpleNamespace(language="en", language_probability=1.0)


def test_a_local_ct2_folder_named_model_is_shown_by_a_readable_name(serve, tmp_path, monkeypatch):
    """Point 4: the operator's CTranslate2 folder ".../faster-whisper-tiny.en/model" appears as
    "faster-whisper-tiny.en/model (local)" in the picker, the record and the error sentence, never as its path
    (old: the English-only refusal named the model by the server's path)."""
    import faster_whisper

    folder = tmp_path / "faster-whisper-tiny.en" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(b"\0")
    monkeypatch.setattr(faster_whisper, "WhisperModel", _EnglishOnlyCT2)
    client = serve(("whisper_asr",), models={"whisper_asr": str(folder)})
    name = "faster-whisper-tiny.en/model (local)"
    with browser_page(client.src) as page:
        assert _visible(page, page.get_by_label("Model")).input_value() == name
        _pick_example(page)
        page.get_by_role("radio", name="Translate to English").check()
        page.get_by_role("button", name="Transcribe", exact=True).click()
        _toasts(page).first.wait_for()
        assert f"{name} is an English-only model and cannot translate" in _toasts(page).first.inner_text()
        assert str(tmp_path) not in _toasts(page).first.inner_text()
        page.locator(".toast-close").first.click()
        page.get_by_role("radio", name="Transcribe").check()
        page.get_by_role("button", name="Transcribe", exact=True).click()
        see(page, "Took:")
        assert re.sub(r"\s+", "", f'"model":"{name}"') in re.sub(r"\s+", "", text_of(page))
        assert str(tmp_path) not in text_of(page)
        shot(page, "after-whisper_asr-local-folder")
