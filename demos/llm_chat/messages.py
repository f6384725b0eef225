"""Chat messages (from the UI's history or an OpenAI request) to the plain text dicts a chat template renders."""

from __future__ import annotations

import re

from hub.errors import UserError

from demos.llm_chat.thinking import without_thinking

_SURROGATES = re.compile(r"[\ud800-\udfff]")
EMPTY = "Type a message first."  # the one sentence for an empty message (the tab's validator says it too)
_FOOTERS = ("<sub>⏱", "<sub>ℹ️")  # the stats line and the notes this tab appends to answers, each on its own line


def clean_text(text) -> str:
    """Text a tokenizer can take: lone surrogates (invalid UTF-8 that reached us) become U+FFFD, NULs are dropped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise UserError("Messages must be text.")
    return _SURROGATES.sub("\ufffd", text).replace("\x00", "")


def _rstrip_at(text: str, end: int) -> int:
    """The index just after the last non-whitespace character of text[:end]."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def without_footer(text: str) -> str:
    """An earlier answer without the footers this tab appended (`<sub>⏱ stats</sub>`, `<sub>ℹ️ note</sub>`): the
    run of them at the very end, each ending its line, with the whitespace around them.

    Linear in the text's length: it walks back from the end one line at a time and never rescans (the regex it
    replaces, `(\\s*<sub>…[^\\n]*</sub>)+\\s*$`, took seconds for 540 bytes of repeated footers)."""
    end = _rstrip_at(text, len(text))
    cut = None
    while text.endswith("</sub>", 0, end):
        line = text.rfind("\n", 0, end) + 1
        starts = [i for i in (text.find(f, line, end) for f in _FOOTERS) if i >= 0]
        if not starts:
            break
        cut = min(starts)
        end = _rstrip_at(text, cut)
        if end > line:  # answer text before the footer on its line: the answer ends there
            break
    return text if cut is None else text[:end]


def content_text(content) -> str | None:
    """The text of a chat message's content: a string, or OpenAI/Gradio parts; None for non-text (files)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and content.get("type") == "text":
        text = content.get("text", "")
        if not isinstance(text, str):
            raise UserError("A text part's 'text' must be a string, like {\"type\": \"text\", \"text\": \"Hello\"}.")
        return text
    if isinstance(content, list):  # parts are strings or dicts; nested lists are not text (and not recursed into)
        parts = [content_text(p) for p in content if not isinstance(p, list)]
        texts = [p for p in parts if p is not None]
        return "\n".join(texts) if texts else None
    return None


def build_messages(system: str | None, history: list | None, message) -> list[dict]:
    """System prompt + earlier turns (Gradio or OpenAI message dicts) + the new user message, as plain text dicts.

    Stats footers this tab adds to answers, the reasoning of earlier answers (the tab's collapsible "Thinking"
    messages, a leading <think> block) and non-text parts are left out of what the model sees.
    """
    message = clean_text(message if message is not None else "")
    if not message.strip():
        raise UserError(EMPTY)
    msgs = []
    if system and clean_text(system).strip():
        msgs.append({"role": "system", "content": clean_text(system).strip()})
    for m in history or []:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        if isinstance(m.get("metadata"), dict) and m["metadata"].get("title"):
            continue
        text = content_text(m.get("content"))
        if text is None:
            continue
        text = clean_text(text)
        if m["role"] == "assistant":
            text = without_thinking(without_footer(text))  # earlier reasoning is not sent back (Qwen3's advice)
        msgs.append({"role": m["role"], "content": text})
    msgs.append({"role": "user", "content": message})
    return msgs
