"""The CLIP tab's input checks: labels, templates, mode and threshold, and the images decoded by the hub's one
decoder (hub.media.image). Every request is checked whole, cheapest checks first, before any model work; a problem
is a UserError with a sentence. No torch, no gradio (open_clip only for its template ensembles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demos.clip_zero_shot import MAX_IMAGES, MAX_LABELS
from hub import validate
from hub.errors import UserError
from hub.media.image import open_image

DEFAULT_TEMPLATE = "a photo of a {}."
ENSEMBLES = ("none", "simple", "openai")  # user template only | open_clip's 7 SIMPLE_ | its 80 OPENAI_ templates
MODES = ("single", "multi")


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
    ensemble = validate.choice(ensemble, "the template ensemble", ENSEMBLES)
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


def load_image(item):
    """A PIL RGB image from a path, PIL image, numpy array, bytes, or a gallery item ((path, caption) pair or
    {"image": ..., "caption": ...}), decoded by the hub's one decoder (hub.media.image: EXIF rotation, 16-bit
    divided by 257, alpha dropped, the hub's pixel cap checked before decoding)."""
    import numpy as np
    from PIL import Image

    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if isinstance(item, dict) and "image" in item:  # a gradio gallery item passed through as a dict
        item = item["image"]
    if isinstance(item, dict):  # gradio FileData
        item = item.get("path") or item.get("url")
    if not isinstance(item, (str, Path, bytes, bytearray, np.ndarray, Image.Image)):
        raise UserError("Upload an image file (PNG, JPEG, WebP, BMP, GIF or TIFF).")
    name = Path(str(item)).name if isinstance(item, (str, Path)) else ""
    return open_image(item, f"the image {name!r}" if name else "the image")


def load_images(images, max_images: int, what: str = "images") -> list:
    """Every image of a request (one or a list) decoded; at least one, at most `max_images`."""
    if images is None or (hasattr(images, "__len__") and len(images) == 0):
        raise UserError(f"Upload at least one image ({what}).")
    if not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) > max_images:
        raise UserError(f"{len(images)} images is more than one request may hold ({max_images}); upload fewer.")
    return [load_image(im) for im in images]


@dataclass
class CheckedClassify:
    """A checked classify request: decoded images, parsed labels, the templates to average, mode and threshold."""

    images: list
    labels: list[str]
    templates: tuple[str, ...]
    mode: str
    threshold: float | None  # None in single-label mode


def check_classify(images, labels, template, ensemble, mode, threshold, max_labels: int = MAX_LABELS,
                   max_images: int = MAX_IMAGES, sigmoid: bool = False) -> CheckedClassify:
    """Check a whole classify request (cheapest checks first) before any model work; UserError otherwise.
    sigmoid: the model scores each label on its own, so one label in single-label mode is a fair question."""
    mode = validate.choice(mode, "the mode", MODES)
    if mode == "multi" or threshold is not None:  # single-label mode has no threshold, but it must not be nonsense
        threshold = validate.number(threshold, "the multi-label threshold", 0, 1)
    labels = parse_labels(labels, max_labels)
    if mode == "single" and len(labels) == 1 and not sigmoid:
        raise UserError(f"With one label ({labels[0]!r}) single-label mode always gives 1.0 (softmax over one "
                        "label); add more labels or switch to multi-label mode to score it on its own.")
    templates = templates_for(template, ensemble)
    pil = load_images(images, max_images)
    return CheckedClassify(pil, labels, templates, mode, threshold if mode == "multi" else None)


def check_search(images, query, max_images: int = MAX_IMAGES) -> tuple[str, list]:
    """(query with its whitespace collapsed, decoded images) of a search request; UserError otherwise."""
    if query is not None and not isinstance(query, str):
        raise UserError("The query must be text describing the picture you are looking for.")
    query = " ".join((query or "").split())
    if not query:
        raise UserError("Type a text query describing the picture you are looking for.")
    return query, load_images(images, max_images, "a gallery to search")
