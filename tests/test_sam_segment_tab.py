"""SAM tab through gradio_client and its click handlers as gradio calls them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from demos.sam_segment import engine as S
from demos.sam_segment import ui
from tests.test_sam_segment import _photo


# ---- the tab through gradio_client ----------------------------------------------------------------------------


def test_the_tab_through_gradio_client(serve, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = serve(("sam_segment",), models={"sam_segment": "tiny-random"})
    path = tmp_path / "photo.png"
    _photo(150, 90, seed=3).save(path)

    overlay, gallery, mask, cut, rec = client.predict(handle_file(str(path)), [[100, 40]], [1], None, True,
                                                      "tiny-random", api_name="/segment")
    assert Image.open(mask).size == Image.open(cut).size == (150, 90)
    assert Image.open(cut).mode == "RGBA" and len(gallery) == 3
    assert rec["scores"] == sorted(rec["scores"], reverse=True) and rec["embedding"].startswith("computed")
    assert overlay["annotations"] and rec["points"] == [[100.0, 40.0]]

    *_, rec2 = client.predict(handle_file(str(path)), [[20, 20], [100, 40]], [0, 1], [10, 10, 140, 80], False,
                              "tiny-random", api_name="/segment")
    assert rec2["embedding"] == "cached" and len(rec2["scores"]) == 1

    from gradio_client import Client

    other = Client(client.src, verbose=False)  # another person, same picture: their own embedding
    *_, rec3 = other.predict(handle_file(str(path)), [[100, 40]], [1], None, True, "tiny-random", api_name="/segment")
    assert rec3["embedding"].startswith("computed")

    with pytest.raises(AppError, match="out of range"):
        client.predict(handle_file(str(path)), [[400, 40]], [1], None, True, "tiny-random", api_name="/segment")
    with pytest.raises(AppError, match="Only negative points"):
        client.predict(handle_file(str(path)), [[40, 40]], [0], None, True, "tiny-random", api_name="/segment")

    annotated, table = client.predict(handle_file(str(path)), 4, 0.0, 0.0, 0, "tiny-random",
                                      api_name="/segment_everything")
    assert len(annotated["annotations"]) == len(table["masks"]) >= 1
    areas = [m["area"] for m in table["masks"]]
    assert areas == sorted(areas, reverse=True) and sum(areas) <= 150 * 90


def _awaited(fn):
    """A handler as gradio runs it: the hub's handlers are coroutines (hub.context.DemoContext.handler)."""
    import asyncio
    import inspect

    def call(*args):
        out = fn(*args)
        return asyncio.run(out) if inspect.iscoroutine(out) else out
    return call


def test_clicks_boxes_undo_and_a_new_image_in_the_tab(settings):
    """The tab's click handlers (what image.select / Undo run), called as gradio calls them."""
    from dataclasses import replace

    import gradio as gr

    from hub.app import create_app

    blocks = create_app(replace(settings, models={"sam_segment": "tiny-random"}), ("sam_segment",))
    fns = {f.fn.__name__: _awaited(f.fn) for f in blocks.fns.values()
           if f.fn and f.fn.__qualname__.startswith("SamTab.")}
    img = _photo(150, 90)

    def click(state, mode, x, y, image=img):
        return fns["on_click"](state, mode, image, gr.SelectData(None, {"index": [x, y], "value": None}))

    st, pts, labels, box, drawn = click(ui.fresh(), "Positive point", 100, 40)
    dots = np.asarray(Image.open(drawn)).astype(int)  # the clicked image shows the click, where it was made
    assert dots.shape == (90, 150, 3) and dots[40, 100, 1] > 150 > dots[40, 100, 0]  # green: positive
    assert abs(dots[39:42, 99:102].mean((0, 1)) - (40, 200, 60)).max() < 25
    st, *_ = click(st, "Negative point", 20, 20)
    st, pts, labels, box, _ = click(st, "Box (two corner clicks)", 10, 10)
    assert (pts, labels, box) == ([[100.0, 40.0], [20.0, 20.0]], [1, 0], None)  # a first corner waits
    with pytest.raises(gr.Error, match="no area"):
        click(st, "Box (two corner clicks)", 10, 60)
    st, pts, labels, box, _ = click(st, "Box (two corner clicks)", 140, 5)
    assert box == [10.0, 5.0, 140.0, 10.0] and st["corner"] is None

    class Request:
        session_hash = "one"

    overlay, thumbs, mask, cut, rec, kept = fns["run_segment"](img, pts, labels, box, True, "tiny-random",
                                                               Request())
    mask, cut = Image.open(mask), Image.open(cut)  # files written once, served as they are
    assert mask.size == cut.size == (150, 90) and mask.format == cut.format == "PNG" and cut.mode == "RGBA"
    assert np.array_equal(np.asarray(mask) > 0, kept["masks"][0]) and len(thumbs) == 3
    rgba = np.asarray(cut)
    assert (rgba[..., 3] > 0).tolist() == kept["masks"][0].tolist() and not rgba[rgba[..., 3] == 0].any()
    assert np.array_equal(rgba[kept["masks"][0]][:, :3], np.asarray(img)[kept["masks"][0]])
    assert Image.open(overlay[0]).size == (150, 90) and overlay[1][0][0].shape == (90, 150)
    under = np.asarray(Image.open(overlay[0])).astype(int)[37:44, 97:104]  # the picture under the mask: no dots
    assert abs(under.mean((0, 1)) - np.asarray(img)[37:44, 97:104].mean((0, 1))).max() < 15
    _, other_mask, _ = fns["pick"](kept, img, gr.SelectData(None, {"index": 2, "value": None}))
    assert np.array_equal(np.asarray(Image.open(other_mask)) > 0, kept["masks"][2])

    st, pts, labels, box, drawn = fns["undo"](st, img)  # the box goes, its first corner comes back
    assert box is None and st["corner"] == [10.0, 10.0] and len(pts) == 2 and Image.open(drawn).size == (150, 90)
    for _ in range(3):
        st, pts, labels, box, _ = fns["undo"](st, img)
    assert pts == [] and st["corner"] is None
    assert fns["refresh"](img, pts, labels, box, True, "tiny-random", Request())[1] == []  # nothing: no error
    st, pts, labels, box, drawn = fns["clear"](st, img)
    assert (pts, labels, box) == ([], [], None) and np.array_equal(np.asarray(Image.open(drawn)).shape, (90, 150, 3))

    st, *_ = click(st, "Positive point", 5, 5)
    st, pts, labels, _, _ = click(st, "Positive point", 7, 7, image=_photo(150, 90, seed=9))  # a new image
    assert pts == [[7.0, 7.0]] and st["key"] == S.prepare_image(_photo(150, 90, seed=9)).key
