"""The vision engine: `load`, the image checks, the per-conversation image-feature cache, generation, and the work
methods `describe` (caption, SD prompt, OCR, a question) and `chat` (a conversation with pictures; `complete` is its
last item) that the tab and the /v1 route run through the hub.

Images are decoded by the hub's one decoder (hub.media.image: EXIF, pixel cap, one sentence for a bad file) and
counted and size-checked before any is decoded. For SmolVLM (Idefics3) each image's vision-encoder output is kept
in a `hub.sessions.Sessions` keyed by (conversation, SHA-256 of the file): the next question about the same picture
skips the vision encoder and goes straight to reading the prompt (transformers' `mm_encoder_outputs`). Other
architectures (Qwen3-VL) run through their processor as it is, without the cache. torch and transformers are
imported inside the functions; never imports gradio.
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from hub import validate
from hub.contract import EngineBase
from hub.errors import UserError
from hub.sessions import Sessions
from hub.work import Work

from demos.vision.configs import IDEFICS3, guess_config, random_model
from demos.vision.types import MODES, DescribeRequest, Delta, Done, Sampling, VisionChatRequest

PROMPTS = {
    "caption": "Describe this image in one or two sentences.",
    "sd_prompt": "Write a Stable Diffusion prompt for this image: a comma-separated list of the subject, the setting, "
                 "the style, the lighting and the colours, without full sentences.",
    "ocr": "Read all the text in this image and write it out exactly, line by line. If there is no text, say so.",
}
MAX_QUESTION = 4000  # characters of one question


@dataclass
class Engine(EngineBase):
    """A loaded vision-language model. `lock` serialises generations; `features` is the image-feature cache."""

    model: object
    processor: object
    device: str
    dtype: str
    name: str
    kind: str
    context: int
    eos_ids: tuple[int, ...]
    options: object
    vocab_limit: int | None = None
    ignore_eos: bool = False
    features: Sessions = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_run: dict = field(default_factory=dict)

    @property
    def extra_bytes(self) -> int:
        return self.features.nbytes if self.features is not None else 0

    def close(self) -> None:
        if self.features is not None:
            self.features.clear()
        self.model = None


def load(weights, device: str, dtype: str, options=None) -> Engine:
    """Load a vision-language model (a pinned hf snapshot, a local folder, or architecture-true random weights).
    Never runs remote code."""
    import torch

    if options is None:
        from demos.vision import DEMO
        from hub.options import defaults

        options = defaults(DEMO)
    choice = weights.choice
    if weights.is_random:
        model, proc = random_model(choice.options.get("config") or guess_config(choice.id), getattr(torch, dtype))
    else:
        model, proc = _from_files(Path(weights.path), choice, getattr(torch, dtype))
    model.to(device).eval()
    _cpu_detail(proc, device, int(options.cpu_longest_edge))
    text_config = model.config.get_text_config()
    vocab = model.get_output_embeddings().weight.shape[0]
    tok = proc.tokenizer
    eos = model.generation_config.eos_token_id or text_config.eos_token_id
    eos_ids = tuple(e for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None)
    eos_ids += tuple(i for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_utterance>"))
                     if isinstance(i, int) and i != tok.unk_token_id and i not in eos_ids)
    cache = Sessions(ttl_s=float(options.cache_minutes) * 60, max_bytes=int(options.cache_mb) * 2**20,
                     size=lambda v: v[0].numel() * v[0].element_size())
    return Engine(model, proc, device, dtype, choice.display, model.config.model_type,
                  min(int(getattr(text_config, "max_position_embeddings", 8192)), int(options.context)), eos_ids,
                  options, vocab_limit=len(tok) if weights.is_random and len(tok) < vocab else None,
                  ignore_eos=weights.is_random, features=cache)


def _cpu_detail(proc, device: str, longest_edge: int) -> None:
    """On a CPU, SmolVLM (Idefics3) sees a picture at `longest_edge` instead of its processor's 2048 px: a 512-px
    picture is then one 512-px crop (64 image tokens) instead of 16 crops and a global view (1,088 tokens), so the
    first answer comes ~10x sooner, at the price of fine detail (small text). 0 keeps the processor's own size."""
    images = getattr(proc, "image_processor", None)
    if device != "cpu" or not longest_edge or type(images).__name__ != "Idefics3ImageProcessor":
        return
    crop = int((getattr(images, "max_image_size", None) or {}).get("longest_edge", longest_edge))
    now = int((getattr(images, "size", None) or {}).get("longest_edge", longest_edge))
    images.size = {"longest_edge": min(now, max(longest_edge, crop))}  # never below one crop, never larger


def _from_files(path: Path, choice, torch_dtype):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not (path / "config.json").is_file():
        raise UserError(f"{choice.display} has no config.json, so it is not a transformers model; give a folder "
                        "saved with save_pretrained or a Hugging Face repo id.")
    try:
        proc = AutoProcessor.from_pretrained(str(path), trust_remote_code=False)
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=torch_dtype, trust_remote_code=False)
    except (ValueError, OSError, KeyError) as e:
        if "trust_remote_code" in str(e) or "custom code" in str(e):
            raise UserError(f"{choice.display} needs custom code from its repository, which this hub never runs; "
                            "pick a model that transformers supports natively.") from None
        raise UserError(f"transformers could not load {choice.display} as an image-text-to-text model: "
                        f"{str(e).splitlines()[0][:300]}.") from e
    return model, proc


# ---- checks -------------------------------------------------------------------------------------------------------


def check_sampling(max_new_tokens=None, temperature=None, top_p=None, seed=None, most: int = 1024) -> Sampling:
    """Sampling settings from the tab or the API (None: the default); out of range is refused with a sentence."""
    kw = {}
    if max_new_tokens not in (None, ""):
        kw["max_new_tokens"] = validate.number(max_new_tokens, "Max new tokens", 1, most, integer=True)
    if temperature not in (None, ""):
        kw["temperature"] = validate.number(temperature, "Temperature", 0.0, 2.0)
    if top_p not in (None, ""):
        kw["top_p"] = validate.number(top_p, "Top-p", 0.0, 1.0, lo_open=True)
    if seed not in (None, ""):
        kw["seed"] = validate.number(seed, "Seed", 0, 2**63 - 1, integer=True)
    return Sampling(**kw)


def check_count(images, most: int) -> tuple:
    """The images of a request: at least one, at most `most`."""
    images = tuple(i for i in (images or ()) if i is not None and i != "")
    if not images:
        raise UserError("Upload an image first (PNG, JPEG, WebP, BMP, GIF or TIFF).")
    if len(images) > most:
        raise UserError(f"Send at most {most} images in one request; this one has {len(images)}.")
    return images


def read_bytes(source, what: str, max_mb: float) -> bytes:
    """The file bytes of an image (a path or bytes), refused above `max_mb` before it is read."""
    if isinstance(source, dict):
        source = source.get("path")
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, str) and Path(source).is_file():
        if Path(source).stat().st_size > max_mb * 2**20:
            raise UserError(f"{what} is larger than {max_mb:g} MB; send a smaller file.")
        data = Path(source).read_bytes()
    else:
        raise UserError(f"{what} was not found; upload it again.")
    if len(data) > max_mb * 2**20:
        raise UserError(f"{what} is larger than {max_mb:g} MB; send a smaller file.")
    return data


def open_images(images: tuple, options) -> list[tuple[object, str]]:
    """(PIL image, SHA-256 of the file) per image: sizes checked from every header before any pixel is decoded."""
    from hub.media.image import image_size, open_image

    n = len(images)
    blobs = [read_bytes(src, _what(i, n), float(options.max_image_mb)) for i, src in enumerate(images)]
    # a path is decoded from the file (the sentence names it); bytes (a /v1 data URL) are named by their place
    sources = [src if isinstance(src, str) else data for src, data in zip(images, blobs)]
    for i, src in enumerate(sources):
        image_size(src, _what(i, n), min_side=8)  # bytes: the sentence names them by `what`
    return [(open_image(src, _what(i, n), min_side=8, max_side=int(options.max_side)),
             hashlib.sha256(data).hexdigest()) for i, (src, data) in enumerate(zip(sources, blobs))]


def _what(i: int, n: int) -> str:
    return "the image" if n == 1 else f"image {i + 1}"


def describe_messages(req: DescribeRequest) -> tuple[dict, ...]:
    """The one user message a describe request asks: the mode's instruction, or the question."""
    mode = req.mode if isinstance(req.mode, str) and req.mode in MODES else None
    if mode is None:
        raise UserError(f"Mode must be one of: {', '.join(MODES)}.")
    question = req.question.strip() if isinstance(req.question, str) else ""
    if mode == "ask" and not question:
        raise UserError("Type a question about the image (mode 'ask' answers it).")
    if len(question) > MAX_QUESTION:
        raise UserError(f"The question is {len(question)} characters long; keep it under {MAX_QUESTION}.")
    text = question if mode == "ask" else PROMPTS[mode]
    return ({"role": "user", "text": text, "images": tuple(range(len(req.images)))},)


def check_messages(messages: tuple, n_images: int) -> list[dict]:
    msgs = list(messages or ())
    if not msgs or msgs[-1].get("role") != "user":
        raise UserError("The last message must be the user's.")
    for m in msgs:
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("text", ""), str):
            raise UserError("Each message needs a role (system, user or assistant) and text.")
        if any(not isinstance(i, int) or not 0 <= i < n_images for i in m.get("images", ())):
            raise UserError("A message names an image the request does not carry.")
    if not msgs[-1].get("text", "").strip() and not msgs[-1].get("images"):
        raise UserError("The last message is empty; ask something about the image.")
    return msgs


# ---- prompt and image features ------------------------------------------------------------------------------------


def _template_messages(msgs: list[dict], tokens: tuple[str, ...]) -> list[dict]:
    """Messages in the processor's chat-template form: each image part, then the text (image tokens typed by the user
    are taken out, so only real pictures become image tokens)."""
    out = []
    for m in msgs:
        text = m.get("text", "")
        for t in tokens:
            text = text.replace(t, "")
        parts = [{"type": "image"} for _ in m.get("images", ())]
        out.append({"role": m["role"], "content": parts + ([{"type": "text", "text": text}] if text or not parts
                                                          else [])})
    return out


def _features(engine: Engine, picture, digest: str, session: str) -> tuple[object, list, list, bool]:
    """(vision-encoder output, rows, cols, from cache?) of one picture, kept per (conversation, file hash)."""
    import torch

    key = f"{session}\0{digest}"
    hit = key in engine.features

    def make():
        ip = engine.processor.image_processor([[picture]], return_tensors="pt", return_row_col_info=True)
        with torch.inference_mode():
            out = engine.model.model.get_image_features(ip["pixel_values"].to(engine.device),
                                                        ip["pixel_attention_mask"].to(engine.device),
                                                        return_dict=True)
        return out.pooler_output[0], ip["rows"][0], ip["cols"][0]

    feats, rows, cols = engine.features.get(key, make)
    return feats, rows, cols, hit


def prepare(engine: Engine, msgs: list[dict], pictures: list, session: str) -> tuple[dict, int, int]:
    """(generate() inputs, prompt tokens, images from the cache) for a conversation and its pictures, in order."""
    import torch

    proc = engine.processor
    order = [i for m in msgs for i in m.get("images", ())]
    image_token = getattr(proc, "image_token", "<image>")
    specials = tuple(t for t in (image_token, getattr(proc, "fake_image_token", None),
                                 getattr(proc, "global_image_token", None)) if t)
    text = proc.apply_chat_template(_template_messages(msgs, specials), add_generation_prompt=True)
    if engine.kind != IDEFICS3:  # Qwen3-VL and others: the processor does everything, nothing is cached
        inputs = proc(text=[text], images=[pictures[i][0] for i in order] or None, return_tensors="pt")
        inputs = {k: v.to(engine.device) for k, v in inputs.items() if hasattr(v, "to")}
        return inputs, int(inputs["input_ids"].shape[1]), 0
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    pieces, feats, cached = text.split(image_token), [], 0
    assert len(pieces) == len(order) + 1, "one image token per picture"
    for n, i in enumerate(order):
        f, rows, cols, hit = _features(engine, *pictures[i], session)
        feats.append(f)
        cached += hit
        pieces[n] += proc.replace_image_token({"rows": [rows], "cols": [cols]}, 0)
    ids = proc.tokenizer("".join(pieces), add_special_tokens=False, return_tensors="pt").input_ids.to(engine.device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if feats:
        inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=[torch.cat(feats)])}
    return inputs, int(ids.shape[1]), cached


# ---- generation ---------------------------------------------------------------------------------------------------


def _generation_config(engine: Engine, s: Sampling, max_new: int):
    from transformers import GenerationConfig

    kw = dict(max_new_tokens=max_new, do_sample=s.temperature > 0, repetition_penalty=1.05,
              eos_token_id=list(engine.eos_ids) or None, pad_token_id=engine.eos_ids[0] if engine.eos_ids else None)
    if s.temperature > 0:
        kw.update(temperature=s.temperature, top_p=s.top_p)
    if engine.ignore_eos:  # random weights: a full-length answer, the same work every run
        kw["min_new_tokens"] = max_new
    return GenerationConfig(**kw)


def _extras(engine: Engine, state: dict, stop: threading.Event, halt: threading.Event) -> dict:
    """Stopping criteria that end generation at the next token once `stop` is set (and count tokens), and for
    random weights a mask that keeps to ids the offline tokenizer can decode. `halt`: the reader went away."""
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class StopFlag(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            state["tokens"] = state.get("tokens", 0) + 1
            state.setdefault("first", time.perf_counter())
            done = stop.is_set() or halt.is_set()
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    class MaskVocab(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores[:, engine.vocab_limit:] = -float("inf")
            return scores

    kw = {"stopping_criteria": [StopFlag()]}
    if engine.vocab_limit:
        kw["logits_processor"] = [MaskVocab()]
    return kw


def stream_answer(engine: Engine, msgs: list[dict], images: tuple, s: Sampling, session: str,
                  stop: threading.Event, t0: float) -> Iterator[str | dict]:
    """The answer's text pieces as they are generated, then a dict of its stats. `stop` ends it at the next token."""
    import torch
    from transformers import TextIteratorStreamer

    pictures = open_images(images, engine.options)  # checked and decoded before the lock: nothing loads twice
    with engine.lock:
        inputs, prompt_tokens, cached = prepare(engine, msgs, pictures, session)
        room = engine.context - prompt_tokens
        if room < 1:
            raise UserError(f"This conversation with its images is {prompt_tokens} tokens long; the model reads at "
                            f"most {engine.context}: send fewer or smaller images, or start a new conversation.")
        max_new = min(s.max_new_tokens, room)
        if s.seed is not None:
            torch.manual_seed(s.seed)
        streamer = TextIteratorStreamer(engine.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        state: dict = {}
        halt = threading.Event()
        gen = dict(inputs, generation_config=_generation_config(engine, s, max_new), streamer=streamer,
                   **_extras(engine, state, stop, halt))
        thread = threading.Thread(target=_run, args=(engine, gen, state, streamer), name="vision-generate",
                                  daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop_set = stop.is_set()
            halt.set()  # Stop, a closed reader or an error: generation ends at the next token
            thread.join()
        if state.get("error") is not None:
            raise state["error"]
        tokens = max(0, state.get("tokens", 0))
        reason = "length" if tokens >= max_new else "cancelled" if stop_set else "stop"
        first = state.get("first")
        engine.last_run = {"prompt_tokens": prompt_tokens, "images_cached": cached}
        yield {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "finish_reason": reason,
               "first_token_s": round(first - t0, 3) if first else None, "images_cached": cached}


def _run(engine: Engine, gen: dict, state: dict, streamer) -> None:
    import torch

    try:
        with torch.inference_mode():
            engine.model.generate(**gen)
    except BaseException as e:  # handed to the request thread, which re-raises it
        state["error"] = e
        streamer.end()


# ---- the work methods ---------------------------------------------------------------------------------------------

WORK = Work()


def _answer(lease, msgs: list[dict], images: tuple, s: Sampling, session: str, job) -> Iterator[Delta | Done]:
    t0 = time.perf_counter()
    text, stats = "", {}
    with closing(stream_answer(lease.engine, msgs, images, s, session, job.stop, t0)) as pieces:
        for piece in pieces:
            if isinstance(piece, dict):
                stats = piece
                break
            if job.stop.is_set():
                return
            text += piece
            yield Delta(piece)
    record = lease.record(**{k: v for k, v in vars(s).items()}, **stats)
    yield Done(text, lease.weights.record()["model"], stats["prompt_tokens"], stats["completion_tokens"],
               stats["finish_reason"], stats["first_token_s"], stats["images_cached"], record)


@WORK.method(DescribeRequest, name="describe")
def describe(lease, req: DescribeRequest, job) -> Iterator[Delta | Done]:
    """Caption, SD prompt, OCR or a question about the request's image(s), streamed: Delta items, then Done."""
    images = check_count(req.images, int(lease.engine.options.max_images))
    msgs = describe_messages(DescribeRequest(images, req.mode, req.question, req.sampling, req.session))
    yield from _answer(lease, msgs, images, req.sampling, req.session, job)


@WORK.method(VisionChatRequest, name="chat")
def chat(lease, req: VisionChatRequest, job) -> Iterator[Delta | Done]:
    """A conversation with pictures, streamed: Delta items, then Done."""
    images = tuple(req.images or ())
    if len(images) > int(lease.engine.options.max_images):
        check_count(images, int(lease.engine.options.max_images))
    msgs = check_messages(req.messages, len(images))
    yield from _answer(lease, msgs, images, req.sampling, req.session, job)


@WORK.method(VisionChatRequest)
def complete(lease, req: VisionChatRequest, job) -> Done | None:
    """The whole chat answer at once (the non-streaming /v1 answer); None when stopped before its end."""
    final = None
    for final in chat(lease, req, job):
        pass
    return final if isinstance(final, Done) else None
