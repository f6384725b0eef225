"""Architecture configs for `--weights random` (architecture-true, no download), the random models built from them,
and an offline tokenizer with the ChatML template for those models (with Qwen3's thinking switch for the models
that have one)."""

from __future__ import annotations

# Values from the checkpoints' config.json.
LLAMA, QWEN2, QWEN3, SMOLLM3 = "llama", "qwen2", "qwen3", "smollm3"
CONFIGS = {
    "smollm2-135m": dict(model_type=LLAMA, vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=True),
    "smollm2-360m": dict(model_type=LLAMA, vocab_size=49152, hidden_size=960, intermediate_size=2560,
                         num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(model_type=QWEN2, vocab_size=151936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(model_type=QWEN2, vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    "qwen3-0.6b": dict(model_type=QWEN3, vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True),
    "qwen3-1.7b": dict(model_type=QWEN3, vocab_size=151936, hidden_size=2048, intermediate_size=6144,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True),
    # Every fourth layer has no rotary embedding (NoPE): SmolLM3Config's default no_rope_layer_interval of 4.
    "smollm3-3b": dict(model_type=SMOLLM3, vocab_size=128256, hidden_size=2048, intermediate_size=11008,
                       num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=4,
                       max_position_embeddings=65536, rope_theta=5000000.0, rms_norm_eps=1e-6,
                       no_rope_layer_interval=4, tie_word_embeddings=True),
    # Tests and offline smoke runs: milliseconds to build, a 1024-token context.
    "tiny": dict(model_type=LLAMA, vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rope_theta=10000.0,
                 rms_norm_eps=1e-5, tie_word_embeddings=True),
    "tiny-qwen3": dict(model_type=QWEN3, vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
}
# Architectures whose chat template has Qwen3's thinking switch (`enable_thinking`); their random builds get it too.
THINKING = {QWEN3, SMOLLM3}

# ChatML, used by SmolLM2 and Qwen2.5; the offline tokenizer of random models uses it too.
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# Qwen3's template, cut to what the thinking switch does: with enable_thinking false the answer starts after an
# empty think block (the model answers at once); the reasoning of earlier answers is left out of the prompt.
CHATML_THINKING = (
    "{% for message in messages %}{% set content = message['content'] %}"
    "{% if message['role'] == 'assistant' %}{% set content = content.split('</think>')[-1].lstrip('\n') %}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + content + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% endif %}"
    "{% endif %}")
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]  # added, not special, as in Qwen3's tokenizer: they decode as text
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France and Rome is the capital of Italy. "
    "A language model predicts the next token from the tokens before it. Ask me anything: what, why, how, when, "
    "where and who are good ways to start a question. The answer is yes, no, maybe, or it depends on the context. "
    "Numbers like 1, 2, 3, 10, 42 and 100 appear in text; so do emoji like 🙂 and words in other languages, café, "
    "naïve, Straße, 東京. Hello! How are you today? I am fine, thank you. Please write a short poem about the sea."
)


def offline_tokenizer(vocab_size: int = 512, thinking: bool = False):
    """A byte-level BPE tokenizer trained in milliseconds on a built-in paragraph, with the ChatML template
    (`thinking`: with Qwen3's thinking switch and its <think> and </think> tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    if thinking:
        fast.add_tokens(THINK_TOKENS)
        fast.chat_template = CHATML_THINKING
    return fast


def model_config(config_key: str):
    """(transformers config, offline tokenizer) of `config_key`: the architecture with the tokenizer's special ids."""
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config, SmolLM3Config

    cfg = dict(CONFIGS[config_key])
    kind = cfg.pop("model_type")
    tok = offline_tokenizer(thinking=kind in THINKING)
    if not cfg["vocab_size"]:
        cfg["vocab_size"] = len(tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    cls = {LLAMA: LlamaConfig, QWEN2: Qwen2Config, QWEN3: Qwen3Config, SMOLLM3: SmolLM3Config}[kind]
    return cls(**cfg, eos_token_id=im_end, pad_token_id=pad, bos_token_id=None), tok


def random_model(config_key: str, torch_dtype):
    """(model, tokenizer): the architecture of `config_key` with random weights (seed 0), and the offline tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    config, tok = model_config(config_key)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    return model, tok


def guess_config(model_id: str) -> str:
    """The architecture config for a random model named only by its id (an unlisted id with `--weights random`)."""
    low = model_id.lower()
    for key in ("qwen3-1.7b", "qwen3-0.6b", "smollm3-3b", "qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m",
                "smollm2-360m"):
        if key in low:
            return key
    return "smollm2-360m"
