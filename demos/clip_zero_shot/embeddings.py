"""The work of `POST /v1/embeddings` (the engine's `embed` method, in the worker under the lease): texts through
the CLIP text encoder (`label_embeddings`, the tabs' cache) and image data URLs through the image encoder
(`encode_images_cached`, search's), L2-normalised float32 rows in the caller's order. See openai.py for the route.
Images are decoded here, in the queue: every size is checked from its header first, then each is decoded in turn,
downscaled while decoding to twice the encoder's input (`_max_side`), so a request of ten 49-megapixel PNGs holds
one full-size picture at a time, never ten.

Its errors are `InputError`s: OpenAI-shaped 400 answers (an `ApiError` naming the field) that also cross a process
as plain data (a Ray replica pickles them back to the route)."""

from __future__ import annotations

from contextlib import contextmanager

from demos.clip_zero_shot.types import Embeddings, ImageInput
from hub.api import ApiError
from hub.errors import UserError

# A text is cut to this many characters (whitespace collapsed) before tokenising: far beyond the 77-token context
# (a CLIP token spans at most 28 characters), and it keeps a huge text from filling the tokenizer's and the
# embedding caches.
MAX_TEXT_CHARS = 8192


class InputError(ApiError):
    """A 400 answer naming the request field (`param`) at fault; pickles by its sentence and field."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(status, message, param=param)

    def __reduce__(self):
        return (type(self), (self.status, self.message, self.param))


def width(engine) -> int:
    """The model's embedding width (text and image embeddings share it)."""
    dim = getattr(engine.model.visual, "output_dim", None)
    return int(dim) if dim else int(engine.encode_texts(["a"]).shape[-1])


def token_count(engine, text: str) -> int:
    """Tokens of `text` with the start and end tokens, by the model's own tokenizer, before truncation."""
    from demos.clip_zero_shot.engine import token_length

    n = token_length(engine.tokenizer, text)
    if n is not None:
        return n
    ids = engine.tokenizer([text])  # a tokenizer without encode: count what it kept (already truncated)
    return int((ids != 0).sum())


def embed(engine, items: list, dimensions: int | None = None, truncate: bool = True) -> Embeddings:
    """Embed texts (str) with the text encoder and ImageInputs with the image encoder; rows keep the input order."""
    import numpy as np

    from demos.clip_zero_shot.engine import image_key

    dim = width(engine)
    if dimensions is not None and dimensions != dim:
        raise InputError(400, f"This model's embeddings have {dim} dimensions and CLIP embeddings cannot be "
                              f"shortened; send 'dimensions': {dim} or leave it out.", param="dimensions")
    ctx_len = engine.context_length
    text_at = [i for i, it in enumerate(items) if isinstance(it, str)]
    image_at = [i for i, it in enumerate(items) if not isinstance(it, str)]
    texts = {i: " ".join(items[i].split())[:MAX_TEXT_CHARS] for i in text_at}  # the tokenizer collapses it too
    counts = {i: token_count(engine, t) for i, t in texts.items()}
    too_long = [i for i in text_at if counts[i] > ctx_len]
    if too_long and not truncate:
        i = too_long[0]
        raise InputError(400, f"input[{i}] is {counts[i]} tokens long, more than the model's {ctx_len}-token text "
                              "context (start and end tokens included); shorten it, or send 'truncate': true to "
                              "embed its beginning.", param="input")
    sizes = [_size(items[i]) for i in image_at]  # every image's size from its header before any is decoded
    side = _input_side(engine)
    pictures = [_decode(items[i], _max_side(size, side)) for i, size in zip(image_at, sizes)]  # one at a time
    out = np.zeros((len(items), dim), dtype=np.float32)
    if text_at:
        out[text_at] = engine.label_embeddings([texts[i] for i in text_at], ("{}",)).cpu().numpy()
    if image_at:
        out[image_at] = engine.encode_images_cached(pictures, [image_key(p) for p in pictures]).cpu().numpy()
    out /= np.linalg.norm(out, axis=1, keepdims=True)  # exactly unit-norm in float32, also after fp16 on CUDA
    notes = []
    if too_long:
        shown = ", ".join(f"input[{i}]" for i in too_long[:5]) + (f" and {len(too_long) - 5} more"
                                                                  if len(too_long) > 5 else "")
        notes.append(f"{shown} {'is' if len(too_long) == 1 else 'are'} longer than the model's {ctx_len}-token "
                     f"text context; only the first {ctx_len} tokens were embedded.")
    return Embeddings(out, sum(min(c, ctx_len) for c in counts.values()), too_long, image_at, notes)


def _input_side(engine) -> int:
    """The shorter side of the image encoder's input (224 for most CLIP models)."""
    size = getattr(getattr(getattr(engine, "model", None), "visual", None), "image_size", None) or 224
    return int(min(size) if isinstance(size, (tuple, list)) else size)


def _max_side(size: tuple[int, int], side: int) -> int | None:
    """The longest side to decode an image of `size` at: its shorter side stays at least twice the encoder's input
    (whose own resize then starts from a picture finer than it keeps), so a 49-megapixel upload is decoded small."""
    w, h = size
    if min(w, h) <= 2 * side:
        return None
    return -(-max(w, h) * 2 * side // min(w, h))


def _size(item: ImageInput) -> tuple[int, int]:
    from hub.media.image import image_size

    with _sentences(item):
        return image_size(item.data, item.what)


def _decode(item: ImageInput, max_side: int | None = None):
    """The hub's one decoder (pixel cap, EXIF rotation, RGB, downscaled while decoding to `max_side`); its sentence
    names the input."""
    from hub.media.image import open_image

    with _sentences(item):
        return open_image(item.data, item.what, max_side=max_side)


@contextmanager
def _sentences(item: ImageInput):
    """The decoder's UserError as an InputError (400 naming 'input') whose sentence starts with the input's name."""
    try:
        yield
    except UserError as e:
        text = str(e)
        if text.lower().startswith(item.what.lower()):  # "input[2] ...", as the other input sentences
            text = item.what + text[len(item.what):]
        raise InputError(400, text, param="input") from None
