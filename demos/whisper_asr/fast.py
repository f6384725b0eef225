"""openai-whisper's fast path: many 30-s windows decoded as one batch, with a batch-wide greedy step.

`model.transcribe` decodes one window after another; here the audio is cut into <= 30 s windows at quiet points
(`engine.plan_windows`) and each batch of windows goes through one `decode` call, with `transcribe`'s temperature
fallback per window. Greedy decoding runs `fast_greedy_task()`, the library's `DecodingTask` with a step that
applies the timestamp rules to the whole batch at once. Tests check both against `whisper.decode`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np

from demos.whisper_asr.engine import (COMPRESSION_RATIO_THRESHOLD, LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD,
                                      SAMPLE_RATE, OpenAIWhisperEngine, Options, Segment, Transcript, Word, clamped,
                                      plan_windows)


def run_openai(engine: OpenAIWhisperEngine, samples: np.ndarray, opts: Options,
               should_stop: Callable[[], bool] | None = None) -> Iterator[Transcript]:
    """Partial transcripts as each batch of windows finishes, then the final one (done=True). `should_stop()`, asked
    at every greedy token, ends a batch early (its windows unfinished: the caller stops reading)."""
    import torch
    import whisper
    from whisper.audio import HOP_LENGTH, N_SAMPLES

    model = engine.model
    duration = samples.size / SAMPLE_RATE
    speech, to_original = _speech_map(samples, opts)
    out = Transcript("", [], opts.language or ("en" if not engine.multilingual else ""), 1.0, duration,
                     done=False, progress=0.0)
    if speech.size < SAMPLE_RATE // 10:
        out.done = True
        yield out
        return
    device = next(model.parameters()).device
    with torch.inference_mode():
        # one log-mel over the whole audio, like `transcribe` (its dB floor is relative to the loudest frame)
        mel = whisper.log_mel_spectrogram(torch.from_numpy(speech), model.dims.n_mels, padding=N_SAMPLES,
                                          device=device)
        windows = [(s // HOP_LENGTH, math.ceil(e / HOP_LENGTH)) for s, e in plan_windows(speech)]
        language, tokenizer = _language(engine, mel, windows[0], opts, out)
        batch = opts.batch_size or (16 if device.type == "cuda" else 4)
        done = 0
        for i in range(0, len(windows), batch):
            group = windows[i:i + batch]
            mels = torch.stack([whisper.pad_or_trim(mel[:, a:b], whisper.audio.N_FRAMES) for a, b in group])
            results = decode_windows(engine, mels, opts, language, tokenizer, should_stop)
            if should_stop is not None and should_stop():
                return
            for (a, b), r, m in zip(group, results, mels):
                if r is None:  # judged silence: skipped, as `transcribe` does
                    continue
                for seg in _window_segments(engine, tokenizer, r, m, (a, b), opts, to_original):
                    out.segments.append(clamped(seg, out, duration))
            done += len(group)
            out.text = " ".join(s.text for s in out.segments)
            out.progress = done / len(windows)
            yield out
    out.done, out.progress = True, 1.0
    yield out


def _language(engine: OpenAIWhisperEngine, mel, window: tuple[int, int], opts: Options, out: Transcript):
    """(language, tokenizer): the asked language, or the one detected on the first window (set on `out`)."""
    import whisper
    from whisper.tokenizer import get_tokenizer

    model = engine.model
    language, prob = opts.language, 1.0
    if engine.multilingual and language is None:
        first = whisper.pad_or_trim(mel[:, window[0]:window[1]], whisper.audio.N_FRAMES).to(_dtype(engine))
        _, probs = model.detect_language(first)
        language = max(probs, key=probs.get)
        prob = float(probs[language])
    out.language, out.language_probability = language or "en", prob
    tokenizer = get_tokenizer(engine.multilingual, num_languages=model.num_languages,
                              language=language or "en", task=opts.task)
    return language, tokenizer


def _window_segments(engine, tokenizer, result, mel, window: tuple[int, int], opts: Options, to_original):
    """One decoded window's segments (and words), in the original audio's times."""
    from whisper.audio import HOP_LENGTH

    a, b = window
    offset, length = a * HOP_LENGTH / SAMPLE_RATE, (b - a) * HOP_LENGTH / SAMPLE_RATE
    segs = _segments_from_tokens(result.tokens, tokenizer, offset, length)
    if opts.word_timestamps and segs:
        _add_words(engine, tokenizer, segs, mel, a, b - a)
    for seg in segs:
        seg.start, seg.end = to_original(seg.start), to_original(seg.end, True)
        for w in seg.words:
            w.start, w.end = to_original(w.start), to_original(w.end, True)
    return segs


def _speech_map(samples: np.ndarray, opts: Options):
    """(speech-only audio, function mapping its times back to the original) using faster-whisper's Silero VAD."""
    if not opts.vad:
        return samples, lambda t, end=False: t
    from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(samples, VadOptions())
    if not chunks:
        return samples[:0], lambda t, end=False: t
    speech = np.concatenate([samples[c["start"]:c["end"]] for c in chunks])
    mapping = SpeechTimestampsMap(chunks, SAMPLE_RATE)
    return speech, lambda t, end=False: mapping.get_original_time(t, is_end=end)


def _dtype(engine: OpenAIWhisperEngine):
    import torch

    return torch.float16 if engine.dtype == "float16" else torch.float32


def decode_windows(engine: OpenAIWhisperEngine, mels, opts: Options, language: str | None, tokenizer=None,
                   should_stop: Callable[[], bool] | None = None):
    """Decode a batch of 30-s log-mel windows at once, with `transcribe`'s temperature fallback per window.

    Returns one `whisper.DecodingResult` per window, or None where the window is judged to be silence.
    """
    import whisper

    model = engine.model
    eot = tokenizer.eot if tokenizer is not None else None
    fp16 = engine.dtype == "float16"
    mels = mels.to(_dtype(engine))
    results: list = [None] * len(mels)
    todo = list(range(len(mels)))
    # no fallback when forcing lengths (benchmarks) or on random weights (every window would fail the checks)
    temps = opts.temperatures[:1] if opts.force_tokens is not None or engine.random else opts.temperatures
    for t in temps:
        kw = dict(task=opts.task, language=language, temperature=t, fp16=fp16,
                  prompt=opts.initial_prompt or None, sample_len=opts.force_tokens or engine.sample_len)
        if t == 0 and opts.beam_size > 1:
            kw.update(beam_size=int(opts.beam_size), patience=1.0)
        elif t > 0:
            kw.update(best_of=5)
        if opts.force_tokens is not None:  # equal work per window: end-of-text can never be chosen
            kw["suppress_tokens"] = [-1, eot if eot is not None else model.dims.n_vocab - 1]
        decoded = _decode_batched(model, mels[todo], whisper.DecodingOptions(**kw), should_stop)
        if should_stop is not None and should_stop():
            return results
        retry = []
        for i, r in zip(todo, decoded):
            results[i] = r
            silent = r.no_speech_prob > NO_SPEECH_THRESHOLD
            if (r.compression_ratio > COMPRESSION_RATIO_THRESHOLD or r.avg_logprob < LOGPROB_THRESHOLD) and not silent:
                retry.append(i)
        todo = retry
        if not todo or opts.force_tokens is not None:
            break
    for i, r in enumerate(results):
        if r.no_speech_prob > NO_SPEECH_THRESHOLD and r.avg_logprob < LOGPROB_THRESHOLD and not engine.random \
                and opts.force_tokens is None:
            results[i] = None
    return results


def _decode_batched(model, mels, options, should_stop: Callable[[], bool] | None = None):
    """`whisper.decode` on a batch; on CUDA out-of-memory, halve the batch and go on (the work is the same).

    Greedy decoding (temperature 0, no beam) runs `fast_greedy_task()`: the same task with a batch-wide step, which
    asks `should_stop()` at every token.
    """
    import torch
    import whisper

    greedy = options.temperature == 0 and not options.beam_size and not options.best_of
    size, out, i = len(mels), [], 0
    while i < len(mels):
        try:
            if greedy:
                task = fast_greedy_task()(model, options)
                task.should_stop = should_stop
                with torch.no_grad():
                    out.extend(task.run(mels[i:i + size]))
            else:
                out.extend(whisper.decode(model, mels[i:i + size], options))
            i += size
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
    return out


@lru_cache(maxsize=1)
def fast_greedy_task():
    """whisper's `DecodingTask` with a faster greedy step for a batch of windows (made lazily: whisper needs torch).

    The library's step applies the timestamp rules one window at a time: per window and per token it copies the
    tokens to the host (`.tolist()`), indexes with boolean masks and compares GPU scalars in Python, each a device
    sync, so a batch of windows decodes little faster than the windows one by one. Here the same rules run on the
    whole batch at once, from a small per-window state (was the last token a timestamp, the one before, the last
    timestamp), with masks built once per batch, into a preallocated token buffer, checking for the end every 8
    tokens instead of syncing on every one. Same model calls (the library's key/value cache), same filters, same
    greedy choice: tests check the tokens and log-probabilities against `whisper.decode`.
    """
    from whisper.decoding import DecodingTask

    class FastGreedyTask(DecodingTask):
        def _main_loop(self, audio_features, tokens):
            return _greedy_main_loop(self, audio_features, tokens, DecodingTask._main_loop)

    return FastGreedyTask


def _greedy_main_loop(task, audio_features, tokens, fallback):
    """FastGreedyTask's `_main_loop` (see `fast_greedy_task`); `fallback`: the library's, for unknown filters."""
    import torch
    import torch.nn.functional as F
    from whisper.decoding import ApplyTimestampRules, SuppressBlank, SuppressTokens

    rules = [f for f in task.logit_filters if isinstance(f, ApplyTimestampRules)]
    blank = [f for f in task.logit_filters if isinstance(f, SuppressBlank)]
    suppress = [f for f in task.logit_filters if isinstance(f, SuppressTokens)]
    if len(rules) + len(blank) + len(suppress) != len(task.logit_filters) or task.n_group != 1:
        return fallback(task, audio_features, tokens)  # a filter this step does not know
    tk, dev, n, begin = task.tokenizer, audio_features.device, tokens.shape[0], tokens.shape[1]
    eot, ts0 = tk.eot, tk.timestamp_begin
    masks = _vocab_masks(task, rules, suppress, dev)
    last_ts = torch.zeros(n, dtype=torch.bool, device=dev)  # the last sampled token was a timestamp
    pen_ts = torch.ones(n, dtype=torch.bool, device=dev)  # the one before too (or fewer than 2 sampled)
    stamp = torch.full((n,), -1, dtype=torch.long, device=dev)  # the last timestamp token, -1: none
    buf = torch.full((n, min(begin + task.sample_len, task.n_ctx + 1)), eot, dtype=tokens.dtype, device=dev)
    buf[:, :begin] = tokens
    sum_logprobs = torch.zeros(n, device=dev)
    no_speech_probs = [np.nan] * n
    length, every = begin, 1 if dev.type == "cpu" else 8
    should_stop = getattr(task, "should_stop", None)
    try:
        for i in range(task.sample_len):
            # Stop, Cancel, a client gone: the caller stops reading (after one token: whisper ranks no empty text)
            if i and should_stop is not None and should_stop():
                break
            logits = task.inference.logits(buf[:, :length], audio_features)
            if i == 0 and tk.no_speech is not None:
                no_speech_probs = logits[:, task.sot_index].float().softmax(dim=-1)[:, tk.no_speech].tolist()
            logits = logits[:, -1]
            if i == 0:
                for f in blank:
                    f.apply(logits, buf[:, :length])
            logits.masked_fill_(masks.banned, -np.inf)
            if rules:
                _apply_timestamp_rules(logits, i, masks, last_ts, pen_ts, stamp, ts0)
            nxt = logits.argmax(dim=-1)
            ended = buf[:, length - 1] == eot
            chosen = F.log_softmax(logits.float(), dim=-1).gather(1, nxt[:, None])[:, 0]
            sum_logprobs += chosen * ~ended
            nxt = torch.where(ended, torch.full_like(nxt, eot), nxt)
            buf[:, length] = nxt
            length += 1
            pen_ts = last_ts if i >= 1 else pen_ts
            last_ts = nxt >= ts0
            stamp = torch.where(last_ts, nxt, stamp)
            if length > task.n_ctx or length == buf.shape[1]:
                break
            if (i + 1) % every == 0 and bool((nxt == eot).all()):
                break
    finally:
        task.inference.cleanup_caching()
    return buf[:, :length], sum_logprobs, no_speech_probs


def _vocab_masks(task, rules, suppress, dev) -> SimpleNamespace:
    """The vocabulary masks of one batch, built once: banned tokens, timestamps, text, the allowed first tokens."""
    import torch

    tk = task.tokenizer
    cols = torch.arange(task.model.dims.n_vocab, device=dev)
    banned = torch.zeros(cols.shape, dtype=torch.bool, device=dev)
    for f in suppress:
        banned[list(f.suppress_tokens)] = True
    if rules and tk.no_timestamps is not None:
        banned[tk.no_timestamps] = True
    ts0 = tk.timestamp_begin
    before_ts = cols < ts0
    first = before_ts.clone()  # timestamp rules: the first token must be a timestamp ...
    if rules and rules[0].max_initial_timestamp_index is not None:
        first |= cols > ts0 + rules[0].max_initial_timestamp_index  # ... no later than the set maximum
    return SimpleNamespace(cols=cols, banned=banned, is_ts=cols >= ts0, is_text=cols < tk.eot, before_ts=before_ts,
                           first=first)


def _apply_timestamp_rules(logits, i: int, masks, last_ts, pen_ts, stamp, ts0: int) -> None:
    """whisper's `ApplyTimestampRules` for the whole batch at once, in place on `logits`."""
    import torch
    import torch.nn.functional as F

    if i == 0:
        logits.masked_fill_(masks.first, -np.inf)
    else:
        pair_done = last_ts & pen_ts  # a closed pair: text must follow
        pair_open = last_ts & ~pen_ts  # an opening timestamp: another timestamp or EOT
        logits.masked_fill_(pair_done[:, None] & masks.is_ts, -np.inf)
        logits.masked_fill_(pair_open[:, None] & masks.is_text, -np.inf)
        floor = torch.where(pair_open, stamp, stamp + 1)  # never earlier, never empty
        logits.masked_fill_((stamp >= 0)[:, None] & masks.is_ts & (masks.cols < floor[:, None]), -np.inf)
    lp = F.log_softmax(logits.float(), dim=-1)
    ts_wins = lp[:, ts0:].logsumexp(dim=-1) > lp[:, :ts0].max(dim=-1).values
    logits.masked_fill_(ts_wins[:, None] & masks.before_ts, -np.inf)


def _segments_from_tokens(tokens, tokenizer, offset: float, length: float) -> list[Segment]:
    """Split a window's tokens at timestamp tokens into segments (times relative to the audio start)."""
    ts0, prec = tokenizer.timestamp_begin, 0.02
    segs, start, text = [], None, []
    for tok in list(tokens):
        if tok >= ts0:
            t = min((tok - ts0) * prec, length)
            if text:
                segs.append((start if start is not None else 0.0, t, text))
                text, start = [], None
            else:
                start = t
        elif tok < tokenizer.eot:
            text.append(tok)
    if text:
        segs.append((start if start is not None else (segs[-1][1] if segs else 0.0), length, text))
    out = []
    for s, e, toks in segs:
        words = tokenizer.decode(toks).strip()
        if words:
            seg = Segment(round(offset + s, 3), round(offset + max(e, s), 3), words)
            seg.tokens = toks  # kept for word alignment
            out.append(seg)
    return out


def _add_words(engine, tokenizer, segs: list[Segment], mel, frame0: int, n_frames: int) -> None:
    from whisper.timing import add_word_timestamps

    dicts = [{"seek": frame0, "start": s.start, "end": s.end, "tokens": s.tokens, "text": s.text} for s in segs]
    add_word_timestamps(segments=dicts, model=engine.model, tokenizer=tokenizer, mel=mel, num_frames=n_frames,
                        last_speech_timestamp=segs[0].start)
    for seg, d in zip(segs, dicts):
        seg.words = [Word(float(w["start"]), float(w["end"]), w["word"], round(float(w["probability"]), 4))
                     for w in d.get("words", [])]
