"""Speech to notes' own work as data: cutting a transcript into parts for the chat model (plain data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SplitRequest:
    """Timed segments as (start, end, text) and the most characters one part may hold."""

    segments: tuple[tuple[float, float, str], ...]
    part_chars: int = 6000


@dataclass(frozen=True)
class SplitResult:
    """Parts as (start, end, text), in order; every segment is in exactly one part."""

    parts: tuple[tuple[float, float, str], ...]
    record: dict
