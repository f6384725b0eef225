"""OpenAI-compatible text to speech on the hub's server: `POST /v1/audio/speech` and `GET /v1/audio/voices`.

The body is OpenAI's (model, input, voice, response_format, speed, stream_format), a pydantic model (`SpeechBody`);
it is checked with the engine's own check (`engine.check_request`) before any model is needed. The audio streams as
it is made: the engine's `speak` method runs through `ctx.stream` under the demo's /v1 admission, and each
sentence's bytes go out as soon as they are encoded (a client that hangs up stops the work at the next sentence).
The first sentence is made before the response starts, so a failed load still gets its proper status code.
OpenAI's model names tts-1 and gpt-4o-mini-tts mean the hub's default voice model; tts-1-hd means Kokoro-82M where
kokoro-onnx is installed and a Kokoro model's files are on this machine (the higher-quality voices, slower on a
CPU), else the default too. OpenAI's voice names (alloy, echo, ...) mean the model's first voice;
`GET /v1/audio/voices?model=...` lists a model's own voices.
"""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, ConfigDict, Field, field_validator

from demos.tts import engine
from demos.tts.formats import MEDIA_TYPES
from demos.tts.types import SpeakRequest, SpeechChunk, VoicesRequest
from hub.api import add_route, call, json_body, model_id, started_stream
from hub.errors import UserError
from hub.weights import is_cached, public_id

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
                 "shimmer", "verse")
MAX_BODY = 1 << 20  # the text is capped in characters (max_chars); the body in bytes


class SpeechBody(BaseModel):
    """OpenAI's speech request. Fields OpenAI has that this hub cannot honour are refused with a sentence."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="A voice model this hub serves (GET /v1/models); 'tts-1', "
                                                "'gpt-4o-mini-tts', '' and 'default' mean the default; 'tts-1-hd' "
                                                "Kokoro-82M where it is installed, else the default.")
    input: str = Field(..., description="The text to speak (at most DEMOHUB_TTS_MAX_CHARS characters, 4096 by "
                                        "default).")
    voice: str | None = Field(None, description="One of the model's voices (GET /v1/audio/voices); OpenAI's "
                                                "voice names mean the model's first voice.")
    response_format: str = Field("mp3", description="mp3, opus, aac, flac, wav or pcm (16-bit 24 kHz mono).")
    speed: float = Field(1.0, description="0.25 to 4; 1 is the voice's own pace.")
    stream_format: str = Field("audio", description="'audio' (the file's bytes as they are made); 'sse' is not "
                                                    "offered.")
    instructions: str | None = Field(None, description="Not offered: Piper and Kokoro voices take no style "
                                                       "instructions.")

    @field_validator("stream_format", mode="before")
    @classmethod
    def _stream_format(cls, value):
        if value not in (None, "", "audio"):
            raise UserError("Only stream_format 'audio' is offered on this hub (the audio file's bytes as they are "
                            "made); leave stream_format out or send 'audio'.")
        return "audio"

    @field_validator("instructions", mode="before")
    @classmethod
    def _instructions(cls, value):
        if value:
            raise UserError("This hub's voices take no style instructions; leave 'instructions' out and pick a "
                            "voice and speed instead.")
        return None

    @field_validator("response_format", "voice", mode="before")
    @classmethod
    def _text(cls, value):
        return "" if value is None else value


def routes(ctx):
    """`POST /v1/audio/speech` and `GET /v1/audio/voices`, OpenAI-compatible (hub/api.py: login, errors, metrics)."""
    from fastapi import APIRouter

    router = APIRouter()

    @add_route(router, ctx, "/v1/audio/speech", "POST", api="audio_speech")
    async def speech(request):
        body = await json_body(request, SpeechBody, MAX_BODY)
        model = tts_model(ctx, body.model)
        req = engine.check_request(SpeakRequest(body.input, body.voice, body.speed, body.response_format or "mp3"),
                                   max_chars=int(ctx.options.max_chars))
        if req.voice.lower() in OPENAI_VOICES:
            req = SpeakRequest(req.text, "", req.speed, req.format, req.max_chars)
        return await _stream(ctx, model, req)

    @add_route(router, ctx, "/v1/audio/voices", "GET", api="audio_voices")
    async def voices(request):
        model = tts_model(ctx, request.query_params.get("model"))
        listed = await call(ctx, "voices", VoicesRequest(), model, http=request)
        return {"object": "list", "model": listed.model,
                "data": [{"id": v.id, "object": "voice", "language": v.language, "sample": v.sample}
                         for v in listed.voices]}

    return router


def tts_model(ctx, model) -> str | None:
    """The `model` field: OpenAI's names -> the default (tts-1-hd -> Kokoro where it is here); a model this hub does
    not serve -> 404 model_not_found."""
    if isinstance(model, str) and model.strip() in OPENAI_MODELS:
        return hd_model(ctx) if model.strip() == "tts-1-hd" else None
    return model_id(ctx, model)


def hd_model(ctx) -> str | None:
    """`tts-1-hd`: the first Kokoro model the hub lists whose files are on this machine (the release files with
    English voices before the packaged Japanese ones), where kokoro-onnx is installed; None (the default) else."""
    if importlib.util.find_spec("kokoro_onnx") is None:
        return None
    listed = set(ctx.listed_models())
    for choice in ctx.spec.models:
        if choice.options.get("engine") == "kokoro" and public_id(choice) in listed \
                and is_cached(ctx.spec, choice, ctx.settings)[0]:
            return public_id(choice)
    return None


async def _stream(ctx, model: str | None, req: SpeakRequest):
    """The audio file's bytes as each sentence is made. The first sentence comes before the response starts, so
    errors in loading or in the first sentence get their status code; later ones end the stream early."""
    from fastapi.responses import StreamingResponse

    work, first, release = await started_stream(ctx, "speak", req, model, "audio_speech")

    async def body():
        try:
            if first is not None:
                yield first.data
            async for item in work:
                if item.data:
                    yield item.data
        except UserError:
            return  # a sentence after the first failed: the file ends early (the status line was already sent)
        finally:
            work.close()
            release()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if isinstance(first, SpeechChunk):
        headers["X-Demohub-Sentences"] = str(first.total)
    return StreamingResponse(body(), media_type=MEDIA_TYPES[req.format], headers=headers)
