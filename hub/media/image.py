"""The one image decoder. Every tab's images come through `open_image` (a PIL RGB image) or `read_image`.

Policy, the same for every tab:
- EXIF orientation is applied (a phone photo shows as taken).
- 16-bit and 32-bit integer pixels map their full range to 0..255 (divide by 257 for 16-bit): a dim 16-bit PNG
  stays dim, as in an image viewer; float pixels in 0..1 scale by 255, others are clipped to 0..255.
- Alpha is dropped, keeping the colour under it, as PIL's `convert("RGB")` and OpenCV's `imread` do: the
  models' own libraries (Ultralytics, open_clip, transformers, diffusers) see the same pixels from the same file.
- One pixel cap, `MAX_PIXELS`, checked from the header before any pixel is decoded (`image_size` checks a file
  without decoding it at all); `max_side` downscales while decoding (JPEG draft mode, then PIL's reduce).
Anything unusable raises `UserError` with a sentence saying what to upload instead.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.errors import UserError

MAX_PIXELS = 50_000_000  # 50 MP: a 48 MP phone photo fits; larger uploads are refused before decoding
FORMATS = "PNG, JPEG, WebP, BMP, GIF or TIFF"


@dataclass
class Picture:
    """A decoded upload: `image` (PIL, RGB) and the size it had as uploaded, after EXIF rotation."""

    image: object
    original_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Decoded width / original width (below 1 when `max_side` downscaled it)."""
        return self.image.width / self.original_size[0]

    def array(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.uint8)


def open_image(source, what: str = "the image", *, min_side: int = 1, max_side: int | None = None,
               max_pixels: int = MAX_PIXELS):
    """Any upload (path, gradio file dict, PIL image, numpy array, bytes) -> a PIL RGB image. See the module policy."""
    return read_image(source, what, min_side=min_side, max_side=max_side, max_pixels=max_pixels).image


def image_size(source, what: str = "the image", *, min_side: int = 1, max_pixels: int = MAX_PIXELS
               ) -> tuple[int, int]:
    """(width, height) as uploaded (after EXIF rotation), read from the header alone: the file's pixels are not
    decoded. UserError, as `read_image` says it, for an unreadable file or a size outside the caps. Check every
    image of a request this way before decoding any of them."""
    im = _open(source, what)
    try:
        return _original_size(im, what, min_side, max_pixels)[0]
    finally:
        if im is not source:
            im.close()


def _original_size(im, what: str, min_side: int, max_pixels: int) -> tuple[tuple[int, int], int]:
    """((width, height) after EXIF rotation, the EXIF orientation), the size checked against the caps."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF is not worth failing the image for
        orientation = 1
    w, h = im.size
    original = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    _check_size(original, what, min_side, max_pixels)
    return original, orientation


def read_image(source, what: str = "the image", *, min_side: int = 1, max_side: int | None = None,
               max_pixels: int = MAX_PIXELS) -> Picture:
    """`open_image` that also returns the uploaded size. `max_side`: decode larger images downscaled to fit
    (JPEG draft mode, so a huge photo never needs its full-size buffer)."""
    from PIL import Image, ImageOps

    im = _open(source, what)
    original, orientation = _original_size(im, what, min_side, max_pixels)
    w, h = im.size
    try:
        if max_side and max(w, h) > max_side and im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale, still >= max_side
        im.load()
        if orientation in (2, 3, 4, 5, 6, 7, 8):  # exif_transpose copies even an upright image: only when needed
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block must not block the image itself
                pass
        im = to_rgb(im)
        if max_side and max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt image data
        raise UserError(f"{_cap(what)} is damaged ({_reason(e)}); upload an intact {FORMATS} file.") from None
    return Picture(im, original)


def to_rgb(im):
    """A decoded PIL image of any mode -> RGB, by the module's policy (alpha dropped, 16-bit scaled by 1/257)."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        g = to_uint8(np.asarray(im))
        return Image.fromarray(np.repeat(g[..., None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa", "P"):
        return im.convert("RGBA").convert("RGB")  # palette transparency and alpha: keep the colour under it
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Pixels of any numeric dtype -> uint8: floats in 0..1 scale by 255, other floats clip to 0..255; 16-bit
    integers (and 32-bit ones up to 65535) divide by 257; larger integers scale their maximum to 255."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype.kind == "f":
        f = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if f.size and float(f.max()) <= 1.0 and float(f.min()) >= 0.0:
            f = f * 255.0
        return np.clip(f, 0, 255).round().astype(np.uint8)
    top = int(a.max()) if a.size else 0
    if a.dtype.itemsize == 1:  # int8
        return np.clip(a, 0, 255).astype(np.uint8)
    divisor = 257.0 if top <= 65535 else top / 255.0
    return np.clip(a.astype(np.float64) / divisor, 0, 255).round().astype(np.uint8)


def _open(source, what: str):
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, dict):  # gradio FileData / ImageEditor layers sent as dicts
        source = source.get("path") or source.get("url") or source.get("background")
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UserError(f"No image was given for {what}: upload a {FORMATS} file.")
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, what)
    if not isinstance(source, (str, Path, bytes, bytearray)):
        raise UserError(f"{_cap(what)} must be an uploaded image file; upload a {FORMATS} file.")
    if isinstance(source, (bytes, bytearray)):
        import io

        source, name = io.BytesIO(source), _cap(what)  # bytes have no file name: the sentence names what they are
    else:
        path = Path(source)
        name = path.name
        if not path.is_file():
            raise UserError(f"The image file {name!r} was not found; upload it again.")
        if path.stat().st_size == 0:
            raise UserError(f"The file {name!r} is empty (0 bytes); upload a {FORMATS} file that contains a picture.")
    try:
        with warnings.catch_warnings():  # the size is checked against MAX_PIXELS right after, from the header
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(source)
    except Image.DecompressionBombError:
        raise UserError(f"{_cap(what)} has far too many pixels to open safely (over "
                        f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); downscale it first.") from None
    except UnidentifiedImageError:
        raise UserError(f"{name} is not an image that can be read (not a recognised image format); "
                        f"upload a {FORMATS} file.") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"{name} is not an image that can be read ({_reason(e)}); upload a {FORMATS} file.") from None


def _from_array(a: np.ndarray, what: str):
    from PIL import Image

    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.dtype.kind not in "biuf":
        raise UserError(f"{_cap(what)} must be an H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA) array of numbers, "
                        f"not shape {a.shape} ({a.dtype}).")
    a = to_uint8(a)
    return Image.fromarray(np.ascontiguousarray(a[..., :3] if a.ndim == 3 else a))


def _check_size(size: tuple[int, int], what: str, min_side: int, max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise UserError(f"{_cap(what)} is {w}x{h} ({w * h / 1e6:.0f} megapixels); the most this hub takes is "
                        f"{max_pixels / 1e6:.0f} megapixels: downscale it first.")
    if min(w, h) < min_side:
        raise UserError(f"{_cap(what)} is only {w}x{h} pixels; use one at least {min_side} pixels on each side.")


def _reason(e: Exception) -> str:
    """The library's reason, first line, with server paths cut to the file name."""
    text = re.sub(r"(/[^\s'\"]+/)([^/\s'\"]+)", r"\2", str(e).split("\n")[0][:500])[:120]
    return text or "unreadable data"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
