"""The chat's work as data: the request of the `chat` work method, the items it streams, and the engine's answer.

Plain data only (strings, numbers, tuples, dicts): a request crosses to a Ray replica as it is, and the items come
back the same way. Imports neither torch nor gradio.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenParams:
    """Sampling settings of one request (validated by `engine.check_params`). temperature 0 = greedy."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 512
    repetition_penalty: float = 1.05
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_new_tokens: int = 0  # benchmarks force equal work with this
    thinking: bool | None = None  # the template's thinking switch; None: on for a GPU, off for a CPU (thinking.py)


@dataclass(frozen=True)
class ChatRequest:
    """One answer to write: the conversation as plain {role, content} text dicts (messages.build_messages), the
    checked sampling settings, and when the person asked (`sent_at`, `time.time()`: the first-token time counts from
    it, loading the model included). `loading`: the tab told the person the model is loading, so the answer says how
    long that took."""

    messages: tuple[dict, ...]
    params: GenParams = GenParams()
    sent_at: float | None = None
    loading: bool = False


@dataclass(frozen=True)
class ChatDelta:
    """What the answer gained since the last item: answer text (`content`) and reasoning (`reasoning`).
    `thinking_done`: False while a thinking model is still writing its reasoning."""

    content: str = ""
    reasoning: str = ""
    thinking_done: bool = True


@dataclass
class Chunk:
    """One streamed update of the engine (`engine.stream_chat`): the answer so far, its token count and speed;
    `done` on the last one."""

    text: str
    new_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0  # generating (tokens/s counts these)
    first_token_s: float | None = None  # from the request (`since`: the user's click, loading included) to token 1
    done: bool = False
    finish_reason: str | None = None  # stop | length | cancelled
    notes: list[str] = field(default_factory=list)
    fast_path: bool = False
    thinking: str = ""  # the model's reasoning (<think>...</think>), apart from the answer in `text`
    thinking_done: bool = True  # False while the reasoning is still being written

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def footer(self, loading_s: float | None = None) -> str:
        """The stats line under an answer; `loading_s`: how much of the wait for the first token was loading the
        model (said only when this request loaded it)."""
        parts = [f"{self.new_tokens} tokens", f"{self.tokens_per_s:.1f} tokens/s"]
        if self.first_token_s is not None:
            # the same precision as the first token's time, and never more than it (the two are measured apart)
            shown = min(loading_s, self.first_token_s) if loading_s is not None else None
            loading = f" ({shown:.2f} s of it loading the model)" if shown is not None else ""
            parts.append(f"first token {self.first_token_s:.2f} s{loading}")
        if self.finish_reason == "cancelled":
            parts.append("stopped")
        elif self.finish_reason == "length":
            parts.append("hit max new tokens")
        return "<sub>⏱ " + " · ".join(parts) + "</sub>"


@dataclass(frozen=True)
class ChatDone:
    """The last item of `chat`: the whole answer (`answer.text`, `answer.thinking`), its usage (`prompt_tokens`,
    `completion_tokens`) and finish reason (stop | length | cancelled), the model's public name (never a local
    path), the reproducibility record, and how long the request waited for the model to load (`loading_s`, when
    the request said it was loading)."""

    answer: Chunk
    model: str
    record: dict
    loading_s: float | None = None

    @property
    def prompt_tokens(self) -> int:
        return self.answer.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.answer.new_tokens

    @property
    def finish_reason(self) -> str | None:
        return self.answer.finish_reason
