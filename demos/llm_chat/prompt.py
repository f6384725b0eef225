"""The prompt: render the conversation with the model's chat template (with its thinking switch, when it has one)
and fit it into the model's context, dropping the oldest turns first. Never imports torch or gradio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.errors import UserError

from demos.llm_chat import thinking

if TYPE_CHECKING:
    from demos.llm_chat.engine import Engine, GenParams


@dataclass
class Prepared:
    """A rendered prompt ready to generate from."""

    prompt: str
    input_ids: list[int]
    max_new_tokens: int
    notes: list[str]
    thinking: bool = False  # the template's thinking switch was on
    opened: bool = False  # the prompt itself opened the think block: the answer starts inside it


def _render(engine: Engine, think: bool | None, msgs: list[dict]) -> str:
    """The chat template's text; `think`: its `enable_thinking` (None: a template without the switch)."""
    kw = {} if think is None else {"enable_thinking": think}
    return engine.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)


def _count(engine: Engine, text: str) -> list[int]:
    return engine.tokenizer(text, add_special_tokens=False)["input_ids"]


def prepare(engine: Engine, msgs: list[dict], params: GenParams) -> Prepared:
    """Render `msgs` with the chat template (its thinking switch, if it has one, as `params.thinking` asks; not
    given: on for a GPU, off for a CPU) and fit them into the context.

    Keeps room for the answer; drops the oldest turns first, then cuts an over-long last message (keeping its
    start); lowers max_new_tokens when it cannot fit. Each change is described in `notes`. With the hub's
    per-request cap (`max_prompt_tokens`, when below the context's room) older turns are dropped to fit it too, but
    a new message that alone is over it is refused with a sentence before the model reads any of it.
    """
    notes: list[str] = []
    think = thinking.resolve(params.thinking, engine.device) if thinking.has_switch(engine.tokenizer) else None
    if params.thinking and think is None:
        notes.append("This model's chat template has no thinking switch, so Thinking was left as the model does it.")
    ctx = engine.context
    max_new = params.max_new_tokens
    if max_new > ctx // 2:
        lowered = max(1, ctx // 2)
        notes.append(f"Max new tokens lowered from {max_new} to {lowered}: the model's context is {ctx} tokens.")
        max_new = lowered
    cap = engine.max_prompt_tokens if 0 < engine.max_prompt_tokens < ctx - max_new else 0
    budget = cap or ctx - max_new
    limit = f"this hub's limit of {cap} prompt tokens per request" if cap else f"the model's context of {ctx} tokens"
    system = [m for m in msgs[:1] if m["role"] == "system"]
    turns = msgs[len(system):-1]
    last = dict(msgs[-1])
    # No tokenizer makes fewer than one token per 16 characters: text beyond budget * 16 characters can never fit, so
    # it is cut or refused before anything is tokenised (a huge paste or conversation costs no tokenizer time).
    if system and len(system[0]["content"]) > budget * 16:
        raise UserError(f"The system prompt ({len(system[0]['content'])} characters) can never fit {limit}; "
                        "shorten it.")
    if len(last["content"]) > budget * 16:
        if cap:
            raise too_long(f"{len(last['content'])} characters", cap)
        last["content"] = last["content"][: budget * 16]
    turns, dropped = _newest_within(turns, budget * 16 - len(last["content"]))
    ids = _count(engine, _render(engine, think, system + turns + [last]))
    if len(ids) > budget and turns:
        turns, more = _drop_oldest(engine, turns, len(ids) - budget)
        dropped += more
        ids = _count(engine, _render(engine, think, system + turns + [last]))
    while len(ids) > budget and turns:  # the template's own tokens can leave it a little over: a turn more
        k = 2 if len(turns) >= 2 and turns[0]["role"] == "user" else 1
        turns, dropped = turns[k:], dropped + k
        ids = _count(engine, _render(engine, think, system + turns + [last]))
    if dropped:
        notes.append(f"The {dropped} oldest message(s) were left out: the conversation is longer than {limit}.")
    if len(ids) > budget:
        if cap:
            raise too_long(f"{len(ids)} tokens with the system prompt", cap)
        _cut_last(engine, think, system + turns, last, len(ids), budget, max_new, notes)
    prompt = _render(engine, think, system + turns + [last])
    ids = _count(engine, prompt)
    return Prepared(prompt, ids, min(max_new, ctx - len(ids)), notes, bool(think), thinking.opens_thinking(prompt))


def too_long(size: str, cap: int) -> UserError:
    """The refusal of a new message (with the system prompt) longer than the hub's per-request prompt cap."""
    return UserError(f"Your message is too long ({size}); this hub reads at most {cap} tokens of prompt per request, "
                     "the system prompt included. Shorten it (or send it in parts), then try again.")


def _newest_within(turns: list[dict], chars: int) -> tuple[list[dict], int]:
    """The newest turns whose text totals at most `chars` characters (whole user/assistant pairs), and how many
    older ones were left out. No tokenizer call."""
    total, keep = 0, len(turns)
    while keep > 0 and total + len(turns[keep - 1]["content"]) <= chars:
        keep -= 1
        total += len(turns[keep]["content"])
    if keep < len(turns) and turns[keep]["role"] == "assistant":
        keep += 1  # start at a user message
    return turns[keep:], keep


def _drop_oldest(engine: Engine, turns: list[dict], excess: int) -> tuple[list[dict], int]:
    """Leave out the oldest turns (in user/assistant pairs) until about `excess` tokens are gone: each turn is
    tokenised once, so trimming a long conversation is linear, not quadratic."""
    removed = k = 0
    while k < len(turns) and removed < excess:
        step = 2 if k + 1 < len(turns) and turns[k]["role"] == "user" else 1
        removed += sum(len(_count(engine, t["content"])) for t in turns[k:k + step])
        k += step
    return turns[k:], k


def _cut_last(engine: Engine, think: bool | None, before: list[dict], last: dict, n_ids: int, budget: int,
              max_new: int, notes: list[str]) -> None:
    """Cut `last["content"]` (in place) to its first tokens so the rendered prompt fits `budget`."""
    msg_ids = _count(engine, last["content"])
    keep = budget - (n_ids - len(msg_ids))
    if keep < 8:
        raise UserError(f"The system prompt is too long for this model's context of {engine.context} tokens "
                        f"(with {max_new} new tokens); shorten it or lower Max new tokens.")
    while True:
        last["content"] = engine.tokenizer.decode(msg_ids[:keep])
        ids = _count(engine, _render(engine, think, before + [last]))
        if len(ids) <= budget or keep <= 1:
            break
        keep -= max(1, len(ids) - budget)
    notes.append(f"Your message was cut to its first {keep} tokens (about {len(last['content'])} characters) "
                 f"to fit the model's context of {engine.context} tokens.")
