"""SAM 2.1 through transformers' own classes: `Sam2VideoModel` (tracking) and `Sam2Model` (images) on one set of
weights, `Sam2Processor` / `Sam2VideoProcessor` for resizing, prompt coordinates and mask upscaling.

The image path keeps the tab's contract: `embed` runs the Hiera image encoder once per image (the expensive part),
`decode` runs the prompt encoder and mask decoder for each click on that cached embedding, and returns masks in the
same shapes and order as segment-anything's models (K x H x W bool, K scores). The image model shares the video
model's vision encoder (the same module object), so SAM 2.1 costs its weights once, not twice.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np

from demos.sam_segment.store import EmbeddingStore
from hub.contract import EngineBase
from hub.errors import UserError

# Hiera configurations of the four SAM 2.1 checkpoints (facebookresearch/sam2 `configs/sam2.1/*.yaml`), so that
# `--weights random` builds each architecture as it is. "tiny-random" is a few hundred thousand parameters at 256 px:
# a click or a tracked frame takes milliseconds on a CPU (tests, smoke runs). transformers' hard-wires a 64-channel
# memory (kv_in_dim=64) and splits object pointers by it, so the tiny build keeps 64 memory channels and 128 hidden.
HIERA = {
    "hiera_t": {},  # Sam2HieraDetConfig's defaults are Hiera-T
    "hiera_s": {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
    "hiera_b+": {"hidden_size": 112, "num_attention_heads": 2, "blocks_per_stage": [2, 3, 16, 3],
                 "embed_dim_per_stage": [112, 224, 448, 896], "num_attention_heads_per_stage": [2, 4, 8, 16],
                 "global_attention_blocks": [12, 16, 20], "window_positional_embedding_background_size": [14, 14]},
    "hiera_l": {"hidden_size": 144, "num_attention_heads": 2, "blocks_per_stage": [2, 6, 36, 4],
                "embed_dim_per_stage": [144, 288, 576, 1152], "num_attention_heads_per_stage": [2, 4, 8, 16],
                "global_attention_blocks": [23, 33, 43], "window_size_per_stage": [8, 4, 16, 8]},
}
TINY_SIDE = 256


def video_config(arch: str):
    """The Sam2VideoConfig of an architecture: "hiera_t" | "hiera_s" | "hiera_b+" | "hiera_l" | "tiny"."""
    from transformers import Sam2VideoConfig

    if arch == "tiny":
        s = TINY_SIDE
        vision = {"backbone_config": {"model_type": "sam2_hiera_det_model", "hidden_size": 8, "image_size": [s, s],
                                      "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": [8, 16, 32, 64],
                                      "num_attention_heads_per_stage": [1, 1, 2, 2],
                                      "window_size_per_stage": [4, 4, 4, 4], "global_attention_blocks": [3],
                                      "window_positional_embedding_background_size": [4, 4]},
                  "backbone_channel_list": [64, 32, 16, 8], "fpn_hidden_size": 128,
                  "backbone_feature_sizes": [[s // 4] * 2, [s // 8] * 2, [s // 16] * 2]}
        return Sam2VideoConfig(
            vision_config=vision, image_size=s,
            prompt_encoder_config={"hidden_size": 128, "image_size": s, "mask_input_channels": 4},
            mask_decoder_config={"hidden_size": 128, "mlp_dim": 64, "num_attention_heads": 2,
                                 "iou_head_hidden_dim": 32},
            memory_attention_hidden_size=128, memory_attention_num_layers=1,
            memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[s // 16] * 2,
            memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
            memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, num_maskmem=3)
    if arch not in HIERA:
        raise UserError(f"Unknown SAM 2.1 architecture {arch!r}.")
    backbone = {"model_type": "sam2_hiera_det_model", **HIERA[arch]}
    channels = list(reversed(backbone.get("embed_dim_per_stage", [96, 192, 384, 768])))
    return Sam2VideoConfig(vision_config={"backbone_config": backbone, "backbone_channel_list": channels})


def processors(side: int):
    """(image processor, video processor) for `side` x `side` model inputs (SAM 2's low-res masks are side / 4)."""
    from transformers import Sam2Processor, Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    images = Sam2ImageProcessor(size={"height": side, "width": side}, mask_size={"height": side // 4,
                                                                                 "width": side // 4})
    video = Sam2VideoVideoProcessor(size={"height": side, "width": side})
    return Sam2Processor(image_processor=images), Sam2VideoProcessor(image_processor=images, video_processor=video)


def load(weights, device: str, dtype: str) -> "Sam2Engine":
    """SAM 2.1 from a transformers folder (hf snapshot or a local copy: config.json + model.safetensors), or random
    weights at the choice's architecture (reproducible: seeded, global RNG left alone)."""
    import torch
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    arch = weights.choice.options.get("arch", "hiera_t")
    if weights.source == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            config = video_config(arch)
            video = Sam2VideoModel(config)
        image_proc, video_proc = processors(int(config.image_size))
    else:
        folder = Path(weights.path)
        if not (folder / "config.json").is_file():
            raise UserError(f"The folder {folder.name!r} has no config.json: SAM 2.1 needs the transformers files "
                            "(config.json, model.safetensors, processor_config.json) of a facebook/sam2.1-hiera-* "
                            "repository.")
        video = Sam2VideoModel.from_pretrained(folder, use_safetensors=True)
        video_proc = Sam2VideoProcessor.from_pretrained(folder)
        from transformers import Sam2Processor

        image_proc = Sam2Processor(image_processor=video_proc.image_processor)
    return Sam2Engine(video, image_proc, video_proc, device, dtype, arch)


def _image_model(video):
    """A `Sam2Model` on the video model's weights: its vision encoder is the same module (shared, not copied); the
    small prompt encoder and mask decoder are loaded from the video model's state (same parameter names)."""
    import torch
    from transformers import Sam2Config, Sam2Model

    c = video.config
    config = Sam2Config(vision_config=c.vision_config.to_dict(), prompt_encoder_config=c.prompt_encoder_config.to_dict(),
                        mask_decoder_config=c.mask_decoder_config.to_dict())
    with torch.device("meta"):
        image = Sam2Model(config)
    image.vision_encoder = video.vision_encoder
    state = {k: v for k, v in video.state_dict().items() if not k.startswith("vision_encoder.")}
    result = image.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.startswith("vision_encoder.")]
    if missing:  # a transformers version whose image model has parameters the video model lacks
        raise RuntimeError(f"SAM 2.1 image model: parameters not in the video model: {missing[:5]}")
    return image.eval()


class Sam2Engine(EngineBase):
    """A loaded SAM 2.1 (images and video). Thread-safe for images: every call keeps its state in locals, the
    sessions' image embeddings are kept in `embeddings` (counted in `extra_bytes`); a video tracking session is per
    request (video.py)."""

    family = "sam2"

    def __init__(self, video_model, image_processor, video_processor, device: str, dtype: str, arch: str):
        import torch

        self.arch, self.device, self.dtype = arch, device, dtype
        self.uid = uuid.uuid4().hex
        self.encoder_calls = 0
        self._lock = threading.Lock()
        self.embeddings = EmbeddingStore()
        self.torch_dtype = getattr(torch, dtype) if device.startswith("cuda") and dtype in (
            "float16", "bfloat16") else torch.float32
        self.video_model = video_model.to(device=device, dtype=self.torch_dtype).eval()
        self.image_model = _image_model(self.video_model).to(device=device, dtype=self.torch_dtype)
        self.image_processor, self.video_processor = image_processor, video_processor

    @property
    def img_size(self) -> int:
        return int(self.video_model.config.image_size)

    @property
    def extra_bytes(self) -> int:
        """The kept image embeddings: counted by the model manager with the weights."""
        return self.embeddings.nbytes

    def embedding(self, session: str, picture):
        """(embedding, was it cached?) of `picture` for `session`, encoding it at most once."""
        return self.embeddings.get(session, self.embed, picture)

    def close(self) -> None:
        self.embeddings.clear()

    def embed(self, picture):
        """The Hiera image encoder on one picture (the expensive part): an Embedding holding its feature pyramid."""
        import torch

        from demos.sam_segment.engine import Embedding

        with self._lock:
            self.encoder_calls += 1
        inputs = self.image_processor(images=np.array(picture.rgb), return_tensors="pt")  # a writable copy for torch
        with torch.inference_mode():
            pixels = inputs["pixel_values"].to(self.device, self.torch_dtype)
            features = self.image_model.get_image_embeddings(pixels)
        h, w = picture.rgb.shape[:2]
        return Embedding(features, (h, w), (self.img_size, self.img_size), picture.key, self.uid)

    def decode(self, emb, coords, labels, box, multimask: bool, return_logits: bool = False):
        """Prompt encoder + mask decoder on a cached embedding. coords: N x 2 (x, y) image pixels; box: 4 (xyxy).

        Returns (masks K x H x W bool [or logits], iou scores K, low-res logits K x h x w), as numpy, model order.
        """
        import torch

        h, w = emb.original_size
        kwargs = {}
        if coords is not None and len(coords):
            kwargs["input_points"] = [[np.asarray(coords, np.float64).tolist()]]
            kwargs["input_labels"] = [[np.asarray(labels).astype(int).tolist()]]
        if box is not None:
            kwargs["input_boxes"] = [[np.asarray(box, np.float64).tolist()]]
        prompts = self.image_processor(original_sizes=[[h, w]], return_tensors="pt", **kwargs)
        with torch.inference_mode():
            out = self.image_model(
                image_embeddings=emb.features, multimask_output=bool(multimask),
                **{k: prompts[k].to(self.device, self.torch_dtype if k != "input_labels" else torch.int64)
                   for k in ("input_points", "input_labels", "input_boxes") if k in prompts})
            low_res = out.pred_masks.float()  # 1 x 1 x K x h x w
            masks = self.image_processor.post_process_masks(low_res.cpu(), [[h, w]], binarize=not return_logits)[0]
        return (masks[0].numpy(), out.iou_scores[0, 0].float().cpu().numpy(),
                low_res[0, 0].cpu().numpy())
