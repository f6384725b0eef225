"""Segment Anything: click to segment, with the image embedding computed once per image and reused per click.

Models: Meta's SAM ViT-B / ViT-L / ViT-H checkpoints and MobileSAM (a TinyViT image encoder with SAM's prompt
encoder and mask decoder; the CPU default because it embeds an image in seconds instead of a minute).
All of them run through segment-anything's own modules and `ResizeLongestSide` transform.

How a click is served: the image encoder runs once per (session, model, image content) and its output is kept in
a small bounded per-session store; each click only runs the prompt encoder and the mask decoder on that cached
embedding, with per-request state. `SamPredictor` is stateful (set_image, then predict) and not safe to share
between requests, so no predictor is shared: the engine is stateless apart from a counter of encoder calls.
"""

import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hub.assets import package_file
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.outputs import request_folder
from hub.spec import DemoSpec, ModelChoice

log = logging.getLogger(__name__)

_FB = "https://dl.fbaipublicfiles.com/segment_anything/"
# MobileSAM's own checkpoint at a pinned commit (the same file ultralytics serves as its `mobile_sam.pt` asset).
_MOBILE_SAM_URL = ("https://github.com/ChaoningZhang/MobileSAM/raw/f706ad9c4eb7f219c00d9050e46328518ffb65d2/"
                   "weights/mobile_sam.pt")

SPEC = DemoSpec(
    name="sam_segment",
    title="Segment Anything",
    description=("Click on the image to segment an object: positive points add, negative points remove, two corner "
                 "clicks make a box. The image is encoded once; every click after that takes a fraction of a second. "
                 "*Segment everything* finds all objects."),
    models=(
        ModelChoice("mobile_sam", "native", label="MobileSAM (fast on CPU)", files=("mobile_sam.pt",),
                    sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
                    approx_bytes=45_000_000, license="Apache-2.0",
                    options={"arch": "vit_t", "url": _MOBILE_SAM_URL, "dtype": "float16"}),
        ModelChoice("vit_b", "native", label="SAM ViT-B", files=("sam_vit_b_01ec64.pth",),
                    sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                    approx_bytes=375_000_000, license="Apache-2.0",
                    options={"arch": "vit_b", "url": _FB + "sam_vit_b_01ec64.pth", "dtype": "bfloat16"}),
        ModelChoice("vit_l", "native", label="SAM ViT-L", files=("sam_vit_l_0b3195.pth",),
                    sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                    approx_bytes=1_250_000_000, license="Apache-2.0",
                    options={"arch": "vit_l", "url": _FB + "sam_vit_l_0b3195.pth", "dtype": "bfloat16"}),
        ModelChoice("vit_h", "native", label="SAM ViT-H (best, slowest)", files=("sam_vit_h_4b8939.pth",),
                    sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                    approx_bytes=2_565_000_000, license="Apache-2.0",
                    options={"arch": "vit_h", "url": _FB + "sam_vit_h_4b8939.pth", "dtype": "bfloat16"}),
        ModelChoice("tiny-random", "random", label="tiny random SAM (tests)",
                    options={"hidden": True, "arch": "tiny"}),
    ),
    default_model={"cuda": "vit_b", "mps": "mobile_sam", "cpu": "mobile_sam"},
    api_names=("segment", "segment_everything"),
    gpu_concurrency=2,  # a click (decoder only) should not wait behind another session's image encoding
    zero_gpu_seconds=60,
)

MAX_PIXELS = 25_000_000  # masks are kept at full resolution: 3 candidates of a 25 MP image are 75 MB of booleans
MIN_SIDE = 8
POSITIVE, NEGATIVE = 1, 0


# ---- loading ----------------------------------------------------------------------------------------------------


def fetch(weights) -> Path:
    """Download the checkpoint of a native model into the cache (for `demohub fetch`); returns its path."""
    return _checkpoint(weights)


def _checkpoint(weights) -> Path:
    from hub.weights import verify_file

    choice = weights.choice
    url = choice.options.get("url")
    name = (choice.files or (None,))[0]
    if not url or not name:
        raise UserError(f"Unknown SAM model {choice.id!r}: pick one of "
                        f"{', '.join(m.id for m in SPEC.models if not m.options.get('hidden'))}, or give a local "
                        f"checkpoint path in {SPEC.env_var}.")
    path = Path(weights.path) / name
    if not path.exists():
        import torch.hub

        path.parent.mkdir(parents=True, exist_ok=True)
        # Writes to a temporary file next to the target and renames it at the end: no half file in the cache.
        torch.hub.download_url_to_file(url, str(path), progress=True)
    verify_file(path, choice.sha256, SPEC.name)
    return path


def load(weights, device: str, dtype: str) -> "SamEngine":
    """Build the model: a cached checkpoint (hash-checked, `weights_only` load), a local file, or random weights."""
    import torch

    arch = weights.choice.options.get("arch")
    state = None
    if weights.source == "random":
        arch = arch or "vit_b"
    else:
        path = _checkpoint(weights) if weights.source == "native" else _find_checkpoint(Path(weights.path))
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        arch = _arch_of(state, path)
    if arch == "vit_t" and "YOLO_CONFIG_DIR" not in os.environ:
        # ultralytics (whose TinyViT we use) writes a settings file on import: keep it in the cache folder
        os.environ["YOLO_CONFIG_DIR"] = str(Path(weights.cache_dir) / "ultralytics")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are reproducible, and the global RNG is left alone
        sam = build(arch)
    if state is not None:
        sam.load_state_dict(state)
    return SamEngine(sam, device, dtype, arch)


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(p for p in path.rglob("*") if p.suffix in (".pth", ".pt"))
    if len(found) != 1:
        raise UserError(f"Expected one SAM checkpoint (.pth/.pt) in {path}, found {len(found)}; point "
                        f"{SPEC.env_var} at the checkpoint file itself.")
    return found[0]


def _arch_of(state, path) -> str:
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a SAM checkpoint (expected a state dict); use an official SAM or MobileSAM file.")
    w = state.get("image_encoder.patch_embed.proj.weight")
    if w is not None:
        arch = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}.get(int(w.shape[0]))
        if arch:
            return arch
    if "image_encoder.patch_embed.seq.0.c.weight" in state:
        return "vit_t"
    raise UserError(f"{path} does not look like a SAM ViT-B/L/H or MobileSAM checkpoint; use one of the official files.")


def build(arch: str):
    """An architecture-true SAM with random weights: "vit_b" | "vit_l" | "vit_h" | "vit_t" (MobileSAM) | "tiny"."""
    from functools import partial

    import torch
    from segment_anything import sam_model_registry
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if arch in ("vit_b", "vit_l", "vit_h"):
        return sam_model_registry[arch]().eval()
    if arch == "vit_t":
        encoder = _tiny_vit()
        img, dim, emb, depth, mlp, heads, iou_hidden, mask_ch = 1024, 256, 64, 2, 2048, 8, 256, 16
    elif arch == "tiny":  # a few thousand parameters: a click takes milliseconds on a CPU (tests, smoke runs)
        img, dim, emb, depth, mlp, heads, iou_hidden, mask_ch = 128, 32, 8, 1, 64, 2, 32, 4
        encoder = ImageEncoderViT(img_size=img, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                                  out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                  use_rel_pos=True, window_size=4, global_attn_indexes=(1,))
    else:
        raise UserError(f"Unknown SAM architecture {arch!r}.")
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(emb, emb), input_image_size=(img, img),
                                     mask_in_chans=mask_ch),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=3,
                                 iou_head_hidden_dim=iou_hidden,
                                 transformer=TwoWayTransformer(depth=depth, embedding_dim=dim, mlp_dim=mlp,
                                                               num_heads=heads)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def _tiny_vit():
    """MobileSAM's TinyViT-5M image encoder (ultralytics keeps a copy with the checkpoint's parameter names)."""
    if "YOLO_CONFIG_DIR" not in os.environ:  # called without `load` (bench, tests): still not in $HOME or the cwd
        import tempfile

        os.environ["YOLO_CONFIG_DIR"] = str(Path(tempfile.gettempdir()) / "demohub-ultralytics")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install packages from inside the server
    from PIL import Image
    from ultralytics.models.sam.modules.tiny_encoder import TinyViT
    from ultralytics.utils import patches

    if Image.open is getattr(patches, "image_open", None) and hasattr(patches, "_image_open"):
        # ultralytics swaps PIL.Image.open process-wide for a wrapper that tries to pip-install pi-heif on any file
        # Pillow cannot identify; every tab opens uploads with Pillow, so put Pillow's own function back.
        Image.open = patches._image_open

    return TinyViT(img_size=1024, in_chans=3, num_classes=1000, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
                   num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
                   drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3,
                   layer_lr_decay=0.8)


# ---- images and embeddings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """An input image made ready for SAM: RGB uint8, its alpha channel if it had one, and a content hash."""

    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8
    key: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.rgb.shape[1], self.rgb.shape[0]


def prepare_image(image) -> Picture:
    """Turn a PIL image, numpy array or file path into RGB uint8; odd modes and bit depths are converted.

    Raises UserError for a missing, empty, tiny or huge image, or an array that is not an image.
    """
    from PIL import Image

    if image is None:
        raise UserError("Upload an image first.")
    if isinstance(image, Picture):
        return image
    if isinstance(image, (str, Path)):
        try:
            image = Image.open(image)
            image.load()
        except (OSError, ValueError) as e:
            raise UserError(f"Could not read the image file ({e}); upload a PNG, JPEG or WebP image.") from None
    alpha = None
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height)
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = np.asarray(image, dtype=np.float32) / 257.0  # 16-bit greyscale: keep absolute levels
            rgb = np.repeat(np.clip(arr + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        elif mode in ("I", "F"):
            rgb = np.repeat(_stretch(np.asarray(image, dtype=np.float64))[..., None], 3, axis=2)
        elif mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"))
            alpha = rgba[..., 3].copy()
            # Transparent pixels have arbitrary colours: SAM sees them composited on white, as a viewer shows them.
            a = alpha[..., None].astype(np.float32) / 255.0
            rgb = (rgba[..., :3] * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
        else:
            rgb = np.asarray(image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        rgb, alpha = _from_array(image)
    else:
        raise UserError(f"Expected an image, got {type(image).__name__}; upload a PNG, JPEG or WebP image.")
    rgb = np.ascontiguousarray(rgb)
    h = hashlib.sha256()  # hardware-accelerated on most CPUs: ~2x faster than blake2b here
    h.update(f"{rgb.shape}".encode())
    h.update(rgb.data)
    return Picture(rgb, alpha, h.hexdigest())


def _check_size(w: int, h: int) -> None:
    if w == 0 or h == 0:
        raise UserError("The image is empty (0 pixels); upload a real image.")
    if min(w, h) < MIN_SIDE:
        raise UserError(f"The image is {w}x{h} pixels; it needs at least {MIN_SIDE} pixels on each side.")
    if w * h > MAX_PIXELS:
        raise UserError(f"The image is {w}x{h} ({w * h / 1e6:.0f} megapixels); this tab accepts up to "
                        f"{MAX_PIXELS / 1e6:.0f} megapixels. Resize it (SAM works at 1024 pixels anyway) and upload again.")
    if max(w, h) / min(w, h) > 32:
        raise UserError(f"The image is {w}x{h}, longer than 32:1; crop it to a less extreme shape so SAM can see it.")


def _stretch(arr: np.ndarray) -> np.ndarray:
    lo, hi = np.nanmin(arr), np.nanmax(arr)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return ((np.nan_to_num(arr, nan=lo) - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def _from_array(a: np.ndarray):
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise UserError(f"Expected an image array of shape HxW, HxWx3 or HxWx4, got {a.shape}.")
    _check_size(a.shape[1], a.shape[0])
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise UserError("The image array contains NaN or infinite values; pass finite pixel values.")
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8) if a.max() <= 1.0 else _stretch(a)
    elif a.dtype != np.uint8:
        raise UserError(f"Unsupported image array type {a.dtype}; use uint8 (0-255), uint16 or float (0-1).")
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2), None
    if a.shape[2] == 4:
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
    return a, None


@dataclass
class Embedding:
    """The image encoder's output for one image, with the sizes needed to map prompts and masks."""

    features: object  # torch.Tensor 1 x C x h x w, float32, on the engine's device
    original_size: tuple[int, int]  # (H, W)
    input_size: tuple[int, int]  # (H, W) after ResizeLongestSide
    key: str
    engine_uid: str


class SamEngine:
    """A loaded SAM. Thread-safe: every call keeps its state in local variables (no shared SamPredictor)."""

    def __init__(self, sam, device: str, dtype: str, arch: str):
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        self.arch = arch
        self.device = device
        self.dtype = dtype
        self.uid = uuid.uuid4().hex
        self.encoder_calls = 0
        self._lock = threading.Lock()
        self.sam = sam.to(device).eval()
        self.encoder_dtype = torch.float32
        if device.startswith("cuda") and dtype in ("float16", "bfloat16"):
            # GPU fast path: the image encoder (all the cost) in half precision; the prompt encoder and mask
            # decoder stay float32 (tiny, and mask edges stay exact). The embedding is stored as float32.
            self.encoder_dtype = getattr(torch, dtype)
            self.sam.image_encoder.to(self.encoder_dtype)
        cpu_channels_last(device, self.sam.image_encoder)  # MobileSAM's convolutional stages run faster so on x86
        self.transform = ResizeLongestSide(self.sam.image_encoder.img_size)
        self._encoder_graph = None  # CUDA: the image encoder replayed as one CUDA graph (fixed 1024x1024 input)
        self._image_pe = None  # the prompt encoder's dense positional encoding: the same for every click
        from segment_anything.modeling import MaskDecoder, PromptEncoder

        # segment-anything's own modules take the lean click path; others (tests force outputs) their own forward
        self._lean = isinstance(self.sam.mask_decoder, MaskDecoder) and isinstance(self.sam.prompt_encoder,
                                                                                   PromptEncoder)
        if device.startswith("cuda"):
            use_sdpa_attention(self.sam.image_encoder)
            self._capture_encoder()
            self._warm_up()

    def _capture_encoder(self) -> None:
        """Record the image encoder as a CUDA graph at load (its input is always 1x3xSxS). On failure the encoder
        runs eagerly, slower but the same."""
        import torch

        from hub.cuda_graph import StaticGraph

        size = self.img_size
        try:
            self._encoder_graph = StaticGraph(self.sam.image_encoder,
                                              torch.zeros((1, 3, size, size), dtype=self.encoder_dtype,
                                                          device=self.device))
            self.extra_bytes = self._encoder_graph.nbytes  # counted by the model manager with the weights
        except Exception as e:
            log.warning("SAM: CUDA graph capture of the image encoder failed (%s: %s); running it eagerly.",
                        type(e).__name__, e)
            self._encoder_graph = None

    @property
    def img_size(self) -> int:
        return self.sam.image_encoder.img_size

    def _warm_up(self) -> None:
        """One encode and one decode at load, so cuDNN/cuBLAS set-up is not paid by the first user."""
        pic = prepare_image(np.zeros((self.img_size * 3 // 4, self.img_size, 3), np.uint8))
        emb = self.embed(pic)
        self.decode(emb, np.array([[10.0, 10.0]]), np.array([1]), None, True)
        self.encoder_calls = 0

    def embed(self, picture: Picture) -> Embedding:
        """Run the image encoder once (the expensive part)."""
        import torch

        h, w = picture.rgb.shape[:2]
        nh, nw = self.transform.get_preprocess_shape(h, w, self.img_size)
        if min(nh, nw) < 1:
            raise UserError(f"The image is {w}x{h}, too thin for SAM; crop it to a less extreme shape.")
        with self._lock:
            self.encoder_calls += 1
        resized = self.transform.apply_image(picture.rgb)
        with torch.inference_mode():
            x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
            x = self.sam.preprocess(x.float()).to(self.encoder_dtype)
            encoder = self._encoder_graph or self.sam.image_encoder
            features = encoder(x).float()
        return Embedding(features, (h, w), tuple(resized.shape[:2]), picture.key, self.uid)

    def decode(self, emb: Embedding, coords, labels, box, multimask: bool, return_logits: bool = False):
        """Prompt encoder + mask decoder on a cached embedding. coords: N x 2 (x, y) image pixels; box: 4 (xyxy).

        Returns (masks K x H x W bool [or logits], iou scores K, low-res logits K x h x w), as numpy, model order.
        """
        import torch

        with torch.inference_mode():
            points = None
            if coords is not None and len(coords):
                c = self.transform.apply_coords(np.asarray(coords, np.float64), emb.original_size)
                points = (torch.as_tensor(c, dtype=torch.float, device=self.device)[None],
                          torch.as_tensor(labels, dtype=torch.int, device=self.device)[None])
            boxes = None
            if box is not None:
                b = self.transform.apply_boxes(np.asarray(box, np.float64)[None], emb.original_size)
                boxes = torch.as_tensor(b, dtype=torch.float, device=self.device)
            sparse, dense = self.sam.prompt_encoder(points=points, boxes=boxes, masks=None)
            if self._lean:
                low_res, iou = self._decode_lean(emb, sparse, multimask)
            else:
                low_res, iou = self.sam.mask_decoder(
                    image_embeddings=emb.features, image_pe=self.sam.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            masks = self.sam.postprocess_masks(low_res, emb.input_size, emb.original_size)
            if not return_logits:
                masks = masks > self.sam.mask_threshold
            return masks[0].cpu().numpy(), iou[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()

    def _decode_lean(self, emb: Embedding, sparse, multimask: bool):
        """segment-anything's `MaskDecoder.forward` for one prompt set, minus the per-click work that never changes.

        The library's forward copies the 64x64 image embedding and positional encoding once per prompt set
        (`repeat_interleave`), recomputes the positional encoding on every click and runs every mask head even when
        one mask is asked for. Here the encoding is made once per model, nothing is copied, and only the heads whose
        masks are returned run. Same modules, same weights, same numbers (tested against the library's forward).
        """
        import torch

        md, pe = self.sam.mask_decoder, self.sam.prompt_encoder
        if self._image_pe is None:
            self._image_pe = pe.get_dense_pe()
        src = emb.features + pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)[None]
        tokens = torch.cat((tokens.to(sparse.dtype), sparse), dim=1)
        hs, img = md.transformer(src, self._image_pe, tokens)
        b, c, h, w = src.shape
        up = md.output_upscaling(img.transpose(1, 2).reshape(b, c, h, w))
        heads = list(range(1, md.num_mask_tokens)) if multimask else [0]
        hyper = torch.stack([md.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in heads], dim=1)
        masks = (hyper @ up.flatten(2)).view(b, len(heads), up.shape[2], up.shape[3])
        return masks, md.iou_prediction_head(hs[:, 0, :])[:, heads]


def use_sdpa_attention(encoder) -> int:
    """Run each attention block of a segment-anything ViT encoder through `scaled_dot_product_attention`, the
    decomposed relative-position terms passed as its additive mask: the same math as the library's
    `Attention.forward` (tested equal), in fused kernels instead of a materialised, re-added, softmaxed score
    matrix. Returns how many blocks were switched (0 for other encoders, e.g. MobileSAM's TinyViT)."""
    import types

    from segment_anything.modeling.image_encoder import Attention

    n = 0
    for m in encoder.modules():
        if type(m) is Attention:
            m.forward = types.MethodType(_sdpa_attention_forward, m)
            n += 1
    return n


def _sdpa_attention_forward(self, x):
    import torch
    import torch.nn.functional as F
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, h, w, _ = x.shape
    q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    bias = None
    if self.use_rel_pos:  # add_decomposed_rel_pos's two terms, from the unscaled queries, broadcast into a mask
        r_q = q.reshape(b * self.num_heads, h, w, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, self.rel_pos_h))
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, self.rel_pos_w))
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(b, self.num_heads, h * w, h * w)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    return self.proj(out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1))


def embed(engine: SamEngine, image) -> Embedding:
    """The image embedding of `image` (runs the encoder)."""
    return engine.embed(prepare_image(image))


class EmbeddingStore:
    """Bounded, thread-safe store of image embeddings, keyed by (session, model instance, image content).

    At most `per_session` images per session and `total` overall (least recently used go first); the entries of a
    model are dropped when the model is unloaded. Two requests of one session for the same new image encode once.
    """

    def __init__(self, per_session: int = 3, total: int = 32):
        self.per_session, self.total = per_session, total
        self._items: OrderedDict[tuple[str, str, str], Embedding] = OrderedDict()
        self._pending: dict[tuple[str, str, str], threading.Lock] = {}
        self._watched: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, session: str, engine: SamEngine, picture: Picture) -> tuple[Embedding, bool]:
        """(embedding, was it cached?) for `picture` on `engine`, computing it at most once."""
        key = (session or "", engine.uid, picture.key)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], True
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key], True
            try:
                emb = engine.embed(picture)
            finally:
                with self._lock:
                    self._pending.pop(key, None)
            self._put(key, emb, engine)
            return emb, False

    def _put(self, key, emb: Embedding, engine: SamEngine) -> None:
        with self._lock:
            self._items[key] = emb
            mine = [k for k in self._items if k[0] == key[0]]
            for k in mine[:-self.per_session]:
                del self._items[k]
            while len(self._items) > self.total:
                self._items.popitem(last=False)
            if engine.uid not in self._watched:
                self._watched.add(engine.uid)
                # Unloading a model must free its embeddings too (they may be GPU tensors).
                weakref.finalize(engine, self.drop_model, engine.uid)

    def drop_model(self, uid: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[1] == uid]:
                del self._items[k]
            self._watched.discard(uid)

    def drop_session(self, session: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == session]:
                del self._items[k]


# ---- prompts ----------------------------------------------------------------------------------------------------


@dataclass
class Prompts:
    """Validated prompts in image pixels: points N x 2, labels N (1 positive, 0 negative), box xyxy or None."""

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None

    def as_json(self) -> dict:
        return {"points": self.points.tolist(), "labels": self.labels.astype(int).tolist(),
                "box": None if self.box is None else self.box.tolist()}


def _parse(value, what: str):
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
            raise UserError(f"{what} must be JSON, like [[120, 80]] for points or [10, 10, 200, 150] for a box.") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


def check_prompts(size: tuple[int, int], points=None, labels=None, box=None) -> Prompts:
    """Validate click prompts against an image of `size` (width, height); raise UserError with what to do.

    points: [[x, y], ...] in image pixels (0 <= x < width); labels: 1 (positive) / 0 (negative) per point,
    all positive when omitted; box: [x0, y0, x1, y1], clipped to the image.
    """
    w, h = size
    points, labels, box = _parse(points, "Points"), _parse(labels, "Labels"), _parse(box, "Box")
    pts = np.zeros((0, 2), np.float64)
    if points:
        try:
            pts = np.asarray(points, np.float64).reshape(-1, 2)
        except (TypeError, ValueError, OverflowError):
            raise UserError("Points must be a list of [x, y] pairs, like [[120, 80], [200, 95]].") from None
        if not np.isfinite(pts).all():
            raise UserError("Point coordinates must be finite numbers.")
    if labels is None or (isinstance(labels, list) and not labels):
        lab = np.ones(len(pts), np.int64)
    else:
        try:
            lab = np.asarray(labels, np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise UserError("Labels must be a list of 1 (positive) and 0 (negative), one per point.") from None
        if len(lab) != len(pts):
            raise UserError(f"Got {len(pts)} points but {len(lab)} labels; give one label (1 or 0) per point.")
        if not np.isin(lab, (0, 1)).all():
            raise UserError("Labels must be 1 (positive: part of the object) or 0 (negative: not part of it).")
        lab = lab.astype(np.int64)
    for x, y in pts:
        if not (0 <= x < w and 0 <= y < h):
            raise UserError(f"The point ({x:g}, {y:g}) is outside the image ({w}x{h}); click on the image itself.")
    bx = None
    if box is not None and not (isinstance(box, (list, tuple)) and len(box) == 0):
        try:
            b = np.asarray(box, np.float64).reshape(4)
        except (TypeError, ValueError, OverflowError):
            raise UserError("A box must be four numbers [x0, y0, x1, y1] (two opposite corners).") from None
        if not np.isfinite(b).all():
            raise UserError("Box coordinates must be finite numbers.")
        x0, x1 = sorted((b[0], b[2]))
        y0, y1 = sorted((b[1], b[3]))
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise UserError(f"The box [{b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}] is outside the image ({w}x{h}); "
                            "draw it on the image.")
        x0, x1 = np.clip((x0, x1), 0, w)
        y0, y1 = np.clip((y0, y1), 0, h)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise UserError("The box has no area (its corners are on one line); click two opposite corners.")
        bx = np.array([x0, y0, x1, y1])
    if not len(pts) and bx is None:
        raise UserError("Add a prompt: click on the object (a positive point) or draw a box around it.")
    if bx is None and not (lab == POSITIVE).any():
        raise UserError("Only negative points: add a positive point on the object you want (or a box around it).")
    return Prompts(pts, lab, bx)


# ---- the work ---------------------------------------------------------------------------------------------------


@dataclass
class Segmentation:
    masks: np.ndarray  # K x H x W bool, best (highest predicted IoU) first
    scores: list[float]  # predicted IoU of each mask, same order
    prompts: Prompts


def segment(engine: SamEngine, embedding: Embedding, points=None, labels=None, box=None,
            multimask: bool = True) -> Segmentation:
    """Masks for the prompts on a computed embedding (no image encoding here). Best mask first."""
    if embedding.engine_uid != engine.uid:
        raise UserError("The model changed since this image was encoded; click again.")
    h, w = embedding.original_size
    prompts = check_prompts((w, h), points, labels, box)
    masks, scores, _ = engine.decode(embedding, prompts.points if len(prompts.points) else None, prompts.labels,
                                     prompts.box, bool(multimask))
    order = np.argsort(-scores, kind="stable")
    return Segmentation(masks[order], [float(s) for s in scores[order]], prompts)


def segment_image(engine: SamEngine, image, points=None, labels=None, box=None, multimask: bool = True):
    """One-shot: prepare, encode and segment (what a script wants; the UI caches the embedding instead)."""
    return segment(engine, embed(engine, image), points, labels, box, multimask)


@dataclass
class FoundMask:
    mask: np.ndarray  # H x W bool; no pixel belongs to two FoundMasks of one result
    area: int
    bbox: tuple[int, int, int, int]  # x, y, w, h
    predicted_iou: float
    stability_score: float

    def summary(self, index: int) -> dict:
        return {"id": index, "area": self.area, "bbox_xywh": list(self.bbox),
                "predicted_iou": round(self.predicted_iou, 4), "stability_score": round(self.stability_score, 4)}


class Stopped(UserError):
    """The user pressed Stop."""


def segment_everything(engine: SamEngine, embedding: Embedding, picture: Picture, points_per_side: int = 32,
                       pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95, min_area: int = 0,
                       points_per_batch: int = 64, progress: Callable[[int, int], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> list[FoundMask]:
    """All objects: SamAutomaticMaskGenerator over a grid of points, on the cached embedding.

    The generator's masks overlap (parts inside wholes); here they are made disjoint: larger masks are painted
    first and smaller ones on top, so every pixel belongs to at most one mask (the most specific one). Masks
    left smaller than `min_area` pixels are dropped. Sorted by area, largest first.
    """
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    if embedding.key != picture.key or embedding.engine_uid != engine.uid:
        raise UserError("The image changed while segmenting; press Segment everything again.")
    pps = _int_in(points_per_side, 2, 128, "Points per side")
    for v, name in ((pred_iou_thresh, "The predicted-IoU threshold"), (stability_score_thresh, "The stability threshold")):
        try:
            fv = float(v)
        except (TypeError, ValueError, OverflowError):
            fv = math.nan
        if not 0.0 <= fv <= 1.0:
            raise UserError(f"{name} must be a number between 0 and 1.")
    min_area = _int_in(min_area or 0, 0, picture.rgb.shape[0] * picture.rgb.shape[1], "Minimum area")
    total = math.ceil(pps * pps / points_per_batch)

    class CachedPredictor(SamPredictor):
        """The generator's predictor, fed the cached embedding instead of encoding again; reports progress."""

        done = 0

        def set_image(self, image, image_format="RGB"):
            self.reset_image()
            self.features, self.original_size = embedding.features, embedding.original_size
            self.input_size, self.is_image_set = embedding.input_size, True

        def predict_torch(self, *args, **kwargs):
            if should_stop and should_stop():
                raise Stopped("Stopped. Press Segment everything to start again.")
            out = super().predict_torch(*args, **kwargs)
            self.done += 1
            if progress:
                progress(self.done, total)
            return out

    generator = SamAutomaticMaskGenerator(engine.sam, points_per_side=pps, points_per_batch=points_per_batch,
                                          pred_iou_thresh=float(pred_iou_thresh),
                                          stability_score_thresh=float(stability_score_thresh))
    generator.predictor = CachedPredictor(engine.sam)
    raw = generator.generate(picture.rgb)  # the crop is the whole image, so set_image gets our cached embedding
    return disjoint(raw, min_area)


def disjoint(records: list[dict], min_area: int = 0) -> list[FoundMask]:
    """Make automatic-generator masks non-overlapping (smaller masks win) and sort them, largest first."""
    if not records:
        return []
    records = sorted(records, key=lambda r: -int(r["area"]))
    label = np.zeros(records[0]["segmentation"].shape, np.int32)
    for i, r in enumerate(records, start=1):
        label[r["segmentation"]] = i
    areas = np.bincount(label.ravel(), minlength=len(records) + 1)
    found = []
    for i, r in enumerate(records, start=1):
        if areas[i] == 0 or areas[i] < min_area:
            continue
        m = label == i
        ys, xs = np.nonzero(m)
        x0, y0 = int(xs.min()), int(ys.min())
        found.append(FoundMask(m, int(areas[i]), (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1),
                               float(r["predicted_iou"]), float(r["stability_score"])))
    found.sort(key=lambda f: -f.area)
    return found


def _int_in(value, lo: int, hi: int, name: str) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name} must be a whole number between {lo} and {hi}.") from None
    if not math.isfinite(v) or v != int(v) or not lo <= v <= hi:
        raise UserError(f"{name} must be a whole number between {lo} and {hi}.")
    return int(v)


# ---- outputs ----------------------------------------------------------------------------------------------------


def mask_png(mask: np.ndarray):
    """The mask as a black-and-white PIL image (255 = object), the size of the input image."""
    from PIL import Image

    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


def cutout(picture: Picture, mask: np.ndarray):
    """The object on a transparent background (RGBA, the size of the input image)."""
    from PIL import Image

    alpha = mask.astype(np.uint8) * 255
    if picture.alpha is not None:
        alpha = np.minimum(alpha, picture.alpha)
    # fully transparent pixels carry no colour: zeros make the PNG smaller and ~5x faster to write
    return Image.fromarray(np.dstack([picture.rgb * (alpha[..., None] > 0), alpha]), mode="RGBA")


def thumbnail(mask: np.ndarray, side: int = 256):
    """A candidate mask, small enough for the gallery (the full-size mask comes when it is picked)."""
    img = mask_png(mask)
    factor = max(1, math.ceil(max(img.size) / side))
    return img.reduce(factor) if factor > 1 else img


def save_for_display(picture_img, mask_img, cut_img, folder: Path) -> tuple[str, str, str]:
    """Write the click's images once, in cheap formats, for gradio to serve as they are.

    Left to gradio, a 1024x768 click costs ~0.5 s on 2 cores in PNG encoding alone (the prompt drawing as an RGB PNG,
    the cut-out at the highest compression). The drawing is only looked at (JPEG, 3 ms); the mask and cut-out are
    downloads and stay lossless PNG, written at a fast compression level.
    """
    base = folder / "image.jpg"
    picture_img.save(base, "JPEG", quality=90)
    mask_path, cut_path = folder / "mask.png", folder / "cutout.png"
    mask_img.save(mask_path, "PNG", compress_level=3)
    cut_img.save(cut_path, "PNG", compress_level=3)
    return str(base), str(mask_path), str(cut_path)


def draw_prompts(picture: Picture, points=(), labels=(), box=None, corner=None):
    """The image with the clicks drawn on it: green positive, red negative, a blue box, a pending corner."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(picture.rgb)
    d = ImageDraw.Draw(img)
    r = max(3, min(img.size) // 90)
    for (x, y), lab in zip(points, labels):
        color = (40, 200, 60) if int(lab) == POSITIVE else (230, 40, 40)
        d.ellipse([x - r, y - r, x + r, y + r], fill=color, outline=(255, 255, 255), width=max(1, r // 3))
    if box is not None:
        d.rectangle([float(v) for v in box], outline=(30, 120, 255), width=max(2, r // 2))
    if corner is not None:
        x, y = corner
        d.line([x - 2 * r, y, x + 2 * r, y], fill=(30, 120, 255), width=max(2, r // 2))
        d.line([x, y - 2 * r, x, y + 2 * r], fill=(30, 120, 255), width=max(2, r // 2))
    return img


# ---- UI ---------------------------------------------------------------------------------------------------------

_MODES = ("Positive point", "Negative point", "Box (two corner clicks)")


def _fresh(key: str | None = None) -> dict:
    """The clicks of one image: points [x, y, label], a box, a pending first corner, and an undo history."""
    return {"key": key, "points": [], "box": None, "corner": None, "history": []}


def ui(ctx):
    import gradio as gr

    store = EmbeddingStore(per_session=3, total=32)
    stop_flags: dict[str, threading.Event] = {}

    def light(fn):
        """The UI edge for quick state-only handlers (no model, so no GPU slot on ZeroGPU): UserError -> gr.Error."""
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as e:
                raise gr.Error(str(e), print_exception=False) from None
        return wrapper

    def session(request) -> str:
        return getattr(request, "session_hash", None) or ""

    def cached(lease, picture, request):
        t0 = time.perf_counter()
        emb, hit = store.get(session(request), lease.engine, picture)
        return emb, hit, (time.perf_counter() - t0) * 1e3

    # -- components --
    with gr.Row():
        with gr.Column(scale=1):
            model = ctx.model_dropdown()
            image = gr.Image(label="Image: click to add points", type="pil", image_mode=None,
                             sources=["upload", "clipboard"], format="png")
            # photos shipped by ultralytics (found without importing it: torch) and gradio; a missing one is left out
            found = (package_file("ultralytics", "assets", "bus.jpg"),
                     package_file("ultralytics", "assets", "zidane.jpg"),
                     package_file("gradio", "media_assets", "images", "cheetah.jpg"),
                     package_file("gradio", "media_assets", "images", "lion.jpg"))
            samples = [[str(p)] for p in found if p is not None]
            examples = gr.Examples(samples, [image], label="Sample photos (ship with ultralytics and gradio)",
                                   cache_examples=False) if samples else None
            mode = gr.Radio(list(_MODES), value=_MODES[0], label="A click adds")
            with gr.Row():
                undo_btn = gr.Button("Undo last click")
                clear_btn = gr.Button("Clear clicks")
            multimask = gr.Checkbox(True, label="Three candidate masks (best first); untick for one mask from many clicks")
            with gr.Accordion("Prompts (what the /segment API takes)", open=False):
                points_js = gr.JSON(label="Points [[x, y], ...] in image pixels", value=[])
                labels_js = gr.JSON(label="Labels: 1 positive, 0 negative", value=[])
                box_js = gr.JSON(label="Box [x0, y0, x1, y1]", value=None)
        with gr.Column(scale=1):
            overlay = gr.AnnotatedImage(label="Mask", format="png", show_legend=False)
            gallery = gr.Gallery(label="Candidate masks, best first (click one to use it)", columns=3, height=170,
                                 format="png", allow_preview=False)
            with gr.Row():
                mask_out = gr.Image(label="Mask (PNG)", type="pil", format="png", interactive=False,
                                    buttons=["download"])
                cut_out = gr.Image(label="Cut-out (transparent PNG)", type="pil", image_mode="RGBA", format="png",
                                   interactive=False, buttons=["download"])
            record = gr.JSON(label="Details")
    with gr.Accordion("Segment everything", open=False):
        with gr.Row():
            pps = gr.Slider(4, 64, 32, step=1, label="Points per side (more finds smaller objects, slower)")
            iou_t = gr.Slider(0.0, 1.0, 0.88, step=0.01, label="Predicted-IoU threshold (quality)")
            stab_t = gr.Slider(0.0, 1.0, 0.95, step=0.01, label="Stability threshold")
            min_area = gr.Number(0, label="Drop masks smaller than (pixels)", precision=0, minimum=0)
        with gr.Row():
            all_btn = gr.Button("Segment everything", variant="primary")
            stop_btn = gr.Button("Stop")
        all_overlay = gr.AnnotatedImage(label="All masks", format="png")
        all_table = gr.JSON(label="Masks (largest first)")
    clicks = gr.State(_fresh())
    candidates = gr.State(None)

    # -- clicks --
    def prompt_lists(state):
        pts = [[p[0], p[1]] for p in state["points"]]
        return pts, [p[2] for p in state["points"]], state["box"]

    @light
    def on_click(state, mode_value, img, evt: gr.SelectData):
        picture = prepare_image(img)
        state = json.loads(json.dumps(state or _fresh()))
        if state["key"] != picture.key:
            if state["points"] or state["box"] or state["corner"]:
                gr.Warning("The image changed, so the clicks on the previous image were cleared.")
            state = _fresh(picture.key)
        x, y = (float(v) for v in evt.index[:2])
        w, h = picture.size
        if not (0 <= x < w and 0 <= y < h):
            raise UserError(f"The click ({x:g}, {y:g}) is outside the image ({w}x{h}); click on the image itself.")
        if mode_value == _MODES[2]:
            if state["corner"] is None:
                state["corner"] = [x, y]
                state["history"].append(["corner", None])
            else:
                (cx, cy) = state["corner"]
                if abs(cx - x) < 1 or abs(cy - y) < 1:
                    raise UserError("The two corners are on one line, so the box has no area; click the opposite "
                                    "corner of the object.")
                state["history"].append(["box", state["box"], state["corner"]])
                state["box"] = [min(cx, x), min(cy, y), max(cx, x), max(cy, y)]
                state["corner"] = None
        else:
            state["points"].append([x, y, POSITIVE if mode_value == _MODES[0] else NEGATIVE])
            state["history"].append(["point", None])
        return state, *prompt_lists(state)

    def undo(state):
        state = json.loads(json.dumps(state or _fresh()))
        if state["history"]:
            kind, *old = state["history"].pop()
            if kind == "point":
                state["points"].pop()
            elif kind == "corner":
                state["corner"] = None
            else:
                state["box"], state["corner"] = old
        return state, *prompt_lists(state)

    def clear(state):
        return _fresh((state or {}).get("key")), [], [], None

    def reset_for_new_image():
        # An upload, a clear or a paste: the old clicks belong to the old image.
        return _fresh(), [], [], None, None, None, [], None, None, None

    # -- segmenting --
    def outputs_for(picture, seg, index, state):
        mask = seg["masks"][index]
        base = draw_prompts(picture, seg["points"], seg["labels"], seg["box"], (state or {}).get("corner"))
        label = f"mask {index + 1} (score {seg['scores'][index]:.3f})"
        base, mpng, cut = save_for_display(base, mask_png(mask), cutout(picture, mask),
                                           request_folder(SPEC.name, "clicks", keep_s=600))
        return (base, [(mask.astype(np.float32), label)]), mpng, cut

    @ctx.handler
    def run_segment(img, points, labels, box, multi, model_id, state=None, request: gr.Request = None,
                    progress=gr.Progress(track_tqdm=True)):
        """Segment the object the prompts point at. Returns the overlay, every candidate mask (best first),
        the chosen mask as a PNG, the transparent cut-out and details (scores, timings, model)."""
        picture = prepare_image(img)
        prompts = check_prompts(picture.size, points, labels, box)

        def work(lease):
            emb, hit, embed_ms = cached(lease, picture, request)
            t0 = time.perf_counter()
            seg = segment(lease.engine, emb, prompts.points, prompts.labels, prompts.box, multi)
            decode_ms = (time.perf_counter() - t0) * 1e3
            rec = lease.record(**prompts.as_json(), multimask=bool(multi), scores=[round(s, 4) for s in seg.scores],
                               embedding="cached" if hit else f"computed in {embed_ms:.0f} ms",
                               decode_ms=round(decode_ms, 1), image=f"{picture.size[0]}x{picture.size[1]}")
            return seg, rec

        seg, rec = ctx.run(work, model_id)
        kept = {"key": picture.key, "masks": seg.masks, "scores": seg.scores, **prompts.as_json()}
        kept["points"], kept["labels"] = seg.prompts.points.tolist(), seg.prompts.labels.tolist()
        ov, mpng, cut = outputs_for(picture, kept, 0, state)
        thumbs = [(thumbnail(m), f"#{i + 1}  score {s:.3f}") for i, (m, s) in enumerate(zip(seg.masks, seg.scores))]
        return ov, thumbs, mpng, cut, rec, kept

    def refresh(img, points, labels, box, multi, model_id, state, request: gr.Request):
        """After undo/clear: segment what is left, or show the bare image (with a pending corner) if nothing is."""
        has_positive = any(int(v) == POSITIVE for v in (labels or []))
        if img is None:
            return None, [], None, None, None, None
        if not (has_positive or box):
            picture = prepare_image(img)
            return (draw_prompts(picture, points or [], labels or [], None, (state or {}).get("corner")), []), \
                [], None, None, None, None
        return run_segment(img, points, labels, box, multi, model_id, state, request)

    @light
    def pick(kept, img, state, evt: gr.SelectData):
        if kept is None:
            raise UserError("Click on the image first to make candidate masks.")
        picture = prepare_image(img)
        if picture.key != kept["key"]:
            raise UserError("The image changed since these masks were made; click on the new image.")
        return outputs_for(picture, kept, int(evt.index), state)

    @ctx.handler
    def warm(img, model_id, request: gr.Request):
        """Encode a newly uploaded image right away, so the first click is fast."""
        if img is None:
            return
        picture = prepare_image(img)
        ctx.run(lambda lease: cached(lease, picture, request), model_id)

    seg_inputs = [image, points_js, labels_js, box_js, multimask, model, clicks]
    seg_outputs = [overlay, gallery, mask_out, cut_out, record, candidates]
    image.select(on_click, [clicks, mode, image], [clicks, points_js, labels_js, box_js], api_name=False).success(run_segment, seg_inputs, seg_outputs, api_name="segment", **ctx.events)
    undo_btn.click(undo, [clicks], [clicks, points_js, labels_js, box_js], api_name=False).success(
        ctx.handler(refresh), seg_inputs, seg_outputs, api_name=False, **ctx.events)
    clear_btn.click(clear, [clicks], [clicks, points_js, labels_js, box_js], api_name=False).success(
        ctx.handler(refresh), seg_inputs, seg_outputs, api_name=False, **ctx.events)
    gallery.select(pick, [candidates, image, clicks], [overlay, mask_out, cut_out], api_name=False)
    image.clear(reset_for_new_image, None,
                [clicks, points_js, labels_js, box_js, overlay, record, gallery, mask_out, cut_out, candidates],
                api_name=False)
    image.upload(reset_for_new_image, None,
                 [clicks, points_js, labels_js, box_js, overlay, record, gallery, mask_out, cut_out, candidates],
                 api_name=False).then(warm, [image, model], None, api_name=False, **ctx.events)

    if examples is not None:  # a sample photo is a new image too (an example click fires no upload event)
        examples.load_input_event.then(
            reset_for_new_image, None,
            [clicks, points_js, labels_js, box_js, overlay, record, gallery, mask_out, cut_out, candidates],
            api_name=False).then(warm, [image, model], None, api_name=False, **ctx.events)

    # -- segment everything --
    @ctx.handler
    def run_everything(img, points_per_side, iou_thresh, stability_thresh, min_pixels, model_id,
                       request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Find every object: returns the image with all masks (non-overlapping, largest first) and a table."""
        picture = prepare_image(img)
        sid = session(request)
        flag = stop_flags.setdefault(sid, threading.Event())
        flag.clear()

        def work(lease):
            progress(0, desc="Encoding the image")
            emb, hit, _ = cached(lease, picture, request)
            found = segment_everything(
                lease.engine, emb, picture, points_per_side, iou_thresh, stability_thresh, min_pixels or 0,
                progress=lambda i, n: progress(i / n, desc=f"Decoding point batch {i}/{n}"),
                should_stop=flag.is_set)
            rec = lease.record(points_per_side=points_per_side, pred_iou_thresh=iou_thresh,
                               stability_score_thresh=stability_thresh, min_area=min_pixels, masks=len(found),
                               embedding="cached" if hit else "computed")
            return found, rec

        try:
            found, rec = ctx.run(work, model_id)
        finally:
            stop_flags.pop(sid, None)  # only running requests have a flag: the dict stays small
        if not found:
            gr.Info("No mask passed the thresholds; lower the predicted-IoU or stability threshold.")
        annotations = [(f.mask.astype(np.float32), f"#{i + 1}") for i, f in enumerate(found)]
        return (_pil(picture), annotations), {"masks": [f.summary(i + 1) for i, f in enumerate(found)],
                                                     "record": rec}

    def stop(request: gr.Request):
        flag = stop_flags.get(session(request))
        if flag is not None:
            flag.set()

    everything = all_btn.click(run_everything, [image, pps, iou_t, stab_t, min_area, model], [all_overlay, all_table],
                               api_name="segment_everything", **ctx.events)
    stop_btn.click(stop, None, None, api_name=False, cancels=[everything])


def _pil(picture: Picture):
    from PIL import Image

    return Image.fromarray(picture.rgb)
