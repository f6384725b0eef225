"""Transcript writers, one class per format (openai-whisper's `WriteTXT`/`WriteSRT`/... style), behind `get_writer`.

A writer takes a transcript (anything with `.segments` of `.start`/`.end`/`.text`; JSON: a dataclass) and gives
the file's text (`format`) or writes `<stem>.<extension>` into a folder (`__call__`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path


def stamp(t: float, sep: str) -> str:
    """Seconds -> HH:MM:SS<sep>mmm (SRT uses ',', WebVTT '.'); negative times become 0."""
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class ResultWriter:
    extension: str = ""

    def format(self, transcript) -> str:
        raise NotImplementedError

    def __call__(self, transcript, folder: str | Path, stem: str = "transcript") -> str:
        path = Path(folder) / f"{stem}.{self.extension}"
        path.write_text(self.format(transcript), encoding="utf-8")
        return str(path)


class WriteTXT(ResultWriter):
    extension = "txt"

    def format(self, transcript) -> str:
        return "\n".join(s.text for s in transcript.segments) + ("\n" if transcript.segments else "")


class WriteSRT(ResultWriter):
    extension = "srt"

    def format(self, transcript) -> str:
        return "\n".join(f"{i}\n{stamp(s.start, ',')} --> {stamp(s.end, ',')}\n{s.text}\n"
                         for i, s in enumerate(transcript.segments, 1))


class WriteVTT(ResultWriter):
    extension = "vtt"

    def format(self, transcript) -> str:
        return "WEBVTT\n\n" + "\n".join(f"{stamp(s.start, '.')} --> {stamp(s.end, '.')}\n{s.text}\n"
                                        for s in transcript.segments)


class WriteJSON(ResultWriter):
    extension = "json"

    def format(self, transcript) -> str:
        d = asdict(transcript)
        d.pop("done", None), d.pop("progress", None)  # streaming state, not part of the result
        return json.dumps(d, ensure_ascii=False, indent=1)


WRITERS = {w.extension: w for w in (WriteTXT, WriteSRT, WriteVTT, WriteJSON)}


def get_writer(fmt: str) -> ResultWriter:
    """The writer for "txt", "srt", "vtt" or "json"."""
    return WRITERS[fmt]()


def write_files(transcript, folder: str | Path, stem: str = "transcript") -> list[str]:
    """Write .txt, .srt, .vtt and .json next to each other; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", stem)[:80] or "transcript"
    return [get_writer(fmt)(transcript, folder, stem) for fmt in ("txt", "srt", "vtt", "json")]
