"""The ControlNet preprocessors: a picture in, the map a ControlNet reads out (RGB, at the generation's size), as
sd-webui-controlnet makes them, so a map previewed here and one made there agree.

- canny: OpenCV's Canny edges at the unit's low/high thresholds (white edges on black).
- lineart: sd-webui-controlnet's lineart_standard (no weights): how much darker each pixel is than its blurred
  surroundings, scaled by the median of the clear lines.
- scribble: its scribble_xdog (no weights): a difference of Gaussians, thresholded to white strokes.
- tile: tile_resample: the picture itself (the tile ControlNet adds detail that agrees with it).
- depth: Depth Anything V2 Small (transformers; controlnet.DEPTH_ESTIMATOR, random-built on random test weights):
  near is white, far is black.
- none: the picture is the map already.

The picture is first fitted to the generation's width x height as sd-webui-controlnet's default "Crop and Resize"
does: scaled to cover it, then cropped at the centre. OpenCV and numpy release the GIL; none of this runs on the
event loop (the work methods and handlers run in worker threads).
"""

from __future__ import annotations

import threading

XDOG_THRESHOLD = 32  # scribble_xdog's default threshold
_depth_lock = threading.Lock()


def fit(picture, width: int, height: int):
    """`picture` (PIL) scaled to cover width x height and cropped at the centre (sd-webui-controlnet's "Crop and
    Resize"), in RGB."""
    from PIL import Image, ImageOps

    return ImageOps.fit(picture.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def make(unit: dict, width: int, height: int, depth_model=None):
    """The map of one checked unit (controlnet.check) at width x height, as a PIL RGB image. `depth_model`: a
    callable picture -> depth map, for the depth preprocessor (control_run loads it)."""
    import numpy as np
    from PIL import Image

    picture = fit(unit["image"], width, height)
    kind = unit["preprocessor"]
    if kind in ("none", "tile"):
        return picture
    if kind == "depth":
        if depth_model is None:
            raise ValueError("the depth preprocessor needs its model")
        return depth_model(picture)
    rgb = np.asarray(picture)
    if kind == "canny":
        out = canny(rgb, unit["low"], unit["high"])
    elif kind == "lineart":
        out = lineart_standard(rgb)
    elif kind == "scribble":
        out = scribble_xdog(rgb)
    else:
        raise ValueError(f"unknown preprocessor {kind}")
    return Image.fromarray(np.stack([out] * 3, axis=-1))


def canny(rgb, low: int, high: int):
    """OpenCV's Canny edges of an RGB uint8 array (as sd-webui-controlnet calls it: on the colour picture)."""
    import cv2

    return cv2.Canny(rgb, int(low), int(high))


def lineart_standard(rgb):
    """sd-webui-controlnet's lineart_standard: dark lines on a light ground become white lines on black."""
    import cv2
    import numpy as np

    x = rgb.astype(np.float32)
    g = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(g - x, axis=2).clip(0, 255)
    lines = intensity[intensity > 8]
    intensity /= max(16.0, float(np.median(lines)) if lines.size else 0.0)
    intensity *= 127
    return intensity.clip(0, 255).astype(np.uint8)


def scribble_xdog(rgb, threshold: int = XDOG_THRESHOLD):
    """sd-webui-controlnet's scribble_xdog: a difference of Gaussians (sigma 0.5 and 5), white where it passes the
    threshold."""
    import cv2
    import numpy as np

    x = rgb.astype(np.float32)
    g1 = cv2.GaussianBlur(x, (0, 0), 0.5)
    g2 = cv2.GaussianBlur(x, (0, 0), 5.0)
    dog = (255 - np.min(g2 - g1, axis=2)).clip(0, 255).astype(np.uint8)
    out = np.zeros(dog.shape, dtype=np.uint8)
    out[2 * (255 - dog.astype(np.int32)) > threshold] = 255
    return out


# ---- depth: Depth Anything V2 Small -------------------------------------------------------------------------------


class DepthModel:
    """Depth Anything V2 (transformers' own model and image processor) as picture -> map: the relative depth
    (disparity: near is large) scaled to 0-255 per picture, as sd-webui-controlnet's depth_anything_v2 shows it."""

    def __init__(self, model, processor, device: str = "cpu"):
        self.model, self.processor, self.device = model, processor, device

    def __call__(self, picture):
        import numpy as np
        import torch
        from PIL import Image

        inputs = self.processor(images=picture, return_tensors="pt").to(self.device)
        with _depth_lock, torch.inference_mode():
            depth = self.model(**inputs).predicted_depth  # (1, h, w)
        depth = torch.nn.functional.interpolate(depth[:, None].float(), size=(picture.height, picture.width),
                                                mode="bicubic", align_corners=False)[0, 0]
        lo, hi = float(depth.min()), float(depth.max())
        scaled = ((depth - lo) / (hi - lo) * 255.0) if hi > lo else torch.zeros_like(depth)
        gray = scaled.clamp(0, 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(np.stack([gray] * 3, axis=-1))


def load_depth(path, device: str = "cpu") -> DepthModel:
    """Depth Anything V2 Small from its pinned folder (safetensors)."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    processor = AutoImageProcessor.from_pretrained(path)
    model = AutoModelForDepthEstimation.from_pretrained(path, use_safetensors=True).to(device).eval()
    return DepthModel(model, processor, device)


def random_depth(device: str = "cpu") -> DepthModel:
    """A tiny Depth Anything V2 at the real architecture (a DINOv2 backbone and the DPT head) with random weights,
    and the real model's image processor settings (tests, on random SD weights)."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    torch.manual_seed(0)
    backbone = {"model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                "intermediate_size": 64, "image_size": 518, "patch_size": 14,
                "out_features": ["stage1", "stage2", "stage3", "stage4"], "reshape_hidden_states": False}
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                 head_hidden_size=8, reassemble_hidden_size=32, depth_estimation_type="relative")
    model = DepthAnythingForDepthEstimation(config).to(device).eval()
    # Depth Anything V2 Small's preprocessor_config.json: keep the aspect ratio, sides multiples of 14, 518 px
    processor = DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=3, do_rescale=True, do_normalize=True,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False)
    return DepthModel(model, processor, device)
