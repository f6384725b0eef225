"""OpenAI-compatible `POST /v1/embeddings` on the hub's server: CLIP text embeddings, and images as an extension.

`input` is a string or a list of strings; each is embedded by the CLIP text encoder the classify and search tabs
use (`engine.label_embeddings`, the same cache), L2-normalised in float32. Extension: a string that is an image data
URL (`data:image/png;base64,...`, or image/jpeg, image/webp) is embedded by the same model's image encoder
(`engine.encode_images_cached`, search's), so text and image vectors share one space: their dot product is CLIP's
cosine similarity. Images are decoded by the hub's one decoder (hub.media.image: pixel cap, EXIF rotation).

Texts longer than CLIP's text context (77 tokens with the start and end tokens) are cut to it, as the tabs do, and
the answer's `demohub.truncated` lists them (with a note); `"truncate": false` refuses them instead. `usage` counts
the tokens the model read (start and end tokens included, at most the context per text); images count 0 tokens.
Limits: at most `max_inputs` inputs (DEMOHUB_CLIP_ZERO_SHOT_MAX_INPUTS), of which at most `max_images` images.
"""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub import validate
from hub.api import ApiError, add_route, call, json_body, model_id
from hub.errors import UserError

from demos.clip_zero_shot import MAX_IMAGES, MAX_INPUTS
from demos.clip_zero_shot.embeddings import embed, width  # noqa: F401 (the work of this route, embeddings.py)
from demos.clip_zero_shot.types import EmbedRequest, Embeddings, ImageInput

# OpenAI's own embedding model names: clients configured for OpenAI send these; they mean this hub's default model.
DEFAULT_ALIASES = ("text-embedding-ada-002", "text-embedding-3-small")
IMAGE_TYPES = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WebP"}
DATA_URL = re.compile(r"data:image/([A-Za-z0-9.+-]+)((?:;[^,;]*)*),", re.IGNORECASE)


# ---- the request body ---------------------------------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    """The body of `POST /v1/embeddings`: OpenAI's fields (`user` and others are ignored) plus `truncate`."""

    model_config = ConfigDict(extra="ignore")

    input: list[str] = Field(description="A string or a list of strings to embed. A string that is an image data "
                                         "URL (data:image/png;base64,..., image/jpeg or image/webp) is embedded as "
                                         "an image in the same space (a demohub extension).")
    model: str | None = Field(None, description="A CLIP model this hub serves (GET /v1/models); '', 'default', "
                                                "'text-embedding-ada-002' or 'text-embedding-3-small' mean the "
                                                "hub's default model.")
    encoding_format: str = Field("float", description="'float' (lists of numbers) or 'base64' (little-endian "
                                                      "float32 bytes, as OpenAI's).")
    dimensions: int | None = Field(None, description="Must be the model's embedding width when given (CLIP "
                                                     "embeddings cannot be shortened).")
    truncate: bool = Field(True, description="Extension: true cuts texts longer than the model's 77-token context "
                                             "(listed in demohub.truncated); false refuses them.")

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value):
        return check_input(value)

    @field_validator("encoding_format", mode="before")
    @classmethod
    def _format(cls, value):
        return validate.choice(value, "'encoding_format'", ("float", "base64"), default="float")

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimensions(cls, value):
        return None if value is None else validate.number(value, "'dimensions'", 1, None, integer=True)

    @field_validator("truncate", mode="before")
    @classmethod
    def _truncate(cls, value):
        return validate.flag(value, "'truncate'", default=True)


def check_input(value) -> list[str]:
    """`input` as a non-empty list of non-blank strings; UserError with a sentence otherwise."""
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, (list, tuple)):
        raise UserError("'input' must be a string or a list of strings.")
    if not value:
        raise UserError("'input' is an empty list; send at least one string to embed.")
    if all(isinstance(v, int) for v in value) or any(isinstance(v, (list, tuple)) for v in value):
        raise UserError("'input' holds token ids; this hub embeds strings with CLIP's own tokenizer, so send the "
                        "text itself (LangChain: set check_embedding_ctx_length=False).")
    for i, v in enumerate(value):
        what = "'input'" if len(value) == 1 else f"input[{i}]"
        if not isinstance(v, str):
            raise UserError(f"{what} is not a string; send every input as text (or an image data URL).")
        if not v.strip():
            raise UserError(f"{what} is {'an empty string' if not v else 'blank'}; send some text to embed.")
    return list(value)


# ---- inputs: texts and image data URLs ----------------------------------------------------------------------------


def parse_inputs(texts: list[str], max_inputs: int = MAX_INPUTS, max_images: int = MAX_IMAGES) -> list:
    """Each input as a text (str) or an ImageInput; ApiError 400 for too many inputs or a bad image data URL."""
    if len(texts) > max_inputs:
        raise ApiError(400, f"{len(texts)} inputs is more than one request may hold ({max_inputs}); send them in "
                            "smaller batches (operators raise the cap with DEMOHUB_CLIP_ZERO_SHOT_MAX_INPUTS).",
                       param="input")
    items = [_image(t, i) if t[:5].lower() == "data:" and DATA_URL.match(t) else t for i, t in enumerate(texts)]
    n_images = sum(isinstance(it, ImageInput) for it in items)
    if n_images > max_images:
        raise ApiError(400, f"{n_images} images is more than one request may hold ({max_images}); send fewer "
                            "(operators raise the cap with DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES).", param="input")
    return items


def _image(url: str, i: int) -> ImageInput:
    m = DATA_URL.match(url)
    kind, params = m.group(1).lower(), m.group(2).lower()
    what = f"input[{i}]"
    if kind not in IMAGE_TYPES:
        raise ApiError(400, f"{what} is an image/{kind[:20]} data URL; send PNG, JPEG or WebP images "
                            "(data:image/png;base64,...).", param="input")
    if "base64" not in params.split(";"):
        raise ApiError(400, f"{what} is a data URL without ';base64'; send the image base64-encoded "
                            "(data:image/png;base64,...).", param="input")
    payload = "".join(url[m.end():].split())
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{what} is an image data URL whose data is not valid base64; encode the file with "
                            "standard base64.", param="input") from None
    if not data:
        raise ApiError(400, f"{what} is an image data URL with no data; put the base64 image after the comma.",
                       param="input")
    return ImageInput(data, f"{what} (an image data URL)")


# ---- the answer ---------------------------------------------------------------------------------------------------


def answer(result: Embeddings, model: str, encoding_format: str, warnings: list[str] = ()) -> dict:
    """OpenAI's list of embedding objects, plus `demohub` (notes, truncated and image input indices)."""
    import numpy as np

    if encoding_format == "base64":
        rows = [base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode("ascii")
                for v in result.vectors]
    else:
        rows = result.vectors.tolist()
    return {"object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)],
            "model": model,
            "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
            "demohub": {"notes": [*warnings, *result.notes], "truncated": result.truncated,
                        "images": result.images}}


def routes(ctx):
    """`POST /v1/embeddings` on the hub's server (hub login, OpenAI-shaped errors, metrics: hub/api.py)."""
    import anyio
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse

    router = APIRouter()
    options = ctx.options.as_dict()

    @add_route(router, ctx, "/v1/embeddings", "POST", api="embeddings")
    async def embeddings(request):
        req = await json_body(request, EmbeddingRequest)
        model = model_id(ctx, None if req.model in DEFAULT_ALIASES else req.model)
        items = await anyio.to_thread.run_sync(  # data URLs are decoded off the event loop
            parse_inputs, req.input, options.get("max_inputs", MAX_INPUTS), options.get("max_images", MAX_IMAGES))
        result = await call(ctx, "embed", EmbedRequest(items, req.dimensions, req.truncate), model, http=request)
        # JSONResponse: json.dumps directly (FastAPI's encoder would walk every one of the floats)
        return JSONResponse(answer(result, result.model, req.encoding_format, result.warnings))

    return router
