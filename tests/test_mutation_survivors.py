"""Tests written for mutants that survived the mutation campaign (bench/mutation.py, bench/MUTATION.md).

Each test states the user-visible behaviour a surviving mutant broke without any test noticing, and was checked to
fail on that mutant and pass on the code. Most need no model: the chain steps other demos would run are played by a
stand-in that answers as those demos answer; the rest use the suite's tiny random models and real Whisper tiny.en.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.test_llm_chat import torch_engine  # noqa: F401  (the tiny chat model on transformers, a fixture)
from tests.test_yolo_detect_work import hub_ctx  # noqa: F401  (a hub with the tiny random YOLO, a fixture)


class StepsSeen:
    """A chain that records the steps it was asked to run (their names are the status lines the tab shows) and
    answers each with `answer(step, demo, method, request)`."""

    def __init__(self, answer):
        self.answer = answer
        self.steps: list[tuple[str, str, str, object]] = []

    def call(self, step, demo, method, request, model=None, *, record=None):
        self.steps.append((step, demo, method, request))
        return self.answer(step, demo, method, request)


# ---- Edit by object: a + / - point on the edge of a picked box belongs to that box ------------------------------

def test_points_on_the_edges_of_a_picked_box_refine_that_boxs_mask_and_start_no_other():
    from demos.edit_object import flow

    h, w = 60, 80
    picture = SimpleNamespace(rgb=np.zeros((h, w, 3), np.uint8))
    box = {"class": "dog", "x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 40.0}
    # one + point on each edge of the box (x = x1, x = x2, y = y1, y = y2): inside it, as the box's own pixels are
    clicks = [(10.0, 30.0, 1), (50.0, 30.0, 1), (30.0, 20.0, 1), (30.0, 40.0, 1)]

    def answer(step, demo, method, request):
        mask = np.zeros((h, w), bool)
        mask[25:35, 15:45] = True
        return SimpleNamespace(masks=[mask])

    chain = StepsSeen(answer)
    sel = flow.make_masks(chain, picture, flow.Selection([box], [0]), clicks, None)
    assert [s[0] for s in chain.steps] == [f"{flow.MASK}, object 1"]  # no separate "clicked points" mask
    request = chain.steps[0][3]
    assert sorted(map(tuple, request.points)) == sorted((x, y) for x, y, _ in clicks)
    assert request.labels == [1, 1, 1, 1] and request.box == [10.0, 20.0, 50.0, 40.0]
    assert len(sel.masks) == 1


# ---- Speech to notes: the status lines name the parts -----------------------------------------------------------

def _notes_chain(parts):
    def answer(step, demo, method, request):
        if method == "split":
            return SimpleNamespace(parts=parts)
        return SimpleNamespace(answer=SimpleNamespace(text=f"notes of {step}"))
    return StepsSeen(answer)


def test_one_part_is_one_plain_chat_step_and_several_parts_are_numbered_then_combined():
    from demos.speech_notes import notes

    transcript = SimpleNamespace(segments=[SimpleNamespace(start=0.0, end=2.0, text="We meet on Friday.")],
                                 duration=2.0, text="We meet on Friday.")
    one = _notes_chain(((0.0, 2.0, "We meet on Friday."),))
    result = notes.write_notes(one, transcript, "Summary", None)
    chat = [s[0] for s in one.steps if s[2] == "complete"]
    assert chat == [notes.CHAT] and result.parts == 1
    assert result.notes == f"notes of {notes.CHAT}"

    two = _notes_chain(((0.0, 1.0, "We meet on Friday."), (1.0, 2.0, "Maria sends the report.")))
    result = notes.write_notes(two, transcript, "Summary", None)
    chat = [s[0] for s in two.steps if s[2] == "complete"]
    assert chat == [f"{notes.CHAT}, part 1 of 2", f"{notes.CHAT}, part 2 of 2", f"{notes.CHAT}, all parts together"]
    assert result.parts == 2 and result.notes == f"notes of {notes.CHAT}, all parts together"


def test_a_recording_whisper_hears_nothing_in_gets_the_no_speech_sentence():
    from demos.speech_notes import notes
    from hub.errors import UserError

    for text in ("", "   "):
        heard = SimpleNamespace(transcript=SimpleNamespace(text=text, segments=[], duration=1.0))
        chain = StepsSeen(lambda step, demo, method, request, heard=heard: heard)
        with pytest.raises(UserError, match="no speech was heard"):
            notes.transcribe(chain, np.zeros(16_000, np.float32), None)
        assert [s[0] for s in chain.steps] == [notes.ASR]
    spoken = SimpleNamespace(transcript=SimpleNamespace(text="We meet on Friday.", segments=[], duration=1.0))
    chain = StepsSeen(lambda *a: spoken)
    assert notes.transcribe(chain, np.zeros(16_000, np.float32), None).text == "We meet on Friday."


# ---- Settings: DEMOHUB_QUEUE_SIZE's range is 1 to 100,000, both ends included ------------------------------------

def test_queue_size_takes_its_largest_value_and_refuses_one_more():
    from hub.errors import SettingsError
    from hub.settings import Settings

    assert Settings.load({"DEMOHUB_QUEUE_SIZE": "100000"}).queue_size == 100_000
    assert Settings.load({"DEMOHUB_QUEUE_SIZE": "1"}).queue_size == 1
    for bad in ("100001", "0"):
        with pytest.raises(SettingsError, match=r"DEMOHUB_QUEUE_SIZE=\d+ is out of range; use a number from 1 to 100000"):
            Settings.load({"DEMOHUB_QUEUE_SIZE": bad})


# ---- Whisper: `--weights random` builds each size at its published architecture --------------------------------

def test_random_whisper_builds_have_the_published_dimensions_of_each_size():
    from demos.whisper_asr import engine

    # openai-whisper's model card (and each checkpoint's `dims`): mels, vocabulary, width, heads, encoder layers,
    # decoder width, heads, decoder layers; .en vocabularies have one token fewer; large-v3 has 128 mels and one
    # more token; turbo keeps 4 decoder layers and distil-large-v3.5 2
    truth = {
        "tiny": (384, 6, 4), "base": (512, 8, 6), "small": (768, 12, 12), "medium": (1024, 16, 24),
    }
    for size, (width, heads, layers) in truth.items():
        assert engine._DIMS[size] == (80, 51865, width, heads, layers, width, heads, layers), size
        assert engine._DIMS[f"{size}.en"] == (80, 51864, width, heads, layers, width, heads, layers), size
    assert engine._DIMS["large-v3"] == (128, 51866, 1280, 20, 32, 1280, 20, 32)
    assert engine._DIMS["turbo"] == (128, 51866, 1280, 20, 32, 1280, 20, 4)
    assert engine._DIMS["distil-large-v3.5"] == (128, 51866, 1280, 20, 32, 1280, 20, 2)


# ---- Edit by object: the classes box reads its first 2,000 characters --------------------------------------------

def test_the_classes_text_is_read_up_to_its_2000th_character():
    from demos.edit_object import flow

    assert flow.parse_classes("Dog, cat ,, PERSON") == ["dog", "cat", "person"]
    long = "x" * 1999 + "yz, dog"  # the 2,000th character is the "y"; the rest is not read
    assert flow.parse_classes(long) == ["x" * 1999 + "y"]
    assert flow.parse_classes(["Dog", " ", "Cat"]) == ["dog", "cat"]


# ---- Describe image: bytes that are not a picture are named by their place, as a sentence -------------------------

def test_bytes_that_are_not_a_picture_are_named_by_their_place_with_a_capital_letter():
    import io

    from PIL import Image

    from demos.vision.engine import open_images
    from hub.errors import UserError

    good = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(good, format="PNG")
    broken = b"\x89PNG\r\n\x1a\n" + b"\0" * 40
    options = SimpleNamespace(max_image_mb=20, max_side=2048)
    with pytest.raises(UserError) as one:
        open_images((broken,), options)
    assert str(one.value).startswith("The image ") and "uploaded data" not in str(one.value)
    with pytest.raises(UserError) as second:
        open_images((good.getvalue(), broken), options)
    assert str(second.value).startswith("Image 2 ")
    assert len(open_images((good.getvalue(),), options)) == 1


def test_the_port_takes_65535_and_refuses_65536():
    from hub.errors import SettingsError
    from hub.settings import Settings

    assert Settings.load({}, port=65535).port == 65535
    assert Settings.load({}, port=1).port == 1
    for bad in (65536, 0):
        with pytest.raises(SettingsError, match=f"--port {bad} is out of range; use a number from 1 to 65535"):
            Settings.load({}, port=bad)


# ---- Describe image: a conversation that leaves room for one token gets it; none left is refused ----------------

def test_describe_answers_when_one_token_of_context_is_left_and_refuses_when_none_is(tmp_path):
    import dataclasses

    from PIL import Image

    from demos.vision import DEMO, SPEC
    from demos.vision import engine as V
    from demos.vision.types import DescribeRequest, Done, Sampling
    from hub.errors import UserError
    from hub.options import defaults
    from hub.weights import Weights
    from hub.work import Job

    eng = V.load(Weights("vision", SPEC.choice("tiny-random"), "random", None, None), "cpu", "float32",
                 options=defaults(DEMO))
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(path)
    lease = SimpleNamespace(engine=eng, weights=SimpleNamespace(record=lambda: {"model": "tiny-random"}),
                            record=lambda **params: {"model": "tiny-random", **params})

    def describe(engine, session):
        req = DescribeRequest((str(path),), "caption", "", Sampling(max_new_tokens=6), session=session)
        return list(V.describe(SimpleNamespace(**{**vars(lease), "engine": engine}), req, Job()))[-1]

    first = describe(eng, "a")
    assert isinstance(first, Done) and first.completion_tokens == 6
    n = first.prompt_tokens
    one_left = describe(dataclasses.replace(eng, context=n + 1), "b")
    assert one_left.prompt_tokens == n and one_left.completion_tokens == 1
    with pytest.raises(UserError, match=f"is {n} tokens long; the model reads at most {n}:"):
        describe(dataclasses.replace(eng, context=n), "c")


# ---- Chat: a message of exactly the prompt cap x 16 characters is measured in tokens, not refused unread ---------

def test_a_message_at_the_character_bound_is_tokenised_and_one_past_it_is_refused_unread(torch_engine):
    import dataclasses

    from demos.llm_chat import engine as L
    from demos.llm_chat.messages import build_messages
    from hub.errors import UserError

    engine = dataclasses.replace(torch_engine, max_prompt_tokens=64)  # no tokenizer fits more than 16 chars a token
    params = L.check_params(max_new_tokens=8)
    with pytest.raises(UserError, match=r"too long \(\d+ tokens with the system prompt\)"):
        L.prepare(engine, build_messages("", [], "x" * (64 * 16)), params)
    with pytest.raises(UserError, match=r"too long \(1025 characters\)"):
        L.prepare(engine, build_messages("", [], "x" * (64 * 16 + 1)), params)



# ---- YOLO video: the record gives the processing speed in frames/s to one decimal --------------------------------

def test_a_videos_record_gives_its_processing_speed_to_one_decimal(hub_ctx, tmp_path):
    from demos.yolo_detect import types as yt
    from tests.test_yolo_detect import _video

    src = _video(tmp_path / "clip.mp4", frames=10, rate=10)
    for _ in range(3):  # a speed that happens to be a whole tenth proves nothing: look at several runs
        done = list(hub_ctx.stream("detect_video", yt.VideoRequest(str(src), 0.0, None, [], 2, 64), "tiny-random"))[-1]
        fps = done.record["processing_fps"]
        assert done.record["frames"] == 10 and fps > 0 and round(fps, 1) == fps


# ---- Settings: a size without a unit is bytes ----------------------------------------------------------------------

def test_a_size_without_a_unit_is_that_many_bytes():
    from hub.settings import parse_bytes

    assert parse_bytes("123", "DEMOHUB_MEMORY_BUDGET") == 123
    assert parse_bytes("123B", "DEMOHUB_MEMORY_BUDGET") == 123
    assert parse_bytes("2KB", "DEMOHUB_MEMORY_BUDGET") == 2000
    assert parse_bytes("1.5MiB", "DEMOHUB_MEMORY_BUDGET") == 1_572_864
    assert parse_bytes("auto", "DEMOHUB_MEMORY_BUDGET") is None


# ---- CLIP search: the ranking names each picture by its file, or by its place when it is not a file ---------------

def test_the_search_ranking_names_files_by_name_and_other_pictures_by_their_place(tmp_path):
    from demos.clip_zero_shot.formats import RankingTable
    from demos.clip_zero_shot.types import SearchResult

    cat, dog = str(tmp_path / "cat.png"), str(tmp_path / "dog.jpg")
    items = [(cat, "a caption"), dog, np.zeros((4, 4, 3), np.uint8)]
    result = SearchResult("a dog", [1, 2, 0], np.array([0.1, 0.9, 0.5], np.float32))
    table = RankingTable(result, items)
    frame = table.frame()
    assert list(frame["image"]) == ["dog.jpg", "image 3", "cat.png"]
    assert list(frame["rank"]) == [1, 2, 3] and list(frame["similarity"]) == [0.9, 0.5, 0.1]
    assert [g[1] for g in table.gallery()] == ["#1 · 0.900", "#2 · 0.500", "#3 · 0.100"]
    assert table.gallery()[0][0] == dog and table.gallery()[2][0] == cat


# ---- SAM: a local checkpoint's architecture is read from its patch embedding's width --------------------------------

def test_local_sam_checkpoints_are_told_apart_by_their_patch_embedding_width():
    from pathlib import Path

    import torch

    from demos.sam_segment.engine import _arch_of
    from hub.errors import UserError

    key = "image_encoder.patch_embed.proj.weight"
    for width, arch in ((768, "vit_b"), (1024, "vit_l"), (1280, "vit_h")):  # SAM's ViT-B/L/H (the official files)
        assert _arch_of({key: torch.zeros(width, 3, 1, 1)}, Path("sam.pth")) == arch
    assert _arch_of({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(1)}, Path("mobile_sam.pt")) == "vit_t"
    with pytest.raises(UserError, match="other.pth does not look like a SAM ViT-B/L/H or MobileSAM checkpoint"):
        _arch_of({key: torch.zeros(512, 3, 1, 1)}, Path("other.pth"))


# ---- Text to speech: a WAV download is one whole WAV file; a streamed WAV has one header --------------------------

def test_the_wav_download_is_one_riff_file_with_its_data_size_and_other_formats_are_not_wav():
    import struct

    from demos.tts import formats as F

    samples = np.sin(np.linspace(0, 400, 22_050)).astype(np.float32) * 0.3  # 1 s at 22,050 Hz
    wav = F.encode(samples, 22_050, "wav")
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and wav.count(b"RIFF") == 1
    # the fmt chunk: PCM, mono, the rate, bytes per second, bytes per sample frame (block align), bits
    assert struct.unpack("<4sIHHIIHH", wav[12:36]) == (b"fmt ", 16, 1, 1, F.PCM_RATE, F.PCM_RATE * 2, 2, 16)
    data_size = struct.unpack("<I", wav[40:44])[0]
    assert data_size == len(wav) - 44 and abs(data_size / 2 / F.PCM_RATE - 1.0) < 0.01  # 16-bit mono, 1 s
    mp3 = F.encode(samples, 22_050, "mp3")
    assert mp3[:4] != b"RIFF" and len(mp3) > 0


def test_a_streamed_wav_starts_with_its_header_once():
    from demos.tts import formats as F

    enc = F.Encoder("wav", 22_050)
    chunks = [enc.feed(np.zeros(11_025, np.float32)) for _ in range(3)] + [enc.close()]
    body = b"".join(chunks)
    assert chunks[0][:4] == b"RIFF" and body.count(b"RIFF") == 1 and body.count(b"WAVE") == 1
