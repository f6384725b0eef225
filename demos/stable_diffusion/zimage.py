"""Z-Image-Turbo (Tongyi-MAI, Apache-2.0): the tab's modern fast model, through diffusers' `ZImagePipeline`.

Why this model: it is the fast modern text-to-image pipeline that fits a 16 GB GPU under a permissive license and
downloads without a gate. A 6B single-stream DiT distilled to 8 steps without guidance, Qwen3-4B as its text
encoder, the 16-channel FLUX VAE; 20.5 GB in bfloat16 (12.3 + 8.0 + 0.2), so on a 16 GB GPU the engine runs it with
model CPU offload (one component on the GPU at a time; the transformer is the largest). The alternatives: SANA-Sprint
0.6B (one step) is under NVIDIA's non-commercial NSCL v2 license plus Gemma's terms; FLUX.1-schnell (Apache-2.0) has
a 12B transformer (23.8 GB in bf16) that no whole-component offload fits into 16 GB, and its repository is gated;
SD3.5 Medium is under Stability's Community License and gated.

This file builds the pipelines (architecture-true random weights for `--weights random`, a diffusers folder), the
img2img and inpaint pipelines sharing the same modules, and says how long a prompt may be. The engine runs them
like the SD pipelines (steps, Cancel, seeds, the record); only the decoding differs (the VAE's shift factor).
"""

from __future__ import annotations

import json
from pathlib import Path

from hub.errors import UserError

FAMILY = "zimage"
PIPELINES = ("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline")
MAX_SEQUENCE_LENGTH = 512  # the pipeline's default: the chat-templated prompt is cut there
MULTIPLE = 16  # sides: the VAE's 8x times the transformer's 2x2 patches
# Z-Image-Turbo's settings (the installed diffusers' ZImagePipeline example: 8 steps, guidance 0, 1024 px), for
# folders the spec does not list
DEFAULTS = {"steps": 8, "guidance": 0.0, "scheduler": "FlowMatch Euler", "size": 1024}
NO_TINY = ("This model has no tiny decoder (TAESD decodes Stable Diffusion 1.x/2.x latents only), so the full "
           "decoder ran.")

# Architecture configs. "turbo" is Z-Image-Turbo's (the constructor defaults of the installed diffusers'
# ZImageTransformer2DModel; Qwen3-4B; the FLUX VAE), kept for reference and full-size random benches; "tiny" keeps
# every part (Qwen3 encoder with a chat template, the S3-DiT with refiner layers and 3-axis RoPE, a 4-level 16-channel
# VAE with shift and scale) at toy width.
ARCHS = {
    "turbo": {
        "transformer": {"in_channels": 16, "dim": 3840, "n_layers": 30, "n_refiner_layers": 2, "n_heads": 30,
                        "n_kv_heads": 30, "cap_feat_dim": 2560, "axes_dims": [32, 48, 48],
                        "axes_lens": [1024, 512, 512]},
        "text": {"vocab_size": 151936, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                 "max_position_embeddings": 40960, "rope_theta": 1000000.0, "tie_word_embeddings": True},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 16, "layers_per_block": 2,
                "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
                "up_block_types": ["UpDecoderBlock2D"] * 4, "use_quant_conv": False, "use_post_quant_conv": False,
                "shift_factor": 0.1159, "scaling_factor": 0.3611},
        "scheduler": {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False},
    },
    "tiny": {
        "transformer": {"in_channels": 16, "dim": 32, "n_layers": 2, "n_refiner_layers": 1, "n_heads": 2,
                        "n_kv_heads": 2, "cap_feat_dim": 32, "axes_dims": [4, 6, 6], "axes_lens": [1024, 512, 512]},
        "text": {"vocab_size": 0, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 1024},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 16, "layers_per_block": 1,
                "norm_num_groups": 4, "block_out_channels": [8, 8, 8, 8],
                "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
                "use_quant_conv": False, "use_post_quant_conv": False, "shift_factor": 0.1159,
                "scaling_factor": 0.3611},
        "scheduler": {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False},
    },
}


def is_zimage_folder(path: Path) -> bool:
    index = path / "model_index.json"
    return index.is_file() and json.loads(index.read_text()).get("_class_name", "") in PIPELINES


def build_pipeline(weights, device: str, torch_dtype):
    """The ZImagePipeline for `weights`: random (embedded config) or a diffusers folder (no single files)."""
    arch = weights.choice.options.get("zimage_arch", "turbo")
    if weights.source == "random":
        return random_pipeline(arch, device, torch_dtype)
    path = Path(weights.path)
    if not path.is_dir() or not is_zimage_folder(path):
        raise UserError(f"{path.name} is not a Z-Image diffusers folder (its model_index.json must name "
                        "ZImagePipeline); give the folder of Tongyi-MAI/Z-Image-Turbo.")
    return folder_pipeline(path, torch_dtype)


def folder_pipeline(path: Path, torch_dtype):
    from diffusers import ZImagePipeline

    return ZImagePipeline.from_pretrained(path, dtype=torch_dtype, use_safetensors=True, local_files_only=True)


def random_pipeline(arch: str, device: str, torch_dtype):
    """Architecture-true random weights (seeded: two loads give the same model) with the offline tokenizer."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    a = ARCHS[arch]
    tokenizer = offline_tokenizer()
    text = {**a["text"], "vocab_size": a["text"]["vocab_size"] or len(tokenizer)}
    build_on = device if device.startswith("cuda") else "cpu"
    with torch.random.fork_rng(devices=[]), torch.device(build_on):
        torch.manual_seed(0)
        transformer = ZImageTransformer2DModel(**a["transformer"])
        vae = AutoencoderKL(**a["vae"])
        text_encoder = Qwen3Model(Qwen3Config(**text))
    for m in (transformer, vae, text_encoder):
        m.to(torch_dtype).eval()
    return ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(**a["scheduler"]), vae=vae,
                          text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer)


def companions(pipe):
    """(img2img, inpaint) pipelines on the same module objects (no second copy of the weights)."""
    from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

    return ZImageImg2ImgPipeline(**pipe.components), ZImageInpaintPipeline(**pipe.components)


def prompt_limit(tokenizer) -> int:
    """How many tokens of the prompt itself the text encoder reads: MAX_SEQUENCE_LENGTH less the chat template's."""
    frame = tokenizer.apply_chat_template([{"role": "user", "content": ""}], tokenize=False,
                                          add_generation_prompt=True, enable_thinking=True)
    return MAX_SEQUENCE_LENGTH - len(tokenizer(frame, add_special_tokens=False).input_ids)


# Copied from demos.llm_chat.configs (offline_tokenizer, CHATML, _SPECIALS, _CORPUS; shortened corpus): a byte-level
# BPE like Qwen's, trained in milliseconds, with the ChatML template Qwen3 uses (the demos stay independent).
_CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
           "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = ("a watercolor fox in a snowy forest, soft morning light. A cozy reading nook by a big window, rain "
           "outside, digital painting. An astronaut riding a horse on the moon, photorealistic. Isometric pixel-art "
           "island with a lighthouse. A red cube on a white table; blurry, low quality, cartoon, deformed, text.")


def offline_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on a built-in paragraph, with the ChatML template (random models only)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = _CHATML
    return fast
