"""The vision demo's work as data: the requests of `describe` and `chat`, and the items both stream.

Plain data only: an image travels as an upload's path (`str`, the tab) or as the file's bytes (`bytes`, a /v1 data
URL, never written to disk); the Ray backend carries either across nodes. Imports neither torch nor gradio.
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("caption", "sd_prompt", "ocr", "ask")


@dataclass(frozen=True)
class Sampling:
    """How an answer is written (checked by `engine.check_sampling`). temperature 0 = greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.9
    seed: int | None = None


@dataclass(frozen=True)
class DescribeRequest:
    """One image question: `images` (paths or bytes; most requests have one), the `mode` ("caption", "sd_prompt":
    a caption written as a Stable Diffusion prompt, "ocr": read the text, "ask": answer `question`), and the
    `session` whose image features are kept for the next question about the same picture."""

    images: tuple
    mode: str = "caption"
    question: str = ""
    sampling: Sampling = Sampling()
    session: str = ""


@dataclass(frozen=True)
class VisionChatRequest:
    """A conversation with pictures (the /v1 chat and the chat tab): `messages` are {"role", "text", "images"}
    dicts whose `images` index into `images` (paths or bytes), shown before the message's text. `session`: the
    conversation's key (its image features are kept between its turns)."""

    messages: tuple
    images: tuple = ()
    sampling: Sampling = Sampling()
    session: str = ""


@dataclass(frozen=True)
class Delta:
    """Answer text added since the last item."""

    text: str


@dataclass(frozen=True)
class Done:
    """The last item: the whole answer, token counts, why it ended (stop | length | cancelled), the time to the first
    token (image encoding included), how many images came from the conversation's cache, and the record."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    first_token_s: float | None
    images_cached: int
    record: dict
