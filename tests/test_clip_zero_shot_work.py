"""CLIP tab, work as data: every request and result crosses a process as plain data, the work methods answer through
`ctx.call` with the tab's records, and /v1/embeddings' errors keep their field when they cross a process."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from demos.clip_zero_shot import DEMO, SPEC
from demos.clip_zero_shot import types as ct
from demos.clip_zero_shot.embeddings import InputError
from hub.api import ApiError
from hub.context import DemoContext
from hub.errors import UserError
from hub.models import ModelManager
from hub.settings import Settings
from hub.work import roundtrip


@pytest.fixture(scope="module")
def hub_ctx(tmp_path_factory):
    settings = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("cache")), offline=True, device="cpu",
                             models={SPEC.name: "tiny-random"})
    manager = ModelManager(settings, {SPEC.name: (SPEC, DEMO.loader(), DEMO.work_table())})
    yield DemoContext(manager, settings, SPEC)
    manager.unload_all()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        path = folder / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
        paths.append((str(path), None))
    return paths


def test_every_request_and_result_type_round_trips_through_pickle():
    scores = np.array([[0.7, 0.3]], np.float32)
    values = [
        ct.ClassifyRequest([("/tmp/a.png", None)], "cat, dog", "a photo of a {}.", "none", "multi", 0.5),
        ct.SearchRequest(["/tmp/a.png", "/tmp/b.png"], "a cat"),
        ct.EmbedRequest(["a cat", ct.ImageInput(b"\x89PNG", "input[1] (an image data URL)")], 512, False),
        ct.ImageInput(b"\x00\x01", "input[0]"),
        ct.Classification(["cat", "dog"], scores, "multi", 0.5, ["a note"], "sigmoid", {"model": "m"}),
        ct.SearchResult("a cat", [1, 0], np.array([0.1, 0.2], np.float32), [], {"query": "a cat"}),
        ct.Embeddings(np.ones((2, 4), np.float32), 7, [0], [1], ["cut"], "m", ["random weights"]),
    ]
    for value in values:
        back = roundtrip(value)
        assert type(back) is type(value)
        for name, field in vars(value).items():
            if isinstance(field, np.ndarray):
                np.testing.assert_array_equal(vars(back)[name], field)
            else:
                assert vars(back)[name] == field, name
    assert roundtrip(values[4]).top(0) == {"cat": pytest.approx(0.7), "dog": pytest.approx(0.3)}


def test_an_embeddings_input_error_crosses_a_process_with_its_field():
    e = pickle.loads(pickle.dumps(InputError(400, "input[2] is 90 tokens long; shorten it.", param="input")))
    assert isinstance(e, ApiError) and (e.status, e.param, str(e)) == (400, "input", "input[2] is 90 tokens long; "
                                                                                    "shorten it.")
    assert e.response().status_code == 400


def test_classify_and_search_answer_through_the_hub_with_their_records(hub_ctx, gallery):
    res = hub_ctx.call("classify", ct.ClassifyRequest(gallery, "cat, dog, car", mode="multi", threshold=0.4),
                       "tiny-random")
    assert isinstance(res, ct.Classification) and res.scores.shape == (3, 3) and res.threshold == 0.4
    assert res.record["model"] == "tiny-random" and res.record["labels"] == ["cat", "dog", "car"]
    assert res.record["mode"] == "multi" and res.record["scoring"] == "sigmoid" and res.record["threshold"] == 0.4
    with pytest.raises(UserError, match="Type some candidate labels"):
        hub_ctx.call("classify", ct.ClassifyRequest(gallery, ""), "tiny-random")

    found = hub_ctx.call("search_images", ct.SearchRequest(gallery, "  a cat  on a sofa "), "tiny-random")
    assert isinstance(found, ct.SearchResult) and sorted(found.order) == [0, 1, 2]
    assert found.record["query"] == "a cat on a sofa" and found.record["images"] == 3
    with pytest.raises(UserError, match="Type a text query"):
        hub_ctx.call("search_images", ct.SearchRequest(gallery, " "), "tiny-random")


def test_embed_answers_through_the_hub_and_its_errors_name_the_field(hub_ctx, gallery):
    data = open(gallery[0][0], "rb").read()
    out = hub_ctx.call("embed", ct.EmbedRequest(["a cat", ct.ImageInput(data, "input[1] (an image data URL)")]),
                       "tiny-random")
    assert isinstance(out, ct.Embeddings) and out.vectors.shape == (2, 32) and out.images == [1]
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.model == "tiny-random" and "random weights: outputs are meaningless" in out.warnings
    with pytest.raises(ApiError, match="32 dimensions") as e:
        hub_ctx.call("embed", ct.EmbedRequest(["a cat"], dimensions=8), "tiny-random")
    assert e.value.param == "dimensions"
    with pytest.raises(ApiError, match="longer|tokens long") as e:
        hub_ctx.call("embed", ct.EmbedRequest(["cat " * 100], truncate=False), "tiny-random")
    assert e.value.param == "input"
