"""Text -> sentences to speak one at a time, in one linear pass (no regular expression sees the text).

A sentence ends at `.`, `!`, `?`, `…` (or their CJK forms) followed by a space or the end, or at a line break
after a blank line; a piece with no end in `MAX_PIECE` characters is cut at its last space (or comma) before that,
so one endless sentence cannot make one endless synthesis. "Dr. Smith" becomes two pieces: a short pause, no harm.
"""

from __future__ import annotations

ENDS = frozenset(".!?…。！？")
CLOSERS = frozenset("\"')]}»”’")
MAX_PIECE = 400


def split_sentences(text: str, max_piece: int = MAX_PIECE) -> list[str]:
    """The sentences of `text`, stripped, empty ones dropped, each at most `max_piece` characters."""
    out: list[str] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        end = None
        if ch in ENDS:
            j = i + 1
            while j < n and (text[j] in ENDS or text[j] in CLOSERS):
                j += 1
            if j >= n or text[j].isspace():
                end = j
        elif ch == "\n" and i + 1 < n and text[i + 1] in "\r\n":
            end = i + 1
        if end is None and i - start + 1 >= max_piece:
            end = _cut(text, start, i + 1)
        if end is not None:
            _add(out, text[start:end])
            start = i = end
            continue
        i += 1
    _add(out, text[start:])
    return out


def _cut(text: str, start: int, stop: int) -> int:
    """Where to cut an over-long piece: after its last space, else its last comma, else at `stop`."""
    for marks in (" \t\n", ",;:"):
        for k in range(stop - 1, start + (stop - start) // 2, -1):
            if text[k] in marks:
                return k + 1
    return stop


def _add(out: list[str], piece: str) -> None:
    piece = " ".join(piece.split())
    if any(c.isalnum() for c in piece):
        out.append(piece)
    elif piece and out:  # stray punctuation belongs to the sentence before it
        out[-1] += piece
