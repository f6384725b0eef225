"""CLIP zero-shot: classify images against labels you type, and rank a gallery by a text query (open_clip).

How a score is computed (the image and text embeddings are L2-normalised, so `cos` is their cosine similarity):
- single-label mode: `softmax(logit_scale * cos)` over the labels, exactly as CLIP was trained; the scores sum to 1,
  so they say which label fits best, not whether any fits.
- multi-label mode: every label is scored on its own, so adding or removing another label never changes it.
  Models trained with a sigmoid loss carry a `logit_bias` and score `sigmoid(logit_scale * cos + logit_bias)`.
  CLIP models have no bias; they score `sigmoid(logit_scale * (cos - cos_ref))`, where `cos_ref` is the image's
  similarity to the same template(s) filled with a generic word ("thing"): the two-way CLIP softmax between
  "a photo of a <label>" and "a photo of a thing". Above the threshold (default 0.5: the label fits better than
  the generic word) a label counts as present.

Label (text) embeddings are cached per model in a bounded LRU keyed by (label, templates): classifying another image
with the same labels encodes only the image. Search keeps a bounded LRU of image embeddings keyed by the image's
bytes, so re-querying a gallery encodes only the query. On CUDA the model runs in fp16 (open_clip's mixed
precision: LayerNorm in fp32) and the image encoder is captured as CUDA graphs for small batches at load time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import UserError
from hub.spec import DemoSpec, ModelChoice

log = logging.getLogger("demohub")

SPEC = DemoSpec(
    name="clip_zero_shot",
    title="CLIP zero-shot",
    description="Zero-shot image classification with labels you type (single- or multi-label), and text-to-image "
                "search over a gallery you upload. Models: open_clip CLIP.",
    models=(
        ModelChoice("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "hf", label="ViT-B-32 (LAION-2B)",
                    revision="1a25a446712ba5ee05982a381eed697ef9b435cf",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=610_000_000, license="MIT",
                    options={"arch": "ViT-B-32", "tag": "laion2b_s34b_b79k"}),
        ModelChoice("timm/vit_base_patch16_clip_224.openai", "hf", label="ViT-B-16 (OpenAI)",
                    revision="977e3dd0ec55ab8da155f2fbeb6b5f54948b6e3d",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=600_000_000, license="MIT",
                    options={"arch": "ViT-B-16", "tag": "openai", "quick_gelu": True}),
        ModelChoice("timm/vit_large_patch14_clip_224.openai", "hf", label="ViT-L-14 (OpenAI)",
                    revision="18d0535469bb561bf468d76c1d73aa35156c922b",
                    files=("open_clip_config.json", "open_clip_model.safetensors"),
                    approx_bytes=1_715_000_000, license="MIT",
                    options={"arch": "ViT-L-14", "tag": "openai", "quick_gelu": True}),
        ModelChoice("tiny-random", "random", label="tiny random (tests)", approx_bytes=10_000_000, license="MIT",
                    options={"hidden": True, "tiny": True}),
    ),
    default_model={"cuda": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "cpu": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"},
    api_names=("classify", "search_images"),
    gpu_concurrency=1,
    zero_gpu_seconds=60,
)

# A 2-layer CLIP on 32x32 images: builds in well under a second; the vocabulary is open_clip's real BPE one.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

DEFAULT_TEMPLATE = "a photo of a {}."
ENSEMBLES = ("none", "simple", "openai")  # user template only | open_clip's 7 SIMPLE_ | its 80 OPENAI_ templates
MODES = ("single", "multi")
REFERENCE_LABEL = "thing"  # the generic word CLIP labels are compared with in multi-label mode
MAX_LABELS = 100  # default cap; operators change it with DEMOHUB_CLIP_ZERO_SHOT_MAX_LABELS
MAX_IMAGES = 256  # per request; DEMOHUB_CLIP_ZERO_SHOT_MAX_IMAGES
MAX_PIXELS = 50_000_000  # larger uploads are refused before they are decoded
GRAPH_BATCHES = (1, 2, 4, 8)  # CUDA-graph buckets for small image batches; larger batches run eagerly


# ---- the engine ------------------------------------------------------------------------------------------------


@dataclass
class Classification:
    """Scores of every image (rows) against every label (columns)."""

    labels: list[str]
    scores: "object"  # numpy float32 array (n_images, n_labels)
    mode: str
    threshold: float | None = None
    notes: list[str] = field(default_factory=list)

    def top(self, image: int = 0, k: int | None = None) -> dict[str, float]:
        """{label: score} of one image, best first, at most k."""
        pairs = sorted(zip(self.labels, self.scores[image].tolist()), key=lambda p: -p[1])
        return dict(pairs[:k] if k else pairs)

    def present(self, image: int = 0) -> list[str]:
        """Multi-label mode: the labels at or above the threshold, best first."""
        if self.threshold is None:
            return [max(self.top(image), key=self.top(image).get)]
        return [lab for lab, s in self.top(image).items() if s >= self.threshold]


@dataclass
class SearchResult:
    """Gallery ranking for a text query: `order` lists image indices best first; `similarities` is per input."""

    query: str
    order: list[int]
    similarities: "object"  # numpy float32 (n_images,), cosine similarity
    notes: list[str] = field(default_factory=list)


class _LRU:
    """A small thread-safe LRU dict with a bounded number of entries."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


class ClipEngine:
    """An open_clip model with its own preprocess transform and tokenizer, plus the label and image caches.

    `text_encoder_calls` / `texts_encoded` and `image_encoder_calls` / `images_encoded` count work done, so tests
    (and curious operators) can see the caches at work.
    """

    def __init__(self, model, preprocess, tokenizer, device: str, dtype: str, name: str,
                 label_cache_size: int = 4096, image_cache_size: int = 2048):
        import torch

        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.device, self.dtype, self.name = device, dtype, name
        # the dtype pixels must have: the first conv's (open_clip's mixed precision keeps e.g. class_embedding fp32)
        convs = [m for m in model.visual.modules() if isinstance(m, torch.nn.Conv2d)]
        self.input_dtype = convs[0].weight.dtype if convs else next(model.visual.parameters()).dtype
        self.context_length = int(getattr(tokenizer, "context_length", 77) or 77)
        self.logit_scale = float(model.logit_scale.detach().float().exp().clamp(max=100).item())
        bias = getattr(model, "logit_bias", None)
        self.logit_bias = None if bias is None else float(bias.detach().float().reshape(-1)[0].item())
        self.batch_size = 256 if device.startswith("cuda") else 32
        self.label_cache = _LRU(label_cache_size)
        self.image_cache = _LRU(image_cache_size)
        self.text_encoder_calls = self.texts_encoded = 0
        self.image_encoder_calls = self.images_encoded = 0
        self._graphs = None
        self._lock = threading.Lock()  # one forward at a time (CUDA-graph buffers are shared)
        self._torch = torch
        # On CUDA, open_clip's own transforms run on the GPU (PIL's bicubic resize of one 640x480 photo alone took
        # ~6 ms of the H100 host's CPU; the whole encode is ~1 ms of GPU time). None: the PIL path.
        self.tensor_transforms = tensor_transforms(preprocess) if device.startswith("cuda") else None
        self.too_long = functools.lru_cache(maxsize=4096)(self._too_long)  # asked for every label of every request

    # -- text --

    def encode_texts(self, texts: list[str]):
        """Normalised embeddings (n, D) in float32 of `texts` (tokenised by the model's own tokenizer)."""
        torch = self._torch
        from tqdm.auto import tqdm  # shown in the tab by gr.Progress(track_tqdm=True) for big template ensembles

        out = []
        with self._lock, torch.inference_mode():
            for i in tqdm(range(0, len(texts), 256), desc="Encoding labels", disable=len(texts) <= 256):
                tokens = self.tokenizer(texts[i:i + 256]).to(self.device)
                out.append(self.model.encode_text(tokens, normalize=True).float())
                self.text_encoder_calls += 1
                self.texts_encoded += len(tokens)
        return torch.cat(out)

    def _too_long(self, text: str) -> bool:
        """Whether `text` exceeds the text context (start and end tokens included) and will be truncated."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return False
        return len(encode(text)) + 2 > self.context_length

    def label_embeddings(self, labels: list[str], templates: tuple[str, ...]):
        """(n_labels, D) float32: each label's template-averaged, renormalised text embedding, from the LRU cache
        where possible; only the missing labels go through the text encoder (in one batch)."""
        torch = self._torch
        found = {lab: self.label_cache.get((templates, lab)) for lab in labels}
        missing = [lab for lab in dict.fromkeys(labels) if found[lab] is None]
        if missing:
            texts = [fill(t, lab) for lab in missing for t in templates]
            emb = self.encode_texts(texts).reshape(len(missing), len(templates), -1).mean(dim=1)
            emb = emb / emb.norm(dim=-1, keepdim=True)  # the ensemble average, as open_clip's zero-shot classifier
            for lab, e in zip(missing, emb):
                found[lab] = e
                self.label_cache.put((templates, lab), e)
        return torch.stack([found[lab] for lab in labels])

    # -- images --

    def pixel_batch(self, images: list):
        """open_clip's own eval transform for each PIL image (in threads: PIL releases the GIL while resizing)."""
        torch = self._torch
        if self.tensor_transforms is not None:
            return torch.stack([apply_tensor_transforms(self.tensor_transforms, im, self.device) for im in images])
        if len(images) >= 8:
            with ThreadPoolExecutor(max_workers=4) as pool:
                tensors = list(pool.map(self.preprocess, images))
        else:
            tensors = [self.preprocess(im) for im in images]
        return torch.stack(tensors)

    def encode_pixels(self, pixels):
        """Normalised image embeddings (n, D) float32 from preprocessed pixels, in batches of `batch_size`."""
        torch = self._torch
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(pixels), self.batch_size):
                x = pixels[i:i + self.batch_size].to(self.device, self.input_dtype, non_blocking=True)
                y = self._graphs(x) if self._graphs is not None else None
                if y is None:
                    y = self.model.encode_image(x, normalize=True)
                out.append(y.float())
                self.image_encoder_calls += 1
                self.images_encoded += len(x)
        return torch.cat(out)

    def encode_images(self, images: list):
        return self.encode_pixels(self.pixel_batch(images))

    def encode_images_cached(self, images: list, keys: list[str]):
        """Like encode_images, but reuses embeddings of images seen before (keyed by their content hash)."""
        torch = self._torch
        found = [self.image_cache.get(k) for k in keys]
        todo = [i for i, e in enumerate(found) if e is None]
        if todo:
            emb = self.encode_images([images[i] for i in todo])
            for i, e in zip(todo, emb):
                found[i] = e
                self.image_cache.put(keys[i], e)
        return torch.stack(found)

    def capture_graphs(self, batches=GRAPH_BATCHES) -> None:
        """CUDA only: record the image encoder as CUDA graphs for small batches (at load, off the request path).
        Eager PyTorch at batch 1 is bound by kernel launches; replaying a graph removes that overhead."""
        if not self.device.startswith("cuda"):
            return
        try:
            self._graphs = _GraphedEncoder(self.model, batches, self._image_shape(), self.input_dtype, self.device)
            self.extra_bytes = sum(g.nbytes for g in self._graphs.graphs.values())  # counted by the manager
        except Exception as e:  # an op that cannot be captured: eager still works, just slower
            log.warning("CLIP: CUDA graph capture failed (%s: %s); running the image encoder eagerly.",
                        type(e).__name__, e)
            self._graphs = None

    def _image_shape(self) -> tuple[int, int, int]:
        size = self.model.visual.image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return (3, h, w)

    def close(self) -> None:
        self.label_cache.clear()
        self.image_cache.clear()
        self._graphs = None
        self.model = None


def tensor_transforms(preprocess) -> list | None:
    """open_clip's eval transform as steps that run on a uint8 CHW tensor (on any device): its Resize, CenterCrop
    and Normalize objects themselves, with ToTensor's (MaybeToTensor's) scaling to [0, 1] in between. None if the
    transform holds a step that only works on PIL images (that model keeps the PIL path)."""
    from torchvision import transforms as T

    steps = []
    for t in getattr(preprocess, "transforms", [None]):
        if isinstance(t, (T.Resize, T.CenterCrop, T.Normalize)):
            steps.append(t)
        elif isinstance(t, T.ToTensor):
            steps.append("to_float")
        elif getattr(t, "__name__", "") == "_convert_to_rgb" or getattr(t, "mode", None) == "RGB":
            continue  # open_clip's RGB conversion (a function, or MaybeConvertMode): images reach here as RGB
        else:
            return None
    return steps


def apply_tensor_transforms(steps: list, image, device: str):
    """One RGB PIL image through `tensor_transforms` steps on `device`: (3, H, W) float32, normalised."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device, non_blocking=True).permute(2, 0, 1)
    for t in steps:  # Resize/CenterCrop act on uint8 (rounded after resizing, as PIL does), then scale
        x = x.float().div_(255) if t == "to_float" else t(x)
    return x


class _GraphedEncoder:
    """`model.encode_image` recorded once per batch bucket as a CUDA graph; inputs are padded to the bucket."""

    def __init__(self, model, batches, shape, dtype, device):
        import torch

        from hub.cuda_graph import StaticGraph

        self.graphs, pool = {}, None
        for b in sorted(batches, reverse=True):  # largest first, sharing one memory pool
            g = StaticGraph(lambda x: model.encode_image(x, normalize=True),
                            torch.zeros((b, *shape), dtype=dtype, device=device), pool=pool)
            pool = g.pool
            self.graphs[b] = g
        self.buckets = sorted(self.graphs)

    def __call__(self, x):
        n = x.shape[0]
        b = next((b for b in self.buckets if b >= n), None)
        if b is None:
            return None
        if n < b:  # pad with zeros to the bucket
            import torch

            x = torch.cat([x, x.new_zeros((b - n, *x.shape[1:]))])
        return self.graphs[b](x)[:n]


def load(weights, device: str, dtype: str) -> ClipEngine:
    """Build the open_clip model, its eval transform and tokenizer.

    hf: the pinned snapshot's `open_clip_model.safetensors` loaded into the built-in architecture of the choice
    (`options["arch"]`, QuickGELU and preprocessing from open_clip's pretrained table); a snapshot without a known
    architecture loads through its `open_clip_config.json`. path: a folder with `open_clip_config.json` + weights,
    or a single checkpoint whose architecture is recognised from its tensor shapes. random: the architecture with
    random weights (tiny-random: a 2-layer model for tests).
    """
    import open_clip

    precision = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "fp32") if device != "cpu" else "fp32"
    opts = weights.choice.options
    cache_dir = str(weights.hf_cache)
    common = dict(precision=precision, device=device, cache_dir=cache_dir)
    if weights.is_random:
        if opts.get("tiny"):
            arch, kwargs = "ViT-B-32", dict(TINY_CONFIG)  # the built-in name gives the tokenizer; the config the size
        else:
            arch, kwargs = opts.get("arch") or "ViT-B-32", {}
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=None, force_quick_gelu=bool(opts.get("quick_gelu")), **common, **kwargs)
        tokenizer = open_clip.get_tokenizer(arch, cache_dir=cache_dir)
    else:
        arch, pretrained, quick_gelu, pp = _resolve_checkpoint(weights, opts)
        if arch.startswith("local-dir:"):
            model, _, preprocess = open_clip.create_model_and_transforms(arch, **common)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, force_quick_gelu=quick_gelu, **pp, **common)
        tokenizer = open_clip.get_tokenizer(arch, cache_dir=cache_dir)
    engine = ClipEngine(model, preprocess, tokenizer, device, dtype if device != "cpu" else "float32",
                        weights.choice.id)
    engine.capture_graphs()
    return engine


def _resolve_checkpoint(weights, opts) -> tuple[str, str | None, bool, dict]:
    """(open_clip model name, checkpoint file, quick_gelu, preprocessing kwargs) for hf / path weights."""
    import open_clip

    root = Path(weights.path)
    if root.is_dir():
        arch = opts.get("arch")
        if arch:
            ckpt = _checkpoint_in(root)
            cfg = open_clip.get_pretrained_cfg(arch, opts.get("tag", "")) or {}
            pp = {f"image_{k}": cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
            return arch, str(ckpt), bool(opts.get("quick_gelu", cfg.get("quick_gelu", False))), pp
        if (root / "open_clip_config.json").is_file():
            return f"local-dir:{root}", None, False, {}
        raise UserError(f"The folder {root} has no open_clip_config.json, so its CLIP architecture is unknown. Use an "
                        "open_clip folder (config + weights), a single checkpoint file, or one of the listed models.")
    arch = _arch_from_checkpoint(root)
    quick = "openai" in root.name.lower() or "quickgelu" in root.name.lower()
    return arch, str(root), quick, {}


def _checkpoint_in(folder: Path) -> Path:
    for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"No open_clip weights (open_clip_model.safetensors) in {folder}; delete the folder and run "
                    "`demohub fetch clip_zero_shot` again.")


def _arch_from_checkpoint(path: Path) -> str:
    """The built-in open_clip ViT architecture whose shapes match the checkpoint's tensors."""
    import open_clip
    from open_clip.factory import load_state_dict

    try:
        sd = load_state_dict(str(path), weights_only=True)
    except Exception as e:
        raise UserError(f"Could not read {path.name} as an open_clip checkpoint ({type(e).__name__}). Use a "
                        "state-dict file (.safetensors/.pt) or a folder with open_clip_config.json.") from None
    try:
        width, _, patch, _ = sd["visual.conv1.weight"].shape
        grid = int(round(math.sqrt(sd["visual.positional_embedding"].shape[0] - 1)))
        v_layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
        t_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
        t_width, embed = sd["text_projection"].shape
    except (KeyError, ValueError, IndexError):
        raise UserError(f"{path.name} does not look like an open_clip ViT CLIP checkpoint (no visual.conv1 / "
                        "text_projection); use a folder with open_clip_config.json instead.") from None
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
        if ("timm_model_name" in v or "hf_model_name" in t or cfg.get("embed_dim") != embed
                or v.get("width") != width or v.get("patch_size") != patch or v.get("layers") != v_layers
                or v.get("image_size") != patch * grid or t.get("width") != t_width or t.get("layers") != t_layers):
            continue
        return name
    raise UserError(f"{path.name}: no built-in open_clip architecture has these shapes (vision width {width}, "
                    f"patch {patch}, {v_layers} layers); put it in a folder with its open_clip_config.json.")


# ---- input checks --------------------------------------------------------------------------------------------


def fill(template: str, label: str) -> str:
    return template.replace("{}", label)


def parse_labels(text, max_labels: int = MAX_LABELS) -> list[str]:
    """Labels from text: one per line if there are several lines, else comma separated (or an already-split list).

    Raises UserError for no labels, blank or duplicate labels, and more than `max_labels`.
    """
    if isinstance(text, (list, tuple)):
        parts = [str(p) for p in text]
    elif text is not None and not isinstance(text, str):
        raise UserError("Labels must be text: type them separated by commas or one per line (e.g. cat, dog, car).")
    else:
        text = (text or "").strip().strip(",").strip()
        if not text:
            raise UserError("Type some candidate labels, separated by commas or one per line (e.g. cat, dog, car).")
        parts = text.splitlines() if "\n" in text else text.split(",")
    labels = [" ".join(p.split()) for p in parts]
    if not labels:
        raise UserError("Type some candidate labels, separated by commas or one per line (e.g. cat, dog, car).")
    blanks = [i + 1 for i, lab in enumerate(labels) if not lab]
    if blanks:
        raise UserError(f"Label {blanks[0]} is blank: remove the extra comma or empty line between labels.")
    seen: dict[str, str] = {}
    for lab in labels:
        if lab.lower() in seen:
            raise UserError(f"The label {lab!r} is listed twice; remove the duplicate (labels are case-insensitive).")
        seen[lab.lower()] = lab
    if len(labels) > max_labels:
        raise UserError(f"{len(labels)} labels is more than this hub allows ({max_labels}); use fewer labels "
                        "(operators raise the cap with DEMOHUB_CLIP_ZERO_SHOT_MAX_LABELS).")
    return labels


def templates_for(template: str, ensemble: str = "none") -> tuple[str, ...]:
    """The prompt templates to average: the user's template, or open_clip's own zero-shot ensemble."""
    if ensemble not in ENSEMBLES:
        raise UserError(f"Template ensemble must be one of {', '.join(ENSEMBLES)}, not {ensemble!r}.")
    if ensemble != "none":
        import open_clip  # light: its templates are plain lambdas, but this module imports torch

        table = open_clip.SIMPLE_IMAGENET_TEMPLATES if ensemble == "simple" else open_clip.OPENAI_IMAGENET_TEMPLATES
        return tuple(t("{}") for t in table)
    if template is not None and not isinstance(template, str):
        raise UserError("The prompt template must be text with {} where the label goes, e.g. 'a photo of a {}.'")
    template = (template or "").strip()
    if not template:
        template = "{}"
    if "{}" not in template:
        raise UserError(f"The prompt template {template!r} needs {{}} where the label goes, e.g. 'a photo of a {{}}.'")
    return (template,)


def load_image(item, max_pixels: int = MAX_PIXELS):
    """A PIL RGB image from a path, PIL image, numpy array or a gallery (path, caption) pair.

    Odd modes (CMYK, palette, 16-bit, float, alpha) become RGB; EXIF rotation is applied; images over `max_pixels`
    are refused before they are decoded.
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if isinstance(item, dict):  # gradio FileData / gallery payload passed through as a dict
        item = item.get("path") or (item.get("image") or {}).get("path")
    name = Path(str(item)).name if isinstance(item, (str, Path)) else "the image"
    try:
        if isinstance(item, np.ndarray):
            img = Image.fromarray(item)
        elif isinstance(item, Image.Image):
            img = item
        elif isinstance(item, (str, Path)):
            img = Image.open(item)
        else:
            raise UserError("Upload an image file (PNG, JPEG, WebP, ...).")
        w, h = img.size
        if w * h > max_pixels:
            raise UserError(f"{name} is {w}x{h} pixels, more than this hub accepts ({max_pixels / 1e6:.0f} "
                            "megapixels); downscale it and try again.")
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img, np)
    except UserError:
        raise
    except Image.DecompressionBombError:
        raise UserError(f"{name} has far more pixels than this hub accepts ({max_pixels / 1e6:.0f} megapixels); "
                        "downscale it and try again.") from None
    except UnidentifiedImageError:
        raise UserError(f"{name} is not an image this hub can read; upload a PNG, JPEG, WebP, GIF or BMP.") from None
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"{name} could not be decoded ({str(e)[:80]}); it may be truncated or corrupt. "
                        "Upload another copy.") from None


def _to_rgb(img, np):
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # scale high-bit-depth grey to 0..255
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        img = Image.fromarray(a.astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))  # transparent pixels read as white, not black
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def _images(images, max_images: int, what: str = "images") -> list:
    if images is None or (hasattr(images, "__len__") and len(images) == 0):
        raise UserError(f"Upload at least one image ({what}).")
    if not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) > max_images:
        raise UserError(f"{len(images)} images is more than one request may hold ({max_images}); upload fewer.")
    return [load_image(im) for im in images]


def _truncation_notes(engine: ClipEngine, texts_by_label: dict[str, str]) -> list[str]:
    return [f"The label {lab[:40]!r}{'...' if len(lab) > 40 else ''} is longer than the model's "
            f"{engine.context_length}-token text context; only its beginning was used."
            for lab, text in texts_by_label.items() if engine.too_long(text)]


# ---- the work ------------------------------------------------------------------------------------------------


def classify(engine: ClipEngine, images, labels, template: str = DEFAULT_TEMPLATE, ensemble: str = "none",
             mode: str = "single", threshold: float = 0.5, max_labels: int = MAX_LABELS,
             max_images: int = MAX_IMAGES) -> Classification:
    """Score each image against each label (see the module docstring for how scores are computed).

    images: one or several (paths, PIL images, arrays); labels: text (commas or one per line) or a list.
    """
    if mode not in MODES:
        raise UserError(f"Mode must be 'single' (softmax over labels) or 'multi' (each label on its own), not {mode!r}.")
    if mode == "multi":  # single-label mode has no threshold
        try:
            threshold = float(threshold)
        except (TypeError, ValueError, OverflowError):
            threshold = math.nan
        if not 0.0 <= threshold <= 1.0:
            raise UserError("The multi-label threshold must be a number between 0 and 1.")
    labels = parse_labels(labels, max_labels)
    if mode == "single" and len(labels) == 1:
        raise UserError(f"With one label ({labels[0]!r}) single-label mode always gives 1.0 (softmax over one "
                        "label); add more labels or switch to multi-label mode to score it on its own.")
    templates = templates_for(template, ensemble)
    pil = _images(images, max_images)
    notes = _truncation_notes(engine, {lab: max((fill(t, lab) for t in templates), key=len) for lab in labels})

    text = engine.label_embeddings(labels, templates)
    scores = label_scores(engine, engine.encode_images(pil), text, mode, templates)
    return Classification(labels, scores.cpu().numpy(), mode, threshold if mode == "multi" else None, notes)


def label_scores(engine: ClipEngine, img, text, mode: str, templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)):
    """(n_images, n_labels) scores from normalised image (n, D) and label (m, D) embeddings; see the module doc."""
    torch = engine._torch
    cos = img @ text.T
    if mode == "single":
        return torch.softmax(engine.logit_scale * cos, dim=-1)
    if engine.logit_bias is not None:
        return torch.sigmoid(engine.logit_scale * cos + engine.logit_bias)
    ref = engine.label_embeddings([REFERENCE_LABEL], templates)
    return torch.sigmoid(engine.logit_scale * (cos - img @ ref.T))


def search_images(engine: ClipEngine, images, query: str, max_images: int = MAX_IMAGES) -> SearchResult:
    """Rank `images` by cosine similarity to the text `query`, best first."""
    if query is not None and not isinstance(query, str):
        raise UserError("The query must be text describing the picture you are looking for.")
    query = " ".join((query or "").split())
    if not query:
        raise UserError("Type a text query describing the picture you are looking for.")
    pil = _images(images, max_images, "a gallery to search")
    keys = [_image_key(im) for im in pil]
    notes = _truncation_notes(engine, {query: query})
    q = engine.label_embeddings([query], ("{}",))
    emb = engine.encode_images_cached(pil, keys)
    sims = (emb @ q.T)[:, 0].cpu().numpy()
    order = sorted(range(len(pil)), key=lambda i: -float(sims[i]))
    return SearchResult(query, order, sims, notes)


def _image_key(img) -> str:
    h = hashlib.sha1(img.tobytes())
    h.update(f"{img.size}{img.mode}".encode())
    return h.hexdigest()


# ---- the tab -------------------------------------------------------------------------------------------------


def _int_option(ctx, key: str, default: int) -> int:
    from hub.errors import SettingsError

    raw = ctx.settings.demo_option(SPEC.name, key, str(default))
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise SettingsError(f"DEMOHUB_CLIP_ZERO_SHOT_{key.upper()}={raw!r}: use a positive whole number "
                            f"(default {default}).")
    return value


def ui(ctx):
    import gradio as gr
    import pandas as pd

    max_labels = _int_option(ctx, "max_labels", MAX_LABELS)
    max_images = _int_option(ctx, "max_images", MAX_IMAGES)
    model = ctx.model_dropdown()

    def photos(*names: str) -> list[str]:
        """Sample photos that ship with gradio (media_assets/images) or ultralytics (assets), found without
        importing ultralytics (it imports torch); a missing one is left out."""
        from hub.assets import package_file

        found = (package_file("gradio", "media_assets", "images", n) or package_file("ultralytics", "assets", n)
                 for n in names)
        return [str(p) for p in found if p is not None]

    def warn(notes):
        for n in notes:
            gr.Warning(n)

    with gr.Tab("Classify"):
        with gr.Row():
            with gr.Column():
                images = gr.Gallery(label="Images (one or several)", type="filepath", interactive=True,
                                    height=260, columns=4)
                labels = gr.Textbox(label=f"Candidate labels (commas or one per line, up to {max_labels})",
                                    lines=3, value="cat, dog, car, tree")
                template = gr.Textbox(label="Prompt template ({} is the label)", value=DEFAULT_TEMPLATE)
                ensemble = gr.Radio([("My template", "none"), ("open_clip's 7 templates", "simple"),
                                     ("OpenAI's 80 ImageNet templates", "openai")], value="none",
                                    label="Average a template ensemble")
                mode = gr.Radio([("Single label (softmax, sums to 1)", "single"),
                                 ("Multi-label (each label on its own)", "multi")], value="single", label="Mode")
                threshold = gr.Slider(0, 1, 0.5, step=0.01, label="Multi-label threshold")
                top_k = gr.Slider(1, 20, 5, step=1, label="Top-k labels shown")
                go = gr.Button("Classify", variant="primary")
                classify_examples = [[found, labels_] for found, labels_ in (
                    (photos("cheetah.jpg", "lion.jpg", "tower.jpg"), "cheetah, lion, house cat, tower, bus"),
                    (photos("bus.jpg", "zidane.jpg"), "bus, man wearing a tie, football, street, horse"),
                ) if found]
                if classify_examples:
                    gr.Examples(classify_examples, [images, labels], label="Samples (photos that ship with gradio "
                                "and ultralytics)", cache_examples=False)
            with gr.Column():
                top = gr.Label(label="Top labels (first image)")
                chart = gr.BarPlot(x="label", y="score", title="Every label (first image)", sort="-y",
                                   y_lim=[0, 1], x_label_angle=-30, height=260)
                table = gr.Dataframe(label="All images x labels", interactive=False, wrap=True)
                record = gr.JSON(label="Record")

    @ctx.handler
    def run_classify(model_id, images, labels, template, ensemble, mode, threshold, top_k,
                     progress=gr.Progress(track_tqdm=True)):
        def work(lease):
            res = classify(lease.engine, images, labels, template, ensemble, mode, threshold,
                           max_labels=max_labels, max_images=max_images)
            return res, lease.record(labels=res.labels, template=template, ensemble=ensemble, mode=mode,
                                     threshold=res.threshold, notes=res.notes)

        res, rec = ctx.run(work, model_id)
        warn(res.notes)
        names = [_display_name(im, i) for i, im in enumerate(images or [])]
        scores = res.scores.astype(float).round(4)  # float64: no float32 noise like 0.2231999933719635 in the table
        bars = pd.DataFrame({"label": res.labels, "score": scores[0]})
        rows = pd.DataFrame(scores, columns=res.labels)
        rows.insert(0, "image", names)
        if res.mode == "multi":
            rows.insert(1, "present", [", ".join(res.present(i)) or "(none)" for i in range(len(names))])
        else:
            rows.insert(1, "best", [res.present(i)[0] for i in range(len(names))])
        return res.top(0, int(top_k)), bars, rows, rec

    go.click(run_classify, [model, images, labels, template, ensemble, mode, threshold, top_k],
             [top, chart, table, record], api_name="classify", **ctx.events)

    with gr.Tab("Search images"):
        with gr.Row():
            with gr.Column():
                gallery = gr.Gallery(label=f"Gallery to search (up to {max_images} images)", type="filepath",
                                     interactive=True, height=300, columns=5)
                query = gr.Textbox(label="Text query", placeholder="a dog playing on the beach")
                find = gr.Button("Search", variant="primary")
                every = photos("cheetah.jpg", "lion.jpg", "tower.jpg", "groot.jpeg", "bus.jpg", "zidane.jpg")
                if every:
                    gr.Examples([[every, "a big cat running"], [every, "a man wearing a tie"]], [gallery, query],
                                label="Samples (photos that ship with gradio and ultralytics)", cache_examples=False)
            with gr.Column():
                ranked = gr.Gallery(label="Best matches first", columns=5, height=300)
                ranking = gr.Dataframe(label="Ranking", interactive=False)
                search_record = gr.JSON(label="Record")

    @ctx.handler
    def run_search(model_id, gallery, query, progress=gr.Progress(track_tqdm=True)):
        def work(lease):
            res = search_images(lease.engine, gallery, query, max_images=max_images)
            return res, lease.record(query=res.query, images=len(res.order), notes=res.notes)

        res, rec = ctx.run(work, model_id)
        warn(res.notes)
        paths = [_path_of(im) for im in gallery]
        names = [_display_name(im, i) for i, im in enumerate(gallery)]
        out = [(paths[i], f"#{r + 1} · {float(res.similarities[i]):.3f}") for r, i in enumerate(res.order)]
        rows = pd.DataFrame({"rank": list(range(1, len(res.order) + 1)), "image": [names[i] for i in res.order],
                             "similarity": [round(float(res.similarities[i]), 4) for i in res.order]})
        return out, rows, rec

    find.click(run_search, [model, gallery, query], [ranked, ranking, search_record], api_name="search_images",
               **ctx.events)


def _path_of(item):
    return item[0] if isinstance(item, (tuple, list)) else item


def _display_name(item, i: int) -> str:
    p = _path_of(item)
    return Path(p).name if isinstance(p, (str, Path)) else f"image {i + 1}"
