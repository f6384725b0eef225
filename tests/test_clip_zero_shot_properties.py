"""Property-based tests (hypothesis) for the clip_zero_shot validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations


from hypothesis import example, given, strategies as st
from tests.properties import FAST, QUICK, floats, numbers, numeric_text, outcome, small_ints, unicode_text


from demos.clip_zero_shot import engine as clip  # noqa: E402


# ---- clip_zero_shot ----------------------------------------------------------------------------------------------

label_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["cat", "Cat", "dog", " ", "", "a  b", "東京", "naïve", "\t", "x\u2028y", "🐱"]),
             max_size=6).map(",".join),
    st.lists(st.sampled_from(["cat", "dog", "car", " bird ", "Dog", "", "a\nb"]), max_size=6).map("\n".join),
    st.lists(st.one_of(st.text(max_size=6), small_ints, floats), max_size=6),
)


@FAST
@given(text=label_text, max_labels=st.integers(1, 5))
def test_clip_parse_labels_non_empty_stripped_unique(text, max_labels):
    ok, labels = outcome(clip.parse_labels, text, max_labels)
    if ok:
        assert 1 <= len(labels) <= max_labels
        assert all(isinstance(x, str) and x and x == " ".join(x.split()) for x in labels)
        assert len({x.lower() for x in labels}) == len(labels)


@FAST
@given(template=st.one_of(st.text(max_size=30), st.text(max_size=8).map(lambda t: t + "{}."), st.sampled_from(["a photo of a {}.", "{}", "{ }", "{{}}", ""]),
                          st.none()),
       ensemble=st.one_of(st.just("none"), st.text(max_size=8)))
def test_clip_templates_for_always_have_a_label_slot(template, ensemble):
    ok, templates = outcome(clip.templates_for, template, ensemble)
    if ok:
        assert templates and all("{}" in t for t in templates)
        assert all(clip.fill(t, "cat") != t for t in templates)


@FAST
@given(labels=label_text, template=st.one_of(st.text(max_size=20), st.just("a {}")),
       mode=st.one_of(st.sampled_from(clip.MODES), unicode_text), threshold=st.one_of(numbers, numeric_text),
       ensemble=st.one_of(st.just("none"), unicode_text))
def test_clip_classify_validates_before_touching_the_model(labels, template, mode, threshold, ensemble):
    # No images: a request whose every setting is valid must still end as a UserError ("Upload at least one image"),
    # before the engine (None here) is ever used.
    ok, _ = outcome(clip.classify, None, None, labels, template, ensemble, mode, threshold)
    assert not ok


@FAST
@given(query=st.one_of(st.text(max_size=40), st.none()))
def test_clip_search_images_validates_query_and_gallery(query):
    ok, err = outcome(clip.search_images, None, None, query)
    assert not ok


@QUICK
@example(threshold="abc")
@given(threshold=st.text(alphabet="abcxyz", min_size=1, max_size=5))
def test_clip_classify_non_numeric_threshold(threshold):
    outcome(clip.classify, None, None, "cat, dog", mode="multi", threshold=threshold)


@QUICK
@example(fn="parse_labels", value=5)
@given(fn=st.sampled_from(["parse_labels", "templates_for", "search_images"]),
       value=st.one_of(st.integers(1, 9), st.floats(0.5, 9), st.dictionaries(st.just("a"), st.just(1), min_size=1)))
def test_clip_text_validators_with_wrong_types(fn, value):
    call = {"parse_labels": lambda: clip.parse_labels(value), "templates_for": lambda: clip.templates_for(value),
            "search_images": lambda: clip.search_images(None, None, value)}[fn]
    outcome(call)
