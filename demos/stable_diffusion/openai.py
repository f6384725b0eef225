"""OpenAI-compatible image routes on the hub's server: `POST /v1/images/generations` (text to image),
`POST /v1/images/edits` (inpainting: image + mask, multipart as the OpenAI SDK sends it),
`GET /v1/files/stable_diffusion/<token>.png` (the images of `response_format=url`) and `GET /v1/images/loras` (the
LoRAs the `loras` extension may name, as /v1/models lists models).

Every image is the PNG the tab makes (formats.WritePNG, with its "parameters" and "demohub" text chunks), so the
tab's *Read parameters from a PNG* reads it back. Bodies are pydantic models (fields, defaults, checks and docs in one
place); numbers go through hub.validate (refused out of range, never clamped). Work reaches the model only through
`hub.api.call` (the engine's txt2img and inpaint methods, asked for their Result alone: allow-list, /v1 queue,
lease, out-of-memory recovery), and a client that goes away stops the denoising loop after its current step.
Errors are OpenAI-shaped (hub/api.py): 400 with a sentence for anything the client can fix, 404
`model_not_found`, 413 for an upload over the hub's cap (the whole edits body is capped too, before it is read:
hub.forms), 401 without hub login.
"""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from demos.stable_diffusion import lora, masks, openai_extras
from demos.stable_diffusion.spec import MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SCHEDULERS
from demos.stable_diffusion.spec import SPEC
from demos.stable_diffusion.types import GenerateRequest, InpaintRequest, Settings
from hub import api, validate
from hub.api import ApiError, add_route, json_body, model_id, sentence
from hub.errors import UserError
from hub.forms import capped_form
from hub.media.image import open_image
from hub.outputs import request_folder

OPENAI_MODELS = ("dall-e-2", "dall-e-3")  # OpenAI's names (tools send them by default): the hub's default model
MAX_PROMPT_CHARS = 32_000  # OpenAI's own longest prompt; SD reads 8 chunks of 75 tokens, the rest gets a note
KEEP_S = 3600.0  # url images live an hour, as OpenAI's urls do (hub.outputs.request_folder removes them after)
FILES_PATH = f"/v1/files/{SPEC.name}"
SIZES = (f"WIDTHxHEIGHT with each side a multiple of 8 from {MIN_SIDE} to {MAX_SIDE} (of 16 for Z-Image-Turbo; for "
         "example 512x512 or 768x512), or leave it out for the model's own size")

# ---- request bodies -----------------------------------------------------------------------------------------------


class ImageRequest(BaseModel):
    """What both routes read: OpenAI's fields (others, such as quality or style, are ignored) and the tab's
    settings as extensions. Settings left out take the model's defaults, as the tab does."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(description=f"What to draw; at most {MAX_PROMPT_CHARS} characters, with AUTOMATIC1111's "
                                    "(word:1.2) weighting and BREAK (SD reads 600 tokens in 75-token chunks; the "
                                    "answer's notes say what was ignored).")
    model: str | None = Field(None, description="A Stable Diffusion model this hub serves (GET /v1/models); '', "
                                                "'default', 'dall-e-2' or 'dall-e-3' mean the hub's default model.")
    n: int = Field(1, description=f"Number of images, 1 to {MAX_IMAGES}; image i uses seed + i.")
    size: str | None = Field(None, description=f"{SIZES}. Edits fit the image into this box, keeping its shape.")
    response_format: str = Field("url", description="'url' (served by the hub for an hour, same login as /v1) or "
                                                    "'b64_json' (the PNG's bytes, base64).")
    seed: int = Field(-1, description=f"Extension: 0 to {MAX_SEED}; -1 or null picks one at random (the answer's "
                                      "demohub.seeds says which).")
    negative_prompt: str = Field("", description="Extension: what to keep out of the image.")
    steps: int | None = Field(None, description=f"Extension: denoising steps, 1 to {MAX_STEPS} (default: the "
                                                "model's).")
    guidance_scale: float | None = Field(None, description=f"Extension: 0 to {MAX_GUIDANCE:g}; 0-1 turns guidance "
                                                           "off (default: the model's).")
    scheduler: str | None = Field(None, description=f"Extension: one of {', '.join(SCHEDULERS)} (default: the "
                                                    "model's).")
    decoder: str | None = Field(None, description="Extension: 'full' (the model's VAE) or 'tiny' (TAESD, fast on a "
                                                  "CPU); default: tiny on a CPU, full on a GPU.")
    loras: str | list | None = Field(None, description="Extension: LoRAs with weights, as a list of {\"name\": ..., "
                                                      "\"weight\": 0.8} or the text 'name:0.8, other:0.5' (names "
                                                      "from GET /v1/images/loras); <lora:name:0.8> in the prompt "
                                                      "works too.")
    controlnet: Any = Field(None, description="Extension: ControlNets, a list of {\"model\": name (GET "
                                              "/v1/images/controlnets), \"image\": a base64 data URL, and optionally "
                                              "\"preprocessor\", \"strength\" (0-2), \"start\"/\"end\" (0-1), "
                                              "\"low\"/\"high\" (canny, 0-255)}; at most 3.")
    hires: Any = Field(None, description="Extension (generations): the hires fix, {\"scale\": 1-4, \"upscaler\": "
                                         "\"latent\", \"lanczos\" or an upscaler model, \"denoise\": 0-1, "
                                         "\"steps\"}.")
    output_format: str | None = Field(None, description="Only 'png' (the images carry their parameters).")
    stream: bool | None = Field(None, description="Only false: partial images are not streamed.")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if not value.strip():
            raise UserError("The prompt is empty; describe the image to make in 'prompt'.")
        return _text(value, "prompt")

    @field_validator("negative_prompt", mode="before")
    @classmethod
    def _negative(cls, value):
        return "" if value is None else value

    @field_validator("negative_prompt")
    @classmethod
    def _negative_length(cls, value: str) -> str:
        return _text(value, "negative_prompt")

    @field_validator("n", mode="before")
    @classmethod
    def _n(cls, value):
        return validate.number(value, "'n' (the number of images)", 1, MAX_IMAGES, integer=True, default=1)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value):
        if value is None or value in ("", "auto"):
            return None
        match = re.fullmatch(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*", value) if isinstance(value, str) else None
        if match is None or not all(MIN_SIDE <= int(s) <= MAX_SIDE and int(s) % 8 == 0 for s in match.groups()):
            raise UserError(f"Size {str(value)[:40]!r} is not allowed; use {SIZES}.")
        return f"{int(match[1])}x{int(match[2])}"

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value):
        return validate.choice(value, "'response_format'", ("url", "b64_json"), default="url")

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value):
        return validate.number(value, "'seed'", -1, MAX_SEED, integer=True, default=-1)

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value):
        return None if value is None else validate.number(value, "'steps'", 1, MAX_STEPS, integer=True)

    @field_validator("guidance_scale", mode="before")
    @classmethod
    def _guidance(cls, value):
        return None if value is None else validate.number(value, "'guidance_scale'", 0, MAX_GUIDANCE)

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler(cls, value):
        return None if value is None else validate.choice(value, "'scheduler'", SCHEDULERS)

    @field_validator("decoder", mode="before")
    @classmethod
    def _decoder(cls, value):
        return None if value is None else validate.choice(value, "'decoder'", ("full", "tiny"))

    @field_validator("loras", mode="before")
    @classmethod
    def _loras(cls, value):
        """Shape and weights here (a sentence each); the names against the listing in the engine."""
        return [list(pair) for pair in lora.wanted(value, "")] or None

    @field_validator("controlnet", mode="before")
    @classmethod
    def _controlnet(cls, value):
        return openai_extras.units(value)

    @field_validator("hires", mode="before")
    @classmethod
    def _hires(cls, value):
        return openai_extras.hires(value)

    @field_validator("output_format", mode="before")
    @classmethod
    def _png(cls, value):
        if value not in (None, "", "png"):
            raise UserError(f"This hub makes PNG images only (they carry their parameters); leave 'output_format' "
                            f"out or use 'png', not {str(value)[:40]!r}.")
        return value or None

    @field_validator("stream", mode="before")
    @classmethod
    def _no_stream(cls, value):
        if value not in (None, False, "false", "False", 0, "0"):
            raise UserError("Streaming partial images is not supported; leave 'stream' out.")
        return None

    def box(self) -> tuple[int | None, int | None]:
        """(width, height) asked for, or (None, None) for the model's own size."""
        if self.size is None:
            return None, None
        w, h = self.size.split("x")
        return int(w), int(h)

    def settings(self) -> Settings:
        """The engine's settings: its Result alone (no Step items), the tab's defaults for what is left out."""
        width, height = self.box()
        return Settings(seed=self.seed, steps=self.steps, guidance=self.guidance_scale, scheduler=self.scheduler,
                        width=width, height=height, num_images=self.n, decoder=self.decoder, step_items=False,
                        loras=tuple(tuple(pair) for pair in self.loras or ()), controlnet=self.controlnet or (),
                        hires=self.hires)


def _text(value: str, name: str) -> str:
    if len(value) > MAX_PROMPT_CHARS:
        raise UserError(f"'{name}' is {len(value)} characters long; the most this hub takes is {MAX_PROMPT_CHARS}.")
    return value


_NUMBERS = ("n", "seed", "steps", "guidance_scale")


def _form_fields(form) -> dict:
    """A multipart form's text fields; numbers arrive as text there, so numeric text becomes a number."""
    fields: dict = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in ("image", "image[]", "mask"):
            fields[key] = _number(value) if key in _NUMBERS else value
    return fields


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text  # left as text: hub.validate answers that it must be a number


def _parse(schema, raw: dict):
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        raise ApiError(400, sentence(e), param=str(loc[0]) if loc else None) from None


def _model(ctx, value):
    """The `model` field: OpenAI's names mean the default, as '' and 'default' do; unknown -> 404."""
    if isinstance(value, str) and value.strip().lower() in OPENAI_MODELS:
        value = None
    return model_id(ctx, value)


# ---- uploads (edits) ----------------------------------------------------------------------------------------------


async def _upload(form, names: tuple[str, ...], what: str, cap_mb: int, required: bool) -> bytes | None:
    """The bytes of the one file sent under one of `names`; 413 over the hub's upload cap."""
    items = [v for name in names for v in form.getlist(name)]
    if not items:
        if required:
            raise ApiError(400, f"'{names[0]}' is required: upload {what} as a file (a PNG; its transparent part is "
                                "repainted unless a mask is sent).", param=names[0])
        return None
    if len(items) > 1:
        raise ApiError(400, f"Send one file as '{names[0]}', not {len(items)}: this model edits one image per "
                            "request.", param=names[0])
    item = items[0]
    if isinstance(item, str):
        raise ApiError(400, f"'{names[0]}' must be a file upload (multipart/form-data), not text.", param=names[0])
    data = await item.read(cap_mb * 2**20 + 1)  # at most one byte over the cap is read
    if len(data) > cap_mb * 2**20:
        raise ApiError(413, f"{what[:1].upper()}{what[1:]} is larger than {cap_mb} MB, the most this hub accepts "
                            "for an upload (DEMOHUB_MAX_UPLOAD_MB).", param=names[0])
    if not data:
        raise ApiError(400, f"{what[:1].upper()}{what[1:]} is empty (0 bytes); upload a PNG.", param=names[0])
    return data


def image_and_mask(image_bytes: bytes, mask_bytes: bytes | None):
    """(RGB image, "L" mask with white = repaint) from OpenAI's edit inputs.

    OpenAI marks the part to repaint as transparent: in the mask, or in the image itself when no mask is sent. The
    engine's inpaint repaints white, so transparent (alpha below 128) becomes white. Both files go through the hub
    decoder (sentences for broken files, the pixel cap); the alpha is read as the engine reads a mask's.
    """
    image = open_image(image_bytes, "the image")
    if mask_bytes is None:
        alpha = masks.alpha_channel(image_bytes)
        if alpha is None:
            raise UserError("The image has no transparency, and no mask was sent: send a 'mask' PNG whose "
                            "transparent part is repainted, or make that part of the image transparent.")
    else:
        open_image(mask_bytes, "the mask")
        alpha = masks.alpha_channel(mask_bytes)
        if alpha is None:
            raise UserError("The mask has no transparency: as in OpenAI's API, the transparent part of the mask "
                            "(alpha 0) is repainted; send a PNG with an alpha channel.")
        if alpha.size != image.size:
            raise UserError(f"The mask is {alpha.width}x{alpha.height} but the image is {image.width}x"
                            f"{image.height}; send a mask of the same size.")
    mask = alpha.point(lambda v: 255 if v < 128 else 0)
    if mask.getbbox() is None:
        raise UserError(f"The {'mask' if mask_bytes is not None else 'image'} has no transparent pixels, so there is "
                        "nothing to repaint: make the part to repaint transparent (alpha 0).")
    return image, mask


# ---- the work -----------------------------------------------------------------------------------------------------


class _Files:
    """The images of `response_format=url`: unguessable token -> PNG in a request folder, for KEEP_S seconds."""

    def __init__(self):
        self.paths: dict[str, tuple[Path, float]] = {}  # touched on the event loop only

    def add(self, path: Path) -> str:
        self.prune()
        token = secrets.token_urlsafe(24)
        self.paths[token] = (path, time.time())
        return token

    def get(self, token: str) -> Path | None:
        self.prune()
        entry = self.paths.get(token)
        return entry[0] if entry is not None and entry[0].is_file() else None

    def prune(self) -> None:
        old = time.time() - KEEP_S
        for token in [t for t, (_, made) in self.paths.items() if made < old]:
            del self.paths[token]


def _write(res, response_format: str) -> tuple[Path, list]:
    """The tab's PNGs (WritePNG, parameters included) in a fresh request folder; (folder, paths or base64 texts)."""
    folder = request_folder(SPEC.name, "v1-images", keep_s=KEEP_S)
    paths = res.save(folder)
    if response_format == "url":
        return folder, paths
    texts = [base64.b64encode(p.read_bytes()).decode("ascii") for p in paths]
    shutil.rmtree(folder, ignore_errors=True)  # b64_json: nothing to serve later
    return folder, texts


async def _answer(request, files: _Files, res, response_format: str) -> dict:
    import anyio

    _, items = await anyio.to_thread.run_sync(_write, res, response_format)
    if response_format == "url":
        base = str(request.base_url)
        data = [{"url": f"{base}{FILES_PATH.lstrip('/')}/{files.add(p)}.png", "revised_prompt": None}
                for p in items]
    else:
        data = [{"b64_json": text, "revised_prompt": None} for text in items]
    return {"created": int(time.time()), "data": data, "demohub": res.record}


# ---- routes -------------------------------------------------------------------------------------------------------


def routes(ctx):
    """`POST /v1/images/generations`, `POST /v1/images/edits`, `GET /v1/files/stable_diffusion/<token>.png` and
    `GET /v1/images/loras`."""
    import anyio
    from fastapi import APIRouter
    from fastapi.responses import FileResponse

    router = APIRouter()
    files = _Files()

    @add_route(router, ctx, "/v1/images/generations", "POST", api="images_generations")
    async def generations(request):
        req = await json_body(request, ImageRequest)
        model = _model(ctx, req.model)
        work = GenerateRequest(req.prompt, req.negative_prompt, req.settings())
        res = await api.call(ctx, "txt2img", work, model, http=request)
        return await _answer(request, files, res, req.response_format)

    @add_route(router, ctx, "/v1/images/edits", "POST", api="images_edits")
    async def edits(request):
        cap = ctx.settings.max_upload_mb
        # the body is refused from its length, or as soon as it streams past two files (image, mask) at the cap
        form = await capped_form(request, cap * 2**20, files=2, param="image")
        req = _parse(ImageRequest, _form_fields(form))
        model = _model(ctx, req.model)
        image_bytes = await _upload(form, ("image", "image[]"), "the image", cap, required=True)
        mask_bytes = await _upload(form, ("mask",), "the mask", cap, required=False)
        image, mask = await anyio.to_thread.run_sync(image_and_mask, image_bytes, mask_bytes)  # before any load
        work = InpaintRequest(image, mask, req.prompt, req.negative_prompt, 1.0, req.settings())
        res = await api.call(ctx, "inpaint", work, model, http=request)
        return await _answer(request, files, res, req.response_format)

    @add_route(router, ctx, "/v1/images/loras", "GET", api="loras")
    async def loras(request):
        """The LoRAs `loras` may name, shaped as GET /v1/models is: read from the folder and the cache, with no
        model loaded (a listing must not wait for 2.6 GB of weights)."""
        from demos.stable_diffusion import lora_ui

        return {"object": "list", "data": await anyio.to_thread.run_sync(lora_ui.rows, ctx)}

    @add_route(router, ctx, "/v1/images/controlnets", "GET", api="controlnets")
    async def controlnets(request):
        """The ControlNets `controlnet` may name (the folder's and the fetched pins), as GET /v1/models lists."""
        from demos.stable_diffusion import ui_control

        return {"object": "list", "data": await anyio.to_thread.run_sync(ui_control.rows, ctx)}

    @add_route(router, ctx, FILES_PATH + "/{name}", "GET", api="files")
    async def image_file(request):
        token = request.path_params["name"].removesuffix(".png")
        path = files.get(token)
        if path is None:
            raise ApiError(404, "No such image: images are kept for an hour after they are made (and not across a "
                                "restart of the hub); generate it again.", code="file_not_found")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    return router
