"""Prompt weighting as AUTOMATIC1111 does it (issue #29): the parser against the examples of A1111's own
documentation (modules/prompt_parser.py's doctest and the wiki's "Attention/emphasis"), the embeddings against
diffusers' own encoder (weight 1 everywhere: identical) and against A1111's formula computed here, and a prompt past
77 tokens read to its end. Tiny random weights (test_stable_diffusion.py says how); no download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demos.stable_diffusion import engine as sd
from demos.stable_diffusion import weighting
from hub.weights import Weights
from tests.test_redos import finishes

A1111_DOC = [  # (prompt, A1111's parse_prompt_attention output)
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1),
      ("sky", 1.4641), (".", 1.1)]),
    ("a (red:1.5) cat", [("a ", 1.0), ("red", 1.5), (" cat", 1.0)]),
    ("((word))", [("word", 1.21)]),
    ("[word]", [("word", 1 / 1.1)]),
    ("[[word]]", [("word", 1 / 1.21)]),
    ("a cat BREAK a dog", [("a cat", 1.0), ("BREAK", None), ("a dog", 1.0)]),
    ("BREAKfast (x:y)", [("BREAKfast ", 1.0), ("x:y", 1.1)]),  # BREAK only as a word; "x:y" is no weight
    ("ratio 16:9 (art:0.8)", [("ratio 16:9 ", 1.0), ("art", 0.8)]),
]


@pytest.mark.parametrize("prompt, expected", A1111_DOC)
def test_the_parser_gives_a1111s_pieces(prompt, expected):
    got = weighting.parse(prompt)
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [w for _, w in got] == [pytest.approx(w) if w is not None else None for _, w in expected]


@pytest.mark.parametrize("text", ["(" * 100_000, "(a:" * 30_000, "[" * 50_000 + "]" * 50_000, ":" * 100_000,
                                  "\\(" * 50_000, "BREAK " * 16_000, "(a:1.)" * 16_000, "BREA" * 25_000 + "K"])
def test_the_parser_is_linear(text):
    assert isinstance(finishes(weighting.parse, text), list)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hub.settings import Settings

    weights = Weights("stable_diffusion", sd.SPEC.choice("tiny-random"), "random", None, tmp_path_factory.mktemp("sd"))
    return sd.load(weights, "cpu", "float32", settings=Settings.load({}))


def _diffusers(pipe, prompt: str, negative: str = ""):
    with torch.inference_mode():
        return pipe.encode_prompt(prompt, "cpu", 1, True, negative)


def test_weight_one_everywhere_is_diffusers_own_encoding(engine):
    pipe = engine.pipe
    for prompt, negative in (("a red cube on a table", "blurry"), ("", ""), ("a, b, c" * 3, "low quality, text")):
        with torch.inference_mode():
            ours = weighting.encode(pipe, prompt, negative)
        theirs = _diffusers(pipe, prompt, negative)
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


@pytest.fixture
def biased_norm(engine):
    """The text encoder's last layer norm with a bias, as a trained CLIP's has: its embeddings get a mean that is
    not zero, which A1111's rescale keeps (the random build's norm has none: every token's mean is 0)."""
    encoder = engine.pipe.text_encoder
    norm = getattr(encoder, "text_model", encoder).final_layer_norm  # transformers 5 dropped the `text_model` level
    before = norm.bias.detach().clone()
    with torch.no_grad():
        norm.bias.copy_(torch.linspace(-0.5, 0.3, norm.bias.numel()))
    yield
    with torch.no_grad():
        norm.bias.copy_(before)


def test_a_weight_scales_its_tokens_and_keeps_the_mean_as_a1111(engine, biased_norm):
    pipe = engine.pipe
    with torch.inference_mode():
        ours, _ = weighting.encode(pipe, "a (red:1.5) cat", "")
    z = _diffusers(pipe, "a red cat")[0]  # the same tokens: "a", "red", "cat"
    assert abs(z.mean()) > 0.05 * z.abs().mean()  # a mean the rescale can keep
    w = torch.ones(77)
    w[2] = 1.5  # <start> a red ...
    expected = z * w[None, :, None]
    expected = expected * (z.mean() / expected.mean())
    assert torch.allclose(ours, expected, atol=1e-6) and not torch.allclose(ours, z * w[None, :, None], atol=1e-4)
    assert ours.mean() == pytest.approx(z.mean().item(), rel=1e-4)


def test_a_weight_over_embeddings_of_zero_mean_scales_its_tokens_and_stays_finite(engine):
    """Found on a 2-vCPU AMD EPYC with AVX2 only: the random build's embeddings have a mean of ~1e-9 (rounding), so
    A1111's rescale divided rounding by rounding and gave inf in float32: "cube [31m" failed with a NaN message.
    Where the mean is ~0 the weights apply as they are."""
    pipe = engine.pipe
    z = _diffusers(pipe, "a red cat")[0]
    assert abs(z.mean()) < 1e-5 * z.abs().mean()  # the case: a last layer norm without bias
    w = torch.ones(77)
    w[2] = 1 / 1.1
    for prompt in ("a [red] cat", "a [red cat", "a (red:0.9090909090909091) cat"):
        with torch.inference_mode():
            ours, _ = weighting.encode(pipe, prompt, "")
        assert torch.isfinite(ours).all(), prompt
        if prompt != "a [red cat":
            assert torch.allclose(ours, z * w[None, :, None], atol=1e-6), prompt
    image = sd.generate(engine, "cube \x00\x1b[31m\u0301\ufeff", steps=2, seed=0).images[0]
    assert np.asarray(image).std() > 0  # an image, not the NaN message


def test_a_long_prompt_is_read_to_its_end_in_75_token_chunks(engine):
    pipe = engine.pipe
    long = ", ".join(f"word{i}" for i in range(60))  # ~240 tokens: 4 chunks
    with torch.inference_mode():
        red, neg = weighting.encode(pipe, long + ", red", "")
        blue, _ = weighting.encode(pipe, long + ", blue", "")
    assert red.shape[1] == 77 * 4 and neg.shape == red.shape  # the negative padded to as many chunks
    assert not torch.equal(red, blue)  # the last word counts
    plain_red, plain_blue = _diffusers(pipe, long + ", red")[0], _diffusers(pipe, long + ", blue")[0]
    assert torch.equal(plain_red, plain_blue)  # diffusers alone truncates at 77 tokens: the same embeddings
    a = sd.generate(engine, long + ", red", steps=2, seed=1, guidance=1.0)
    b = sd.generate(engine, long + ", blue", steps=2, seed=1, guidance=1.0)
    assert np.abs(np.asarray(a.images[0], np.int16) - np.asarray(b.images[0], np.int16)).max() > 0
    assert not any("tokens long" in n for n in a.notes) and a.params["prompt"] == long + ", red"


def test_break_starts_a_new_chunk_and_commas_move_words_across(engine):
    tok = engine.pipe.tokenizer
    ids, weights, _ = weighting.chunks(tok, "a cat BREAK a dog")
    assert len(ids) == 2 and all(len(c) == 77 for c in ids) and all(len(w) == 77 for w in weights)
    assert tok.decode(ids[1][1:3]) == "a dog"
    # 70 words, a comma, then 10 more: the chunk would end 10 tokens after the comma, so those words move on
    text = " ".join(["cat"] * 70) + ", " + " ".join(["dog"] * 10)
    ids, _, _ = weighting.chunks(tok, text)
    assert tok.decode(ids[1][1:11]).split() == ["dog"] * 10


def test_a_prompt_past_the_chunk_limit_gets_a_note(engine):
    words = " ".join(f"word{i}" for i in range(250))  # ~750 tokens: more than 8 chunks of 75
    r = sd.generate(engine, words, steps=1, seed=1)
    note = next(n for n in r.notes if "tokens long" in n)
    assert note.startswith("The prompt is 890 tokens long; the text encoder reads only 600, so this part was ignored")
    assert "word200 word201" in note and "word1 " not in note
