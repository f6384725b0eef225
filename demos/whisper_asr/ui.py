"""The Whisper tab: upload or record audio, watch the transcript grow, download subtitles.

Top to bottom: the model picker and its notice, the audio, the settings, Transcribe, the status line, the results.
The handler checks the options and decodes the audio first (no model needed for either), then streams the
transcript from the engine's `transcribe_stream` method through `ctx.stream`, which holds the model for the whole run;
Stop closes the stream, which sets the method's job.stop (it ends within one window).
Progress and errors show on the status line only (`ctx.events_on`): an error leaves the last transcript in place.
Under the transcript, **Notes** (ui_notes.py) has the chat model write a summary, action items or translated
subtitles from that transcript.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from demos.whisper_asr import engine, ui_notes
from demos.whisper_asr.types import TranscribeRequest, Transcript
from demos.whisper_asr.formats import write_files
from demos.whisper_asr.languages import choices as language_choices, languages
from hub.media.audio import load_audio
from hub.outputs import request_folder

# The API's parameters, in order (their names are the handler's: `transcribe` below).
INPUT_NAMES = ("model", "audio", "media_file", "task", "language", "word_timestamps", "vad", "initial_prompt",
               "beam_size")
OUTPUT_NAMES = ("status", "text", "table", "word_table", "files", "record")
SEGMENT_HEADERS = ["start (s)", "end (s)", "text"]
WORD_HEADERS = ["start (s)", "end (s)", "word", "probability"]
BEAM_RANGE = (1, 10)  # engine.check_options' range
# What the API page shows as an example for the "video or other audio file" input (gradio's default is a PDF).
EXAMPLE_MEDIA = "https://github.com/gradio-app/gradio/raw/main/gradio/media_assets/videos/world.mp4"


def build(ctx):
    import gradio as gr

    c = _components(ctx)

    @ctx.handler
    def transcribe(model, audio=None, media_file=None, task="transcribe", language="auto", word_timestamps=False,
                   vad=True, initial_prompt="", beam_size=5, progress=gr.Progress(track_tqdm=True)):
        """Transcribe speech, or translate it to English: streams the status line, the text and the timed segments,
        then adds word timestamps, the .txt/.srt/.vtt/.json files and the reproducibility record.

        Args:
            model: A Whisper model this hub lists (the Model picker's values); empty for the hub's default.
            audio: The speech: an audio file (wav, mp3, flac, ogg, m4a) or a microphone recording.
            media_file: Instead of `audio`, a video or another audio file (mp4, webm, mkv, m4a, ogg, opus).
            task: "transcribe" (text in the spoken language) or "translate" (English text).
            language: The spoken language, as a code ("fr") or a name; "auto" detects it.
            word_timestamps: Also time every word (the Words table and the JSON file).
            vad: Skip silence with a voice-activity filter (faster, fewer invented words).
            initial_prompt: Vocabulary hints (names, terms) the speech uses; may be empty.
            beam_size: Beam search width, a whole number from 1 to 10 (1 = greedy, fastest).
        """
        yield from transcribe_request(ctx, model, audio or media_file, task, language, word_timestamps, vad,
                                      initial_prompt, beam_size, progress)

    quiet = {"api_visibility": "private", "show_progress": "hidden"}  # queued: a queue=False step lost clicks
    # Stop shows while a transcription runs (shown first: a second listener on the button would wait for the run)
    event = c.go.click(lambda: gr.update(visible=True), None, c.stop, **quiet).then(
        transcribe, [getattr(c, n) for n in INPUT_NAMES], [getattr(c, n) for n in OUTPUT_NAMES],
        api_name="transcribe", **ctx.events_on(c.status))
    for after in (event.then, event.failure):  # `then` alone does not follow a failed run
        after(lambda: gr.update(visible=False), None, c.stop, **quiet)
    c.stop.click(lambda: gr.update(visible=False), None, c.stop, cancels=[event], **quiet)
    c.word_timestamps.change(lambda on: gr.update(visible=bool(on)), c.word_timestamps, c.word_table, **quiet)
    c.model.change(lambda m: gr.update(info=_runs_as_or_blank(ctx, m)), c.model, c.model, queue=False, **quiet)
    ui_notes.wire(ctx, c)


def _runs_as_or_blank(ctx, model) -> str:
    from hub.errors import UserError

    try:
        return runs_as(ctx, model)
    except UserError:  # a typed, unlisted model: the notice under the picker says why
        return ""


def _components(ctx) -> SimpleNamespace:
    """Two columns, so the audio, Transcribe and the transcript show together at 1440x900: the model, the audio, the
    task and language, the button and the status line on the left, the transcript and downloads on the right; the
    speech clips, the other-file input and the options under the button; the tables below."""
    import gradio as gr
    from gradio_client import handle_file

    from hub import fields
    from hub.page import MAIN, STATUS

    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            c.model, c.notice = ctx.model_picker(info=runs_as(ctx, None))
            c.audio = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None,
                               label="Audio (upload or record)")
            with gr.Row():
                c.task = gr.Radio([("Transcribe", "transcribe"), ("Translate to English", "translate")],
                                  value="transcribe", label="Task", scale=3)
                c.language = gr.Dropdown(language_choices(), value="auto", label="Language", allow_custom_value=True,
                                         scale=2, min_width=140)
            with gr.Row():
                c.go = gr.Button("Transcribe", variant="primary", scale=4, elem_classes=[MAIN])
                c.stop = gr.Button("Stop", size="sm", visible=False, scale=1, min_width=80)
            c.status = gr.Markdown(label="Status", show_label=False, elem_classes=["status", STATUS])
            _speech_examples(c.audio)
            with gr.Accordion("Or a video / other audio file", open=False):
                c.media_file = gr.File(label="Or a video / other audio file (mp4, webm, mkv, m4a, ogg, opus)",
                                       type="filepath",
                                       file_types=["audio", "video", ".m4a", ".webm", ".ogg", ".opus", ".mkv"])
            c.media_file.example_inputs = lambda: handle_file(EXAMPLE_MEDIA)
            with gr.Accordion("Options", open=False):
                c.word_timestamps = gr.Checkbox(False, label="Word-level timestamps")
                c.vad = gr.Checkbox(True, label="Voice-activity filter (skip silence: faster, fewer invented words)")
                c.initial_prompt = gr.Textbox("", label="Initial prompt (vocabulary hints: names, terms)", lines=2,
                                              info="Ctrl+Enter transcribes")
                c.beam_size = fields.number("Beam size", *BEAM_RANGE, 5, info="1 = greedy, fastest")
        with gr.Column(min_width=300):
            c.text = gr.Textbox(label="Transcript", lines=10, buttons=["copy"])
            c.files = gr.File(label="Downloads (.txt .srt .vtt .json)", file_count="multiple", interactive=False,
                              height=120, elem_classes=["hub-compact"])  # one line while empty on a phone
            c.notes = ui_notes.layout(ctx)  # summary / action items / translated subtitles of this transcript
    # widths in pixels for the times: as shares of a phone's width a header broke between every letter
    c.table = gr.Dataframe(_frame([], SEGMENT_HEADERS), headers=SEGMENT_HEADERS, label="Segments", wrap=True,
                           interactive=False, column_widths=["112px", "112px", "auto"], max_height=420,
                           elem_classes=["hub-table"])
    c.word_table = gr.Dataframe(_frame([], WORD_HEADERS), headers=WORD_HEADERS, label="Words", wrap=True,
                                interactive=False, column_widths=["112px", "112px", "auto", "120px"], max_height=420,
                                visible=False, elem_classes=["hub-table"])
    c.record = gr.JSON(label="Record (model, device, parameters)")
    return c


def runs_as(ctx, model) -> str:
    """The picker's info: what the picked model runs as here (the record says the same), and which are English-only."""
    choice, kind = ctx.choice(model), ctx._kind()
    device = "CPU" if kind == "cpu" else kind.upper()
    if choice.source == "random":  # any size becomes openai-whisper's architecture (CTranslate2 has no random init)
        how = f"openai-whisper (PyTorch, {'float32' if kind == 'cpu' else 'float16'}) with random weights"
    elif choice.options.get("engine") == "faster" or choice.source == "path":
        how = f"faster-whisper (CTranslate2, {'int8' if kind == 'cpu' else 'float16'})"
    else:
        how = f"openai-whisper (PyTorch, {'float32' if kind == 'cpu' else 'float16'})"
    return f"Runs here as {how} on the {device}; '.en' and distil models are English-only."


def _speech_examples(audio) -> None:
    """Speech clips that ship with gradio (a missing one is left out)."""
    import gradio as gr

    from hub.assets import package_file

    clips = (package_file("gradio", "media_assets", "audio", n)
             for n in ("heath_ledger.mp3", "cate_blanch_2.mp3", "cate_blanch.mp3"))
    speech = [str(p) for p in clips if p is not None]
    if speech:
        gr.Examples([[p] for p in speech], [audio], label="Speech clips (ship with gradio)", cache_examples=False)


def transcribe_request(ctx, model, source, task, language, word_timestamps, vad, initial_prompt, beam_size,
                       progress):
    """The tab's request: check, decode, then stream partial results and finish with the files and the record."""
    import gradio as gr

    ctx.check_model(model)  # an unlisted model is refused before any work (ctx.stream checks it again)
    opts = engine.check_options(task=task, language=language, word_timestamps=word_timestamps, vad=vad,
                                initial_prompt=initial_prompt, beam_size=5 if beam_size is None else beam_size)
    max_seconds = ctx.options.max_minutes * 60
    progress(0, desc="Reading the audio")
    samples = load_audio(source, sample_rate=engine.SAMPLE_RATE, max_seconds=max_seconds,
                         limit_hint=engine.LIMIT_HINT)
    stem = Path(source).stem if isinstance(source, str) else "transcript"
    req = TranscribeRequest(samples, opts, max_seconds)
    for item in ctx.stream("transcribe_stream", req, model, progress=progress):
        if isinstance(item, Transcript):  # a partial transcript, while windows finish
            yield (_summary(item, None), item.text, _frame(_rows(item), SEGMENT_HEADERS), gr.skip(), gr.skip(),
                   gr.skip())
            continue
        t = item.transcript
        # nothing heard: no files of nothing to download (the status line says "No speech found")
        paths = write_files(t, request_folder(ctx.name, "transcripts"), stem) if t.segments else []
        word_rows = [[w.start, w.end, w.word, w.probability] for s in t.segments for w in s.words]
        yield (_summary(t, item.seconds), t.text, _frame(_rows(t), SEGMENT_HEADERS), _frame(word_rows, WORD_HEADERS),
               paths, item.record)


def _frame(rows: list[list], headers: list[str]):
    """A table with its headers even when it has no rows (an empty list would show "1 2 3" as headers)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=headers)


def _rows(t: engine.Transcript) -> list[list]:
    return [[s.start, s.end, s.text] for s in t.segments]


def _summary(t: engine.Transcript, elapsed: float | None) -> str:
    lang = languages().get(t.language, t.language or "?").title()
    heard = t.language and t.language_probability > 0  # silence detects nothing: no "probability 0%"
    parts = [f"**Language:** {lang} ({t.language}, probability {t.language_probability:.0%})"] if heard else []
    parts.append(f"**Audio:** {t.duration:.1f} s")
    if elapsed is not None:
        parts.append(f"**Took:** {elapsed:.1f} s (real-time factor {elapsed / max(t.duration, 1e-9):.2f})")
    else:
        parts.append(f"**Progress:** {t.progress:.0%}")
    text = " · ".join(parts)
    if elapsed is not None and not t.segments:
        return f"**No speech found:** the transcript is empty. {t.note or ''}".strip() + f"\n\n{text}"
    return text + (f"\n\n{t.note}" if t.note else "")
