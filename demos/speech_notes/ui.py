"""The Speech-to-notes tab: audio in; the notes, the transcript, SRT / VTT (translated in step with the segments) and
the chain's one record out. One chained request (hub.chain over notes.py's steps), also the /summarize_audio API.

In the page, notes are written in the Whisper tab's Notes section (demos/whisper_asr/ui_notes.py, from the transcript
shown there); when that section is built, this tab is left out of the tab bar (hub.links) and serves only the API.
It shows when the Whisper tab cannot host the notes (a hub without the chat model), saying what is missing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gradio as gr

from demos.speech_notes import STEPS, TASKS, notes
from hub import fields
from hub.chain import Chain, reachable, show_reach
from hub.errors import UserError
from hub.outputs import request_folder
from hub.page import MAIN, STATUS


def build(ctx) -> None:
    """The tab inside the current gr.Blocks. Without the demos it chains (a hub started with --demos), it still
    serves its API, which answers with a sentence saying which demo is missing."""
    others = reachable(ctx, STEPS)
    show_reach("Speech to notes", others, "transcript and notes")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            audio = gr.Audio(type="filepath", label="Speech (a recording or the microphone)")
            task = gr.Radio(list(TASKS), value=TASKS[0], label="Notes to write")
            language = gr.Textbox(label="Translate subtitles into", placeholder="French")
            run_btn = gr.Button("Write notes", variant="primary", elem_classes=[MAIN])
            stop_btn = gr.Button("Cancel", variant="stop")
            with gr.Accordion("Settings", open=False):
                part_chars = fields.slider("Characters per part", 200, 100_000, 6000, 100,
                                           info="a longer transcript is summarized in parts, then together")
                max_new = fields.slider("Max new tokens per answer", 1, 2048, 256, 1)
                vad = gr.Checkbox(True, label="Skip silence (voice-activity filter)")
                asr = _picker(others["whisper_asr"], "Transcribe with (Whisper)")
                chat = _picker(others["llm_chat"], "Write with (chat model)")
        with gr.Column(scale=1):
            status = gr.Markdown(elem_classes=[STATUS])
            out = gr.Markdown(label="Notes", container=True)
            text = gr.Textbox(label="Transcript", lines=6)
            files = gr.File(label="Downloads: notes, transcript SRT/VTT (translated when asked), record JSON",
                            file_count="multiple")
            record = gr.JSON(label="Record of the whole chain", open=False)
    ev = run_btn.click(ctx.handler(_handler(ctx)), [audio, task, language, part_chars, max_new, vad, asr, chat],
                       [out, text, files, record, status], api_name="summarize_audio", **ctx.events_on(status))
    stop_btn.click(lambda: "Cancelled.", None, status, cancels=[ev], api_visibility="private", queue=False)


def _picker(other, label: str):
    if other is None:
        return gr.Dropdown([], value=None, label=label, allow_custom_value=True, interactive=False)
    return gr.Dropdown(other.model_choices(), value=other.default_model(), label=label, allow_custom_value=True)


def _handler(ctx):
    def summarize_audio(audio, task, language, part_chars, max_new_tokens, vad, asr_model, chat_model,
                        progress=gr.Progress()):
        """Transcribe speech, then the chat model writes a summary, the action items, or the subtitles translated.

        Args:
            audio: The speech (WAV, MP3, M4A ...).
            task: "Summary", "Action items" or "Translate subtitles".
            language: The language to translate the subtitles into (Translate subtitles only).
            part_chars: A longer transcript is summarized in parts of at most this many characters, then together.
            max_new_tokens: The most tokens of each answer of the chat model.
            vad: Skip silence with the voice-activity filter (true by default).
            asr_model: A Whisper model this hub lists; empty for the hub's default.
            chat_model: A chat model this hub lists; empty for the hub's default.

        Returns: the notes (markdown), the transcript, the files (notes, SRT, VTT, record JSON), the record, the
        status.
        """
        from demos.whisper_asr.engine import LIMIT_HINT, SAMPLE_RATE
        from hub.media.audio import load_audio

        task = notes.check_task(task)  # the cheap checks before decoding, the rest in notes.run
        notes.check_language(task, language)
        if audio is None:
            raise UserError("Add the speech first: upload a recording or use the microphone.")
        samples = load_audio(audio, sample_rate=SAMPLE_RATE, limit_hint=LIMIT_HINT)
        chain = Chain(ctx, progress=progress)
        made = notes.run(chain, samples, task, language, asr_model, chat_model, part_chars=part_chars,
                         max_new_tokens=max_new_tokens, vad=bool(vad))
        record = chain.record(task=task, language=language or None, parts=made.parts)
        paths = write_files(made, record, task, Path(str(audio)).stem)
        return made.notes, made.transcript.text.strip(), paths, record, "  \n".join(chain.log[-8:])
    return summarize_audio


def write_files(made, record: dict, task: str, stem: str = "speech") -> list[str]:
    """notes.md, the subtitles (translated ones when asked: the same timings), record.json."""
    from demos.whisper_asr.formats import get_writer

    folder = request_folder("speech_notes", "notes")
    stem = "".join(c for c in stem if c.isalnum() or c in "-_")[:60] or "speech"
    subs = replace(made.transcript, segments=made.segments) if made.segments else made.transcript
    paths = [str(folder / f"{stem}-notes.md")]
    Path(paths[0]).write_text(f"# {task}\n\n{made.notes}\n", encoding="utf-8")
    paths += [get_writer(fmt)(subs, folder, stem) for fmt in ("srt", "vtt")]
    record_path = folder / f"{stem}-record.json"
    record_path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return [*paths, str(record_path)]
