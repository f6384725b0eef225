"""The Whisper tab's **Notes** section, under the transcript: the chat model writes a summary, the action items or the
subtitles in another language from the transcript the tab already shows (the speech is not heard twice). It runs the
Speech-to-notes chain (demos/speech_notes/notes.py `from_transcript`) under that demo's context, so the record, the
files and the concurrency are the ones /summarize_audio has; the record's first step is the tab's own transcription.

Shown when the hub has the speech_notes and llm_chat demos; then the separate "Speech to notes" tab is left out of
the tab bar (one place for it), while its /summarize_audio API (audio in) stays.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import gradio as gr

from demos.speech_notes import TASKS, notes
from hub import fields
from hub.chain import Chain, StepRun, reachable
from hub.errors import UserError
from hub.page import STATUS

MAX_LINES = 20_000  # transcript lines the section takes (a day of speech is about 10,000)
NO_TRANSCRIPT = "Transcribe the audio first; the notes are written from its transcript."


def layout(ctx) -> SimpleNamespace | None:
    """The section's components (inside the tab's layout), or None when this hub lacks a demo it needs."""
    others = reachable(ctx, ("speech_notes", "llm_chat"))
    if None in others.values():
        return None
    n = SimpleNamespace(chain_ctx=others["speech_notes"])
    chat = others["llm_chat"]
    with gr.Accordion("Notes: a summary, the action items or translated subtitles", open=False,
                      elem_id="whisper-notes"):
        n.task = gr.Radio(list(TASKS), value=TASKS[0], label="Notes to write")
        n.language = gr.Textbox(label="Translate subtitles into", placeholder="French", visible=False)
        with gr.Row():
            n.go = gr.Button("Write notes", scale=4)
            n.stop = gr.Button("Cancel", size="sm", visible=False, scale=1, min_width=80)
        n.status = gr.Markdown(elem_classes=[STATUS], elem_id="whisper-notes-status")
        n.out = gr.Markdown(elem_id="whisper-notes-out")
        n.files = gr.File(label="Notes downloads: notes, SRT/VTT (translated when asked), record JSON",
                          file_count="multiple", interactive=False)
        with gr.Accordion("Notes settings", open=False):
            n.chat_model = gr.Dropdown(chat.model_choices(), value=chat.default_model(),
                                       label="Write with (chat model)", allow_custom_value=True)
            n.part_chars = fields.slider("Characters per part", 200, 100_000, 6000, 100,
                                         info="a longer transcript is summarized in parts, then together")
            n.max_new = fields.slider("Max new tokens per answer", 1, 2048, 256, 1)
        n.record = gr.JSON(label="Record of the whole chain", open=False)
    ctx.after_build(lambda: ctx.links.hide_tab("speech_notes"))  # its place is here now
    return n


def wire(ctx, c) -> None:
    """The section's events (`c`: the tab's components, with `c.notes` from `layout`)."""
    n = c.notes
    if n is None:
        return
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    sn = n.chain_ctx
    event = n.go.click(lambda: gr.update(visible=True), None, n.stop, **quiet).then(
        sn.handler(notes_handler(sn)),
        [c.text, c.table, c.record, n.task, n.language, n.part_chars, n.max_new, n.chat_model],
        [n.out, n.files, n.record, n.status], api_visibility="private", **sn.events_on(n.status))
    for after in (event.then, event.failure):
        after(lambda: gr.update(visible=False), None, n.stop, **quiet)
    n.stop.click(lambda: (gr.update(visible=False), "Cancelled."), None, [n.stop, n.status], cancels=[event],
                 **quiet)
    n.task.change(lambda t: gr.update(visible=t == "Translate subtitles"), n.task, n.language, queue=False, **quiet)


def notes_handler(chain_ctx):
    """The section's event function on the speech_notes context: (notes, files, record, status)."""
    def write_notes(text, table, record, task, language, part_chars, max_new_tokens, chat_model,
                    progress=gr.Progress()):
        from demos.speech_notes.ui import write_files

        transcript, step = transcript_of(text, table, record)
        task, language, part_chars, max_new = notes.check(task, language, part_chars, max_new_tokens)
        chain = Chain(chain_ctx, progress=progress)
        chain.steps.append(step)
        chain.say(f"{notes.ASR}: the transcript above (not transcribed again).")
        made = notes.from_transcript(chain, transcript, task, language, chat_model, part_chars=part_chars,
                                     max_new_tokens=max_new)
        rec = chain.record(task=task, language=language or None, parts=made.parts)
        paths = write_files(made, rec, task, "transcript")
        return made.notes, paths, rec, "  \n".join(chain.log[:1] + chain.log[1:][-7:])  # where the text came from
    return write_notes


def transcript_of(text, table, record):
    """(Transcript, the chain's first StepRun) from what the tab shows: the text, the Segments table (start, end,
    text) and the record of the run that made them."""
    from demos.whisper_asr.types import Segment, Transcript

    rows = _rows(table)
    if not (text or "").strip() or not rows or not isinstance(record, dict) or not record:
        raise UserError(NO_TRANSCRIPT)
    if len(rows) > MAX_LINES:
        raise UserError(f"The transcript has {len(rows)} lines; notes take at most {MAX_LINES}.")
    segments = []
    for row in rows:
        start, end = _seconds(row[0]), _seconds(row[1])
        segments.append(Segment(start, end, str(row[2])))
    rec = _plain(record)
    transcript = Transcript(str(text), segments, str(rec.get("detected_language") or ""),
                            _number(rec.get("language_probability")), _number(rec.get("audio_seconds")),
                            task=str(rec.get("task") or "transcribe"))
    step = StepRun(notes.ASR, "whisper_asr", "transcribe_stream", _number(rec.get("seconds")),
                   {**rec, "reused": "the Whisper tab's transcript"})
    return transcript, step


def _rows(table) -> list:
    if table is None:
        return []
    if hasattr(table, "values"):  # a pandas DataFrame (gr.Dataframe's input)
        table = table.values.tolist()
    elif isinstance(table, dict):
        table = table.get("data") or []
    rows = [list(r) for r in table if isinstance(r, (list, tuple)) and len(r) >= 3]
    return [r for r in rows if str(r[2]).strip()]


def _seconds(value) -> float:
    t = _number(value, None)
    if t is None or t < 0:
        raise UserError("The Segments table holds a time that is not a number of seconds; transcribe again.")
    return t


def _number(value, default=0.0):
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _plain(record: dict) -> dict:
    """The record's plain values only, bounded (it came back from the page)."""
    out = {}
    for key, value in list(record.items())[:40]:
        if isinstance(key, str) and (value is None or isinstance(value, (bool, int, float))):
            out[key[:60]] = value
        elif isinstance(key, str) and isinstance(value, str):
            out[key[:60]] = value[:300]
    return out
