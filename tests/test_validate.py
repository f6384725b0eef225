"""hub.validate: one policy for every tab — a bad number or choice is refused with a sentence, never clamped."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hub import validate
from hub.errors import UserError
from tests.properties import FAST, anything


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), (np.int64(7), 7), (np.float32(2.0), 2), ("", 5), (None, 5)])
def test_whole_numbers_accept_integral_values_and_defaults(value, expected):
    assert validate.number(value, "steps", 1, 10, integer=True, default=5) == expected


@pytest.mark.parametrize("value, words", [
    (0, "0, which is out of range; use a whole number from 1 to 10"), (11, "out of range"),
    (2.5, "whole number, not 2.5"), (math.nan, "real number, not nan"), (math.inf, "real number"),
    (True, "must be a number, not True"), ("7", "must be a number, not '7'"), ([1], "must be a number"),
    (None, "is missing"), (10**400, "far too large"),
])
def test_bad_numbers_are_refused_with_the_setting_and_its_range(value, words):
    with pytest.raises(UserError) as e:
        validate.number(value, "steps", 1, 10, integer=True)
    assert str(e.value).startswith("Steps ") and words in str(e.value) and str(e.value).endswith(".")


def test_open_lower_bound():
    assert validate.number(0.1, "temperature", 0, 2, lo_open=True) == 0.1
    with pytest.raises(UserError, match="use a number above 0 and at most 2"):
        validate.number(0, "temperature", 0, 2, lo_open=True)


@FAST
@given(value=anything, lo=st.integers(-5, 5), span=st.integers(0, 10), integer=st.booleans())
def test_number_returns_a_value_in_range_or_refuses(value, lo, span, integer):
    try:
        out = validate.number(value, "x", lo, lo + span, integer=integer)
    except UserError as e:
        assert len(str(e).split()) >= 6
    else:
        assert lo <= out <= lo + span and isinstance(out, int if integer else float)
        assert out == float(value)  # never clamped, never rounded


def test_choice_and_flag():
    assert validate.choice("b", "mode", ("a", "b")) == "b"
    assert validate.choice(None, "mode", ("a", "b"), default="a") == "a"
    with pytest.raises(UserError, match="Mode 'c' is not one of the choices; use one of: a, b."):
        validate.choice("c", "mode", ("a", "b"))
    with pytest.raises(UserError, match="not one of the choices"):
        validate.choice(["a"], "mode", ("a", "b"))
    assert validate.flag(True, "words") is True and validate.flag(0, "words") is False
    with pytest.raises(UserError, match="Words must be true or false"):
        validate.flag("yes", "words")


# The whole sentence a caller reads, typed out by hand: each bad kind of value, each shape of range.
SENTENCES = [
    ((None, "steps", 1, 10), {"integer": True}, "Steps is missing; use a whole number from 1 to 10."),
    (("", "guidance", 0, 30), {}, "Guidance is missing; use a number from 0 to 30."),
    (("7", "steps", 1, 10), {"integer": True}, "Steps must be a number, not '7'; use a whole number from 1 to 10."),
    ((True, "strength", 0, 1), {"lo_open": True},
     "Strength must be a number, not True; use a number above 0 and at most 1."),
    ((10**400, "seed", -1, 2**32 - 1), {"integer": True},
     "Seed is far too large; use a whole number from -1 to 4294967295."),
    ((10**400, "top-k", 0, None), {"integer": True}, "Top-k is far too large; use a whole number of at least 0."),
    ((math.nan, "temperature", 0, 2), {}, "Temperature must be a real number, not nan; use a number from 0 to 2."),
    ((-math.inf, "x", None, 5), {}, "X must be a real number, not -inf; use a number of at most 5."),
    ((2.5, "steps", 1, None), {"integer": True}, "Steps must be a whole number, not 2.5; use a whole number of at least 1."),
    ((0, "top-p", 0, 1), {"lo_open": True}, "Top-p is 0, which is out of range; use a number above 0 and at most 1."),
    ((0, "penalty", 0, None), {"lo_open": True}, "Penalty is 0, which is out of range; use a number above 0."),
    ((-1, "size", 0, None), {}, "Size is -1, which is out of range; use a number of at least 0."),
    ((99999999, "width", 64, 1024), {"integer": True},
     "Width is 99999999, which is out of range; use a whole number from 64 to 1024."),
    ((1e300, "width", 64, 1024), {}, "Width is 1e+300, which is out of range; use a number from 64 to 1024."),
    ((None, "level", None, None), {}, "Level is missing; use a number."),
]


@pytest.mark.parametrize("args, kw, sentence", SENTENCES)
def test_each_refusal_is_the_exact_sentence(args, kw, sentence):
    with pytest.raises(UserError) as e:
        validate.number(*args, **kw)
    assert str(e.value) == sentence


def test_edges_of_a_range_are_inside_it():
    assert validate.number(1, "steps", 1, 10, integer=True) == 1 and validate.number(10, "steps", 1, 10) == 10.0
    assert validate.number(1e-9, "top-p", 0, 1, lo_open=True) == 1e-9
    assert validate.number(5, "x") == 5.0 and isinstance(validate.number(5.0, "x", integer=True), int)


@pytest.mark.parametrize("x, shown", [(99999999, "99999999"), (0.35, "0.35"), (-1, "-1"), (1e15, "1000000000000000"),
                                      (1e16, "1e+16"), (2.0, "2"), (1.5e300, "1.5e+300")])
def test_numbers_are_written_as_people_write_them(x, shown):
    assert validate.plain_number(x) == shown


def test_choice_and_flag_sentences():
    with pytest.raises(UserError) as e:
        validate.choice("Quantum", "scheduler", ["Euler", "DDIM"])
    assert str(e.value) == "Scheduler 'Quantum' is not one of the choices; use one of: Euler, DDIM."
    with pytest.raises(UserError) as e:
        validate.choice(None, "mode", [f"m{i}" for i in range(25)])
    first20 = ", ".join(f"m{i}" for i in range(20))
    assert str(e.value) == f"Mode None is not one of the choices; use one of: {first20}, ...."
    assert validate.choice("", "mode", ["a"], default="a") == "a" and validate.choice("a", "mode", ["a"]) == "a"
    with pytest.raises(UserError) as e:
        validate.flag("yes", "vad")
    assert str(e.value) == "Vad must be true or false, not 'yes'."
    with pytest.raises(UserError) as e:
        validate.flag("x" * 100, "vad")
    assert str(e.value) == f"Vad must be true or false, not {repr('x' * 100)[:37]}...."
    assert validate.flag(None, "vad", default=True) is True and validate.flag(1, "vad") is True
    assert validate.flag(0, "vad") is False
    with pytest.raises(UserError):
        validate.flag(2, "vad")


def test_long_choice_lists_and_long_values_are_cut_where_promised():
    twenty, twenty_one = [f"m{i}" for i in range(20)], [f"m{i}" for i in range(21)]
    for options, cut in ((twenty, False), (twenty_one, True)):
        with pytest.raises(UserError) as e:
            validate.choice("zz", "mode", options)
        assert str(e.value).endswith(", ....") is cut and "m19" in str(e.value) and "m20" not in str(e.value)
    forty, forty_one = "x" * 38, "x" * 39  # repr adds the two quotes: 40 and 41 characters
    with pytest.raises(UserError) as e:
        validate.flag(forty, "vad")
    assert repr(forty) in str(e.value)
    with pytest.raises(UserError) as e:
        validate.flag(forty_one, "vad")
    assert repr(forty_one) not in str(e.value) and repr(forty_one)[:37] + "..." in str(e.value)


def test_a_flag_given_is_never_replaced_by_its_default():
    assert validate.flag(True, "vad", default=False) is True and validate.flag(False, "vad", default=True) is False
    with pytest.raises(UserError, match="Vad must be true or false, not None."):
        validate.flag(None, "vad")
