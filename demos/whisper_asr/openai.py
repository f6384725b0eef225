"""OpenAI-compatible speech to text on the hub's server: `POST /v1/audio/transcriptions` and
`POST /v1/audio/translations` (speech in any language -> English text), multipart forms as the OpenAI SDK sends them.

The same path as the tab (ui.py): the options go through `engine.check_options`; the body is read no further than
the upload cap (`hub.forms.capped_form`); once the request's turn in the demo's /v1 queue comes (`hub.api.admission`:
a waiting request holds its upload, never its decoded samples), the upload is decoded by
`hub.media.audio.load_audio` and the engine's `transcribe` method runs through `ctx.stream` (allow-list, lease,
out-of-memory recovery; a client that hangs up stops it), and .srt/.vtt bodies come from the demo's writers
(formats.py), so they equal the tab's downloads. The form is a pydantic model (`TranscriptionForm`); errors are
OpenAI-shaped with a sentence (hub/api.py): 400 for anything the client can fix, 404 `model_not_found`, 413 for an
upload over the hub's cap.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from demos.whisper_asr import engine
from demos.whisper_asr.formats import get_writer
from demos.whisper_asr.languages import languages, normalize_language
from demos.whisper_asr.types import TranscribeRequest
from hub import validate
from hub.api import ApiError, add_route, admission, model_id, result_until_gone, sentence
from hub.errors import UserError
from hub.forms import capped_form, too_large

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")
OPENAI_MODELS = ("whisper-1",)  # what OpenAI clients send by default: this hub's default Whisper model
FIELDS = ("model", "language", "prompt", "temperature", "response_format", "stream")


# ---- the form ------------------------------------------------------------------------------------------------------


class TranscriptionForm(BaseModel):
    """The fields of both routes besides `file` (others OpenAI defines, like `include[]`, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="A Whisper model this hub serves (GET /v1/models); '', 'default' "
                                                "and 'whisper-1' mean the hub's default Whisper model.")
    language: str | None = Field(None, description="Transcriptions only: the spoken language as an ISO code ('en', "
                                                   "'fr') or a name; empty to detect it.")
    prompt: str = Field("", description="Words and names the speech uses, or the text before it (style hint).")
    temperature: float = Field(0.0, description="0 to 1. Decoding starts at this temperature and rises by 0.2 while "
                                                "the output looks repetitive or unsure; 0 starts greedy.")
    response_format: str = Field("json", description="json ({\"text\"}), text, srt, vtt or verbose_json (language, "
                                                     "duration, segments; words with timestamp_granularities[]=word).")
    timestamp_granularities: tuple[str, ...] = Field(("segment",), description="With verbose_json: 'segment' "
                                                     "and/or 'word' (word timestamps take a little longer).")
    stream: bool = Field(False, description="Not offered: the whole transcript comes in one answer.")

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature(cls, value):
        return validate.number(_number(value), "'temperature'", 0, 1, default=0.0)

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value):
        return validate.choice(value, "The response_format", FORMATS, default="json")

    @field_validator("timestamp_granularities", mode="before")
    @classmethod
    def _granularities(cls, value):
        values = [value] if isinstance(value, str) else list(value or ())
        return tuple(validate.choice(v, "The timestamp granularity", GRANULARITIES) for v in values) or ("segment",)

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value):
        return normalize_language(value)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value):
        return "" if value is None else value

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, value):
        if isinstance(value, str):  # form fields are text
            value = {"true": True, "1": True, "false": False, "0": False, "": False}.get(value.strip().lower(), value)
        if validate.flag(value, "'stream'", default=False):
            raise UserError("Streaming is not offered for Whisper on this hub; leave 'stream' out and the whole "
                            "transcript comes in one answer.")
        return False

    def options(self, task: str) -> engine.Options:
        """The engine's checked options for `task` (the tab's defaults: voice-activity filter on, beam 5)."""
        words = self.response_format == "verbose_json" and "word" in self.timestamp_granularities
        return engine.check_options(task=task, language=self.language if task == "transcribe" else None,
                                    word_timestamps=words, initial_prompt=self.prompt,
                                    temperatures=temperatures(self.temperature))


def _number(value):
    """Form fields are text: '0.2' -> 0.2; anything else goes to the check as it is (its sentence names it)."""
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return value
    return value


def temperatures(start: float) -> tuple[float, ...]:
    """openai-whisper's fallback schedule from `start`: start, start+0.2, ... up to 1 (0 -> the engine's default)."""
    steps = int((1.0 - start) / 0.2 + 1e-9)
    return tuple(round(start + 0.2 * i, 6) for i in range(steps + 1))


# ---- the routes ----------------------------------------------------------------------------------------------------


def routes(ctx):
    """`POST /v1/audio/transcriptions` and `POST /v1/audio/translations`, OpenAI-compatible."""
    from fastapi import APIRouter

    router = APIRouter()

    @add_route(router, ctx, "/v1/audio/transcriptions", "POST", api="audio_transcriptions")
    async def transcriptions(request):
        return await answer(ctx, request, "transcribe")

    @add_route(router, ctx, "/v1/audio/translations", "POST", api="audio_translations")
    async def translations(request):
        return await answer(ctx, request, "translate")

    return router


ADVICE = "Send a shorter or more compressed recording (e.g. MP3 or OGG)."


async def answer(ctx, request, task: str):
    """Read and check the form; in the queue, decode the audio and run the model; answer in the format asked for."""
    import anyio

    cap = int(ctx.settings.max_upload_mb) * 2**20
    form = await capped_form(request, cap, advice=ADVICE)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "'file' is required: upload the audio as a file part named 'file' "
                                f"({_formats()}).", param="file")
        if upload.size is not None and upload.size > cap:
            raise too_large(upload.size, cap, ADVICE)
        body = parse_form(form)
        model = whisper_model(ctx, body.model)
        opts = body.options(task)
        max_seconds = float(ctx.options.max_minutes) * 60
        release = await admission(ctx).acquire()  # decoding waits its turn: memory for one slot's audio at a time
        try:
            samples = await anyio.to_thread.run_sync(decode, upload, max_seconds)
            await form.close()
            # the client hanging up stops the work after its current window and frees the model
            work = ctx.stream("transcribe", TranscribeRequest(samples, opts, max_seconds), model)
            del samples
            result = await result_until_gone(work, request)
        finally:
            release()
    finally:
        await form.close()
    return respond(result.transcript, body, result.model)


def parse_form(form) -> TranscriptionForm:
    """The text fields of the form as a checked TranscriptionForm; ApiError 400 with a sentence."""
    raw = {name: form.get(name) for name in FIELDS if name in form}
    grains = form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    for name, value in [*raw.items(), *(("timestamp_granularities", g) for g in grains)]:
        if not isinstance(value, str):
            raise ApiError(400, f"'{name}' must be a text field, not a file.", param=name)
    if grains:
        raw["timestamp_granularities"] = grains
    try:
        return TranscriptionForm.model_validate(raw)
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        raise ApiError(400, sentence(e), param=str(loc[0]) if loc else None) from None


def whisper_model(ctx, model: str | None) -> str | None:
    """The `model` field: OpenAI's names -> the default; a model this hub does not serve -> 404 model_not_found."""
    if isinstance(model, str) and model.strip() in OPENAI_MODELS:
        return None
    chosen = model_id(ctx, model)
    if chosen is not None:
        choice = ctx.choice(chosen)
        # A bare name that is neither listed nor one of openai-whisper's sizes (e.g. another service's model id)
        if choice.source == "native" and ctx.spec.choice(choice.id) is None and choice.id not in _whisper_sizes():
            raise ApiError(404, f"The model {chosen[:100]!r} does not exist on this hub; use a Whisper model that "
                                "GET /v1/models lists, or 'whisper-1' for the default.", param="model",
                           code="model_not_found")
    return chosen


@lru_cache(maxsize=1)
def _whisper_sizes() -> frozenset[str]:
    """openai-whisper's model names, read from its source without importing it (no torch)."""
    import ast
    import importlib.util

    from demos.whisper_asr.spec import NATIVE

    spec = importlib.util.find_spec("whisper")
    if spec is None:
        return frozenset(NATIVE)
    for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_MODELS":
            return frozenset(ast.literal_eval(node.value)) | frozenset(NATIVE)
    return frozenset(NATIVE)


def decode(upload, max_seconds: float):
    """The upload -> 16 kHz samples through the hub's decoder, under the client's file name (for its sentences)."""
    from hub.media.audio import load_audio

    name = re.sub(r"[^\w.-]+", "_", Path(upload.filename or "").name)[-80:].lstrip(".") or "upload"
    with tempfile.TemporaryDirectory(prefix="demohub-audio-") as folder:
        path = Path(folder) / name
        upload.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        return load_audio(str(path), sample_rate=engine.SAMPLE_RATE, max_seconds=max_seconds,
                          limit_hint=engine.LIMIT_HINT)


def _formats() -> str:
    from hub.media.audio import FORMATS as AUDIO

    return AUDIO


# ---- the answers ---------------------------------------------------------------------------------------------------


def respond(t: engine.Transcript, body: TranscriptionForm, model: str):
    """The transcript in the asked format: JSON objects, or text/plain bodies for text, srt and vtt."""
    from fastapi.responses import PlainTextResponse

    fmt = body.response_format
    if fmt == "json":
        return {"text": t.text}
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt in ("srt", "vtt"):
        return PlainTextResponse(get_writer(fmt).format(t))
    return verbose(t, "word" in body.timestamp_granularities, model)


def verbose(t: engine.Transcript, words: bool, model: str) -> dict:
    """verbose_json: OpenAI's fields (the language by name, as OpenAI gives it), and the hub's extras under
    "demohub" (the model that ran, the language code and how sure the detection was, a note such as 'silent')."""
    out = {
        "task": t.task,
        "language": languages().get(t.language, t.language),
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": [{"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(t.segments)],
    }
    if words:
        out["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end, "probability": w.probability}
                        for s in t.segments for w in s.words]
    out["demohub"] = {"model": model, "language_code": t.language,
                      "language_probability": round(t.language_probability, 4), "note": t.note}
    return out
