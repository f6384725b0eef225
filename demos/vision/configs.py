"""Architecture configs for `--weights random` (architecture-true, no download) and the offline processor of those
random models: the real model classes (Idefics3ForConditionalGeneration, which is what SmolVLM-256M/500M-Instruct's
config.json names, and Qwen3VLForConditionalGeneration), shrunk for tests.

SmolVLM-256M/500M-Instruct: a SigLIP base-patch16-512 vision encoder (768 wide, 12 layers, 12 heads), a pixel
shuffle of 4 (64 tokens per 512-px crop) and SmolLM2-135M / SmolLM2-360M as the text model; the processor upscales
an image to 2048 px on its longest side and cuts 512-px crops (4x4 + one global view for a square picture).
Qwen3-VL-2B-Instruct: a 24-layer 1024-wide ViT (patch 16, 2x2 merge, DeepStack at layers 5, 11, 17) and a 28-layer
2048-wide Qwen3 text model (16 heads, 8 KV heads, head_dim 128).
"""

from __future__ import annotations

IDEFICS3, QWEN3_VL = "idefics3", "qwen3_vl"

_SIGLIP_512 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   image_size=512, patch_size=16)
CONFIGS = {
    "smolvlm-256m": dict(kind=IDEFICS3, scale_factor=4, vision=_SIGLIP_512, longest_edge=2048,
                         text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                                   rope_theta=100000.0, rms_norm_eps=1e-5, vocab_size=49280)),
    "smolvlm-500m": dict(kind=IDEFICS3, scale_factor=4, vision=_SIGLIP_512, longest_edge=2048,
                         text=dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                                   num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                                   rope_theta=100000.0, rms_norm_eps=1e-5, vocab_size=49280)),
    "qwen3-vl-2b": dict(kind=QWEN3_VL,
                        vision=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                                    temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=2048,
                                    num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17]),
                        text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                                  num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                  max_position_embeddings=262144, rope_theta=5000000.0, rms_norm_eps=1e-6,
                                  vocab_size=151936, tie_word_embeddings=True)),
    # Tests: milliseconds to build. 64-px crops of 16-px patches, pixel shuffle 2: 4 tokens per crop.
    "tiny": dict(kind=IDEFICS3, scale_factor=2, longest_edge=128,
                 vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             image_size=64, patch_size=16),
                 text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=2048, rope_theta=10000.0,
                           rms_norm_eps=1e-5, vocab_size=0)),
}

# SmolVLM's chat template (as its tokenizer_config.json has it): "User:<image>question<end_of_utterance>\nAssistant:"
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
_IDEFICS3_SPECIALS = ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 9) for c in range(1, 9)]


def offline_processor(cfg: dict):
    """An Idefics3Processor for a random model: llm_chat's offline BPE tokenizer with SmolVLM's image tokens and chat
    template, and an Idefics3ImageProcessor with the architecture's crop size."""
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    from demos.llm_chat.configs import offline_tokenizer

    tok = offline_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": _IDEFICS3_SPECIALS})
    tok.eos_token = "<end_of_utterance>"
    crop = cfg["vision"]["image_size"]
    images = Idefics3ImageProcessor(size={"longest_edge": cfg["longest_edge"]}, max_image_size={"longest_edge": crop},
                                    image_mean=[0.5] * 3, image_std=[0.5] * 3, resample=1)
    seq = (crop // cfg["vision"]["patch_size"]) ** 2 // cfg["scale_factor"] ** 2
    return Idefics3Processor(images, tok, image_seq_len=seq, chat_template=SMOLVLM_TEMPLATE)


def random_model(config_key: str, torch_dtype):
    """(model, processor): the architecture of `config_key` with random weights (seed 0) and an offline processor."""
    import torch
    from transformers import AutoModelForImageTextToText, Idefics3Config

    cfg = CONFIGS[config_key]
    if cfg["kind"] != IDEFICS3:
        raise NotImplementedError(f"no offline processor for {config_key}; use its real weights")
    proc = offline_processor(cfg)
    tok = proc.tokenizer
    text = dict(cfg["text"], vocab_size=cfg["text"]["vocab_size"] or len(tok), model_type="llama",
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    config = Idefics3Config(text_config=text, vision_config=dict(cfg["vision"]), scale_factor=cfg["scale_factor"],
                            image_token_id=tok.convert_tokens_to_ids("<image>"), pad_token_id=tok.pad_token_id,
                            tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype)
    return model, proc


def guess_config(model_id: str) -> str:
    """The architecture config for a random model named only by its id."""
    low = model_id.lower()
    return next((k for k in ("smolvlm-500m", "qwen3-vl-2b") if k in low), "smolvlm-256m")
