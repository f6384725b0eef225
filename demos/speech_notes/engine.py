"""Speech to notes: no model of its own. Its one work method cuts a transcript into parts at segment ends, each small
enough for the chat model's context; Whisper and the chat model run in their own demos through hub.chain."""

from __future__ import annotations

from demos.speech_notes.types import SplitRequest, SplitResult
from hub import validate
from hub.contract import EngineBase
from hub.work import Work

MIN_PART, MAX_PART = 200, 100_000  # characters


class Splitter(EngineBase):
    weights_format = "no weights"
    nbytes = 0


def load(weights, device: str, dtype: str) -> Splitter:
    return Splitter()


WORK = Work()


def check_part_chars(value) -> int:
    return validate.number(value, "characters per part", MIN_PART, MAX_PART, integer=True)


def split(segments, part_chars: int) -> list[tuple[float, float, str]]:
    """Consecutive segments joined into parts of at most `part_chars` characters (a longer segment is a part of its
    own, cut at spaces)."""
    parts, start, end, text = [], None, 0.0, ""
    for s, e, t in segments:
        t = " ".join(str(t).split())
        if not t:
            continue
        if text and len(text) + 1 + len(t) > part_chars:
            parts.append((start, end, text))
            start, text = None, ""
        while len(t) > part_chars:  # one very long segment: cut at the last space that fits
            cut = t.rfind(" ", 0, part_chars)
            cut = cut if cut > 0 else part_chars
            parts.append((s, e, t[:cut]))
            t = t[cut:].strip()
        start = s if start is None else start
        end, text = e, f"{text} {t}".strip()
    if text:
        parts.append((start, end, text))
    return parts


@WORK.method(SplitRequest, name="split")
def split_request(lease, req: SplitRequest, job) -> SplitResult:
    size = check_part_chars(req.part_chars)
    parts = split(req.segments, size)
    return SplitResult(tuple(parts), {"model": "none (splitting)", "device": "cpu", "part_chars": size,
                                      "parts": len(parts)})
