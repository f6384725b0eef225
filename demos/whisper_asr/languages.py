"""Whisper's languages: the code table and what users may type for a language."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from hub.errors import UserError


@lru_cache(maxsize=1)
def languages() -> dict[str, str]:
    """Whisper's language codes -> names, read from openai-whisper's source without importing it (no torch)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("whisper")
    src = Path(spec.origin).with_name("tokenizer.py").read_text(encoding="utf-8")
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LANGUAGES":
            return ast.literal_eval(node.value)
    raise RuntimeError("openai-whisper's tokenizer has no LANGUAGES table")


def normalize_language(language: str | None) -> str | None:
    """'' / 'auto' -> None (detect); a code ('fr') or an English name ('French') -> the code; else UserError."""
    if language is not None and not isinstance(language, str):
        raise UserError("The language must be text: a code like 'en' or 'fr', a name like 'German', or empty to "
                        "auto-detect.")
    text = (language or "").strip().lower()
    if text in ("", "auto", "auto-detect", "detect"):
        return None
    table = languages()
    if text in table:
        return text
    by_name = {v: k for k, v in table.items()}
    if text in by_name:
        return by_name[text]
    m = re.match(r"^([a-z]{2,3}|haw|yue)\b", text)  # "fr (french)" from the dropdown
    if m and m.group(1) in table:
        return m.group(1)
    raise UserError(f"Unknown language {language!r}: use a code like 'en', 'fr', 'de', 'ja' or a name like 'German' "
                    "(or leave it empty to auto-detect).")


def choices() -> list[tuple[str, str]]:
    """The Language dropdown: auto-detect first, then every language by name."""
    return [("Auto-detect", "auto")] + [(f"{name.title()} ({code})", code)
                                        for code, name in sorted(languages().items(), key=lambda kv: kv[1])]
