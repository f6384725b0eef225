"""Architecture configs for `--weights random` (architecture-true, no download) and the offline processor of those
random models: the real model classes (Idefics3ForConditionalGeneration, which is what SmolVLM-256M/500M-Instruct's
config.json names, and Qwen3VLForConditionalGeneration), shrunk for tests.

SmolVLM-256M/500M-Instruct: a SigLIP base-patch16-512 vision encoder (768 wide, 12 layers, 12 heads), a pixel
shuffle of 4 (64 tokens per 512-px crop) and SmolLM2-135M / SmolLM2-360M as the text model; the processor upscales
an image to 2048 px on its longest side and cuts 512-px crops (4x4 + one global view for a square picture).
Qwen3-VL-2B-Instruct: a 24-layer 1024-wide ViT (patch 16, 2x2 merge, DeepStack at layers 5, 11, 17) and a 28-layer
2048-wide Qwen3 text model (16 heads, 8 KV heads, head_dim 128, interleaved multimodal RoPE); its processor
(Qwen2VLImageProcessor + Qwen3VLProcessor) resizes a picture to a multiple of 32 px between 256x256 and 4096x4096
pixels' worth and gives one token per 32x32 block.
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
                                  max_position_embeddings=262144, rms_norm_eps=1e-6, vocab_size=151936,
                                  rope_parameters=dict(rope_type="default", rope_theta=5000000.0,
                                                       mrope_section=[24, 20, 20], mrope_interleaved=True)),
                        pixels=(65536, 16777216), tie_word_embeddings=True),
    # Tests: milliseconds to build. 64-px crops of 16-px patches, pixel shuffle 2: 4 tokens per crop.
    "tiny": dict(kind=IDEFICS3, scale_factor=2, longest_edge=128,
                 vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             image_size=64, patch_size=16),
                 text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=2048, rope_theta=10000.0,
                           rms_norm_eps=1e-5, vocab_size=0)),
    # Tests: Qwen3-VL's module types at toy sizes (2 ViT blocks, both DeepStack taps, 2 text layers, head_dim 16 with
    # the multimodal RoPE split 4/2/2 as the real 24/20/20 splits 64); pictures of 32x32 to 128x128 pixels' worth.
    "tiny-qwen3-vl": dict(kind=QWEN3_VL,
                          vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=16,
                                      temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=32,
                                      num_position_embeddings=64, deepstack_visual_indexes=[0, 1]),
                          text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                                    rms_norm_eps=1e-6, vocab_size=0,
                                    rope_parameters=dict(rope_type="default", rope_theta=5000000.0,
                                                         mrope_section=[4, 2, 2], mrope_interleaved=True)),
                          pixels=(32 * 32, 128 * 128), tie_word_embeddings=True),
}

# SmolVLM's chat template (as its tokenizer_config.json has it): "User:<image>question<end_of_utterance>\nAssistant:"
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
# Qwen3-VL's chat template cut to what the hub sends: ChatML, each picture as <|vision_start|><|image_pad|><|vision_end|>
# before the message's text (the processor expands <|image_pad|> to the picture's tokens).
QWEN3_VL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
_QWEN3_VL_SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
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


def offline_qwen3_vl_processor(cfg: dict):
    """A Qwen3VLProcessor for a random model: llm_chat's offline BPE tokenizer (ChatML) with Qwen3-VL's vision
    tokens and the template above, and Qwen2VLImageProcessor at the architecture's patch, merge and pixel range
    (mean and std 0.5, as Qwen3-VL's preprocessor_config.json)."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    from demos.llm_chat.configs import offline_tokenizer

    tok = offline_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": _QWEN3_VL_SPECIALS})
    v = cfg["vision"]
    dims = dict(patch_size=v["patch_size"], temporal_patch_size=v["temporal_patch_size"],
                merge_size=v["spatial_merge_size"], image_mean=[0.5] * 3, image_std=[0.5] * 3)
    low, high = cfg["pixels"]
    images = Qwen2VLImageProcessor(size={"shortest_edge": low, "longest_edge": high}, **dims)
    return Qwen3VLProcessor(images, tok, Qwen3VLVideoProcessor(**dims), chat_template=QWEN3_VL_TEMPLATE)


def _qwen3_vl_config(cfg: dict, tok):
    from transformers import Qwen3VLConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in _QWEN3_VL_SPECIALS}
    text = dict(cfg["text"], vocab_size=cfg["text"]["vocab_size"] or len(tok),
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Qwen3VLConfig(text_config=text, vision_config=dict(cfg["vision"]), image_token_id=ids["<|image_pad|>"],
                         video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                         vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=cfg["tie_word_embeddings"])


def random_model(config_key: str, torch_dtype):
    """(model, processor): the architecture of `config_key` with random weights (seed 0) and an offline processor."""
    import torch
    from transformers import AutoModelForImageTextToText, Idefics3Config

    cfg = CONFIGS[config_key]
    if cfg["kind"] == QWEN3_VL:
        proc = offline_qwen3_vl_processor(cfg)
        torch.manual_seed(0)
        return AutoModelForImageTextToText.from_config(_qwen3_vl_config(cfg, proc.tokenizer), dtype=torch_dtype), proc
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
