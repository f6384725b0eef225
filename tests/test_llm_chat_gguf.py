"""LLM chat with a local GGUF file: what the Models tab says it is, and no server path in any name a visitor sees.

The GGUF is written in the test: the tiny random Llama (tests) quantized to Q4_1 with the `gguf` package, its
offline tokenizer in the file's metadata, in a few milliseconds (no download)."""

from __future__ import annotations

import json

import pytest

import demos.llm_chat as llm_chat
from demos.llm_chat import engine as L
from demos.llm_chat.gguf_file import gguf_format, gguf_quantization
from demos.llm_chat.messages import build_messages
from hub.models import ModelManager
from hub.models_tab import status_rows
from tests import WAIT_S

gguf = pytest.importorskip("gguf")  # transformers needs it to load any GGUF


def write_tiny_gguf(path, quant: str = "Q4_1", file_type: bool = True):
    """The tiny random Llama of the tests as a llama.cpp-style GGUF: weight matrices in `quant`, norms in F32, a
    byte-level BPE tokenizer with merges and the ChatML template. Returns `path`."""
    import numpy as np
    import torch
    from gguf.quants import quantize

    from demos.llm_chat.configs import random_model

    model, tok = random_model("tiny", torch.float32)
    cfg, kind = model.config, gguf.GGMLQuantizationType[quant]
    w = gguf.GGUFWriter(str(path), "llama")
    if file_type:
        w.add_file_type(gguf.LlamaFileType[f"MOSTLY_{quant}"])
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    vocab = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(vocab)
    w.add_token_types([3 if t in tok.all_special_tokens else 1 for t in vocab])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m)
                        for m in json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]])
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(tok.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    hf = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
          "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(cfg.num_hidden_layers):
        names.update({f"model.layers.{i}.{a}.weight": f"blk.{i}.{b}.weight" for a, b in hf.items()})
    weights = model.state_dict()
    for key, name in names.items():
        a = weights[key].numpy().astype(np.float32)
        if a.ndim == 2:
            w.add_tensor(name, quantize(a, kind), raw_dtype=kind)
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf-models") / "tiny-chat.Q4_1.gguf")


def test_the_quantization_is_read_from_the_file(tmp_path):
    assert gguf_quantization(write_tiny_gguf(tmp_path / "a.gguf", "Q4_1")) == "Q4_1"
    # no general.file_type: the type most weight matrices have
    assert gguf_quantization(write_tiny_gguf(tmp_path / "b.gguf", "Q8_0", file_type=False)) == "Q8_0"
    bad = tmp_path / "c.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00 cut short")
    assert gguf_quantization(bad) == "quantized"  # a label, never an error
    assert gguf_format(tmp_path / "a.gguf", "bfloat16") == "Q4_1 GGUF, dequantized to bfloat16 in memory"


def test_a_gguf_model_is_reported_as_what_it_is_and_by_its_name(settings, tiny_gguf):
    """Issue 16 point 4: the Models tab said "float32" for a Q4_1 GGUF; records named it by its path."""
    from dataclasses import replace

    s = replace(settings, models={"llm_chat": str(tiny_gguf)})
    manager = ModelManager(s, {"llm_chat": (llm_chat.SPEC, llm_chat.DEMO.loader(), llm_chat.DEMO.work)})
    with manager.use("llm_chat") as lease:
        assert lease.engine.weights_format == "Q4_1 GGUF, dequantized to float32 in memory"
        final = L.chat(lease.engine, build_messages("", [], "Hello"), L.check_params(max_new_tokens=4))
        record = lease.record()
    assert final.new_tokens >= 1
    rows = status_rows(manager)  # the Models tab's table
    assert [r[1:5] for r in rows] == [["tiny-chat.Q4_1.gguf (local)", "CPU", "cpu",
                                       "Q4_1 GGUF, dequantized to float32 in memory"]]
    assert record["model"] == "tiny-chat.Q4_1.gguf (local)"
    assert str(tiny_gguf.parent) not in json.dumps([record, rows])


def test_the_tab_and_both_apis_never_show_the_gguf_path(serve, tiny_gguf):
    import httpx

    client = serve(("llm_chat",), models={"llm_chat": str(tiny_gguf)})
    folder = str(tiny_gguf.parent)
    answer, details = client.predict("Hello", max_new_tokens=4, api_name="/chat")
    assert "4 tokens" in answer and details["model"] == "tiny-chat.Q4_1.gguf (local)"
    params = {p["parameter_name"]: p for p in client.view_api(return_format="dict", print_info=False)
              ["named_endpoints"]["/chat"]["parameters"]}
    assert params["model"]["parameter_default"] == "tiny-chat.Q4_1.gguf (local)"
    url = client.src.rstrip("/")
    body = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=WAIT_S)
    assert r.status_code == 200 and r.json()["model"] == "tiny-chat.Q4_1.gguf (local)", r.text
    with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=WAIT_S) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: {")]
    assert events and all('"model": "tiny-chat.Q4_1.gguf (local)"' in e for e in events)
    pages = [httpx.get(url + p, timeout=WAIT_S).text for p in ("/config", "/gradio_api/info", "/v1/models")]
    assert all("tiny-chat.Q4_1.gguf (local)" in p for p in pages)
    assert all(folder not in p for p in pages), "the server's folder appears in the page config or an API listing"
