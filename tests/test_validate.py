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
