"""OpenAI-compatible HTTP routes on the hub's server: `POST /v1/chat/completions` (streaming and not); the hub
serves `GET /v1/models` for every demo (hub/routes.py).

The body is a pydantic model (`ChatCompletionRequest`: one source for fields, defaults, checks and docs); its
numbers go through the same checks as the UI's (`engine.check_param`, i.e. hub.validate: out of range is refused).
Requests reach the model only as work methods (engine.WORK: `chat` streams, `complete` is its last item) through
`ctx.stream` and `hub.api.call`, so the allow-list, the lease, out-of-memory recovery and the stop when a client goes
away are the UI's. Errors are OpenAI-style JSON: 401 without hub login, 404 for a model this hub does not serve, 400
for anything else the client can fix, 503 when weights cannot be had.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub import validate
from hub.api import ApiError, add_route, call, json_bytes, model_id, started_stream
from hub.errors import UserError
from hub.weights import public_id

from demos.llm_chat.audio_parts import transcribe_parts
from demos.llm_chat.engine import GenParams, check_param, check_params, check_stop
from demos.llm_chat.messages import build_messages, content_text
from demos.llm_chat.thinking import check_thinking
from demos.llm_chat.types import ChatDelta, ChatDone, ChatRequest, Chunk
from demos.vision.openai_parts import vision_answer

# ---- request bodies -----------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    """One message of the conversation. Extra fields (name, tool_calls, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="Who wrote it; 'developer' is read as 'system'.")
    content: str | None = Field(None, description="A string, or a list of parts of which the text parts are read "
                                                  "(joined by newlines); None when it has no text.")

    @field_validator("content", mode="before")
    @classmethod
    def _text(cls, value):
        return content_text(value)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(False, description="Send a last chunk with token counts before [DONE].")

    @field_validator("include_usage", mode="before")
    @classmethod
    def _flag(cls, value):
        return validate.flag(value, "'include_usage'", default=False)


# OpenAI chat fields this hub does not implement, with the values that mean "off" (accepted).
UNSUPPORTED = {
    "logprobs": (None, False), "top_logprobs": (None, 0), "tools": (None, []), "functions": (None, []),
    "tool_choice": (None, "none"), "function_call": (None, "none"), "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "audio": (None,),
    "modalities": (None, ["text"]), "prediction": (None,), "response_format": (None, {"type": "text"}),
    "web_search_options": (None,), "reasoning_effort": (None,),
}


class ChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions`: the OpenAI fields this hub reads, plus top_k and repetition_penalty;
    OpenAI fields it does not implement are refused (UNSUPPORTED); others (user, metadata, ...) change nothing and
    are ignored. Sampling numbers left out take the UI's defaults (engine.GenParams)."""

    model_config = ConfigDict(extra="ignore")

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation, the last message the user's.")
    n: int | None = Field(1, description="Number of answers; only 1 is supported.")
    model: str | None = Field(None, description="A model this hub serves (GET /v1/models); '', 'default' or "
                                                "'demohub' mean the hub's default model.")
    temperature: float | None = Field(None, description="0 to 2; 0 picks the most likely token (greedy).")
    top_p: float | None = Field(None, description="Nucleus sampling: above 0, at most 1.")
    top_k: int | None = Field(None, description="Sample from the k most likely tokens, 0 to 100000 (0: off).")
    max_tokens: int | None = Field(None, description="Most tokens in the answer, at least 1 (deprecated name).")
    max_completion_tokens: int | None = Field(None, description="Most tokens in the answer, at least 1.")
    repetition_penalty: float | None = Field(None, description="Above 0, at most 3; 1 is off.")
    seed: int | None = Field(None, description="0 to 2**63-1: the same seed and settings give the same answer.")
    stop: tuple[str, ...] = Field((), description="A string or up to 4 strings that end the answer.")
    stream: bool = Field(False, description="Send the answer as server-sent events while it is generated.")
    stream_options: StreamOptions | None = Field(None, description="With stream: {\"include_usage\": true}.")
    enable_thinking: bool | None = Field(None, description="Models with a thinking switch (Qwen3, SmolLM3): true "
                                                           "to reason first, false to answer at once; default off "
                                                           "on a CPU, on on a GPU. The reasoning comes back in "
                                                           "`reasoning_content`, apart from `content`.")
    chat_template_kwargs: dict | None = Field(None, description="vLLM's spelling: {\"enable_thinking\": false}; "
                                                                "other keys are ignored.")

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, body):
        """OpenAI fields that would change the answer and that this hub does not implement: refused with a sentence
        (never silently ignored); sent with their "off" value they are accepted."""
        if isinstance(body, dict):
            for name, off in UNSUPPORTED.items():
                if name in body and body[name] not in off:
                    raise UserError(f"'{name}' is not supported by this hub's chat endpoint; leave it out.")
        return body

    @field_validator("n", mode="before")
    @classmethod
    def _one(cls, value):
        if value not in (1, None):
            raise UserError("Only n=1 is supported.")
        return 1

    @field_validator("temperature", "top_p", "top_k", "repetition_penalty", "seed", mode="before")
    @classmethod
    def _sampling(cls, value, info):
        return check_param(info.field_name, value)

    @field_validator("max_tokens", "max_completion_tokens", mode="before")
    @classmethod
    def _max_tokens(cls, value):
        return check_param("max_new_tokens", value)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value):
        return check_stop(value)

    @field_validator("enable_thinking", mode="before")
    @classmethod
    def _thinking(cls, value):
        return check_thinking(value)

    @field_validator("chat_template_kwargs", mode="before")
    @classmethod
    def _template_kwargs(cls, value):
        if value is not None and not isinstance(value, dict):
            raise UserError("'chat_template_kwargs' must be an object, like {\"enable_thinking\": false}.")
        return {"enable_thinking": check_thinking(value.get("enable_thinking"))} if value else None

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, value):
        return validate.flag(value, "'stream'", default=False)

    @field_validator("messages")
    @classmethod
    def _texts(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        for i, m in enumerate(messages):
            if m.content is None:
                raise UserError(f"messages[{i}] has no text content; this model reads text only.")
        if messages[-1].role != "user":
            raise UserError("The last message must come from the user.")
        return messages


def _sentence(error: ValidationError) -> str:
    """The first problem of a body as a sentence: our checks' own sentence, else one for the field."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, UserError):
        return str(cause)
    loc = first["loc"]
    if loc[0] == "messages":
        if len(loc) > 1 and isinstance(loc[1], int):
            return f"messages[{loc[1]}] needs a role of system, user or assistant."
        return "'messages' must be a non-empty list of {role, content} objects."
    if loc[0] == "model":
        return "'model' must be a string."
    if loc[0] == "stream_options":
        return "'stream_options' must be an object, like {\"include_usage\": true}."
    return f"'{loc[0]}' is not valid: {first['msg']}."


def _json(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("The request body is not valid UTF-8; send JSON encoded as UTF-8.") from None
    except ValueError as e:
        raise UserError(f"The request body is not valid JSON ({e}).") from None
    except RecursionError:
        raise UserError("The request body is nested too deeply; send a JSON object with 'messages' as a list of "
                        "{role, content} objects.") from None


def parse_openai_request(body: bytes) -> tuple[str | None, list[dict], GenParams, bool, bool]:
    """(model, messages, params, stream, include_usage) from a /v1/chat/completions body; UserError if invalid."""
    raw = _json(body)
    if not isinstance(raw, dict):
        raise UserError("The request body must be a JSON object with 'messages'.")
    try:
        req = ChatCompletionRequest.model_validate(raw)
    except ValidationError as e:
        raise UserError(_sentence(e)) from None
    msgs = [{"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in req.messages]
    system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
    history = [m for m in msgs[:-1] if m["role"] != "system"]
    messages = build_messages(system, history, msgs[-1]["content"])
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    thinking = req.enable_thinking
    if thinking is None and req.chat_template_kwargs:
        thinking = req.chat_template_kwargs["enable_thinking"]
    params = check_params(req.temperature, req.top_p, req.top_k, max_tokens, req.repetition_penalty, req.seed,
                          req.stop, thinking=thinking)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return req.model, messages, params, req.stream, include_usage


# ---- routes -------------------------------------------------------------------------------------------------------


def routes(ctx):
    """`POST /v1/chat/completions` (stream and not), OpenAI-compatible, on the hub's server (hub/api.py: login,
    OpenAI-shaped errors, metrics)."""
    from fastapi import APIRouter

    router = APIRouter()

    @add_route(router, ctx, "/v1/chat/completions", "POST", api="chat_completions")
    async def completions(request):
        import anyio.to_thread

        body = await json_bytes(request)
        if (answer := await vision_answer(ctx, body, request)) is not None:  # image_url parts: demos/vision
            return answer
        try:  # user text is parsed in a worker thread, never on the event loop (the server's other requests)
            body = await transcribe_parts(ctx, body, request)  # input_audio parts -> Whisper's text (audio_parts.py)
            model, msgs, params, stream, include_usage = await anyio.to_thread.run_sync(parse_openai_request, body)
        except UserError as e:
            raise ApiError(400, str(e)) from None
        model = model_id(ctx, model)  # the allow-list: an unknown model is a 404 before anything loads
        req = ChatRequest(tuple(msgs), params, time.time())
        if stream:
            return await _stream(ctx, model, req, include_usage)
        return await _complete(request, ctx, model, req)

    return router


async def _complete(request, ctx, model: str | None, req: ChatRequest):
    """The whole answer as one chat.completion object; a client that hangs up stops it at the next token."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    done = await call(ctx, "complete", req, model, http=request)
    final = done.answer
    return {"id": cid, "object": "chat.completion", "created": created, "model": done.model,
            "choices": [{"index": 0, "message": _message(final),
                         "finish_reason": "length" if final.finish_reason == "length" else "stop"}],
            "usage": _usage(done), "demohub": _extra(final)}


async def _stream(ctx, model: str | None, req: ChatRequest, include_usage: bool):
    """Server-sent events of chat.completion.chunk objects. The model loads and the first token comes before the
    response starts, so a load failure still gets its proper status code."""
    from fastapi.responses import StreamingResponse

    work, first, release = await started_stream(ctx, "chat", req, model, "chat_completions")
    sse = _Events(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), public_id(ctx.choice(model)))
    return StreamingResponse(sse.run(work, first, include_usage, release), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class _Events:
    """The event lines of one streamed answer."""

    def __init__(self, cid: str, created: int, name: str):
        self.cid, self.created, self.name = cid, created, name

    @staticmethod
    def sse(obj) -> str:
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    def piece(self, delta: dict, reason: str | None = None) -> str:
        return self.sse({"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                         "model": self.name, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]})

    def lines(self, item, include_usage: bool) -> Iterator[str]:
        """The events of one item: the reasoning, then the answer text, of a delta; the end of the answer."""
        if isinstance(item, ChatDelta):
            if item.reasoning:  # the reasoning grows first, then the answer
                yield self.piece({"reasoning_content": item.reasoning})
            if item.content:
                yield self.piece({"content": item.content})
            return
        yield self.piece({}, "length" if item.finish_reason == "length" else "stop")
        if include_usage:
            yield self.sse({"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.name, "choices": [], "usage": _usage(item)})

    async def run(self, work, first, include_usage: bool, release=lambda: None):
        try:
            yield self.piece({"role": "assistant", "content": ""})
            try:
                if first is not None:
                    for line in self.lines(first, include_usage):
                        yield line
                async for item in work:
                    for line in self.lines(item, include_usage):
                        yield line
            except UserError as e:
                yield self.sse({"error": {"message": str(e), "type": "invalid_request_error"}})
            yield "data: [DONE]\n\n"
        finally:
            work.close()  # client gone or stream over: generation stops at the next token; the lease follows
            release()  # the /v1 queue slot


def _message(c: Chunk) -> dict:
    """The answer's message; a thinking model's reasoning in `reasoning_content` (as vLLM and DeepSeek send it)."""
    return {"role": "assistant", "content": c.text, **({"reasoning_content": c.thinking} if c.thinking else {})}


def _usage(done: ChatDone) -> dict:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}


def _extra(c: Chunk) -> dict:
    return {"tokens_per_s": round(c.tokens_per_s, 2), "first_token_s": c.first_token_s, "notes": c.notes,
            "finish_reason": c.finish_reason}
