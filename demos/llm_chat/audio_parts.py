"""`input_audio` content parts in `/v1/chat/completions` (an extension): each is transcribed by the hub's Whisper and
becomes a text part, so a spoken question reaches the chat model as its words.

A part is OpenAI's `{"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}}` (wav, mp3, flac,
ogg, m4a or webm). The audio is decoded by the hub's decoder (`hub.media.audio.load_audio`) and transcribed by the
`whisper_asr` demo's `transcribe` work method on this hub's backend (`ctx.other`: its default model, allow-list,
lease and budget), through `hub.api.call`, so a client that hangs up stops it. A Whisper model that cannot be had
(not downloaded on an offline hub) is the 503 every route gives, not the 400 of a bad part. A body with no such part
is passed on untouched without being parsed; JSON parsing and decoding run off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json

from hub.errors import UserError, WeightsUnavailable

AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "m4a", "webm")
MAX_PARTS = 8
WHISPER = "whisper_asr"
NO_WHISPER = ("This hub does not run Whisper (the whisper_asr demo), so it cannot hear speech; send the question as "
              "text, or the operator can start the hub with whisper_asr.")
NO_SPEECH = "No speech was recognised in the audio; record the question again, closer to the microphone."


async def transcribe_parts(ctx, body: bytes, http=None) -> bytes:
    """`body` with every `input_audio` part replaced by a text part holding its transcript (UserError with a
    sentence for a part that cannot be read). Bodies without one come back as they are."""
    import anyio

    if b'"input_audio"' not in body:
        return body
    try:
        raw = await anyio.to_thread.run_sync(json.loads, body)
    except (ValueError, RecursionError):
        return body  # the chat's own parser says what is wrong with it
    parts = list(_audio_parts(raw))
    if not parts:
        return body
    if len(parts) > MAX_PARTS:
        raise UserError(f"A request may carry at most {MAX_PARTS} audio parts; this one has {len(parts)}.")
    asr, max_seconds = await anyio.to_thread.run_sync(whisper_context, ctx)
    for part in parts:
        samples = await anyio.to_thread.run_sync(_decode, part, max_seconds)
        text = await _transcribe(asr, samples, http)
        part.clear()
        part.update({"type": "text", "text": text})
    return await anyio.to_thread.run_sync(lambda: json.dumps(raw).encode("utf-8"))


def _audio_parts(raw):
    """The `input_audio` part dicts of the messages (to be replaced in place)."""
    messages = raw.get("messages") if isinstance(raw, dict) else None
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "input_audio":
                yield part


def _decode(part: dict, max_seconds: float):
    """A part's audio as 16 kHz samples, or UserError."""
    import tempfile
    from pathlib import Path

    from hub.media.audio import load_audio

    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise UserError('An input_audio part needs {"input_audio": {"data": "<base64 audio>", "format": "wav"}}.')
    fmt = audio.get("format", "wav")
    if fmt not in AUDIO_FORMATS:
        raise UserError(f"The input_audio format {str(fmt)[:20]!r} is not one this hub reads; use one of "
                        f"{', '.join(AUDIO_FORMATS)}.")
    try:
        data = base64.b64decode(audio["data"], validate=True)
    except (binascii.Error, ValueError):
        raise UserError("The input_audio data is not valid base64; send the audio file's bytes base64-encoded.") \
            from None
    with tempfile.TemporaryDirectory(prefix="demohub-chat-audio-") as folder:
        path = Path(folder) / f"speech.{fmt}"
        path.write_bytes(data)
        return load_audio(str(path), sample_rate=16_000, max_seconds=max_seconds)


def whisper_context(ctx):
    """(the Whisper demo's context on the chat's backend, the longest audio it takes in seconds): its allow-list,
    default model, lease and budget (`ctx.other`), made once and kept on the chat's context. UserError with a
    sentence when this hub does not run Whisper."""
    found = getattr(ctx, "_whisper", None)
    if found is not None:
        return found
    from demos.whisper_asr import DEMO
    from hub.options import parse

    try:
        other = ctx.other(WHISPER)
    except UserError:
        raise UserError(NO_WHISPER) from None
    ctx._whisper = (other, float(parse(DEMO, ctx.settings.env).max_minutes) * 60)
    return ctx._whisper


def transcribe_request(samples, vad: bool = True):
    """Whisper's request for a spoken question: greedy, the language detected; `vad` False for audio already cut
    to its speech (voice.py)."""
    from demos.whisper_asr.engine import check_options
    from demos.whisper_asr.types import TranscribeRequest

    return TranscribeRequest(samples, check_options(task="transcribe", language=None, beam_size=1, vad=vad), None)


async def _transcribe(asr, samples, http) -> str:
    from hub.api import ApiError, call

    try:
        result = await call(asr, "transcribe", transcribe_request(samples), None, http=http)
    except WeightsUnavailable as e:  # not the client's to fix: the 503 every route gives (the chat's 400 is for parts)
        raise ApiError(503, str(e), "model_unavailable") from None
    text = result.transcript.text.strip()
    if not text:
        raise UserError(NO_SPEECH)
    return text
