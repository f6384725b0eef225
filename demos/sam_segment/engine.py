"""SAM's engine: loading (checkpoints, hash-checked), the image encoder and the lean click decoder, segment, and the
work methods (WORK: segment, embed, segment_everything, track_video).

`SamPredictor` is stateful (set_image, then predict) and not safe to share between requests, so no predictor is
shared: `SamEngine` keeps no per-request state; the image embeddings of each session are kept in the engine's own
bounded store (store.py), keyed by the session the request carries.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from demos.sam_segment import SPEC
from demos.sam_segment.arch import build, use_sdpa_attention
from demos.sam_segment.everything import check_everything_model, check_settings, segment_everything
from demos.sam_segment.prompts import NEGATIVE, POSITIVE, Prompts, check_prompts, check_segment  # noqa: F401
from demos.sam_segment.store import EmbeddingStore
from demos.sam_segment.types import (EmbedRequest, EmbedResult, EverythingRequest, EverythingResult, Picture,
                                     SegmentRequest, SegmentResult, TrackRequest, TrackResult)
from demos.sam_segment.video import track_video
from hub import loadtimes
from hub.contract import EngineBase
from hub.device import cpu_channels_last
from hub.errors import UserError
from hub.media.image import read_image
from hub.outputs import request_folder
from hub.work import Work

log = logging.getLogger(__name__)

MIN_SIDE = 8


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
    with loadtimes.stage("import"):
        import torch
        from segment_anything.modeling import MaskDecoder  # noqa: F401 (the library, before its build)

    if weights.choice.options.get("family") == "sam2":  # SAM 2.1: transformers' classes, images and video
        from demos.sam_segment import sam2

        return sam2.load(weights, device, dtype)
    arch = weights.choice.options.get("arch")
    state = None
    if weights.source == "random":
        arch = arch or "vit_b"
    else:
        path = _checkpoint(weights) if weights.source == "native" else _find_checkpoint(Path(weights.path))
        loadtimes.read_files([path])
        with loadtimes.stage("build"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        arch = _arch_of(state, path)
    with loadtimes.stage("build"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are reproducible, and the global RNG is left alone
        sam = build(arch, weights.cache_dir)
        if state is not None:
            sam.load_state_dict(state)
    with loadtimes.stage("convert"):  # to the device, its layout (and on a GPU its warm-up, counted apart)
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


class SamEngine(EngineBase):
    """A loaded SAM. Thread-safe: every call keeps its state in local variables (no shared SamPredictor); the
    sessions' image embeddings are kept in `embeddings` (bounded, counted in `extra_bytes`)."""

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
        self.embeddings = EmbeddingStore()
        self._graph_bytes = 0
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
            with loadtimes.stage("warm-up"):
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
            self._graph_bytes = self._encoder_graph.nbytes
        except Exception as e:
            log.warning("SAM: CUDA graph capture of the image encoder failed (%s: %s); running it eagerly.",
                        type(e).__name__, e)
            self._encoder_graph = None

    @property
    def extra_bytes(self) -> int:
        """The encoder's CUDA graph pool and the kept embeddings: counted by the model manager with the weights."""
        return self._graph_bytes + self.embeddings.nbytes

    def embedding(self, session: str, picture: Picture) -> tuple[Embedding, bool]:
        """(embedding, was it cached?) of `picture` for `session`, encoding it at most once."""
        return self.embeddings.get(session, self.embed, picture)

    def close(self) -> None:
        self.embeddings.clear()

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


# ---- the work methods (requests and results: types.py) ----------------------------------------------------------

WORK = Work()


@WORK.method(SegmentRequest, name="segment")
def segment_request(lease, req: SegmentRequest, job) -> SegmentResult:
    """Masks for the prompts: the session's cached embedding of the picture (encoded if it is new) and the decoder."""
    picture = prepare_image(req.picture)
    prompts, multimask = check_segment(picture.size, req.points, req.labels, req.box, req.multimask)
    t0 = time.perf_counter()
    emb, hit = lease.engine.embedding(req.session, picture)
    embed_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    seg = segment(lease.engine, emb, prompts.points, prompts.labels, prompts.box, multimask)
    decode_ms = (time.perf_counter() - t0) * 1e3
    rec = lease.record(**prompts.as_json(), multimask=multimask, scores=[round(s, 4) for s in seg.scores],
                       embedding="cached" if hit else f"computed in {embed_ms:.0f} ms",
                       decode_ms=round(decode_ms, 1), image=f"{picture.size[0]}x{picture.size[1]}")
    shown = seg.prompts.as_json()
    return SegmentResult(seg.masks, tuple(seg.scores), shown["points"], shown["labels"], shown["box"], rec)


@WORK.method(EmbedRequest, name="embed")
def embed_request(lease, req: EmbedRequest, job) -> EmbedResult:
    """Encode a newly uploaded picture for the session right away, so that its first click is fast."""
    picture = prepare_image(req.picture)
    t0 = time.perf_counter()
    _, hit = lease.engine.embedding(req.session, picture)
    return EmbedResult(hit, (time.perf_counter() - t0) * 1e3)


@WORK.method(EverythingRequest, name="segment_everything")
def everything_request(lease, req: EverythingRequest, job) -> EverythingResult:
    """Every object (everything.py) on the session's cached embedding; Stop (job.stop) ends it between batches."""
    picture = prepare_image(req.picture)
    s = check_settings(req.points_per_side, req.iou_threshold, req.stability_threshold, req.min_area)
    check_everything_model(lease.engine)
    job.progress(0, "Encoding the image")
    emb, hit = lease.engine.embedding(req.session, picture)
    found = segment_everything(
        lease.engine, emb, picture, s.points_per_side, s.pred_iou_thresh, s.stability_score_thresh, s.min_area,
        progress=lambda i, n: job.progress(i / n, f"Decoding point batch {i}/{n}"), should_stop=job.stop.is_set)
    rec = lease.record(points_per_side=s.points_per_side, pred_iou_thresh=s.pred_iou_thresh,
                       stability_score_thresh=s.stability_score_thresh, min_area=s.min_area, masks=len(found),
                       embedding="cached" if hit else "computed")
    return EverythingResult(tuple(found), rec)


@WORK.method(TrackRequest, name="track_video")
def track_request(lease, req: TrackRequest, job):
    """Track the object through the video (video.py): a TrackProgress per frame, then the TrackResult with its
    record. Stop (job.stop) ends it at the next frame and deletes the half-written files."""
    items = track_video(lease.engine, req.video, request_folder(SPEC.name, "videos"), req.points, req.labels,
                        req.box, req.max_frames, should_stop=job.stop.is_set)
    for item in items:
        if isinstance(item, TrackResult):
            item = replace(item, details=lease.record(points=req.points, labels=req.labels, box=req.box,
                                                      max_frames=req.max_frames, **item.record()))
        yield item
