"""The requests and results of Whisper's work methods (engine.WORK): plain data that crosses to a replica.

The front end (the tab, the /v1 routes) decodes the upload once (`hub.media.audio.load_audio`) and sends the 16 kHz
samples; the options are checked there too (`engine.check_options`), so a bad request is refused before any model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class Options:
    """Decoding settings. The defaults are chosen against hallucinated repeats on silence and long files."""

    task: str = "transcribe"
    language: str | None = None
    word_timestamps: bool = False
    vad: bool = True
    initial_prompt: str = ""
    beam_size: int = 5
    temperatures: tuple[float, ...] = TEMPERATURES
    batch_size: int | None = None  # openai-whisper windows per batch (None: by device)
    force_tokens: int | None = None  # benchmarks with random weights: decode exactly this many tokens per window


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    """What `transcribe` returns: the text, timed segments, the language and how sure the model was.

    Files: `formats.write_files(t, folder)` or `formats.get_writer("srt").format(t)`.
    """

    text: str
    segments: list[Segment]
    language: str
    language_probability: float
    duration: float
    task: str = "transcribe"
    note: str = ""
    done: bool = True  # False for the partial results `transcribe_iter` yields while it works
    progress: float = 1.0


@dataclass(frozen=True)
class TranscribeRequest:
    """Transcribe (or translate) `samples` (16 kHz mono float32) with checked `options`; audio longer than
    `max_seconds` is refused (None: the engine's `max_minutes`)."""

    samples: np.ndarray
    options: Options
    max_seconds: float | None = None


@dataclass(frozen=True)
class TranscribeResult:
    """The finished transcript, how long it took, the reproducibility record, and the model's public name."""

    transcript: Transcript
    seconds: float
    record: dict
    model: str
