"""CLIP zero-shot: the tab's API through gradio_client on a loopback hub with the tiny random model, and the
demo's declared examples (each runs; each bad variant gets a sentence)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("open_clip")
from demos.clip_zero_shot import SPEC  # noqa: E402


def photos(n=3, seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)) for _ in range(n)]


def _save(imgs, folder):
    paths = []
    for i, im in enumerate(imgs):
        p = folder / f"photo{i}.png"
        im.save(p)
        paths.append(str(p))
    return paths


def test_tab_classify_and_search_through_gradio_client(serve, tmp_path):
    from gradio_client import handle_file

    client = serve(("clip_zero_shot",), models={"clip_zero_shot": "tiny-random"},
                   env={"DEMOHUB_CLIP_ZERO_SHOT_MAX_LABELS": "5"})
    paths = _save(photos(3, seed=11), tmp_path)
    gallery = [{"image": handle_file(p), "caption": None} for p in paths]

    top, chart, table, record = client.predict(
        "tiny-random", gallery, "cat, dog, car", "a photo of a {}.", "none", "single", 0.5, 2, api_name="/classify")
    assert len(top["confidences"]) == 2
    assert [c["label"] for c in top["confidences"]][0] in {"cat", "dog", "car"}
    assert record["mode"] == "single" and record["labels"] == ["cat", "dog", "car"]
    assert "random weights" in record["warning"]
    rows = table["data"]
    assert [r[0] for r in rows] == ["photo0.png", "photo1.png", "photo2.png"]
    assert all(abs(sum(r[2:]) - 1) < 1e-3 for r in rows)
    assert sorted(r[0] for r in chart["data"]) == ["car", "cat", "dog"]  # every label, not just the top-k
    assert abs(sum(r[1] for r in chart["data"]) - 1) < 1e-3

    with pytest.raises(Exception, match="more than this hub allows \\(5\\)"):
        client.predict("tiny-random", gallery, "a, b, c, d, e, f", "a photo of a {}.", "none", "single", 0.5, 3,
                       api_name="/classify")
    with pytest.raises(Exception, match="multi-label"):
        client.predict("tiny-random", gallery, "cat", "a photo of a {}.", "none", "single", 0.5, 3,
                       api_name="/classify")
    _, _, table, record = client.predict("tiny-random", gallery, "cat", "a photo of a {}.", "none", "multi", 0.5, 3,
                                         api_name="/classify")  # the server keeps serving after an error
    assert table["headers"][:2] == ["image", "present"] and record["threshold"] == 0.5

    ranked, ranking, record = client.predict("tiny-random", gallery, "a cat on a sofa", api_name="/search_images")
    assert len(ranked) == 3 and ranking["headers"] == ["rank", "image", "similarity"]
    sims = [r[2] for r in ranking["data"]]
    assert sims == sorted(sims, reverse=True)
    assert sorted(r[1] for r in ranking["data"]) == ["photo0.png", "photo1.png", "photo2.png"]
    assert record["query"] == "a cat on a sofa"


def test_declared_examples_run_and_their_bad_variants_get_a_sentence(serve, tmp_path):
    from demos.clip_zero_shot import DEMO

    from gradio_client import handle_file

    from hub.samples import fill

    client = serve(("clip_zero_shot",), models={"clip_zero_shot": "tiny-random"})
    (path,) = _save(photos(1, seed=14), tmp_path)
    assert {ex.api_name for ex in DEMO.examples} == set(SPEC.api_names)
    for ex in DEMO.examples:
        out = client.predict(*fill(ex.values(), {"image": path}, handle_file), api_name=f"/{ex.api_name}")
        assert out[-1]["model"] == "tiny-random"
        with pytest.raises(Exception, match="Type some candidate labels|Type a text query"):
            client.predict(*fill(ex.values(**ex.bad), {"image": path}, handle_file), api_name=f"/{ex.api_name}")


def test_multi_label_presence_follows_the_threshold_the_caller_sent(serve, tmp_path):
    """The threshold comes from the slider (the API's value), not a constant: every label is present at 0, none at
    1, and at a value between two scores exactly the labels scoring at least that value are."""
    from gradio_client import handle_file

    client = serve(("clip_zero_shot",), models={"clip_zero_shot": "tiny-random"})
    (path,) = _save(photos(1, seed=21), tmp_path)
    gallery = [{"image": handle_file(path), "caption": None}]

    def present(threshold):
        _, _, table, record = client.predict("tiny-random", gallery, "cat, dog, car", "a photo of a {}.", "none",
                                             "multi", threshold, 3, api_name="/classify")
        assert record["threshold"] == threshold
        row = table["data"][0]
        scores = dict(zip(table["headers"][2:], row[2:]))
        return row[1], scores

    everything, scores = present(0.0)
    assert all(label in everything for label in ("cat", "dog", "car")), everything
    nothing, _ = present(1.0)
    assert not any(label in nothing for label in ("cat", "dog", "car")), nothing
    low, high = sorted(scores.values())[:2]
    middle = round((low + high) / 2, 6)
    if low == high:
        pytest.skip("two labels scored the same; no threshold between them")
    some, _ = present(middle)
    assert {k for k in scores if k in some} == {k for k, v in scores.items() if v >= middle}, (some, scores, middle)
