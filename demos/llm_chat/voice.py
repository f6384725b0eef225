"""Voice conversation in the chat tab: ask by microphone (or an uploaded recording), hear the answer.

The recording is decoded by the hub (`hub.media.audio.load_audio`, 16 kHz), cut to its speech by Silero VAD (the
copy faster-whisper ships: `faster_whisper.vad`), so silence before and after never reaches Whisper (where it makes
tiny models invent words); the speech is transcribed by the hub's Whisper (the `whisper_asr` demo's `transcribe`
work method, through `ctx.other`: its allow-list, lease and budget) and becomes the user's message. The chat model
answers on the tab's own streaming path (the `chat` work method, history kept: the conversation is ChatInterface's),
and every finished sentence of the answer is spoken at once by the text-to-speech demo (`tts`'s `speak`, raw PCM,
sent to a streaming player as a small WAV) while the rest of the answer is still being written. Typing still works:
both paths read and write the same conversation.

A hub without Whisper shows one sentence instead of the microphone; without the tts demo, answers are written only.
The event is served to API clients as `/voice` (undocumented: its audio input has no tiny example).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

from demos.llm_chat.audio_parts import NO_SPEECH, WHISPER, transcribe_request, whisper_context
from hub.errors import UserError

RATE = 16_000
MAX_SECONDS = 120.0  # a spoken question; longer recordings are refused with a sentence
# Silero's defaults, with shorter pads: only the outer silence is cut, so inner pauses do not matter
VAD = {"threshold": 0.5, "min_speech_duration_ms": 250, "min_silence_duration_ms": 500, "speech_pad_ms": 200}
TTS = "tts"
NO_MIC = ("🎤 Voice questions need the Whisper demo (whisper_asr), which this hub does not run; type your question, "
          "or the operator can start the hub with whisper_asr.")
NO_TTS = "Answers are written, not spoken: this hub does not run the text-to-speech demo (tts)."
NOT_SPOKEN = str.maketrans("", "", "*#`_~|>")  # markdown marks a voice would read out


@dataclass(frozen=True)
class Heard:
    """What a recording said: `text`, and where its speech is (seconds from the recording's start)."""

    text: str
    start: float
    end: float
    duration: float
    segments: tuple = ()


def speech_span(samples, rate: int = RATE) -> tuple[int, int] | None:
    """(first, last) sample of the speech in `samples` (Silero VAD), None when there is no speech at all."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(samples, VadOptions(**VAD), sampling_rate=rate)
    return (spans[0]["start"], spans[-1]["end"]) if spans else None


def hear(asr, audio, max_seconds: float = MAX_SECONDS, progress=None) -> Heard:
    """The words of the recording `audio` (a path or gradio file): decoded, cut to its speech, transcribed by the
    Whisper context `asr`. UserError with a sentence for no audio, no speech, or a recording over `max_seconds`."""
    from hub.media.audio import load_audio

    samples = load_audio(audio, sample_rate=RATE, max_seconds=max_seconds)
    span = speech_span(samples)
    if span is None:
        raise UserError(NO_SPEECH)
    result = asr.call("transcribe", transcribe_request(samples[span[0]:span[1]], vad=False), progress=progress)
    text = result.transcript.text.strip()
    if not text:
        raise UserError(NO_SPEECH)
    return Heard(text, span[0] / RATE, span[1] / RATE, samples.size / RATE, tuple(result.transcript.segments))


class Speaker:
    """Speaks an answer while it streams: `feed(new_text)` returns WAVs of the sentences it finished; `flush()`
    speaks the rest. A speech failure (the voice cannot load) is said once in `problem`; the text goes on."""

    def __init__(self, tts):
        self.tts, self.pending, self.problem, self.pcm = tts, "", "", []

    def feed(self, text: str) -> list[bytes]:
        from demos.tts.sentences import split_sentences

        self.pending += text
        sentences = split_sentences(self.pending)
        if len(sentences) < 2:
            return []
        # the last piece may still grow; the spaces or line breaks after it are kept for the next token
        self.pending = sentences[-1] + self.pending[len(self.pending.rstrip()):]
        return self._say(" ".join(sentences[:-1]))

    def flush(self) -> list[bytes]:
        rest, self.pending = self.pending, ""
        return self._say(rest)

    def _say(self, text: str) -> list[bytes]:
        from demos.tts.formats import PCM_RATE, wav_header
        from demos.tts.types import SpeakRequest, SpeechChunk

        text = text.translate(NOT_SPOKEN).strip()
        if self.tts is None or self.problem or not any(c.isalnum() for c in text):
            return []
        try:
            pcm = b"".join(item.data for item in self.tts.stream("speak", SpeakRequest(text, "", 1.0, "pcm"))
                           if isinstance(item, SpeechChunk))
        except UserError as e:
            self.problem = f"The answer is not spoken: {e}"
            return []
        self.pcm.append(pcm)
        return [wav_header(PCM_RATE, len(pcm)) + pcm] if pcm else []

    def save(self, demo: str) -> str | None:
        """Everything spoken, as one WAV file to download (None when nothing was)."""
        from demos.tts.formats import PCM_RATE, wav_header
        from hub.outputs import request_folder

        pcm = b"".join(self.pcm)
        if not pcm:
            return None
        path = request_folder(demo, "speech") / "answer.wav"
        path.write_bytes(wav_header(PCM_RATE, len(pcm)) + pcm)
        return str(path)


def converse(ctx, tts, audio, history, model, system_prompt, settings: tuple, progress=None):
    """(chat, conversation, speech, download, record, status) updates: the recording heard, the answer streamed
    into the conversation, each finished sentence spoken as it comes. `settings`: the tab's (temperature, top_p, top_k,
    max_new_tokens, repetition_penalty, thinking)."""
    import gradio as gr

    from demos.llm_chat.engine import check_params
    from demos.llm_chat.messages import build_messages
    from demos.llm_chat.types import ChatDelta, ChatRequest
    from demos.llm_chat.ui import reply

    if audio is None:  # the recording was cleared
        yield (gr.skip(),) * 6
        return
    sent_at = time.time()
    *sampling, thinking = settings
    params = check_params(*sampling, thinking=thinking)
    ctx.choice(model)  # the allow-list, before Whisper runs
    asr, max_seconds = whisper_context(ctx)
    heard = hear(asr, audio, min(max_seconds, MAX_SECONDS), progress)
    turn = list(history or []) + [{"role": "user", "content": heard.text}]
    said = (f"🎤 Heard {heard.end - heard.start:.1f} s of speech (from {heard.start:.1f} s to {heard.end:.1f} s "
            f"of {heard.duration:.1f} s).")
    yield turn, turn, gr.skip(), None, gr.skip(), said
    speaker = Speaker(tts)
    work = ctx.stream("chat", ChatRequest(tuple(build_messages(system_prompt, history, heard.text)), params,
                                          sent_at), model, progress=progress)
    text = thought = ""
    try:
        for item in work:
            if isinstance(item, ChatDelta):
                text, thought = text + item.content, thought + item.reasoning
                shown = _turns(turn, reply(thought, item.thinking_done, text))
                for wav in speaker.feed(item.content):
                    yield shown, shown, wav, gr.skip(), gr.skip(), said
                yield shown, shown, gr.skip(), gr.skip(), gr.skip(), said
                continue
            final = item.answer
            notes = "".join(f"\n\n<sub>ℹ️ {n}</sub>" for n in final.notes)
            done = final.text + notes + "\n\n" + final.footer(item.loading_s)
            shown = _turns(turn, reply(final.thinking, True, done))
            for wav in speaker.flush():
                yield shown, shown, wav, gr.skip(), gr.skip(), said
            status = " ".join(s for s in (said, speaker.problem or ("" if tts else NO_TTS)) if s)
            # None ends the player's stream (its value becomes a playlist); the download is the whole speech
            yield shown, shown, None, speaker.save(ctx.name), item.record, status
    finally:
        work.close()


def _turns(history: list, answer) -> list:
    return history + (answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}])


def build(ctx, tab, record) -> None:
    """The microphone row under the chat `tab` (a ChatInterface): its answers go to the tab's conversation and
    `record`, with the same model and settings (the tab's additional inputs)."""
    import gradio as gr

    try:
        ctx.other(WHISPER)
    except UserError:
        gr.Markdown(NO_MIC, elem_classes=["voice-note"])
        return
    try:
        tts = ctx.other(TTS)
    except UserError:
        tts = None
    c = SimpleNamespace()
    with gr.Row(elem_classes=["voice-chat"]):
        c.mic = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Ask by voice",
                         elem_id="voice-question")
        with gr.Column():
            c.speech = gr.Audio(label="Spoken answer", streaming=True, autoplay=True, interactive=False,
                                elem_id="voice-answer")
            c.file = gr.DownloadButton("Download the spoken answer (WAV)", size="sm", variant="secondary")
    c.status = gr.Markdown(NO_TTS if tts is None else "", elem_classes=["status", "voice-status"])

    @ctx.handler
    def voice(audio, history, model, system_prompt, temperature, top_p, top_k, max_new_tokens, repetition_penalty,
              thinking, progress=gr.Progress()):
        """Ask the chat model by voice: the recording is cut to its speech, transcribed by Whisper, answered (the
        conversation is kept) and the answer spoken sentence by sentence. Returns the chat, the spoken answer
        (streamed), the whole spoken answer as a WAV file, the record and a status line."""
        settings = (temperature, top_p, top_k, max_new_tokens, repetition_penalty, thinking)
        yield from converse(ctx, tts, audio, history, model, system_prompt, settings, progress)

    c.mic.change(voice, [c.mic, tab.chatbot_state, *tab.additional_inputs],
                 [tab.chatbot, tab.chatbot_state, c.speech, c.file, record, c.status], api_name="voice",
                 api_visibility="undocumented", **ctx.events_on(c.status))
