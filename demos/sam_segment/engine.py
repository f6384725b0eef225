"""SAM's engine: loading (checkpoints, hash-checked), the image encoder and the lean click decoder, prompts, segment.

`SamPredictor` is stateful (set_image, then predict) and not safe to share between requests, so no predictor is
shared: `SamEngine` keeps no per-request state, and the image embedding travels with each request (see store.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demos.sam_segment import SPEC
from demos.sam_segment.arch import build, use_sdpa_attention
from hub import validate
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.media.image import read_image

log = logging.getLogger(__name__)

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
                        f"{', '.join(m.id for m in SPEC.models if not m.hidden)}, or give a local "
                        f"checkpoint path in {SPEC.env_var}.")
    path = Path(weights.path) / name
    if not path.exists():
        import torch.hub

        path.parent.mkdir(parents=True, exist_ok=True)
        # Writes to a temporary file next to the target and renames it at the end: no half file in the cache.
        torch.hub.download_url_to_file(url, str(path), progress=True)
    verify_file(path, choice.sha256, SPEC.name)
    return path


def load(weights, device: str, dtype: str, options=None):
    """Build the model: a cached checkpoint (hash-checked, `weights_only` load), a local file, or random weights;
    a SAM 2.1 choice (options family="sam2") loads through transformers instead (sam2.py).

    options: unused (SAM declares no operator options).
    """
    import torch

    if weights.choice.options.get("family") == "sam2":  # SAM 2.1: transformers' classes, images and video
        from demos.sam_segment import sam2

        return sam2.load(weights, device, dtype)
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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are reproducible, and the global RNG is left alone
        sam = build(arch, weights.cache_dir)
    if state is not None:
        sam.load_state_dict(state)
    return SamEngine(sam, device, dtype, arch)


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(p for p in path.rglob("*") if p.suffix in (".pth", ".pt"))
    if len(found) != 1:
        raise UserError(f"Expected one SAM checkpoint (.pth/.pt) in the folder {path.name!r}, found {len(found)}; "
                        f"point {SPEC.env_var} at the checkpoint file itself.")
    return found[0]


def _arch_of(state, path: Path) -> str:
    if not isinstance(state, dict):
        raise UserError(f"{path.name} is not a SAM checkpoint (expected a state dict); use an official SAM or "
                        "MobileSAM file.")
    w = state.get("image_encoder.patch_embed.proj.weight")
    if w is not None:
        arch = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}.get(int(w.shape[0]))
        if arch:
            return arch
    if "image_encoder.patch_embed.seq.0.c.weight" in state:
        return "vit_t"
    raise UserError(f"{path.name} does not look like a SAM ViT-B/L/H or MobileSAM checkpoint; use one of the "
                    "official files.")


# ---- images and embeddings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """An input image made ready for SAM: RGB uint8 pixels and a content hash (the embedding store's key)."""

    rgb: np.ndarray  # H x W x 3 uint8
    key: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.rgb.shape[1], self.rgb.shape[0]


def prepare_image(image) -> Picture:
    """Any upload (PIL image, numpy array, file path, gradio file) decoded by the hub (hub.media.image: EXIF,
    16-bit, alpha, pixel cap), checked for a shape SAM can see, and hashed.

    Raises UserError for a missing, unreadable, tiny, huge or extremely elongated image.
    """
    if isinstance(image, Picture):
        return image
    decoded = read_image(image, "the image to segment", min_side=MIN_SIDE)
    w, h = decoded.image.size
    if max(w, h) / min(w, h) > 32:
        raise UserError(f"The image is {w}x{h}, longer than 32:1; crop it to a less extreme shape so SAM can see it.")
    rgb = np.ascontiguousarray(decoded.array())
    digest = hashlib.sha256()  # hardware-accelerated on most CPUs: ~2x faster than blake2b here
    digest.update(f"{rgb.shape}".encode())
    digest.update(rgb.data)
    return Picture(rgb, digest.hexdigest())


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
        from segment_anything.modeling import MaskDecoder, PromptEncoder
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


def embed(engine: SamEngine, image) -> Embedding:
    """The image embedding of `image` (runs the encoder)."""
    return engine.embed(prepare_image(image))


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


def check_prompts(size: tuple[int, int], points=None, labels=None, box=None) -> Prompts:
    """Validate click prompts against an image of `size` (width, height); raise UserError with what to do.

    points: [[x, y], ...] in image pixels (0 <= x <= width, 0 <= y <= height; others are refused); labels: 1
    (positive) / 0 (negative) per point, all positive when omitted; box: [x0, y0, x1, y1], any two opposite
    corners, cut to the part inside the image. Each may also be given as JSON text.
    """
    w, h = size
    pts = _check_points(_parse(points, "Points"), w, h)
    lab = _check_labels(_parse(labels, "Labels"), len(pts))
    bx = _check_box(_parse(box, "Box"), w, h)
    if not len(pts) and bx is None:
        raise UserError("Add a prompt: click on the object (a positive point) or draw a box around it.")
    if bx is None and not (lab == POSITIVE).any():
        raise UserError("Only negative points: add a positive point on the object you want (or a box around it).")
    return Prompts(pts, lab, bx)


def check_segment(size: tuple[int, int], points=None, labels=None, box=None,
                  multimask=True) -> tuple[Prompts, bool]:
    """Everything `segment` checks, before any work: the prompts (check_prompts) and the multimask flag."""
    prompts = check_prompts(size, points, labels, box)
    return prompts, validate.flag(multimask, "multimask (three candidate masks)", default=True)


def _parse(value, what: str):
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
            raise UserError(f"{what} must be JSON, like [[120, 80]] for points or [10, 10, 200, 150] for a "
                            "box.") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


def _check_points(points, w: int, h: int) -> np.ndarray:
    if not points:
        return np.zeros((0, 2), np.float64)
    try:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
    except (TypeError, ValueError, OverflowError):
        raise UserError("Points must be a list of [x, y] pairs, like [[120, 80], [200, 95]].") from None
    for i, (x, y) in enumerate(pts, start=1):
        validate.number(x, f"the x of point {i} (the image is {w} pixels wide)", 0, w)
        validate.number(y, f"the y of point {i} (the image is {h} pixels high)", 0, h)
    return pts


def _check_labels(labels, n: int) -> np.ndarray:
    if labels is None or (isinstance(labels, list) and not labels):
        return np.ones(n, np.int64)
    try:
        lab = np.asarray(labels, np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise UserError("Labels must be a list of 1 (positive) and 0 (negative), one per point.") from None
    if len(lab) != n:
        raise UserError(f"Got {n} points but {len(lab)} labels; give one label (1 or 0) per point.")
    if not np.isin(lab, (0, 1)).all():
        raise UserError("Labels must be 1 (positive: part of the object) or 0 (negative: not part of it).")
    return lab.astype(np.int64)


def _check_box(box, w: int, h: int) -> np.ndarray | None:
    if box is None or (isinstance(box, (list, tuple)) and len(box) == 0):
        return None
    try:
        b = np.asarray(box, np.float64).reshape(4)
    except (TypeError, ValueError, OverflowError):
        raise UserError("A box must be four numbers [x0, y0, x1, y1] (two opposite corners).") from None
    for name, v in zip(("x0", "y0", "x1", "y1"), b):
        validate.number(v, f"the box's {name}")
    x0, x1 = sorted((b[0], b[2]))
    y0, y1 = sorted((b[1], b[3]))
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise UserError(f"The box [{b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}] is outside the image ({w}x{h}); "
                        "draw it on the image.")
    # A box that overhangs the image means the part of the image inside it (a drag past the edge): cut, not refused.
    x0, x1 = np.clip((x0, x1), 0, w)
    y0, y1 = np.clip((y0, y1), 0, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise UserError("The box has no area (its corners are on one line); click two opposite corners.")
    return np.array([x0, y0, x1, y1])


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
    prompts, multimask = check_segment((w, h), points, labels, box, multimask)
    masks, scores, _ = engine.decode(embedding, prompts.points if len(prompts.points) else None, prompts.labels,
                                     prompts.box, multimask)
    order = np.argsort(-scores, kind="stable")
    return Segmentation(masks[order], [float(s) for s in scores[order]], prompts)


def segment_image(engine: SamEngine, image, points=None, labels=None, box=None, multimask: bool = True):
    """One-shot: prepare, encode and segment (what a script wants; the UI caches the embedding instead)."""
    return segment(engine, embed(engine, image), points, labels, box, multimask)
