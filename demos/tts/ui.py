"""The text-to-speech tab: text in, speech out (played while it is made, and a download), voice, speed, format.

Top to bottom: the model picker and its notice (and, when piper-tts is missing, the one sentence that says how to
install it; a Kokoro model without kokoro-onnx says so when it is picked), the text, the voice (with its sample line
and a button to hear it), speed and format, Speak / Stop, the status line, the player, the download and the record.
The handler checks the request before any model, then streams the engine's `speak` method through `ctx.stream` in
raw 24 kHz PCM: each sentence goes to the player as a small WAV as soon as it is made (gr.Audio streaming), and at
the end the whole speech is written in the chosen format.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np

from demos.tts import engine
from demos.tts.formats import FORMATS, PCM_RATE, SUFFIXES, encode, wav_header
from demos.tts.spec import INSTALL, SPEED_RANGE
from demos.tts.types import SpeakRequest, SpeechChunk, VoicesRequest
from hub.outputs import request_folder

INPUT_NAMES = ("model", "text", "voice", "speed", "format")
OUTPUT_NAMES = ("audio", "file", "status", "record")
EXAMPLE_TEXT = ("Text to speech turns writing into a voice. Long text is spoken sentence by sentence, so you hear "
                "the first sentence while the rest is still being made. Try a different voice or speed below.")


def build(ctx):
    import gradio as gr

    c = _components(ctx)

    @ctx.handler
    def speak(model, text, voice="", speed=1.0, format="wav", progress=gr.Progress()):
        """Speak text with a voice: the audio streams sentence by sentence, then the whole file is offered in the
        chosen format, with the status line and the reproducibility record.

        Args:
            model: A voice model this hub lists (the Model picker's values); empty for the hub's default.
            text: The text to speak (at most the hub's character limit; 4,096 unless the operator changed it).
            voice: One of the model's voices (the Voice picker's values); empty for the model's first voice.
            speed: 0.25 to 4; 1 is the voice's own pace.
            format: The download's format: mp3, opus, aac, flac, wav or pcm (raw 16-bit 24 kHz mono).
        """
        yield from speak_request(ctx, model, text, voice, speed, format, progress)

    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    event = c.go.click(lambda: gr.update(visible=True), None, c.stop, **quiet).then(
        speak, [getattr(c, n) for n in INPUT_NAMES], [getattr(c, n) for n in OUTPUT_NAMES], api_name="speak",
        **ctx.events_on(c.status))
    for after in (event.then, event.failure):
        after(lambda: gr.update(visible=False), None, c.stop, **quiet)
    c.stop.click(lambda: gr.update(visible=False), None, c.stop, cancels=[event], **quiet)

    @ctx.handler
    def sample(model, voice, speed, progress=gr.Progress()):
        line = _voice_lines(ctx, model).get(voice or "", "")
        yield from speak_request(ctx, model, line or EXAMPLE_TEXT, voice, speed, "wav", progress)

    c.hear.click(sample, [c.model, c.voice, c.speed], [getattr(c, n) for n in OUTPUT_NAMES],
                 api_visibility="private", **ctx.events_on(c.status))

    @ctx.handler
    def pick_model(model):
        """The voice list of the picked model (loads it: voices are read from its files)."""
        listed = ctx.call("voices", VoicesRequest(), model).voices
        ids = [v.id for v in listed]
        return gr.update(choices=ids, value=ids[0] if ids else None), _line(listed[0].sample if listed else "")

    c.model.change(pick_model, c.model, [c.voice, c.line], api_visibility="private", **ctx.events_on(c.status))
    c.voice.change(lambda m, v: _line(_voice_lines(ctx, m).get(v or "", "")), [c.model, c.voice], c.line, **quiet)


def _components(ctx) -> SimpleNamespace:
    import gradio as gr

    from hub import fields

    c = SimpleNamespace()
    c.model, c.notice = ctx.model_picker(info="Piper voices run on the CPU several times faster than real time; "
                                              "Kokoro-82M sounds more natural and is slower.")
    if importlib.util.find_spec("piper") is None:
        gr.Markdown(f"⚠️ {INSTALL}", elem_classes=["model-note"])
    lines = _voice_lines(ctx, ctx.default_model())
    first = next(iter(lines), None)
    with gr.Row():
        with gr.Column():
            c.text = gr.Textbox(EXAMPLE_TEXT, label="Text", lines=6, max_lines=20)
            with gr.Row():
                c.voice = gr.Dropdown(list(lines), value=first, label="Voice", allow_custom_value=True, scale=2)
                c.hear = gr.Button("Hear a sample", size="sm", scale=1, min_width=120)
            c.line = gr.Markdown(_line(lines.get(first, "")), elem_classes=["voice-sample"])
            with gr.Row():
                c.speed = fields.slider("Speed", *SPEED_RANGE, 1.0, 0.05, info="1 = the voice's own pace")
                c.format = gr.Dropdown(list(FORMATS), value="wav", label="Download format")
            with gr.Row():
                c.go = gr.Button("Speak", variant="primary", scale=4)
                c.stop = gr.Button("Stop", size="sm", visible=False, scale=1, min_width=80)
            c.status = gr.Markdown(label="Status", show_label=False, elem_classes=["status"])
        with gr.Column():
            c.audio = gr.Audio(label="Speech", streaming=True, autoplay=True, interactive=False,
                               sources=["microphone"])
            c.file = gr.File(label="Download", interactive=False)
            c.record = gr.JSON(label="Record (model, voice, parameters)")
    return c


def _voice_lines(ctx, model) -> dict[str, str]:
    """voice id -> sample line, as the model's spec lists them (no load); {} for a model the spec does not know."""
    try:
        choice = ctx.choice(model or None)
    except Exception:  # an unlisted name typed in the picker: the speak request says why
        return {}
    return {v: info[1] for v, info in choice.options.get("voices", {}).items()}


def _line(sample: str) -> str:
    return f"*Sample:* {sample}" if sample else ""


def speak_request(ctx, model, text, voice, speed, fmt, progress):
    """The tab's request: check, stream sentence WAVs to the player, then write the download and the record."""
    import gradio as gr

    ctx.check_model(model)
    req = engine.check_request(SpeakRequest(text, voice, 1.0 if speed is None else speed, fmt or "wav"),
                               max_chars=int(ctx.options.max_chars))
    out_fmt, pcm = req.format, []
    stream = ctx.stream("speak", SpeakRequest(req.text, req.voice, req.speed, "pcm", req.max_chars), model,
                        progress=progress)
    for item in stream:
        if isinstance(item, SpeechChunk):
            pcm.append(item.data)
            status = f"Speaking: sentence {item.index + 1} of {item.total} ready"
            yield wav_header(PCM_RATE, len(item.data)) + item.data, gr.skip(), status, gr.skip()
            continue
        pcm.append(item.data)
        samples = np.frombuffer(b"".join(pcm), "<i2").astype(np.float32) / 32767.0
        path = request_folder(ctx.name, "speech") / f"speech{SUFFIXES[out_fmt]}"
        path.write_bytes(encode(samples, PCM_RATE, out_fmt))
        rtf = item.seconds / max(item.audio_seconds, 1e-9)
        status = (f"**Speech:** {item.audio_seconds:.1f} s · **Took:** {item.seconds:.2f} s "
                  f"(real-time factor {rtf:.2f}) · **Voice:** {item.record.get('voice', '')}")
        yield None, str(path), status, item.record
