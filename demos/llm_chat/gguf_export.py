"""A Llama, Mistral, Qwen2 or Qwen3 checkpoint folder (SmolLM2, Qwen2.5, Qwen3) written as one Q8_0 GGUF file, as
llama.cpp's own converter writes it, for OpenVINO GenAI's GGUF reader (ov_genai.py).

Tensors are read one at a time from the folder's safetensors files (memory-mapped) and written one at a time, so
the export holds one tensor's float32 copy at a time, and the Q8_0 copies (about a quarter of float32) until they
are written. Matrices are quantized to Q8_0 (blocks of 32 int8 values with one fp16 scale: the GGUF type closest to
OpenVINO's own int8 weight compression); norms and biases stay float32.

For the "llama" architecture (Mistral is written as one, as llama.cpp does) Q and K rows are permuted into
llama.cpp's rotary layout (pairs of halves interleaved), which is what a GGUF reader expects of it; "qwen2" and
"qwen3" keep the checkpoint's rotate-half order (llama.cpp's NEOX rotary type). Measured on tiny random models with
large weights, GenAI's greedy token matched transformers' at 29-32 of 32 positions with the right order and at 0-5
with the other (tests/test_llm_chat_ov_genai.py holds it).

The tokenizer (tokenizer.json's BPE vocabulary and merges, its special tokens and chat template) goes into the
file's metadata with the gguf package's own readers. Never imports gradio or torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# config.json's model_type -> the GGUF architecture it is written as
GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
ARCHITECTURES = tuple(GGUF_ARCH)

# checkpoint name (after "model.layers.N.") -> GGUF name (after "blk.N.")
_LAYER = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",  # Qwen3
}
# projections that may carry a bias: Qwen2's q/k/v, and all four with Llama's attention_bias
_BIASED = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
_TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(name: str) -> str:
    """The GGUF tensor name of a checkpoint tensor; ValueError for one this export does not know."""
    stem, _, kind = name.rpartition(".")
    parts = stem.split(".")
    layer = ".".join(parts[3:]) if len(parts) >= 4 and parts[:2] == ["model", "layers"] else None
    if kind == "weight" and stem in _TOP:
        return f"{_TOP[stem]}.weight"
    if layer in _LAYER and (kind == "weight" or (kind == "bias" and layer in _BIASED)):
        return f"blk.{int(parts[2])}.{_LAYER[layer]}.{kind}"
    raise ValueError(f"the tensor {name} has no place in a GGUF file")


def interleaved_rotary(arch: str) -> bool:
    """Whether a GGUF reader expects Q and K rows in llama.cpp's interleaved rotary order for `arch` ("llama"; the
    Qwen architectures keep rotate-half, llama.cpp's NEOX type)."""
    return arch == "llama"


def rope_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """Q or K rows from the checkpoint's rotate-half layout into llama.cpp's interleaved one (its converter's
    LlamaModel.permute): within each head, row i of the first half and row i of the second half become rows 2i, 2i+1."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensors(folder: Path):
    """(name, float32 array) of every tensor in the folder's safetensors files, one at a time."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {folder.name}")
    for f in files:
        with safe_open(str(f), framework="np") as st:
            for name in st.keys():
                yield name, st.get_tensor(name).astype(np.float32)


def rope_theta(config: dict) -> float:
    """The rotary base: config.json's rope_theta, or (transformers 5) rope_parameters' one; ValueError for a scaled
    rotary embedding (Llama 3.1's, YaRN), which this export does not write."""
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind != "default":
        raise ValueError(f"a {kind} rotary embedding is not written into the GGUF export")
    if config.get("use_sliding_window", True) and config.get("sliding_window"):
        raise ValueError("a sliding attention window is not written into the GGUF export")  # GenAI attends to all
    return float(config.get("rope_theta") or rope.get("rope_theta") or 10000.0)


def _metadata(w, config: dict, name: str) -> None:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    w.add_name(name)
    w.add_context_length(int(config.get("max_position_embeddings", 2048)))
    w.add_embedding_length(hidden)
    w.add_block_count(int(config["num_hidden_layers"]))
    w.add_feed_forward_length(int(config["intermediate_size"]))
    w.add_head_count(heads)
    w.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    head_dim = int(config.get("head_dim") or hidden // heads)
    w.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:  # Qwen3: heads wider than hidden / heads (llama.cpp writes both lengths)
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_rope_freq_base(rope_theta(config))
    w.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(int(config["vocab_size"]))
    w.add_file_type(7)  # llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0


def _tokenizer(w, folder: Path, vocab_size: int) -> None:
    """tokenizer.json's byte-level BPE vocabulary (padded to the model's vocabulary size, as llama.cpp pads it), its
    merges, special token ids and chat template."""
    import gguf

    bpe = gguf.vocab.BpeVocab(folder)
    tokens, types = [], []
    for text, _score, kind in bpe.all_tokens():
        tokens.append(text)
        types.append(kind)
    # tokenizer.json's added tokens: special ones are CONTROL, others USER_DEFINED, as llama.cpp's converter marks
    # them (GenAI's reader failed to compile the model with its special tokens marked NORMAL)
    added = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("added_tokens", [])
    for t in added:
        if 0 <= int(t["id"]) < len(types):
            types[int(t["id"])] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]".encode())
        types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens[:vocab_size])
    w.add_token_types(types[:vocab_size])
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size).add_to_gguf(w, quiet=True)


def export(folder: Path, out: Path, name: str = "") -> Path:
    """Write `folder` (config.json, tokenizer.json, *.safetensors) as a Q8_0 GGUF file at `out`."""
    import gguf

    folder, out = Path(folder), Path(out)
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") not in GGUF_ARCH:
        raise ValueError(f"a {config.get('model_type')} checkpoint has no GGUF layout here")
    arch = GGUF_ARCH[config["model_type"]]
    rope_theta(config)  # refuses what the file cannot say (a scaled rotary embedding, a sliding window) before writing
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    interleave = interleaved_rotary(arch)
    w = gguf.GGUFWriter(str(out), arch=arch)
    _metadata(w, config, name or folder.name)
    _tokenizer(w, folder, int(config["vocab_size"]))
    tied = bool(config.get("tie_word_embeddings", False))
    for key, a in _tensors(folder):
        if tied and key == "lm_head.weight":
            continue  # the reader uses token_embd for the output, as llama.cpp does for tied embeddings
        target = gguf_name(key)
        if interleave and target.endswith(("attn_q.weight", "attn_q.bias")):
            a = rope_permute(a, heads)
        elif interleave and target.endswith(("attn_k.weight", "attn_k.bias")):
            a = rope_permute(a, kv_heads)
        if a.ndim == 2 and a.shape[1] % 32 == 0:
            w.add_tensor(target, gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(target, np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
