"""The requests and items of the text-to-speech work methods (engine.WORK): plain data that crosses to a replica.

`speak` streams `SpeechChunk`s (the next bytes of one audio file in the asked format, a sentence at a time) and
ends with a `SpeechDone` (the file's last bytes and the record); `voices` answers a `VoiceList`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeakRequest:
    """Speak `text` with `voice` ("" = the model's first voice) at `speed` (1 = the voice's own pace), as one
    `format` file (formats.FORMATS). Text over `max_chars` is refused (None: the engine's `max_chars` option)."""

    text: str
    voice: str = ""
    speed: float = 1.0
    format: str = "mp3"
    max_chars: int | None = None


@dataclass(frozen=True)
class SpeechChunk:
    """The next bytes of the file (`data`), made from sentence `index` of `total` (`text`); `seconds` of speech."""

    data: bytes
    index: int
    total: int
    text: str
    seconds: float


@dataclass(frozen=True)
class SpeechDone:
    """The file's last bytes (the codec's tail and the container's trailer), the record and the model's name."""

    data: bytes
    audio_seconds: float
    seconds: float
    record: dict
    model: str


@dataclass(frozen=True)
class VoicesRequest:
    """Which voices does the model have? (No fields: the model is the call's.)"""


@dataclass(frozen=True)
class Voice:
    id: str
    language: str
    sample: str  # a line in the voice's language, for the tab's "hear a sample"


@dataclass(frozen=True)
class VoiceList:
    voices: tuple[Voice, ...]
    model: str
