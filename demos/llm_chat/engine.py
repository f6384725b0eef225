"""The chat engine: `load`, `check_params`, `prepare` (template + context fitting), `stream_chat`, `chat`, and the
`chat` work method (`WORK`) that the tab and the /v1 routes run through the hub (hub.work).

torch and transformers are imported inside the functions: the UI and the OpenAI routes import this module for
`check_params` when the app is built, which must not import torch. Never imports gradio.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from contextlib import closing
from pathlib import Path
from typing import Iterator

from hub import loadtimes, validate
from hub.contract import EngineBase
from hub.errors import UserError
from hub.work import Work

from demos.llm_chat.configs import CHATML, guess_config, random_model
from demos.llm_chat import gguf_cache
from demos.llm_chat.gguf_file import gguf_format
from demos.llm_chat.prompt import prepare
from demos.llm_chat.thinking import check_thinking, split
from demos.llm_chat.types import ChatDelta, ChatDone, ChatRequest, Chunk, GenParams

log = logging.getLogger("demohub")

# ---- parameters ---------------------------------------------------------------------------------------------------


def _number(value, name: str, lo: float, hi: float | None, **kw):
    return validate.number(value, name, lo, hi, **kw)


def check_stop(stop) -> tuple[str, ...]:
    """Stop sequences: a string or a list of at most 4 (empty and non-text entries are dropped)."""
    if isinstance(stop, str):
        stop = [stop]
    elif stop is not None and not isinstance(stop, (list, tuple)):
        raise UserError("Stop must be a string or a list of at most 4 strings.")
    stop = tuple(s for s in (stop or ()) if isinstance(s, str) and s)
    if len(stop) > 4:
        raise UserError("Give at most 4 stop sequences.")
    return stop


# Sampling settings: the name a user reads in an error, and the accepted range (hub.validate.number's arguments).
RANGES = {
    "temperature": ("Temperature", 0.0, 2.0, {}),
    "top_p": ("Top-p", 0.0, 1.0, {"lo_open": True}),
    "top_k": ("Top-k", 0, 100_000, {"integer": True}),
    "max_new_tokens": ("Max new tokens", 1, None, {"integer": True}),  # above the model's room: lowered in prepare
    "repetition_penalty": ("Repetition penalty", 0.0, 3.0, {"lo_open": True}),
    "seed": ("Seed", 0, 2**63 - 1, {"integer": True}),
}


def check_param(key: str, value):
    """One sampling setting (a key of RANGES): None when not given (the default applies), else the checked value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    name, lo, hi, kw = RANGES[key]
    return _number(value, name, lo, hi, **kw)


def check_params(temperature=None, top_p=None, top_k=None, max_new_tokens=None, repetition_penalty=None,
                 seed=None, stop=None, min_new_tokens=0, thinking=None) -> GenParams:
    """Validate sampling settings from the UI or an API (None = the default); out of range is refused with a
    sentence giving the accepted range (hub.validate's one policy).

    max_new_tokens above the model's room is lowered later, in `prepare` (with a note): it depends on the model.
    """
    given = dict(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                 repetition_penalty=repetition_penalty, seed=seed)
    checked = {k: check_param(k, v) for k, v in given.items()}
    return GenParams(**{k: v for k, v in checked.items() if v is not None}, stop=check_stop(stop),
                     min_new_tokens=int(min_new_tokens or 0), thinking=check_thinking(thinking))


# ---- engine -------------------------------------------------------------------------------------------------------


@dataclass
class Engine(EngineBase):
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
    weights_format: str = ""  # what the hub's Models tab shows as the dtype: "Q4_1 GGUF, dequantized to float32 ..."
    fast: object = None  # fast.GraphDecoder on CUDA, ov_genai.GenAIDecoder or ct2.CT2Decoder on a CPU
    nbytes: int | None = None  # bytes held outside torch (CTranslate2's int8 weights); None: counted from the model
    max_prompt_tokens: int = 0  # the most prompt tokens one request may send (0: only the context limits them)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_run: dict = field(default_factory=dict)

    def close(self) -> None:
        if self.fast is not None:
            self.fast.close()
        self.fast = None
        self.model = None


def load(weights, device: str, dtype: str, options=None) -> Engine:
    """Load a chat model: hf snapshot / local folder / local .gguf file / architecture-true random weights.

    `options`: the demo's options (`context`, `cuda_graphs`, `graph_len`, `openvino_genai`, `ctranslate2`; None = their
    defaults). Never runs remote code. On CUDA it starts compiling the fast decode path in the background; on a CPU a
    supported architecture decodes with OpenVINO GenAI (ov_genai.py) or CTranslate2 int8 (ct2.py), converted once at
    its first load.
    """
    with loadtimes.stage("import"):
        import torch

    if options is None:
        from demos.llm_chat import DEMO
        from hub.options import defaults

        options = defaults(DEMO)
    from demos.llm_chat import ct2, ov_genai

    paths = ((ov_genai, "OpenVINO GenAI", "CTranslate2 if it can"), (ct2, "CTranslate2", "transformers"))
    for path, name, then in paths:
        if path.wanted(weights, device, options):
            try:
                return path.load(weights, options, [])
            except Exception as e:  # a checkpoint it cannot convert or load: the next path may still run it
                log.warning("%s could not take %s (%s: %s); it runs on %s.", name, weights.choice.display,
                            type(e).__name__, str(e)[:300], then)
    with loadtimes.stage("import"):
        from transformers import AutoModelForCausalLM  # noqa: F401 (the modeling code, before the build)
    torch_dtype = getattr(torch, dtype)
    choice = weights.choice
    notes: list[str] = []
    weights_format = ""
    if weights.is_random:
        with loadtimes.stage("build"):
            model, tok = random_model(choice.options.get("config") or guess_config(choice.id), torch_dtype)
    else:
        path = Path(weights.path)
        cache = gguf_cache.folder_for(weights, dtype) if path.is_file() else None  # a .gguf file's dequantized copy
        source = cache if cache is not None and gguf_cache.ready(cache) else path
        loadtimes.read_files(loadtimes.files_under(source, (".gguf", ".safetensors", ".bin")))
        with loadtimes.stage("build"):  # a GGUF file is dequantized here too (transformers does both in one call)
            model, tok = _from_files(source, choice, torch_dtype)
        if cache is not None:
            weights_format = gguf_cache.weights_format(cache) if source == cache else gguf_format(path, dtype)
            if source != cache:
                gguf_cache.save(cache, model, tok, weights_format)
    model.to(device).eval()
    chat_template_or_chatml(tok, notes)
    context = context_for(model.config, device, options)
    vocab = model.get_output_embeddings().weight.shape[0]
    engine = Engine(model, tok, device, dtype, context, eos_ids(model.generation_config, model.config, tok),
                    choice.display,
                    ignore_eos=bool(choice.options.get("ignore_eos")),
                    vocab_limit=len(tok) if weights.is_random and len(tok) < vocab else None, notes=tuple(notes),
                    weights_format=weights_format, max_prompt_tokens=int(options.max_prompt_tokens))
    if device.startswith("cuda") and options.cuda_graphs:
        from demos.llm_chat.fast import GraphDecoder

        engine.fast = GraphDecoder(engine, max_len=min(context, options.graph_len))
    return engine


def context_for(config, device: str, options) -> int:
    """Tokens one conversation may use: the model's own limit, the `context` option, and on a CPU `cpu_context`
    (a prompt is read at a few hundred tokens/s there: a whole 8192-token context took minutes, see __init__)."""
    ctx = min(int(getattr(config, "max_position_embeddings", 2048) or 2048), options.context)
    return min(ctx, options.cpu_context) if device.startswith("cpu") else ctx


def chat_template_or_chatml(tok, notes: list[str]) -> None:
    """A tokenizer without a chat template gets plain ChatML, and the user is told answers may be poor."""
    if getattr(tok, "chat_template", None) is None:
        tok.chat_template = CHATML
        notes.append("This model has no chat template; a plain ChatML one is used, so answers may be poor.")


def _from_files(path: Path, choice, torch_dtype):
    """(model, tokenizer) from a .gguf file (dequantized to `torch_dtype`) or a save_pretrained folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(trust_remote_code=False)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UserError(f"{path.name} is a file but not a .gguf file: give a GGUF file, or a folder with "
                            "config.json and the weights (or a Hugging Face repo id).")
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise UserError(f"{path.name} is not a GGUF file (it does not start with the GGUF magic bytes); "
                                "check that the download finished, or pick another model.")
        folder, kw["gguf_file"] = str(path.parent), path.name
    else:
        if not (path / "config.json").is_file():
            raise UserError(f"The folder {path.name} has no config.json, so it is not a transformers model; give a "
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
    return model, tok


def eos_ids(generation_config, config, tok) -> tuple[int, ...]:
    """Every id that ends an answer: the generation config's, the model config's, and the tokenizer's."""
    eos = generation_config.eos_token_id if generation_config.eos_token_id is not None else config.eos_token_id
    eos_ids = tuple(eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else []))
    if tok.eos_token_id is not None and tok.eos_token_id not in eos_ids:
        eos_ids += (tok.eos_token_id,)
    return eos_ids


# ---- generation ---------------------------------------------------------------------------------------------------


class Halt:
    """The stop flag a generation reads each token: set by the caller's `stop` (read, never set here: it may be the
    work's `job.stop`, which would drop the answer's last item) or by `set()` (a stop sequence, a reader gone)."""

    def __init__(self, caller: threading.Event | None = None):
        self.caller, self.own = caller, threading.Event()

    def is_set(self) -> bool:
        return self.own.is_set() or (self.caller is not None and self.caller.is_set())

    def set(self) -> None:
        self.own.set()


class Run:
    """Shared state between the request thread and the generating thread."""

    def __init__(self, stop: threading.Event | Halt):
        self.stop = stop
        self.new_tokens = 0
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.hit_eos = False


def _stopping(run: Run, prompt_len: int):
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


def mask_vocab(limit: int):
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


PREFILL_CHUNK = 256  # prompt tokens per forward pass while a prompt is read (the stop flag is read between them)


def prefill(model, ids, stop, chunk: int | None = None):
    """Read all but the last token of the prompt `ids` into a new KV cache, `chunk` tokens per forward pass, checking
    `stop` before each: a Stop (or a client gone) during a long prompt ends it within one chunk, not after the whole
    prompt, and the attention scores of one chunk stay small. Returns the cache (for `generate`, which then reads
    the last token), or None once stopped."""
    import torch
    from transformers import DynamicCache

    chunk = chunk or PREFILL_CHUNK
    cache = DynamicCache(config=model.config)
    n, name = ids.shape[1] - 1, cache_arg(model)
    for start in range(0, n, chunk):
        if stop.is_set():
            return None
        end = min(n, start + chunk)
        model(input_ids=ids[:, start:end], attention_mask=torch.ones_like(ids[:, :end]), **{name: cache},
              cache_position=torch.arange(start, end, device=ids.device), use_cache=True, logits_to_keep=1)
    return cache


def cache_arg(model) -> str:
    """The name of the KV-cache argument: transformers 5.25 renamed `past_key_values` to `cache` (the old name
    warns until 5.40); 5.23 knows only the old one."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _start_eager(engine: Engine, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
    import torch

    processors = [mask_vocab(engine.vocab_limit)] if engine.vocab_limit else []
    gen_config = _generation_config(engine, params, max_new)

    def work():
        try:
            with torch.inference_mode():
                cache = prefill(engine.model, ids, run.stop) if ids.shape[1] > PREFILL_CHUNK else None
                if cache is None and run.stop.is_set():
                    streamer.end()  # stopped while reading the prompt (or before): no token was generated
                    return
                out = engine.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen_config,
                    streamer=streamer, stopping_criteria=[_stopping(run, ids.shape[1])],
                    logits_processor=processors or None, **({cache_arg(engine.model): cache} if cache else {}))
            run.new_tokens = out.shape[1] - ids.shape[1]
            # an EOS token the model was told to ignore (random test weights) ends nothing
            run.hit_eos = bool(not engine.ignore_eos and run.new_tokens and out[0, -1].item() in engine.eos_ids)
        except BaseException as e:  # handed to the request thread, which re-raises it
            run.error = e
            streamer.end()
        finally:
            run.finished.set()

    threading.Thread(target=work, name="llm-generate", daemon=True).start()


def stream_chat(engine: Engine, msgs: list[dict], params: GenParams, stop: threading.Event | None = None,
                since: float | None = None) -> Iterator[Chunk]:
    """Generate an answer to `msgs`, yielding the growing text. Closing the iterator or setting `stop` ends
    generation within one token. Holds `engine.lock` while generating (one generation per model at a time).

    `since`: the `time.perf_counter()` of the request (the user's click): `first_token_s` counts from it, so it
    includes loading the model and waiting for another answer to finish; default: when generation starts."""
    import torch
    from transformers import TextIteratorStreamer

    prep = prepare(engine, msgs, params)
    stop = Halt(stop)  # a stop sequence or a closed reader ends generation without setting the caller's `stop`
    notes = list(engine.notes) + prep.notes
    with engine.lock:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        streamer = TextIteratorStreamer(engine.tokenizer, skip_prompt=True, skip_special_tokens=True)
        ids = torch.tensor([prep.input_ids], dtype=torch.long, device=engine.device)
        run = Run(stop)
        since = run.t0 if since is None else since
        fast = engine.fast is not None and engine.fast.usable(len(prep.input_ids) + prep.max_new_tokens)
        if fast:
            engine.fast.submit(ids, params, prep.max_new_tokens, streamer, run)
        else:
            _start_eager(engine, ids, params, prep.max_new_tokens, streamer, run)
        raw, text, reason, part = "", "", None, split("", prep.opened)
        try:
            for piece in streamer:
                if not piece:
                    continue
                raw += piece
                part = split(raw, prep.opened)  # stop sequences apply to the answer, not to the reasoning
                text = part.answer
                for s in params.stop:
                    if s in text:
                        text, reason = text[: text.index(s)], "stop"
                        stop.set()
                chunk = Chunk(text, run.new_tokens, len(prep.input_ids), time.perf_counter() - run.t0,
                              (run.t_first - since) if run.t_first else None, notes=notes, fast_path=fast,
                              thinking=part.thinking, thinking_done=part.thinking_done)
                if reason:
                    break
                yield chunk
        finally:
            user_stopped = stop.is_set()
            stop.set()  # the reader went away (Stop, disconnect, error): end generation at the next token
            run.finished.wait()
            engine.last_run = {"prompt": prep.prompt, "new_tokens": run.new_tokens, "thinking": prep.thinking,
                               "max_new_tokens": prep.max_new_tokens, "fast_path": fast,
                               "ended_early": not run.hit_eos and run.new_tokens < prep.max_new_tokens}
        if run.error is not None:
            raise run.error
        if reason is None:
            reason = ("stop" if run.hit_eos else "length" if run.new_tokens >= prep.max_new_tokens
                      else "cancelled" if user_stopped else "stop")
        if not part.thinking_done and part.thinking:
            notes = notes + ["The model was still thinking when the answer ended; raise Max new tokens, or turn "
                             "Thinking off for a direct answer."]
        final = Chunk(text, run.new_tokens, len(prep.input_ids), time.perf_counter() - run.t0,
                      (run.t_first - since) if run.t_first else None, True, reason, notes, fast, part.thinking, True)
    yield final


def chat(engine: Engine, msgs: list[dict], params: GenParams, stop: threading.Event | None = None,
         since: float | None = None) -> Chunk:
    """The whole answer at once (the last chunk of `stream_chat`)."""
    final = None
    for final in stream_chat(engine, msgs, params, stop, since):
        pass
    return final


# ---- the work method (hub.work): what the tab and the /v1 routes ask for ------------------------------------------

WORK = Work()


def check_request(req: ChatRequest) -> list[dict]:
    """The conversation of `req` as the engine reads it; a sentence when it cannot be answered."""
    msgs = list(req.messages)
    if not msgs or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs):
        raise UserError("Send a conversation of {role, content} text messages, the last one the user's.")
    if msgs[-1].get("role") != "user" or not msgs[-1]["content"].strip():
        raise UserError("The last message must be the user's, with some text.")
    if not isinstance(req.params, GenParams):
        raise UserError("The sampling settings must be checked with check_params.")
    return msgs


@WORK.method(ChatRequest, name="chat")
def generate(lease, req: ChatRequest, job) -> Iterator[ChatDelta | ChatDone]:
    """Stream the answer to `req`: ChatDelta items (answer text and reasoning as they grow), then one ChatDone with
    the whole answer, its usage and finish reason, and the record. `job.stop` (Stop, a closed page, a client that hung
    up) ends generation at the next token; it is also read between tokens, and the method then returns at once."""
    msgs = check_request(req)
    wall, now = time.time(), time.perf_counter()  # the model is loaded: the lease is held
    waited = max(0.0, wall - req.sent_at) if req.sent_at is not None else None
    since = now - waited if waited is not None else None  # the click, on this process's perf_counter clock
    sent = thought = 0
    done = True
    with closing(stream_chat(lease.engine, msgs, req.params, job.stop, since)) as chunks:
        for chunk in chunks:
            if job.stop.is_set():
                return
            delta = ChatDelta(chunk.text[sent:], chunk.thinking[thought:], chunk.thinking_done)
            sent, thought = max(sent, len(chunk.text)), max(thought, len(chunk.thinking))
            if delta.content or delta.reasoning or delta.thinking_done != done:
                done = delta.thinking_done
                yield delta
    loading_s = round(waited, 3) if req.loading and waited is not None else None
    yield ChatDone(chunk, lease.weights.record()["model"], _record(lease, req.params, chunk, loading_s), loading_s)


@WORK.method(ChatRequest)
def complete(lease, req: ChatRequest, job) -> ChatDone | None:
    """The whole answer at once: the last item of `chat` (the non-streaming /v1 answer). A run stopped before its
    end has no answer (the hub then says it was stopped)."""
    final = None
    for final in generate(lease, req, job):
        pass
    return final if isinstance(final, ChatDone) else None


def _record(lease, params: GenParams, final: Chunk, loading_s: float | None) -> dict:
    """The reproducibility record of one answer: the settings asked for and the answer's stats."""
    from dataclasses import asdict

    stats = {k: v for k, v in asdict(final).items() if k not in ("text", "thinking", "thinking_done")}
    stats["thinking"] = lease.engine.last_run.get("thinking", False)
    stats["tokens_per_s"] = round(final.tokens_per_s, 2)
    stats["first_token_s"] = final.first_token_s and round(final.first_token_s, 3)
    if loading_s is not None:
        stats["loading_s"] = loading_s
    settings = {k: v for k, v in asdict(params).items() if k != "thinking"}
    return lease.record(**settings, **stats)
