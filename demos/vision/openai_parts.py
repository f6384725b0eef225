"""Pictures in `POST /v1/chat/completions`: OpenAI's vision format (`{"type": "image_url", "image_url": {"url":
"data:image/png;base64,..."}}` content parts) answered by this hub's vision demo.

`vision_answer(ctx, body, http)` is what the chat route calls first (demos/llm_chat/openai.py): a body without an
image part gives None and the chat goes on as before, untouched and unparsed. With one, the request goes to the
vision demo's `chat` work method (streamed as server-sent events, or `complete` for one JSON answer) when its `model`
is a vision model or left out; a text-only chat model named with a picture gets one sentence naming the vision
models. Data URLs are read; an http(s) URL is downloaded only when the operator turned that on
(`DEMOHUB_VISION_FETCH_URLS=1`: fetch.py, with its address, size, time and type checks) and is refused with a
sentence saying so otherwise; a local path or a file:// URL is never read. The image bytes stay in memory (never
written to disk); JSON parsing, base64 decoding and downloads run in a worker thread, never on the event loop. The conversation key that keeps image features
between turns is a hash of the caller's `user` field and the conversation's first message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import uuid

from hub.errors import UserError

VISION = "vision"
IMAGE_TYPES = ("image_url", "input_image")
NO_FETCH = ("This hub does not download image URLs (its operator can allow it with DEMOHUB_VISION_FETCH_URLS=1); "
            "send the picture inline as a data URL (data:image/png;base64,...), as the OpenAI SDK does for a local "
            "file.")


async def vision_answer(ctx, body: bytes, http=None):
    """The chat route's answer for a body with image parts (a dict or a StreamingResponse), or None without one."""
    import anyio.to_thread

    if not any(f'"{t}"'.encode() in body for t in IMAGE_TYPES):
        return None
    raw = await anyio.to_thread.run_sync(_loads, body)
    if raw is None or not _has_images(raw):
        return None  # the chat's own parser says what is wrong with the body, or it is text after all
    vision = vision_context(ctx)
    model = _route(ctx, vision, raw.get("model"))
    req, stream, usage = await anyio.to_thread.run_sync(parse, raw, vision.options)
    if stream:
        return await _stream(vision, model, req, usage)
    from hub.api import call

    done = await call(vision, "complete", req, model, http=http)
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": done.model, "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                                              "finish_reason": _reason(done)}],
            "usage": _usage(done), "demohub": {"first_token_s": done.first_token_s,
                                               "images_cached": done.images_cached}}


def _loads(body: bytes):
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return raw if isinstance(raw, dict) and isinstance(raw.get("messages"), list) else None


def _has_images(raw: dict) -> bool:
    return _count_images(raw) > 0


def _count_images(raw: dict) -> int:
    return sum(isinstance(p, dict) and p.get("type") in IMAGE_TYPES for m in raw["messages"] if isinstance(m, dict)
               for p in (m.get("content") if isinstance(m.get("content"), list) else ()))


def vision_context(ctx):
    """The vision demo's context on the chat's backend, with its operator options (made once, kept on `ctx`); the
    chat tab's pictures go through it too (demos/llm_chat/ui_images.py)."""
    try:
        return ctx.other(VISION)  # the same backend (and budget) as the chat: one hub, two demos
    except UserError:
        raise UserError("This hub does not run a vision model (the vision demo), so it cannot read images; send "
                        "text only, or start the hub with the vision demo.") from None


def _route(chat, vision, model):
    """The vision model to run: the one named, or the vision default when none is; a chat model named with a
    picture is a sentence naming the vision models; anything else is the usual 404."""
    from hub.api import model_id

    if isinstance(model, str) and model and model not in ("default", "demohub"):
        try:
            vision.check_model(model)
        except UserError:
            try:
                chat.check_model(model)
            except UserError:
                return model_id(vision, model)  # neither: 404 model_not_found, listing the vision models
            names = ", ".join(m for m in vision.listed_models())
            raise UserError(f"{model} reads text only and cannot see images; send the pictures to a vision model "
                            f"({names}), or leave 'model' out to use the default one.") from None
    return model_id(vision, model)


def parse(raw: dict, options) -> tuple:
    """(VisionChatRequest, stream, include_usage) from a chat body with image parts; UserError when invalid."""
    from demos.vision.engine import check_sampling
    from demos.vision.types import VisionChatRequest

    if raw.get("n") not in (None, 1):
        raise UserError("Only n=1 is supported.")
    count = _count_images(raw)
    if count > int(options.max_images):  # said before any picture is decoded or downloaded
        raise UserError(f"Send at most {int(options.max_images)} images in one request; this one has {count}.")
    images: list[bytes] = []
    messages = [_message(i, m, images, options) for i, m in enumerate(raw["messages"])]
    most = raw.get("max_completion_tokens", raw.get("max_tokens"))
    sampling = check_sampling(most, raw.get("temperature"), raw.get("top_p"), raw.get("seed"),
                              most=int(options.max_new_tokens))
    key = hashlib.sha256(json.dumps([str(raw.get("user", "")), messages[0]["text"]]).encode())
    for i in messages[0]["images"]:
        key.update(hashlib.sha256(images[i]).digest())
    stream = raw.get("stream") is True
    usage = stream and isinstance(raw.get("stream_options"), dict) and raw["stream_options"].get("include_usage") is True
    return VisionChatRequest(tuple(messages), tuple(images), sampling, key.hexdigest()), stream, usage


def _message(i: int, m, images: list, options) -> dict:
    """One message as {"role", "text", "images"}: text parts joined, image parts decoded into `images`."""
    if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant"):
        raise UserError(f"messages[{i}] needs a role of system, user or assistant.")
    content = m.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    if not isinstance(parts, list):
        raise UserError(f"messages[{i}].content must be a string or a list of parts.")
    texts, mine = [], []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in IMAGE_TYPES:
            images.append(image_bytes(part, float(options.max_image_mb), bool(options.fetch_urls)))
            mine.append(len(images) - 1)
        else:
            raise UserError(f"messages[{i}] has a content part this hub does not read with images ({str(kind)[:30]}); "
                            "send text and image_url parts.")
    role = "system" if m["role"] == "developer" else m["role"]
    return {"role": role, "text": "\n".join(texts), "images": tuple(mine)}


def image_bytes(part: dict, max_mb: float, fetch: bool = False) -> bytes:
    """The file bytes of one image part: a base64 data URL (size-checked before it is decoded), or with `fetch` an
    http(s) URL downloaded by fetch.py (at most `max_mb`)."""
    ref = part.get("image_url", part.get("url"))
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url.strip():
        raise UserError('An image_url part needs {"image_url": {"url": "data:image/png;base64,..."}}.')
    url = url.strip()
    scheme = url[:8].lower()
    if scheme.startswith(("http://", "https://")):
        if not fetch:
            raise UserError(NO_FETCH)
        from demos.vision.fetch import fetch_image

        return fetch_image(url, int(max_mb * 2**20))
    if not scheme.startswith("data:"):
        raise UserError("An image_url must be a data URL (data:image/png;base64,...); local paths and file:// URLs "
                        "are never read.")
    head, comma, data = url.partition(",")
    if not comma or not head.lower().endswith(";base64"):
        raise UserError("The image data URL must be base64: data:image/png;base64,<the file's bytes in base64>.")
    if len(data) * 3 // 4 > max_mb * 2**20:
        raise UserError(f"An image is larger than {max_mb:g} MB; send a smaller file.")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UserError("The image data URL is not valid base64; send the file's bytes base64-encoded.") from None


# ---- answers ------------------------------------------------------------------------------------------------------


async def _stream(vision, model, req, include_usage: bool):
    """Server-sent chat.completion.chunk events; the model loads and answers its first token before the response
    starts, so a load failure still gets its status code. Closing the stream stops generation."""
    from fastapi.responses import StreamingResponse

    from hub.api import started_stream
    from hub.weights import public_id

    work, first, release = await started_stream(vision, "chat", req, model, "chat_completions")
    events = _events(work, first, public_id(vision.choice(model)), include_usage, release)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(work, first, name: str, include_usage: bool, release):
    from demos.vision.types import Delta

    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def sse(delta=None, reason=None, usage=None) -> str:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
               "choices": [] if usage else [{"index": 0, "delta": delta or {}, "finish_reason": reason}]}
        if usage:
            obj["usage"] = usage
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    def lines(item):
        if isinstance(item, Delta):
            return [sse({"content": item.text})] if item.text else []
        return [sse(reason=_reason(item))] + ([sse(usage=_usage(item))] if include_usage else [])

    try:
        yield sse({"role": "assistant", "content": ""})
        try:
            for line in lines(first) if first is not None else []:
                yield line
            async for item in work:
                for line in lines(item):
                    yield line
        except UserError as e:
            yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'invalid_request_error'}})}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        work.close()
        release()


def _reason(done) -> str:
    return "length" if done.finish_reason == "length" else "stop"


def _usage(done) -> dict:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}
