"""hub.media.image: the one decoder every tab uses — EXIF, 16-bit, alpha, pixel cap, bad files as sentences."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hub.errors import UserError
from hub.media.image import MAX_PIXELS, open_image, read_image


def save(tmp_path, im, name, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return str(path)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "red")
    im.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    pic = read_image(save(tmp_path, im, "rot.jpg", exif=exif, quality=95))
    assert pic.image.size == (20, 40) and pic.original_size == (20, 40)
    assert pic.array()[2, 10, 2] > 200  # the blue strip is now at the top


def test_sixteen_bit_maps_its_full_range_without_stretching(tmp_path):
    dim = np.full((16, 16), 4096, dtype=np.uint16)  # 1/16 of full scale: must stay dark
    path = save(tmp_path, Image.fromarray(dim), "dim16.png")
    assert Image.open(path).mode.startswith("I")
    px = np.asarray(open_image(path))
    assert px.shape == (16, 16, 3) and abs(int(px[0, 0, 0]) - round(4096 / 257)) <= 1


def test_alpha_is_dropped_keeping_the_colour_under_it_as_the_model_libraries_do(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red under a fully transparent alpha
    path = save(tmp_path, Image.fromarray(rgba, "RGBA"), "clear.png")
    ours = np.asarray(open_image(path))
    assert (ours == np.asarray(Image.open(path).convert("RGB"))).all()
    assert ours[0, 0].tolist() == [200, 0, 0]


def test_float_arrays_and_odd_modes(tmp_path):
    assert np.asarray(open_image(np.full((4, 4, 3), 0.5, dtype=np.float32)))[0, 0, 0] == 128
    assert open_image(np.zeros((4, 4), dtype=bool)).mode == "RGB"
    assert open_image(Image.new("CMYK", (4, 4))).mode == "RGB"
    assert open_image(save(tmp_path, Image.new("P", (4, 4)), "p.gif")).mode == "RGB"


def test_max_side_downscales_while_decoding(tmp_path):
    path = save(tmp_path, Image.new("RGB", (3000, 1000), "white"), "wide.jpg")
    pic = read_image(path, max_side=600)
    assert max(pic.image.size) == 600 and pic.original_size == (3000, 1000) and pic.scale == pytest.approx(0.2)


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(b"not an image at all" * 10), "not a recognised image format"),
    (lambda p: p.write_bytes(_png()[:60]), "is damaged"),
])
def test_unreadable_files_get_a_sentence_without_server_paths(tmp_path, make, words):
    path = tmp_path / "secret_dir" / "upload.png"
    path.parent.mkdir()
    make(path)
    with pytest.raises(UserError) as e:
        open_image(str(path), "the photo")
    assert words in str(e.value) and "secret_dir" not in str(e.value) and "Error" not in str(e.value)


def test_one_pixel_cap_checked_from_the_header(tmp_path):
    path = save(tmp_path, Image.new("1", (9000, 6000)), "big.png")  # 54 MP, tiny file
    with pytest.raises(UserError, match="54 megapixels.*50 megapixels: downscale"):
        open_image(path)
    assert MAX_PIXELS == 50_000_000


def test_image_size_reads_the_header_alone(tmp_path):
    """Issue #33: a request's images are all measured before any is decoded; a file that is only a header proves
    that nothing was decoded (decoding it fails)."""
    from hub.media.image import image_size

    whole = _png()
    path = tmp_path / "header.png"
    path.write_bytes(whole[:60])  # the PNG's header and the start of its data
    assert image_size(str(path)) == Image.open(io.BytesIO(whole)).size
    with pytest.raises(UserError, match="is damaged"):
        open_image(str(path))
    exif = Image.Exif()
    exif[0x0112] = 6
    assert image_size(save(tmp_path, Image.new("RGB", (40, 20)), "rot.jpg", exif=exif)) == (20, 40)
    with pytest.raises(UserError, match="54 megapixels"):
        image_size(save(tmp_path, Image.new("1", (9000, 6000)), "big.png"))


def test_an_upright_image_is_not_copied_while_decoding(tmp_path, monkeypatch):
    """Only one full-size picture in memory: no EXIF copy of an upright image before it is downscaled."""
    from PIL import ImageOps

    monkeypatch.setattr(ImageOps, "exif_transpose", lambda *a, **k: pytest.fail("copied an upright image"))
    assert read_image(save(tmp_path, Image.new("RGB", (300, 200)), "up.png"), max_side=100).image.size == (100, 67)


def test_min_side_and_missing_input(tmp_path):
    with pytest.raises(UserError, match="only 1x1 pixels"):
        open_image(Image.new("RGB", (1, 1)), min_side=8)
    with pytest.raises(UserError, match="No image was given for the mask"):
        open_image(None, "the mask")
    with pytest.raises(UserError, match="not found"):
        open_image(str(tmp_path / "gone.png"))
    with pytest.raises(UserError, match="array"):
        open_image(np.zeros((2, 2, 5)))


def test_gradio_file_dicts_and_bytes(tmp_path):
    path = save(tmp_path, Image.new("RGB", (5, 6), "green"), "g.png")
    assert open_image({"path": path, "url": None}).size == (5, 6)
    assert open_image(_png()).size == (3, 2)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (2, 3, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue() + b"\0" * 0
