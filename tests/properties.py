"""Shared strategies and the property for the hypothesis tests of validators (tests/test_*_properties.py).

The property, for arbitrary inputs (NaN, inf, negative, huge, wrong types, unicode): a validator either returns a
value that satisfies its documented invariant, or raises `hub.errors.UserError` (settings: `SettingsError`) whose
message is a sentence. Any other exception is a bug.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings, strategies as st

from hub.errors import UserError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- shared strategies and the property ------------------------------------------------------------------------

FLOAT_LIMIT = 1e308  # ints beyond float range make float(value) raise OverflowError: a known bug class, tested apart
HUGE_INT = 10**400
DEEP_JSON = "[" * 100_000  # json.loads raises RecursionError (not ValueError) on this

small_ints = st.integers(min_value=-10**6, max_value=10**6)
big_ints = st.integers(min_value=-10**300, max_value=10**300)  # still inside float range
floats = st.floats(allow_nan=True, allow_infinity=True)
numbers = st.one_of(small_ints, big_ints, floats, st.sampled_from([0, 1, -1, 0.5, -0.0, 1e-320, 2**63, 2**64]))
unicode_text = st.text(max_size=20)
numeric_text = st.one_of(numbers.map(str), st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "0x10", "1_0",
                                                           "٣", "１２", "3.", " 7 ", "NaN"]))
junk = st.one_of(st.none(), st.booleans(), st.lists(small_ints, max_size=3), st.binary(max_size=4),
                 st.dictionaries(st.text(max_size=3), small_ints, max_size=2))
anything = st.one_of(numbers, numeric_text, unicode_text, junk)


def one_bad(valid: dict, bad=anything):
    """Valid settings, or the same with one field replaced by an arbitrary value (so both paths are exercised)."""
    return st.tuples(st.fixed_dictionaries(valid), st.one_of(st.none(), st.sampled_from(sorted(valid))), bad).map(
        lambda t: t[0] if t[1] is None else {**t[0], t[1]: t[2]})


def check_sentence(err: Exception) -> None:
    msg = str(err)
    assert len(msg.split()) >= 4, f"not a sentence: {msg!r}"


def outcome(fn, *args, **kw):
    """(True, value) or (False, UserError); any other exception propagates and fails the property."""
    try:
        return True, fn(*args, **kw)
    except UserError as e:
        check_sentence(e)
        return False, e


def as_float(value):
    """float(value) when Python can make one, else None (what a numeric validator must accept or refuse)."""
    try:
        return None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def overflows(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > FLOAT_LIMIT
