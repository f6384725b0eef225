"""The Whisper tab: upload or record audio, watch the transcript grow, download subtitles.

The handler checks the options and decodes the audio first (no model needed for either), then streams the
transcript through `ctx.stream`, which holds the model for the whole run and stops it when the user presses Stop.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from demos.whisper_asr import engine
from demos.whisper_asr.formats import write_files
from demos.whisper_asr.languages import choices as language_choices, languages
from hub.media.audio import load_audio
from hub.outputs import request_folder

INPUT_NAMES = ("model", "audio", "video", "task", "language", "words", "vad", "prompt", "beam")
OUTPUT_NAMES = ("info", "text", "table", "word_table", "files", "record")


def build(ctx):
    import gradio as gr

    c = _components(ctx)

    @ctx.handler
    def run(model_id, audio_path, other_path, task_v, language_v, words_v, vad_v, prompt_v, beam_v,
            progress=gr.Progress(track_tqdm=True)):
        yield from transcribe_request(ctx, model_id, audio_path or other_path, task_v, language_v, words_v, vad_v,
                                      prompt_v, beam_v, progress)

    event = c.go.click(run, [getattr(c, n) for n in INPUT_NAMES], [getattr(c, n) for n in OUTPUT_NAMES],
                       api_name="transcribe", **ctx.events)
    c.stop.click(None, cancels=[event], api_name=False)


def _components(ctx) -> SimpleNamespace:
    import gradio as gr

    c = SimpleNamespace()
    with gr.Row():
        with gr.Column():
            c.model = ctx.model_dropdown(info="faster-whisper is fastest on CPU; '.en' models are English-only.")
            c.audio = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None, label="Audio")
            c.video = gr.File(label="...or a video / other audio file (mp4, webm, m4a, ogg...)", type="filepath",
                              file_types=["audio", "video", ".m4a", ".webm", ".ogg", ".opus", ".mkv"])
            with gr.Row():
                c.task = gr.Radio([("Transcribe", "transcribe"), ("Translate to English", "translate")],
                                  value="transcribe", label="Task")
                c.language = gr.Dropdown(language_choices(), value="auto", label="Language", allow_custom_value=True)
            with gr.Accordion("Options", open=False):
                c.words = gr.Checkbox(False, label="Word-level timestamps")
                c.vad = gr.Checkbox(True, label="Voice-activity filter (skip silence: faster, fewer invented words)")
                c.prompt = gr.Textbox(label="Initial prompt (vocabulary hints: names, terms)", lines=2)
                c.beam = gr.Slider(1, 10, value=5, step=1, label="Beam size (1 = greedy, fastest)")
            with gr.Row():
                c.go = gr.Button("Transcribe", variant="primary")
                c.stop = gr.Button("Stop")
            _speech_examples(c.audio)
        with gr.Column():
            c.info = gr.Markdown()
            c.text = gr.Textbox(label="Transcript", lines=10, buttons=["copy"])
            c.table = gr.Dataframe(headers=["start", "end", "text"], label="Segments", wrap=True)
            c.word_table = gr.Dataframe(headers=["start", "end", "word", "probability"], label="Words", visible=True)
            c.files = gr.File(label="Downloads (.txt .srt .vtt .json)", file_count="multiple")
            c.record = gr.JSON(label="Record")
    return c


def _speech_examples(audio) -> None:
    """Speech clips that ship with gradio (a missing one is left out)."""
    import gradio as gr

    from hub.assets import package_file

    clips = (package_file("gradio", "media_assets", "audio", n)
             for n in ("heath_ledger.mp3", "cate_blanch_2.mp3", "cate_blanch.mp3"))
    speech = [str(p) for p in clips if p is not None]
    if speech:
        gr.Examples([[p] for p in speech], [audio], label="Speech clips (ship with gradio)", cache_examples=False)


def transcribe_request(ctx, model_id, source, task_v, language_v, words_v, vad_v, prompt_v, beam_v, progress):
    """The tab's request: check, decode, then stream partial results and finish with the files and the record."""
    import gradio as gr

    ctx.check_model(model_id)  # an unlisted model is refused before any work (ctx.stream checks it again)
    opts = engine.check_options(task=task_v, language=language_v, word_timestamps=words_v, vad=vad_v,
                                initial_prompt=prompt_v, beam_size=5 if beam_v is None else beam_v)
    max_seconds = ctx.options.max_minutes * 60
    progress(0, desc="Reading the audio")
    samples = load_audio(source, sample_rate=engine.SAMPLE_RATE, max_seconds=max_seconds,
                         limit_hint=engine.LIMIT_HINT)
    stem = Path(source).stem if isinstance(source, str) else "transcript"
    progress(0, desc="Loading the model")

    def work(lease):
        t0, t = time.perf_counter(), None
        for t in engine.transcribe_iter(lease.engine, samples, opts, max_seconds=max_seconds):
            progress(t.progress, desc=f"Transcribing ({t.progress:.0%} of {t.duration / 60:.1f} min)")
            if t.done:
                break
            yield t, None
        elapsed = time.perf_counter() - t0
        yield t, (elapsed, _record(lease, opts, t, elapsed))

    for t, final in ctx.stream(work, model_id):
        if final is None:
            yield (_summary(t, None), t.text, _rows(t), gr.skip(), gr.skip(), gr.skip())
            continue
        elapsed, rec = final
        paths = write_files(t, request_folder(ctx.name, "transcripts"), stem)
        word_rows = [[w.start, w.end, w.word, w.probability] for s in t.segments for w in s.words]
        yield (_summary(t, elapsed), t.text, _rows(t), word_rows, paths, rec)


def _record(lease, opts: engine.Options, t: engine.Transcript, elapsed: float) -> dict:
    return lease.record(engine=lease.engine.kind, task=opts.task, language=opts.language or "auto",
                        detected_language=t.language, language_probability=round(t.language_probability, 4),
                        word_timestamps=opts.word_timestamps, vad=opts.vad, beam_size=opts.beam_size,
                        initial_prompt=opts.initial_prompt, audio_seconds=round(t.duration, 2),
                        seconds=round(elapsed, 2), real_time_factor=round(elapsed / t.duration, 4))


def _rows(t: engine.Transcript) -> list[list]:
    return [[s.start, s.end, s.text] for s in t.segments]


def _summary(t: engine.Transcript, elapsed: float | None) -> str:
    lang = languages().get(t.language, t.language or "?").title()
    parts = [f"**Language:** {lang} ({t.language}, probability {t.language_probability:.0%})",
             f"**Audio:** {t.duration:.1f} s"]
    if elapsed is not None:
        parts.append(f"**Took:** {elapsed:.1f} s (real-time factor {elapsed / max(t.duration, 1e-9):.2f})")
    else:
        parts.append(f"**Progress:** {t.progress:.0%}")
    return " · ".join(parts) + (f"\n\n{t.note}" if t.note else "")
