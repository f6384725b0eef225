"""Architecture configs for `--weights random` (architecture-true, no download), the random models built from them,
and an offline tokenizer with the ChatML template for those models."""

from __future__ import annotations

# Values from the checkpoints' config.json.
LLAMA, QWEN2 = "llama", "qwen2"
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
    # Tests and offline smoke runs: milliseconds to build, a 1024-token context.
    "tiny": dict(model_type=LLAMA, vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rope_theta=10000.0,
                 rms_norm_eps=1e-5, tie_word_embeddings=True),
}

# ChatML, used by SmolLM2 and Qwen2.5; the offline tokenizer of random models uses it too.
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France and Rome is the capital of Italy. "
    "A language model predicts the next token from the tokens before it. Ask me anything: what, why, how, when, "
    "where and who are good ways to start a question. The answer is yes, no, maybe, or it depends on the context. "
    "Numbers like 1, 2, 3, 10, 42 and 100 appear in text; so do emoji like 🙂 and words in other languages, café, "
    "naïve, Straße, 東京. Hello! How are you today? I am fine, thank you. Please write a short poem about the sea."
)


def offline_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained in milliseconds on a built-in paragraph, with the ChatML template."""
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
    return fast


def random_model(config_key: str, torch_dtype):
    """(model, tokenizer): the architecture of `config_key` with random weights (seed 0), and the offline tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    tok = offline_tokenizer()
    cfg = dict(CONFIGS[config_key])
    kind = cfg.pop("model_type")
    if not cfg["vocab_size"]:
        cfg["vocab_size"] = len(tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    cls = LlamaConfig if kind == LLAMA else Qwen2Config
    config = cls(**cfg, eos_token_id=im_end, pad_token_id=pad, bos_token_id=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    return model, tok


def guess_config(model_id: str) -> str:
    """The architecture config for a random model named only by its id (an unlisted id with `--weights random`)."""
    low = model_id.lower()
    for key in ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m", "smollm2-360m"):
        if key in low:
            return key
    return "smollm2-360m"
