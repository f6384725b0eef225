"""CLIP zero-shot engine: load an open_clip model, `classify` images against labels, `search_images` by a text query.

How a score is computed (the image and text embeddings are L2-normalised, so `cos` is their cosine similarity):
- Models trained with a sigmoid loss (SigLIP 2: they carry a `logit_bias`) score every label on its own in both
  modes: `sigmoid(logit_scale * cos + logit_bias)`, the probability the model was trained to give that the label
  matches the image. Single-label mode ranks these and names the best; the scores do not sum to 1 (a softmax over
  SigLIP's logits, at its scale of ~100, is all but one-hot and would hide how sure the model is that any label
  fits; Hugging Face's zero-shot pipeline shows sigmoid scores for SigLIP too). Its one-label request is allowed.
- CLIP models (trained with a softmax loss), single-label mode: `softmax(logit_scale * cos)` over the labels,
  exactly as CLIP was trained; the scores sum to 1, so they say which label fits best, not whether any fits.
- CLIP models, multi-label mode: every label is scored on its own, so adding or removing another label never
  changes it: `sigmoid(logit_scale * (cos - cos_ref))`, where `cos_ref` is the image's
  similarity to the same template(s) filled with a generic word ("thing"): the two-way CLIP softmax between
  "a photo of a <label>" and "a photo of a thing". Above the threshold (default 0.5: the label fits better than
  the generic word) a label counts as present.

Label (text) embeddings are cached per model in a bounded LRU keyed by (label, templates): classifying another image
with the same labels encodes only the image. Search keeps a bounded LRU of image embeddings keyed by the image's
bytes, so re-querying a gallery encodes only the query. On CUDA the model runs in fp16 (open_clip's mixed
precision: LayerNorm in fp32) and the image encoder is captured as CUDA graphs for small batches at load time.

Every work function checks its whole request first (checks.py: `check_classify`, `check_search`: labels, template,
numbers, and the images decoded by the hub's one decoder) and raises UserError with a sentence before any model work.
`WORK` holds the work methods the tab and /v1/embeddings call (classify, search_images, embed; types.py).
This module never imports gradio; torch and open_clip are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from demos.clip_zero_shot import DEMO, MAX_IMAGES, MAX_LABELS
from demos.clip_zero_shot.checkpoints import build_model
from demos.clip_zero_shot.checks import (DEFAULT_TEMPLATE, ENSEMBLES, MODES, CheckedClassify,  # noqa: F401
                                         check_classify, check_search, fill, load_image, load_images, parse_labels,
                                         templates_for)
from demos.clip_zero_shot.fast import GRAPH_BATCHES, GraphedEncoder, apply_tensor_transforms, tensor_transforms
from demos.clip_zero_shot.types import (Classification, ClassifyRequest, EmbedRequest, Embeddings, SearchRequest,
                                        SearchResult)
from hub import loadtimes
from hub.contract import EngineBase
from hub.options import defaults
from hub.work import Work

log = logging.getLogger("demohub")

# A 2-layer CLIP on 32x32 images: builds in well under a second; the vocabulary is open_clip's real BPE one.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

REFERENCE_LABEL = "thing"  # the generic word CLIP labels are compared with in multi-label mode


# ---- the engine ------------------------------------------------------------------------------------------------


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


class ClipEngine(EngineBase):
    """An open_clip model with its own preprocess transform and tokenizer, plus the label and image caches.

    `text_encoder_calls` / `texts_encoded` and `image_encoder_calls` / `images_encoded` count work done, so tests
    (and curious operators) can see the caches at work. `max_labels` / `max_images`: the operator's per-request caps.
    """

    def __init__(self, model, preprocess, tokenizer, device: str, dtype: str, name: str,
                 label_cache_size: int = 4096, image_cache_size: int = 2048,
                 max_labels: int = MAX_LABELS, max_images: int = MAX_IMAGES):
        import torch

        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.device, self.dtype, self.name = device, dtype, name
        self.max_labels, self.max_images = max_labels, max_images
        # the dtype pixels must have: the first conv's (open_clip's mixed precision keeps e.g. class_embedding fp32)
        convs = [m for m in model.visual.modules() if isinstance(m, torch.nn.Conv2d)]
        self.input_dtype = convs[0].weight.dtype if convs else next(model.visual.parameters()).dtype
        self.context_length = int(getattr(tokenizer, "context_length", 77) or 77)
        bias = getattr(model, "logit_bias", None)
        self.logit_bias = None if bias is None else float(bias.detach().float().reshape(-1)[0].item())
        scale = model.logit_scale.detach().float().exp()
        # CLIP's forward clamps its scale at 100; a sigmoid model's trained scale is used as it is (SigLIP's is ~110)
        self.logit_scale = float((scale if self.logit_bias is not None else scale.clamp(max=100)).item())
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

    @property
    def sigmoid(self) -> bool:
        """Whether the model was trained with a sigmoid loss (it has a logit bias): every label scored on its own."""
        return self.logit_bias is not None

    def _too_long(self, text: str) -> bool:
        """Whether `text` exceeds the text context (start and end tokens included) and will be truncated."""
        n = token_length(self.tokenizer, text)
        return n is not None and n > self.context_length

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
            self._graphs = GraphedEncoder(self.model, batches, self._image_shape(), self.input_dtype, self.device)
            self.extra_bytes = self._graphs.nbytes  # counted by the manager
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


def load(weights, device: str, dtype: str, options=None) -> ClipEngine:
    """Build the open_clip model, its eval transform and tokenizer (see `checkpoints.build_model` for the weight
    sources), and on CUDA record the image encoder's CUDA graphs. `options`: the demo's parsed options (None: the
    declared defaults); their `max_labels` / `max_images` become the engine's per-request caps."""
    options = defaults(DEMO) if options is None else options
    with loadtimes.stage("import"):
        import open_clip  # noqa: F401
    with loadtimes.stage("build"):  # open_clip reads the checkpoint itself (mmap'd safetensors for a snapshot)
        model, preprocess, tokenizer = build_model(weights, device, dtype, TINY_CONFIG)
    engine = ClipEngine(model, preprocess, tokenizer, device, dtype if device != "cpu" or dtype == "bfloat16"
                        else "float32",
                        weights.choice.id, max_labels=options.max_labels, max_images=options.max_images)
    with loadtimes.stage("warm-up"):
        engine.capture_graphs()
    return engine


def _truncation_notes(engine: ClipEngine, texts_by_label: dict[str, str]) -> list[str]:
    return [f"The label {lab[:40]!r}{'...' if len(lab) > 40 else ''} is longer than the model's "
            f"{engine.context_length}-token text context; only its beginning was used."
            for lab, text in texts_by_label.items() if engine.too_long(text)]


def _caps(engine, max_labels: int | None, max_images: int | None) -> tuple[int, int]:
    """The request's caps: those given, else the engine's (the operator's options), else the declared defaults."""
    labels = max_labels if max_labels is not None else getattr(engine, "max_labels", MAX_LABELS)
    images = max_images if max_images is not None else getattr(engine, "max_images", MAX_IMAGES)
    return labels, images


# ---- the work ------------------------------------------------------------------------------------------------


def classify(engine: ClipEngine, images, labels, template: str = DEFAULT_TEMPLATE, ensemble: str = "none",
             mode: str = "single", threshold: float | None = 0.5, max_labels: int | None = None,
             max_images: int | None = None) -> Classification:
    """Score each image against each label (see the module docstring for how scores are computed).

    images: one or several (paths, PIL images, arrays); labels: text (commas or one per line) or a list.
    max_labels / max_images: per-request caps (None: the engine's, from the operator's options).
    """
    req = check_classify(images, labels, template, ensemble, mode, threshold, *_caps(engine, max_labels, max_images),
                         sigmoid=getattr(engine, "sigmoid", False))
    notes = _truncation_notes(engine, {lab: max((fill(t, lab) for t in req.templates), key=len)
                                       for lab in req.labels})
    text = engine.label_embeddings(req.labels, req.templates)
    scores = label_scores(engine, engine.encode_images(req.images), text, req.mode, req.templates)
    scoring = "sigmoid" if req.mode == "multi" or getattr(engine, "sigmoid", False) else "softmax"
    return Classification(req.labels, scores.cpu().numpy(), req.mode, req.threshold, notes, scoring)


def label_scores(engine: ClipEngine, img, text, mode: str, templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)):
    """(n_images, n_labels) scores from normalised image (n, D) and label (m, D) embeddings; see the module doc."""
    torch = engine._torch
    cos = img @ text.T
    if engine.logit_bias is not None:  # sigmoid-trained (SigLIP): each label on its own in both modes
        return torch.sigmoid(engine.logit_scale * cos + engine.logit_bias)
    if mode == "single":
        return torch.softmax(engine.logit_scale * cos, dim=-1)
    ref = engine.label_embeddings([REFERENCE_LABEL], templates)
    return torch.sigmoid(engine.logit_scale * (cos - img @ ref.T))


def search_images(engine: ClipEngine, images, query: str, max_images: int | None = None) -> SearchResult:
    """Rank `images` by cosine similarity to the text `query`, best first."""
    query, pil = check_search(images, query, _caps(engine, None, max_images)[1])
    keys = [image_key(im) for im in pil]
    notes = _truncation_notes(engine, {query: query})
    q = engine.label_embeddings([query], ("{}",))
    emb = engine.encode_images_cached(pil, keys)
    sims = (emb @ q.T)[:, 0].cpu().numpy()
    order = sorted(range(len(pil)), key=lambda i: -float(sims[i]))
    return SearchResult(query, order, sims, notes)


def token_length(tokenizer, text: str) -> int | None:
    """Tokens `text` takes with its start/end tokens, before truncation: open_clip's BPE tokenizer (`encode`, +2), or
    the HF tokenizer SigLIP 2 wraps (its `encode` adds the special tokens itself); None if the tokenizer cannot say."""
    encode = getattr(tokenizer, "encode", None)
    if encode is not None:
        return len(encode(text)) + 2
    inner = getattr(getattr(tokenizer, "tokenizer", None), "encode", None)
    return len(inner(text)) if inner is not None else None


def image_key(img) -> str:
    h = hashlib.sha1(img.tobytes())
    h.update(f"{img.size}{img.mode}".encode())
    return h.hexdigest()


# ---- the work methods (what the tab and /v1/embeddings call: requests and results in types.py) ------------------

WORK = Work()


@WORK.method(ClassifyRequest, name="classify")
def classify_request(lease, req: ClassifyRequest, job) -> Classification:
    """Classify: every image against every label, with the reproducibility record."""
    res = classify(lease.engine, req.images, req.labels, req.template, req.ensemble, req.mode, req.threshold)
    res.record = lease.record(labels=res.labels, template=req.template, ensemble=req.ensemble, mode=req.mode,
                              scoring=res.scoring, threshold=res.threshold, notes=res.notes)
    return res


@WORK.method(SearchRequest, name="search_images")
def search_request(lease, req: SearchRequest, job) -> SearchResult:
    """Search images: the gallery ranked by the text query, with the reproducibility record."""
    res = search_images(lease.engine, req.images, req.query)
    res.record = lease.record(query=res.query, images=len(res.order), notes=res.notes)
    return res


@WORK.method(EmbedRequest, name="embed")
def embed_request(lease, req: EmbedRequest, job) -> Embeddings:
    """/v1/embeddings: texts and images in one space, with the model's id and the lease's warnings."""
    from demos.clip_zero_shot.embeddings import embed

    out = embed(lease.engine, req.items, req.dimensions, req.truncate)
    out.model = lease.weights.choice.id
    out.warnings = [w for w in (lease.warning, lease.weights.is_random and "random weights: outputs are meaningless")
                    if w]
    return out
