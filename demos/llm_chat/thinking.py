"""Thinking models (Qwen3, SmolLM3): the switch and the split of their <think>…</think> reasoning from the answer.

Their chat templates take `enable_thinking`: off, the template closes an empty think block after the assistant's
turn starts and the model answers at once; on, the model first writes its reasoning between <think> and </think>.
`split` cuts the text generated so far into (reasoning, answer) while it streams: a tag that has arrived only in part
("</thi") is held back until the next piece says what it is, so neither side ever shows half a tag. The reasoning
is shown apart (collapsed in the tab, `reasoning_content` in the OpenAI route) and never sent back to the model with
the history, as Qwen3's guidance asks. Imports neither torch nor gradio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub import validate

OPEN, CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)


@dataclass(frozen=True)
class Split:
    """The generated text so far, cut in two. `thinking_done`: the answer has begun (or there was no reasoning)."""

    thinking: str
    answer: str
    thinking_done: bool


def check_thinking(value) -> bool | None:
    """The Thinking switch of a request: true, false or not given (None: the default for the device)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return validate.flag(value, "Thinking", default=None)


def has_switch(tokenizer) -> bool:
    """Whether the model's chat template reads `enable_thinking` (a template, or a dict of named templates)."""
    return "enable_thinking" in str(getattr(tokenizer, "chat_template", None) or "")


def resolve(requested: bool | None, device: str) -> bool:
    """The switch for one request: as asked, else on for a GPU and off for a CPU (where a few hundred tokens of
    reasoning at ~10-20 tokens/s would delay every answer by tens of seconds)."""
    return requested if requested is not None else not device.startswith("cpu")


def opens_thinking(prompt: str) -> bool:
    """Whether the prompt itself opened a think block, so the generated text starts inside it (templates that force
    thinking write `<think>` after the assistant's turn starts)."""
    return prompt.rstrip().endswith(OPEN)


def _hold_partial(text: str, tag: str) -> str:
    """`text` without a trailing start of `tag` ("<thi" for <think>): the next piece says whether it is the tag."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return text[:-k]
    return text


def split(text: str, opened: bool = False) -> Split:
    """(reasoning, answer) of the generated `text` so far; `opened`: the prompt already opened the think block."""
    if not opened:
        start = text.lstrip()
        if OPEN.startswith(start) and len(start) < len(OPEN):  # nothing yet, or the start of "<think>"
            return Split("", "", False)
        if not start.startswith(OPEN):
            return Split("", text, True)
        text = start[len(OPEN):]
    end = text.find(CLOSE)
    if end < 0:
        return Split(_hold_partial(text, CLOSE).strip(), "", False)
    return Split(text[:end].strip(), text[end + len(CLOSE):].lstrip(), True)


def without_thinking(answer: str) -> str:
    """An earlier answer as the model should see it in the history: its leading think block left out."""
    return _BLOCK.sub("", answer, count=1)
